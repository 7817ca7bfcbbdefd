"""`make cost PRICES=live`: renew the price snapshot for a region from the AWS Price List Query API
(`pricing.get_products`, with the caller's credentials), in the snapshot's own format.

Each dimension the estimate uses is one query: its service code, its usage type (the region's usage-type prefix
before it, e.g. `EU-NatGateway-Hours` in eu-west-1) and, where a usage type is shared, its product family. The
on-demand price of the first paid tier is kept, with its provenance: source `AWS Price List Query API`, the date
of the read, the product's SKU. The new row becomes the preferred one for its region and dimension; the rows it
replaces stay, no longer preferred. A dimension the API does not answer for keeps its old row and is listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from preview.prices import PricesError

PRICING_REGION = "us-east-1"
"""The Price List Query API answers from us-east-1 (and a few others) for every region."""

USAGE_PREFIX = {"us-east-1": ("USE1", ""), "us-east-2": ("USE2",), "us-west-2": ("USW2",),
                "eu-west-1": ("EU", "EUW1"), "eu-west-2": ("EUW2",), "eu-central-1": ("EUC1",),
                "ap-southeast-1": ("APS1",), "ap-northeast-1": ("APN1",)}
"""A region's usage-type prefixes, in the order tried (us-east-1's usage types often have none)."""


@dataclass(frozen=True)
class Query:
    dimension: str
    service: str
    usage: str
    unit: str
    """The unit the estimate states, kept in the row."""
    family: str | None = None


QUERIES: tuple[Query, ...] = (
    Query("fargate_vcpu_hour", "AmazonECS", "Fargate-vCPU-Hours:perCPU", "vCPU-hour"),
    Query("fargate_gb_hour", "AmazonECS", "Fargate-GB-Hours", "GB-hour"),
    Query("fargate_arm_vcpu_hour", "AmazonECS", "Fargate-ARM-vCPU-Hours:perCPU", "vCPU-hour"),
    Query("fargate_arm_gb_hour", "AmazonECS", "Fargate-ARM-GB-Hours", "GB-hour"),
    Query("fargate_spot_vcpu_hour", "AmazonECS", "SpotUsage:Fargate-vCPU-Hours:perCPU", "vCPU-hour"),
    Query("fargate_spot_gb_hour", "AmazonECS", "SpotUsage:Fargate-GB-Hours", "GB-hour"),
    Query("alb_hour", "AWSELB", "LoadBalancerUsage", "ALB-hour", "Load Balancer-Application"),
    Query("alb_lcu_hour", "AWSELB", "LCUUsage", "LCU-hour", "Load Balancer-Application"),
    Query("nlb_hour", "AWSELB", "LoadBalancerUsage", "NLB-hour", "Load Balancer-Network"),
    Query("nat_hour", "AmazonEC2", "NatGateway-Hours", "hour"),
    Query("nat_gb", "AmazonEC2", "NatGateway-Bytes", "GB processed"),
    Query("public_ipv4_hour", "AmazonVPC", "PublicIPv4:InUseAddress", "address-hour"),
    Query("vpce_interface_hour", "AmazonVPC", "VpcEndpoint-Hours", "endpoint-zone-hour"),
    Query("efs_standard_gb_month", "AmazonEFS", "TimedStorage-ByteHrs", "GB-month"),
    Query("backup_efs_warm_gb_month", "AWSBackup", "WarmStorage-ByteHrs-EFS", "GB-month"),
    Query("s3_standard_gb_month", "AmazonS3", "TimedStorage-ByteHrs", "GB-month"),
    Query("s3_put_request", "AmazonS3", "Requests-Tier1", "request"),
    Query("s3_get_request", "AmazonS3", "Requests-Tier2", "request"),
    Query("ecr_gb_month", "AmazonECR", "TimedStorage-ByteHrs", "GB-month"),
    Query("logs_ingest_gb", "AmazonCloudWatch", "DataProcessing-Bytes", "GB ingested"),
    Query("logs_vended_gb", "AmazonCloudWatch", "VendedLog-Bytes", "GB ingested"),
    Query("logs_storage_gb_month", "AmazonCloudWatch", "TimedStorage-ByteHrs", "GB-month"),
    Query("cw_alarm_standard_month", "AmazonCloudWatch", "CW:AlarmMonitorUsage", "alarm-metric-month"),
    Query("cw_custom_metric_month", "AmazonCloudWatch", "CW:MetricMonitorUsage", "metric-month"),
    Query("secretsmanager_secret_month", "AWSSecretsManager", "AWSSecretsManager-Secrets", "secret-month"),
    Query("codebuild_general1_small_min", "CodeBuild", "Build-Min:Linux:g1.small", "build-minute"),
    Query("codebuild_general1_medium_min", "CodeBuild", "Build-Min:Linux:g1.medium", "build-minute"),
    Query("codebuild_general1_large_min", "CodeBuild", "Build-Min:Linux:g1.large", "build-minute"),
    Query("dynamodb_wru", "AmazonDynamoDB", "WriteRequestUnits", "write request unit"),
    Query("dynamodb_rru", "AmazonDynamoDB", "ReadRequestUnits", "read request unit"),
    Query("data_transfer_out_gb_first_tier", "AWSDataTransfer", "DataTransfer-Out-Bytes", "GB"),
)


def _first_paid_price(product: dict[str, Any]) -> tuple[float, str] | None:
    """(USD per unit, AWS's unit) of the lowest tier with a price above zero, from the on-demand terms."""
    tiers = []
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = float(dimension.get("pricePerUnit", {}).get("USD", "0") or 0)
            if usd > 0:
                tiers.append((float(dimension.get("beginRange", "0") or 0), usd, str(dimension.get("unit", ""))))
    if not tiers:
        return None
    _, usd, unit = min(tiers)
    return usd, unit


def _lookup(pricing: Any, region: str, query: Query) -> tuple[float, str, str, str] | None:
    """(USD per unit, AWS's unit, usage type, SKU) of the query in the region, or None."""
    for prefix in USAGE_PREFIX.get(region, ("",)):
        usage = f"{prefix}-{query.usage}" if prefix else query.usage
        filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
                   {"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage}]
        if query.family:
            filters.append({"Type": "TERM_MATCH", "Field": "productFamily", "Value": query.family})
        answer = pricing.get_products(ServiceCode=query.service, Filters=filters, FormatVersion="aws_v1",
                                      MaxResults=10)
        for document in answer.get("PriceList", []):
            product = json.loads(document) if isinstance(document, str) else document
            found = _first_paid_price(product)
            if found is not None:
                return found[0], found[1], usage, str(product.get("product", {}).get("sku", ""))
    return None


def refresh(path: Path, region: str, pricing: Any = None, today: date | None = None) -> str:
    """Renew `region`'s rows of the snapshot at `path`; a one-line summary."""
    from botocore.exceptions import BotoCoreError, ClientError

    if pricing is None:
        import boto3

        pricing = boto3.client("pricing", region_name=PRICING_REGION)
    today = today or date.today()
    document = json.loads(path.read_text())
    renewed, missing = [], []
    try:
        for query in QUERIES:
            found = _lookup(pricing, region, query)
            if found is None:
                missing.append(query.dimension)
                continue
            usd, aws_unit, usage, sku = found
            for row in document["prices"]:
                if row["region"] == region and row["dimension"] == query.dimension:
                    row["preferred"] = False
            document["prices"].append({
                "region": region, "service": query.service, "usagetype": usage, "dimension": query.dimension,
                "unit": query.unit, "usd": f"{usd:.10g}", "aws_unit": aws_unit,
                "source": f"AWS Price List Query API, pricing.get_products (ServiceCode {query.service}, usagetype "
                          f"{usage})", "found_in": "pricing:get_products", "source_date": today.isoformat(),
                "quality": "price-list-api", "preferred": True, "sku": sku})
            renewed.append(query.dimension)
    except (ClientError, BotoCoreError) as error:
        raise PricesError(f"the Price List Query API refused or failed ({error}); the snapshot is unchanged: "
                          "it needs credentials allowed pricing:GetProducts") from None
    if renewed:
        document["snapshot_date"] = max(document["snapshot_date"], today.isoformat())
        written = path.with_suffix(".partial")
        written.write_text(json.dumps(document, indent=1) + "\n")
        written.replace(path)  # whole or not at all
    return (f"prices of {region} renewed from the AWS Price List Query API on {today.isoformat()}: {len(renewed)} "
            f"dimension(s)" + (f"; no answer for {', '.join(missing)} (their previous rows stay)" if missing
                               else ""))
