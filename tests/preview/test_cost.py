"""`make cost` on the default and all-options synths: every line kind's quantity is checked against the synthesized
resources themselves (counts, sizes, the Spot split), the arithmetic against the snapshot's prices, and what the
snapshot lacks is a visible line, never a zero or another region's price."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest

from preview.cost import HOURS_PER_MONTH, estimate, runs_per_month, split_by_strategy
from preview.cost_assumptions import AssumptionError, Assumptions
from preview.cost_report import CostError, difference, parse, run, table
from preview.prices import PriceBook, PricesError, units_per_price
from preview.synthesized import Synthesized

BOOK = PriceBook.read()


@pytest.fixture(scope="module")
def default(default_synth):
    synth = Synthesized.read(default_synth.outdir)
    return synth, estimate(synth, "mlops", ["staging", "prod"], BOOK, Assumptions())


@pytest.fixture(scope="module")
def options(options_synth):
    synth = Synthesized.read(options_synth.outdir)
    return synth, estimate(synth, "acme-ml", ["qa"], BOOK, Assumptions())


def lines(bill, dimension: str):
    return [line for line in bill.lines if line.dimension == dimension]


def count(synth, stacks, resource_type):
    return sum(1 for stack in stacks for _ in synth.resources(resource_type, stack))


def env_stacks(synth, prefix):
    return [name for name in synth.stacks if name.startswith(prefix) and name.rsplit("-", 1)[-1] != "pipeline"]


def test_fargate_is_every_service_at_its_desired_count_and_size(default):
    synth, result = default
    for environment, bill in result.environments.items():
        stacks = env_stacks(synth, f"mlops-{environment}-")
        expected = 0.0
        for stack in stacks:
            for service in synth.resources("aws_ecs_service", stack):
                (task,) = [synth.resource(a) for a in synth.refs(service, service.get("task_definition"))]
                expected += int(service.get("desired_count")) * int(task.get("cpu")) / 1024 * HOURS_PER_MONTH
        assert sum(line.quantity for line in lines(bill, "fargate_vcpu_hour") if line.driven_by == "stacks") == (
            pytest.approx(expected))
    # prod keeps two tasks of a: 2 x 0.5 vCPU x 730 h at eu-west-1's on-demand price
    (prod_a,) = [line for line in lines(result.environments["prod"], "fargate_vcpu_hour")
                 if line.what.startswith("service a ")]
    assert prod_a.quantity == 730 and prod_a.monthly_usd == pytest.approx(730 * 0.04048)


def test_the_spot_split_follows_the_capacity_provider_strategy(options):
    synth, result = options
    (churn,) = synth.resources("aws_ecs_service", "acme-ml-qa-endpoint-churn")
    strategy = churn.get("capacity_provider_strategy")
    regular, spot = split_by_strategy(int(churn.get("desired_count")), strategy)
    assert regular + spot == int(churn.get("desired_count")) and spot > 0
    spot_lines = [line for line in result.environments["qa"].lines if line.dimension == "fargate_spot_vcpu_hour"]
    assert spot_lines and all(line.unit_usd == pytest.approx(0.01288871) for line in spot_lines)  # us-east-1 Spot
    # The first task on regular Fargate, the rest by weight: 4 tasks, base 1, 3:1 -> 1 + 2.25 regular, 0.75 Spot.
    assert split_by_strategy(4, [{"capacity_provider": "FARGATE", "base": 1, "weight": 3},
                                 {"capacity_provider": "FARGATE_SPOT", "weight": 1}]) == (3.25, 0.75)
    assert split_by_strategy(2, []) == (2.0, 0.0)


def test_load_balancers_nat_gateways_and_public_addresses_are_counted_from_the_stacks(default, options):
    for (synth, result), prefix in ((default, "mlops-"), (options, "acme-ml-")):
        for environment, bill in result.environments.items():
            stacks = env_stacks(synth, f"{prefix}{environment}-")
            balancers = [b for stack in stacks for b in synth.resources("aws_lb", stack)]
            applications = [b for b in balancers if (b.get("load_balancer_type") or "application") == "application"]
            assert sum(line.quantity for line in lines(bill, "alb_hour")) == len(applications) * HOURS_PER_MONTH
            nats = count(synth, stacks, "aws_nat_gateway")
            assert sum(line.quantity for line in lines(bill, "nat_hour")) == nats * HOURS_PER_MONTH
            addresses = count(synth, stacks, "aws_eip") + sum(len(b.get("subnets")) for b in applications
                                                                if not b.get("internal"))
            assert sum(line.quantity for line in lines(bill, "public_ipv4_hour")) == addresses * HOURS_PER_MONTH
    # staging: one NAT gateway (single) and an internet-facing balancer in two zones; prod: two NAT gateways, internal
    _, result = default
    assert lines(result.environments["staging"], "public_ipv4_hour")[0].quantity == 3 * HOURS_PER_MONTH
    assert lines(result.environments["prod"], "public_ipv4_hour")[0].quantity == 2 * HOURS_PER_MONTH


def test_keys_alarms_dashboards_and_secrets_are_counted_from_the_stacks(default):
    synth, result = default
    bill = result.environments["staging"]
    stacks = env_stacks(synth, "mlops-staging-")
    tracking = sum(1 for stack in stacks for p in synth.resources("aws_appautoscaling_policy", stack)
                   if p.get("policy_type") == "TargetTrackingScaling")
    # The monitor's no-data alarm reads two metrics (and one expression, not billed): two alarm-metrics.
    math = [alarm for stack in stacks for alarm in synth.resources("aws_cloudwatch_metric_alarm", stack)
            if alarm.get("metric_query")]
    assert len(math) == 2 and all(len(alarm.get("metric_query")) == 3 for alarm in math)
    assert sum(line.quantity for line in lines(bill, "cw_alarm_standard_month")) == (
        count(synth, stacks, "aws_cloudwatch_metric_alarm") + len(math) + 2 * tracking)
    assert sum(line.quantity for line in lines(bill, "kms_key_month")) == count(synth, stacks, "aws_kms_key")
    assert sum(line.quantity for line in lines(bill, "cw_dashboard_month")) == count(
        synth, stacks, "aws_cloudwatch_dashboard")
    secrets = lines(bill, "secretsmanager_secret_month")
    assert sum(line.quantity for line in secrets) == count(synth, stacks, "aws_secretsmanager_secret") == 4


def test_what_the_snapshot_lacks_for_the_region_is_a_visible_line_never_a_zero(default):
    _, result = default
    (secret, *_) = lines(result.environments["staging"], "secretsmanager_secret_month")
    assert secret.unit_usd is None and secret.monthly_usd is None
    assert secret.note == ("not priced (no price for secretsmanager_secret_month in eu-west-1 in the snapshot of "
                           "2026-10-08)")
    # CodeBuild has a us-east-1 price but none for eu-west-1: not borrowed.
    assert BOOK.price("us-east-1", "codebuild_general1_small_min") is not None
    assert all(line.unit_usd is None for line in result.pipeline.lines if line.dimension.startswith("codebuild"))
    assert result.environments["staging"].monthly_usd == pytest.approx(
        sum(line.monthly_usd for line in result.environments["staging"].lines if line.monthly_usd is not None))
    assert "+ 5 line(s) not priced" in "\n".join(table(result))


def test_a_region_the_snapshot_does_not_cover_is_one_error_naming_the_regions_it_covers(default):
    synth, _ = default
    moved = Synthesized({name: {**document, "provider": {"aws": [{"region": "ap-south-1"}]}}
                         for name, document in synth.stacks.items()})
    with pytest.raises(PricesError, match="has no prices for region ap-south-1; it covers eu-central-1, eu-west-1, "
                                          "eu-west-2, us-east-1, us-west-2"):
        estimate(moved, "mlops", ["staging"], BOOK, Assumptions())


def test_traffic_driven_lines_follow_the_assumptions(default):
    synth, _ = default
    double = estimate(synth, "mlops", ["staging"], BOOK, Assumptions(requests_per_month=2_000_000))
    single = estimate(synth, "mlops", ["staging"], BOOK, Assumptions())
    for dimension in ("alb_lcu_hour", "logs_ingest_gb", "data_transfer_out_gb_first_tier"):
        (one,), (two,) = lines(single.environments["staging"], dimension), lines(double.environments["staging"],
                                                                                  dimension)
        assert two.quantity == pytest.approx(2 * one.quantity) and one.driven_by == "assumptions"
    (lcu,) = lines(single.environments["staging"], "alb_lcu_hour")
    # 2 endpoints x 1M requests of 3 KB: 6 GB over 730 h is below the new-connection dimension (0.76 per s / 25)
    assert lcu.quantity == pytest.approx(2e6 / (730 * 3600) / 25 * 730)
    assert Assumptions().with_overrides({"REQUESTS_PER_MONTH": "5e6"}).requests_per_month == 5e6
    with pytest.raises(AssumptionError, match="unknown cost assumption REQUEST=1; known: REQUESTS_PER_MONTH"):
        Assumptions().with_overrides({"REQUEST": "1"})
    with pytest.raises(AssumptionError, match="MODEL_MB=-1 is negative"):
        Assumptions().with_overrides({"MODEL_MB": "-1"})


def test_schedules_are_counted_from_their_expressions():
    assert runs_per_month("rate(1 hour)") == 730
    assert runs_per_month("rate(15 minutes)") == 730 * 4
    assert runs_per_month("cron(5 * * * ? *)") == pytest.approx(730)
    assert runs_per_month("cron(0 6,20 * * ? *)") == pytest.approx(2 * 730 / 24)
    assert runs_per_month("cron(0 6 ? * MON-FRI *)") is None  # cannot tell: a visible line, not a guess


def test_units_are_read_before_multiplying():
    assert units_per_price("1M read request units") == 1e6
    assert units_per_price("10,000 requests (after 20,000 free)") == 1e4
    assert units_per_price("GB-month") == 1
    us_east = BOOK.price("us-east-1", "dynamodb_wru")
    assert us_east.usd_per_unit == pytest.approx(0.625 / 1e6)


def test_json_has_the_documented_shape(default):
    _, result = default
    document = json.loads(json.dumps(result.as_dict()))
    assert set(document) == {"environments", "pipeline", "prices", "assumptions"}
    assert set(document["environments"]) == {"staging", "prod"}
    staging = document["environments"]["staging"]
    assert staging["monthly_usd"] == pytest.approx(sum(line["monthly_usd"] or 0 for line in staging["lines"]),
                                                   abs=0.05)
    assert document["prices"]["as_of"] == "2026-10-08" and document["prices"]["region"] == "eu-west-1"
    assert document["assumptions"]["requests_per_month"] == 1_000_000
    assert {"what", "quantity", "unit", "unit_usd", "monthly_usd"} <= set(staging["lines"][0])


def test_a_stale_snapshot_warns_with_its_date(default_synth, capsys):
    out = io.StringIO()
    assert run({"SYNTH_DIR": str(default_synth.outdir), "FORMAT": "json"}, out, today=date(2027, 6, 1)) == 0
    assert ("warning: the price snapshot is from 2026-10-08, 236 days old (over 180)" in capsys.readouterr().err)
    assert run({"SYNTH_DIR": str(default_synth.outdir)}, io.StringIO(), today=date(2026, 12, 5)) == 0
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(CostError, match="FORMAT=yaml: choose table"):
        run({"SYNTH_DIR": str(default_synth.outdir), "FORMAT": "yaml"}, io.StringIO())
    with pytest.raises(CostError, match="give NAME=value"):
        parse(["REQUESTS_PER_MONTH"])


def test_base_shows_what_a_change_costs_per_line_and_per_environment(default):
    synth, result = default
    # The same stacks with prod's NAT gateways cut to one and its second task of a gone.
    changed = json.loads(json.dumps(synth.stacks))
    platform = changed["mlops-prod-platform"]["resource"]
    first_nat = sorted(platform["aws_nat_gateway"])[0]
    platform["aws_nat_gateway"] = {first_nat: platform["aws_nat_gateway"][first_nat]}
    (service,) = changed["mlops-prod-endpoint-a"]["resource"]["aws_ecs_service"].values()
    service["desired_count"] = 1
    cheaper = estimate(Synthesized(changed), "mlops", ["staging", "prod"], BOOK, Assumptions())
    text = "\n".join(difference(result, cheaper))
    nat = 730 * 0.048
    fargate = 365 * 0.04048 + 730 * 0.004445
    assert "staging: +0.00" in text and "no change" in text
    prod_line = next(line for line in text.splitlines() if line.startswith("prod: "))
    assert prod_line.startswith(f"prod: {-(nat + fargate) - 20 * 0.6 * 0.048:+,.2f}")
    assert f"{-nat:+10,.2f}  1 NAT gateway(s): 1,460.00 -> 730.00 NAT gateway-hour" in text
    assert f"{-365 * 0.04048:+10,.2f}  service a of endpoint a: 1 x 0.5 vCPU, on-demand: 730.00 -> 365.00 " \
           "vCPU-hour" in text


def product(sku: str, usd: str, unit: str = "Hrs") -> str:
    """One answer of pricing.get_products, as the Price List Query API writes it (a JSON string per product)."""
    return json.dumps({"product": {"sku": sku, "attributes": {}}, "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
        "priceDimensions": {
            f"{sku}.JRTCKXETXF.PGHJ3S3EYE": {"unit": unit, "beginRange": "0", "endRange": "100",
                                             "pricePerUnit": {"USD": "0.0000000000"}},
            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": unit, "beginRange": "100", "endRange": "Inf",
                                             "pricePerUnit": {"USD": usd}}}}}}})


def test_prices_live_renews_a_region_from_the_price_list_query_api(tmp_path):
    """Recorded answers (botocore's Stubber), never real AWS: each dimension one query by usage type; the first
    paid tier kept with its provenance; the old row kept but no longer preferred; a dimension without an answer
    keeps its old row and is named."""
    import shutil

    import boto3
    from botocore.stub import Stubber

    from preview.price_refresh import QUERIES, refresh

    snapshot = tmp_path / "prices.json"
    shutil.copy(BOOK.path, snapshot)
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(pricing) as stub:
        for index, query in enumerate(QUERIES):
            if query.dimension == "nlb_hour":  # no answer under either of eu-west-1's prefixes
                for prefix in ("EU", "EUW1"):
                    stub.add_response("get_products", {"PriceList": [], "FormatVersion": "aws_v1"}, {
                        "ServiceCode": "AWSELB", "FormatVersion": "aws_v1", "MaxResults": 10, "Filters": [
                            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
                            {"Type": "TERM_MATCH", "Field": "usagetype", "Value": f"{prefix}-LoadBalancerUsage"},
                            {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "Load Balancer-Network"}]})
                continue
            stub.add_response("get_products", {"PriceList": [product(f"SKU{index}", f"0.{index + 1:04d}")],
                                               "FormatVersion": "aws_v1"})
        summary = refresh(snapshot, "eu-west-1", pricing, today=date(2026, 12, 5))
        stub.assert_no_pending_responses()
    assert summary == (f"prices of eu-west-1 renewed from the AWS Price List Query API on 2026-12-05: "
                       f"{len(QUERIES) - 1} dimension(s); no answer for nlb_hour (their previous rows stay)")
    renewed = PriceBook.read(snapshot)
    assert renewed.snapshot_date == "2026-12-05"
    secrets = renewed.price("eu-west-1", "secretsmanager_secret_month")
    index = [query.dimension for query in QUERIES].index("secretsmanager_secret_month")
    assert secrets.usd == pytest.approx(float(f"0.{index + 1:04d}")) and secrets.quality == "price-list-api"
    assert secrets.source.startswith("AWS Price List Query API, pricing.get_products (ServiceCode AWSSecretsManager, "
                                     "usagetype EU-AWSSecretsManager-Secrets)") and secrets.source_date == "2026-12-05"
    rows = json.loads(snapshot.read_text())["prices"]
    old = [row for row in rows if row["region"] == "eu-west-1" and row["dimension"] == "fargate_vcpu_hour"]
    assert [row["preferred"] for row in old] == [False, True] and old[0]["usd"] == "0.0404800000"
    assert renewed.price("us-east-1", "fargate_vcpu_hour") == BOOK.price("us-east-1", "fargate_vcpu_hour")


def test_prices_live_without_rights_leaves_the_snapshot_as_it_was(tmp_path):
    import shutil

    import boto3
    from botocore.stub import Stubber

    from preview.price_refresh import refresh

    snapshot = tmp_path / "prices.json"
    shutil.copy(BOOK.path, snapshot)
    before = snapshot.read_text()
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(pricing) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts")
        with pytest.raises(PricesError, match="the Price List Query API refused or failed .*AccessDenied.*; the "
                                              "snapshot is unchanged: it needs credentials allowed "
                                              "pricing:GetProducts"):
            refresh(snapshot, "eu-west-1", pricing)
    assert snapshot.read_text() == before


def test_base_synthesizes_another_configuration_with_the_current_code(default, tmp_path):
    """BASE=<file>: the shipped configuration with one NAT gateway in prod, synthesized into its own folder."""
    from preview.cost_report import PROJECT_ROOT, synthesize_base

    _, result = default
    shipped = (PROJECT_ROOT / "config" / "mlops.yaml").read_text()
    base_file = tmp_path / "single-nat.yaml"
    base_file.write_text(shipped.replace("nat_gateways: one_per_az", "nat_gateways: single"))
    out, config_file = synthesize_base(str(base_file), tmp_path)
    from preview.cost_report import _estimate_of

    base = _estimate_of(out, config_file, BOOK, Assumptions())
    text = "\n".join(difference(base, result))
    assert f"{730 * 0.048:+10,.2f}  2 NAT gateway(s): 730.00 -> 1,460.00 NAT gateway-hour" in text
    assert "staging: +0.00" in text
    with pytest.raises(CostError, match="BASE=no-such-ref: neither a configuration file nor a git ref"):
        synthesize_base("no-such-ref", tmp_path)


def test_private_link_vpc_endpoints_schedules_and_storage_lines_match_the_stacks(options, default):
    synth, result = options
    bill = result.environments["qa"]
    stacks = env_stacks(synth, "acme-ml-qa-")
    (network,) = lines(bill, "nlb_hour")  # PrivateLink's network load balancer: none priced in the snapshot
    assert network.quantity == HOURS_PER_MONTH and network.unit_usd is None
    interface_zones = sum(len(endpoint.get("subnet_ids") or []) for stack in stacks
                          for endpoint in synth.resources("aws_vpc_endpoint", stack)
                          if endpoint.get("vpc_endpoint_type") == "Interface")
    assert interface_zones and lines(bill, "vpce_interface_hour")[0].quantity == interface_zones * HOURS_PER_MONTH
    # with the S3 gateway and ECR interface endpoints, neither image pulls nor captures cross NAT
    assert not lines(bill, "nat_gb")
    synth, result = default
    bill = result.environments["staging"]
    stacks = env_stacks(synth, "mlops-staging-")
    scheduled = [rule for stack in stacks for rule in synth.resources("aws_cloudwatch_event_rule", stack)
                 if rule.get("schedule_expression")]
    vcpu_runs = [line for line in lines(bill, "fargate_vcpu_hour") if line.driven_by == "assumptions"]
    assert len(vcpu_runs) == len(scheduled) == 6  # per endpoint: model repair, capture export, monitor
    # 730 one-minute runs of each: the sync and export tasks at 0.25 vCPU, the monitor at 1 vCPU.
    assert sorted(line.quantity for line in vcpu_runs) == pytest.approx([730 / 60 * 0.25] * 4 + [730 / 60] * 2)
    assert len(lines(bill, "efs_standard_gb_month")) == count(synth, stacks, "aws_efs_file_system") == 2
    assert lines(bill, "ecr_gb_month")[0].quantity == pytest.approx(30 * 0.6)  # the lifecycle policy keeps 30
    (retention,) = lines(bill, "logs_storage_gb_month")
    assert retention.what == "container logs kept 30 days"


def test_an_asynchronous_endpoint_at_zero_tasks_costs_no_compute_and_its_scaling_alarms_are_counted(options):
    synth, result = options
    bill = result.environments["qa"]
    scoring = [line for line in bill.lines if "scoring" in line.what]
    assert not any(line.dimension.startswith("fargate") and line.what.startswith("service") for line in scoring)
    stack = "acme-ml-qa-endpoint-scoring"
    # the metric-math alarms read three metrics each; target tracking's two alarms read the policy's three
    alarm_metrics = sum(max(1, sum(1 for query in alarm.get("metric_query") or [] if query.get("metric")))
                        for alarm in synth.resources("aws_cloudwatch_metric_alarm", stack))
    (alarms,) = [line for line in scoring if line.dimension == "cw_alarm_standard_month"]
    assert alarms.quantity == alarm_metrics + 2 * 3


def test_scaling_on_concurrency_costs_its_metrics_and_high_resolution_alarms(options):
    _, result = options
    bill = result.environments["qa"]
    (metrics,) = [line for line in lines(bill, "cw_custom_metric_month") if "fraud" in line.what]
    assert metrics.quantity == 2 * 3  # two metrics for each of fraud's three services
    (fast,) = lines(bill, "cw_alarm_high_resolution_month")
    assert fast.quantity == 3 and fast.unit_usd is None  # the snapshot has no price for it: shown, not zero
