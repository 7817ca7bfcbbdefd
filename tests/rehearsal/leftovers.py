"""What an account still holds, read from its APIs (not from Terraform's state): the rehearsal's teardown check.

Every resource type the stacks create is either listed here by the API call that finds it (`LISTED`), or is part of
a listed parent that cannot outlive it (`PARTS`, with the parent named): a test holds the synthesized stacks to that,
so a new resource type cannot escape the check. The rehearsal compares what is left with the bootstrap stack's
resources, which stay on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Lister = Callable[[Callable[[str], Any]], list[str]]


def _vpcs(c: Callable[[str], Any]) -> list[str]:
    return [v["VpcId"] for v in c("ec2").describe_vpcs()["Vpcs"] if not v.get("IsDefault")]


def _subnets(c: Callable[[str], Any]) -> list[str]:
    default = {v["VpcId"] for v in c("ec2").describe_vpcs()["Vpcs"] if v.get("IsDefault")}
    return [s["SubnetId"] for s in c("ec2").describe_subnets()["Subnets"] if s["VpcId"] not in default]


def _security_groups(c: Callable[[str], Any]) -> list[str]:
    return [g["GroupId"] for g in c("ec2").describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]


def _route_tables(c: Callable[[str], Any]) -> list[str]:
    return [t["RouteTableId"] for t in c("ec2").describe_route_tables()["RouteTables"]
            if not any(a.get("Main") for a in t.get("Associations", []))]


def _nat_gateways(c: Callable[[str], Any]) -> list[str]:
    return [n["NatGatewayId"] for n in c("ec2").describe_nat_gateways()["NatGateways"]
            if n.get("State") not in ("deleted", "deleting")]


def _kms_keys(c: Callable[[str], Any]) -> list[str]:
    """Customer managed keys not pending deletion (AWS managed keys, `alias/aws/...`, belong to the account: moto
    5.2.5 reports them as CUSTOMER)."""
    kms = c("kms")
    aws_managed = {a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]
                   if a["AliasName"].startswith("alias/aws/")}
    keys = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]
            if k["KeyId"] not in aws_managed]
    return [k["Arn"] for k in keys if k.get("KeyManager") == "CUSTOMER" and k.get("KeyState") != "PendingDeletion"]


def _task_definitions(c: Callable[[str], Any]) -> list[str]:
    return list(c("ecs").list_task_definitions(status="ACTIVE")["taskDefinitionArns"])


def _services(c: Callable[[str], Any]) -> list[str]:
    """Services not yet deleted (a deleted service stays INACTIVE for a while, and moto 5.2.5 still lists it)."""
    ecs = c("ecs")
    found = []
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        for start in range(0, len(arns), 10):
            found += [s["serviceArn"] for s in ecs.describe_services(cluster=cluster, services=arns[start:start + 10])[
                "services"] if s.get("status") != "INACTIVE"]
    return found


def _clusters(c: Callable[[str], Any]) -> list[str]:
    ecs = c("ecs")
    arns = ecs.list_clusters()["clusterArns"]
    return [x["clusterArn"] for x in ecs.describe_clusters(clusters=arns)["clusters"]
            if x.get("status") == "ACTIVE"] if arns else []


def _access_points(c: Callable[[str], Any]) -> list[str]:
    efs = c("efs")
    return [p["AccessPointArn"] for fs in efs.describe_file_systems()["FileSystems"]
            for p in efs.describe_access_points(FileSystemId=fs["FileSystemId"])["AccessPoints"]]


def _mount_targets(c: Callable[[str], Any]) -> list[str]:
    efs = c("efs")
    return [t["MountTargetId"] for fs in efs.describe_file_systems()["FileSystems"]
            for t in efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"]]


def _listeners(c: Callable[[str], Any]) -> list[str]:
    elbv2 = c("elbv2")
    return [listener["ListenerArn"] for b in elbv2.describe_load_balancers()["LoadBalancers"]
            for listener in elbv2.describe_listeners(LoadBalancerArn=b["LoadBalancerArn"])["Listeners"]]


REHEARSAL_OWN = "rehearsal-s3-observer"
"""The rule and queue by which the rehearsal's ECS stand-in hears of S3 events (tests/rehearsal/ecs_agent.py): the
rehearsal's own, not the stacks'."""


def _rules(c: Callable[[str], Any]) -> list[str]:
    return [r["Arn"] for r in c("events").list_rules()["Rules"] if r["Name"] != REHEARSAL_OWN]


def _queues(c: Callable[[str], Any]) -> list[str]:
    return [url for url in c("sqs").list_queues().get("QueueUrls", []) if url.rsplit("/", 1)[-1] != REHEARSAL_OWN]


def _roles(c: Callable[[str], Any]) -> list[str]:
    return [r["Arn"] for r in c("iam").list_roles()["Roles"] if "/aws-service-role/" not in r["Arn"]]


def _records(c: Callable[[str], Any]) -> list[str]:
    """Records the stacks add to a hosted zone (the zone itself is the user's): everything but its SOA and NS."""
    route53 = c("route53")
    return [f"{zone['Name']} {record['Type']} {record['Name']}" for zone in route53.list_hosted_zones()["HostedZones"]
            for record in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
            if record["Type"] not in ("SOA", "NS")]


def _connections(c: Callable[[str], Any]) -> list[str]:
    return [x["ConnectionArn"] for x in c("codestar-connections").list_connections().get("Connections", [])]


LISTED: dict[str, Lister] = {
    "aws_vpc": _vpcs,
    "aws_subnet": _subnets,
    "aws_security_group": _security_groups,
    "aws_route_table": _route_tables,
    "aws_internet_gateway": lambda c: [g["InternetGatewayId"] for g in
                                       c("ec2").describe_internet_gateways()["InternetGateways"]],
    "aws_nat_gateway": _nat_gateways,
    "aws_eip": lambda c: [a["AllocationId"] for a in c("ec2").describe_addresses()["Addresses"]],
    "aws_flow_log": lambda c: [f["FlowLogId"] for f in c("ec2").describe_flow_logs()["FlowLogs"]],
    "aws_lb": lambda c: [b["LoadBalancerArn"] for b in c("elbv2").describe_load_balancers()["LoadBalancers"]],
    "aws_lb_listener": _listeners,
    "aws_lb_target_group": lambda c: [g["TargetGroupArn"] for g in c("elbv2").describe_target_groups()[
        "TargetGroups"]],
    "aws_ecs_cluster": _clusters,
    "aws_ecs_service": _services,
    "aws_ecs_task_definition": _task_definitions,
    "aws_ecr_repository": lambda c: [r["repositoryArn"] for r in c("ecr").describe_repositories()["repositories"]],
    "aws_s3_bucket": lambda c: [b["Name"] for b in c("s3").list_buckets()["Buckets"]],
    "aws_efs_file_system": lambda c: [f["FileSystemArn"] for f in c("efs").describe_file_systems()["FileSystems"]],
    "aws_efs_access_point": _access_points,
    "aws_efs_mount_target": _mount_targets,
    "aws_iam_role": _roles,
    "aws_iam_policy": lambda c: [p["Arn"] for p in c("iam").list_policies(Scope="Local")["Policies"]],
    "aws_kms_key": _kms_keys,
    "aws_kms_alias": lambda c: [a["AliasName"] for a in c("kms").list_aliases()["Aliases"]
                                if not a["AliasName"].startswith("alias/aws/")],
    "aws_cloudwatch_log_group": lambda c: [g["logGroupName"] for g in c("logs").describe_log_groups()[
        "logGroups"]],
    "aws_cloudwatch_metric_alarm": lambda c: [a["AlarmName"] for a in c("cloudwatch").describe_alarms()[
        "MetricAlarms"]],
    "aws_cloudwatch_dashboard": lambda c: [d["DashboardName"] for d in c("cloudwatch").list_dashboards()[
        "DashboardEntries"]],
    "aws_sns_topic": lambda c: [t["TopicArn"] for t in c("sns").list_topics()["Topics"]],
    "aws_sqs_queue": _queues,
    "aws_cloudwatch_event_rule": _rules,
    "aws_scheduler_schedule": lambda c: [s["Arn"] for s in c("scheduler").list_schedules()["Schedules"]],
    "aws_appautoscaling_target": lambda c: [t["ResourceId"] for t in c("application-autoscaling")
                                            .describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]],
    "aws_dynamodb_table": lambda c: list(c("dynamodb").list_tables()["TableNames"]),
    "aws_codebuild_project": lambda c: list(c("codebuild").list_projects()["projects"]),
    "aws_codepipeline": lambda c: [p["name"] for p in c("codepipeline").list_pipelines()["pipelines"]],
    "aws_codestarconnections_connection": _connections,
    "aws_vpc_endpoint": lambda c: [e["VpcEndpointId"] for e in c("ec2").describe_vpc_endpoints()["VpcEndpoints"]
                                   if e.get("State", "").lower() not in ("deleted", "deleting")],
    "aws_acm_certificate": lambda c: [x["CertificateArn"] for x in c("acm").list_certificates()[
        "CertificateSummaryList"]],
    "aws_route53_record": _records,
    "aws_secretsmanager_secret": lambda c: [x["ARN"] for x in c("secretsmanager").list_secrets()["SecretList"]],
    "aws_vpc_endpoint_service": lambda c: [
        x["ServiceId"] for x in c("ec2").describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]],
}
"""Resource type -> how to list what the account holds of it (an identifier per resource)."""

PARTS = {
    "aws_appautoscaling_policy": "aws_appautoscaling_target",
    "aws_cloudwatch_event_target": "aws_cloudwatch_event_rule",
    "aws_codestarnotifications_notification_rule": "aws_codepipeline",
    "aws_default_security_group": "aws_vpc",
    "aws_ecr_lifecycle_policy": "aws_ecr_repository",
    "aws_ecs_cluster_capacity_providers": "aws_ecs_cluster",
    "aws_efs_backup_policy": "aws_efs_file_system",
    "aws_efs_file_system_policy": "aws_efs_file_system",
    "aws_iam_role_policy": "aws_iam_role",
    "aws_iam_role_policy_attachment": "aws_iam_role",
    "aws_lb_listener_rule": "aws_lb_listener",
    "aws_lb_target_group_attachment": "aws_lb_target_group",
    "aws_secretsmanager_secret_version": "aws_secretsmanager_secret",
    "aws_secretsmanager_secret_policy": "aws_secretsmanager_secret",
    "aws_route": "aws_route_table",
    "aws_route_table_association": "aws_route_table",
    "aws_s3_bucket_lifecycle_configuration": "aws_s3_bucket",
    "aws_s3_bucket_logging": "aws_s3_bucket",
    "aws_s3_bucket_notification": "aws_s3_bucket",
    "aws_s3_bucket_ownership_controls": "aws_s3_bucket",
    "aws_s3_bucket_policy": "aws_s3_bucket",
    "aws_s3_bucket_public_access_block": "aws_s3_bucket",
    "aws_s3_bucket_server_side_encryption_configuration": "aws_s3_bucket",
    "aws_s3_bucket_versioning": "aws_s3_bucket",
    "aws_sns_topic_policy": "aws_sns_topic",
    "aws_sqs_queue_policy": "aws_sqs_queue",
    "aws_vpc_security_group_egress_rule": "aws_security_group",
    "aws_vpc_security_group_ingress_rule": "aws_security_group",
    "aws_service_discovery_private_dns_namespace": "aws_vpc",
    "aws_service_discovery_service": "aws_service_discovery_private_dns_namespace",
    "aws_acm_certificate_validation": "aws_acm_certificate",
    "aws_appautoscaling_scheduled_action": "aws_appautoscaling_target",
    "aws_sns_topic_subscription": "aws_sns_topic",
    "aws_wafv2_web_acl_association": "aws_lb",
}
"""Resource type -> the listed type it belongs to and cannot outlive."""


def holdings(clients: Callable[[str], Any], kinds: set[str] | None = None) -> dict[str, list[str]]:
    """Resource type -> what the account holds of it (only types it holds any of); `kinds` limits the types."""
    found = {kind: sorted(lister(clients)) for kind, lister in LISTED.items() if kinds is None or kind in kinds}
    return {kind: ids for kind, ids in found.items() if ids}


def unaccounted(resource_types: set[str]) -> list[str]:
    """Types neither listed nor part of a listed one (or of a part of one)."""
    def covered(kind: str) -> bool:
        seen = set()
        while kind in PARTS and kind not in seen:
            seen.add(kind)
            kind = PARTS[kind]
        return kind in LISTED
    return sorted(kind for kind in resource_types if not covered(kind))
