"""Endpoint stacks: the wiring between the service, its storage, the load balancer, autoscaling and alarms."""

from __future__ import annotations

import copy
import json

import pytest

from configuration.loader import parse_config
from configuration.naming import derived_listener_priority
from tests.infra.synth import across, by_path_suffix, only, policy, ref, resources, synthesize, target

STAGING_A = "mlops-staging-endpoint-a"
PROD_A = "mlops-prod-endpoint-a"
CHURN = "acme-ml-qa-endpoint-churn"


@pytest.fixture(scope="module")
def staging(default_synth):
    return default_synth.stack("mlops-staging-platform"), default_synth.stack(STAGING_A)


def service_task(stack) -> tuple[str, dict]:
    return by_path_suffix(stack, "aws_ecs_task_definition", "service/task-definition")


def container(stack) -> dict:
    _, task = service_task(stack)
    (definition,) = json.loads(task["container_definitions"])
    return definition


def group_ref(stack, suffix: str) -> str:
    return ref("aws_security_group", by_path_suffix(stack, "aws_security_group", suffix)[0], "id")


def rules_of(stack, kind: str, group: str) -> list[dict]:
    return [rule for rule in resources(stack, f"aws_vpc_security_group_{kind}_rule").values()
            if rule["security_group_id"] == group]


# --- security group chain: load balancer -> service -> EFS ----------------------------------------------------------

def test_service_admits_only_the_load_balancer_on_the_container_port(staging):
    platform, stack = staging
    service_group = group_ref(stack, "identity/security-group")
    (ingress,) = rules_of(stack, "ingress", service_group)
    assert across(platform, ingress["referenced_security_group_id"]) == group_ref(
        platform, "load-balancer/security-group")
    assert (ingress["from_port"], ingress["to_port"], ingress["ip_protocol"]) == (8080, 8080, "tcp")
    assert "cidr_ipv4" not in ingress


def test_load_balancer_may_reach_only_this_service_port(staging):
    platform, stack = staging
    egress = [rule for rule in resources(stack, "aws_vpc_security_group_egress_rule").values()
              if rule["security_group_id"].startswith("${data.terraform_remote_state")]
    (rule,) = egress
    assert across(platform, rule["security_group_id"]) == group_ref(platform, "load-balancer/security-group")
    assert rule["referenced_security_group_id"] == group_ref(stack, "identity/security-group")
    assert (rule["from_port"], rule["to_port"]) == (8080, 8080)


def test_efs_admits_nfs_from_the_service_the_sync_and_the_export_task_only(staging):
    _, stack = staging
    efs_group = group_ref(stack, "storage/security-group")
    admitted = sorted((rule["referenced_security_group_id"], rule["from_port"], rule["to_port"])
                      for rule in rules_of(stack, "ingress", efs_group))
    assert admitted == sorted([(group_ref(stack, "identity/security-group"), 2049, 2049),
                               (group_ref(stack, "identity/sync-security-group"), 2049, 2049),
                               (group_ref(stack, "identity/export-security-group"), 2049, 2049)])
    assert all("cidr_ipv4" not in rule for rule in rules_of(stack, "ingress", efs_group))
    service_egress = {(r["from_port"], r.get("referenced_security_group_id"), r.get("cidr_ipv4"))
                      for r in rules_of(stack, "egress", group_ref(stack, "identity/security-group"))}
    assert service_egress == {(2049, efs_group, None), (443, None, "0.0.0.0/0")}


# --- storage -------------------------------------------------------------------------------------------------------

def test_file_system_is_encrypted_backed_up_and_mounted_in_every_private_subnet(staging):
    platform, stack = staging
    fs_id, fs = only(stack, "aws_efs_file_system")
    assert fs["encrypted"] is True
    assert across(platform, fs["kms_key_id"]) == ref("aws_kms_key", only(platform, "aws_kms_key")[0], "arn")
    assert {"transition_to_ia": "AFTER_30_DAYS"} in fs["lifecycle_policy"]
    assert only(stack, "aws_efs_backup_policy")[1]["backup_policy"] == {"status": "ENABLED"}
    private = sorted(ref("aws_subnet", lid, "id") for lid, body in resources(platform, "aws_subnet").items()
                     if body["tags"]["tier"] == "private")
    mounts = resources(stack, "aws_efs_mount_target").values()
    assert sorted(across(platform, m["subnet_id"]) for m in mounts) == private
    assert all(m["security_groups"] == [group_ref(stack, "storage/security-group")] for m in mounts)
    assert all(m["file_system_id"] == ref("aws_efs_file_system", fs_id, "id") for m in mounts)


def test_access_points_have_a_posix_owner_and_their_own_root(staging):
    _, stack = staging
    for location in ("models", "data"):
        _, point = by_path_suffix(stack, "aws_efs_access_point", f"storage/{location}-access-point")
        assert point["posix_user"] == {"uid": 1000, "gid": 1000}
        assert point["root_directory"]["path"] == f"/{location}"
        assert point["root_directory"]["creation_info"]["owner_uid"] == 1000


def test_task_role_mounts_only_its_own_access_points_models_without_write(staging):
    _, stack = staging
    fs_id, _ = only(stack, "aws_efs_file_system")
    role_id, _ = by_path_suffix(stack, "aws_iam_role", "identity/task-role")
    _, task_policy = by_path_suffix(stack, "aws_iam_role_policy", "service/task-policy")
    assert task_policy["role"] == ref("aws_iam_role", role_id, "id")
    statements = {s["Sid"]: s for s in policy(task_policy)["Statement"]}
    models_ap = ref("aws_efs_access_point", by_path_suffix(stack, "aws_efs_access_point",
                                                           "storage/models-access-point")[0], "arn")
    data_ap = ref("aws_efs_access_point", by_path_suffix(stack, "aws_efs_access_point",
                                                         "storage/data-access-point")[0], "arn")
    models, data = statements["MountModelsReadOnly"], statements["MountDataReadWrite"]
    assert models["Action"] == ["elasticfilesystem:ClientMount"]
    assert sorted(data["Action"]) == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    for statement, access_point in ((models, models_ap), (data, data_ap)):
        assert statement["Resource"] == ref("aws_efs_file_system", fs_id, "arn")
        assert statement["Condition"]["StringEquals"] == {"elasticfilesystem:AccessPointArn": access_point}
    # No ECS Exec unless enabled; the key set (the shipped staging endpoints have API keys) is read again.
    assert set(statements) == {"MountModelsReadOnly", "MountDataReadWrite", "RefreshApiKeySet", "DecryptApiKeySet"}


def test_file_system_policy_denies_other_principals_and_plain_nfs(staging):
    _, stack = staging
    role_id, _ = by_path_suffix(stack, "aws_iam_role", "identity/task-role")
    sync_id, _ = by_path_suffix(stack, "aws_iam_role", "identity/sync-role")
    export_id, _ = by_path_suffix(stack, "aws_iam_role", "identity/export-role")
    statements = {s["Sid"]: s for s in policy(only(stack, "aws_efs_file_system_policy")[1])["Statement"]}
    assert statements["DenyOtherPrincipals"]["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [
        ref("aws_iam_role", role_id, "arn"), ref("aws_iam_role", sync_id, "arn"),
        ref("aws_iam_role", export_id, "arn")]}}
    data_ap = ref("aws_efs_access_point", by_path_suffix(stack, "aws_efs_access_point",
                                                         "storage/data-access-point")[0], "arn")
    export = statements["ExportReadsAndRemovesCaptures"]
    assert export["Principal"] == {"AWS": ref("aws_iam_role", export_id, "arn")}
    assert export["Condition"]["StringEquals"] == {"elasticfilesystem:AccessPointArn": data_ap}
    assert statements["SyncWritesModels"]["Principal"] == {"AWS": ref("aws_iam_role", sync_id, "arn")}
    assert statements["DenyWithoutTls"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["ServiceMountsModelsReadOnly"]["Principal"] == {"AWS": ref("aws_iam_role", role_id, "arn")}


# --- task definition --------------------------------------------------------------------------------------------------

def test_task_definition_mounts_models_read_only_and_data_read_write_over_tls_with_iam(staging):
    _, stack = staging
    _, task = service_task(stack)
    assert (task["cpu"], task["memory"], task["network_mode"]) == ("512", "1024", "awsvpc")
    assert task["requires_compatibilities"] == ["FARGATE"]
    volumes = {v["name"]: v for v in task["volume"]}
    fs_id, _ = only(stack, "aws_efs_file_system")
    for name in ("models", "data"):
        efs = volumes[name]["efs_volume_configuration"]
        assert efs["file_system_id"] == ref("aws_efs_file_system", fs_id, "id")
        assert efs["transit_encryption"] == "ENABLED"
        assert efs["authorization_config"] == {"access_point_id": ref(
            "aws_efs_access_point", by_path_suffix(stack, "aws_efs_access_point", f"storage/{name}-access-point")[0],
            "id"), "iam": "ENABLED"}
    mounts = {m["sourceVolume"]: m for m in container(stack)["mountPoints"]}
    assert mounts["models"] == {"sourceVolume": "models", "containerPath": "/mnt/models", "readOnly": True}
    assert mounts["data"] == {"sourceVolume": "data", "containerPath": "/mnt/data", "readOnly": False}
    roles = {suffix: ref("aws_iam_role", by_path_suffix(stack, "aws_iam_role", f"identity/{suffix}")[0], "arn")
             for suffix in ("task-role", "execution-role")}
    assert task["task_role_arn"] == roles["task-role"] and task["execution_role_arn"] == roles["execution-role"]


def test_container_runs_the_platform_image_at_the_given_tag(staging):
    platform, stack = staging
    image = container(stack)["image"]
    repository, tag = image.rsplit(":", 1)
    assert tag == "latest"
    assert across(platform, repository) == ref("aws_ecr_repository", only(platform, "aws_ecr_repository")[0],
                                                "repository_url")


def test_image_tag_is_passed_into_synth(default_config, tmp_path_factory):
    synth = synthesize(default_config, tmp_path_factory.mktemp("tagged") / "cdktf.out", image_tag="0a1b2c3")
    definition = container(synth.stack(STAGING_A))
    assert definition["image"].endswith(":0a1b2c3")
    # The server reports the tag it runs (GET /status), so Smoke can tell which version answers.
    assert {"name": "SERVING_IMAGE_TAG", "value": "0a1b2c3"} in definition["environment"]


def test_container_definition_spells_out_what_ecs_would_fill_in(staging):
    _, stack = staging
    definition = container(stack)
    for field, value in {"cpu": 0, "essential": True, "volumesFrom": [], "systemControls": [],
                         "environmentFiles": [], "ulimits": []}.items():
        assert definition[field] == value, field
    assert definition["portMappings"][0]["hostPort"] == definition["portMappings"][0]["containerPort"]
    assert definition["readonlyRootFilesystem"] is True
    names = [e["name"] for e in definition["environment"]]
    assert names == sorted(names)  # ECS returns them sorted; so do we, or every plan shows a diff
    assert definition["logConfiguration"]["options"]["awslogs-group"] == ref(
        "aws_cloudwatch_log_group", by_path_suffix(stack, "aws_cloudwatch_log_group", "service/log-group")[0], "name")


def test_target_group_port_and_path_are_the_containers(staging):
    _, stack = staging
    _, group = only(stack, "aws_lb_target_group")
    definition = container(stack)
    environment = {e["name"]: e["value"] for e in definition["environment"]}
    assert group["port"] == definition["portMappings"][0]["containerPort"] == int(environment["SERVING_PORT"]) == 8080
    assert group["health_check"]["path"] == environment["SERVING_HEALTH_PATH"] == "/v2/health/ready"
    # The container check probes liveness: a task waiting for its first model sync is alive, not replaced.
    assert "http://127.0.0.1:8080/v2/health/live" in definition["healthCheck"]["command"][-1]
    assert group["target_type"] == "ip" and group["deregistration_delay"] == "30"
    assert environment["SERVING_ROUTE_PREFIX"] == "/a"
    assert environment["SERVING_KEEP_ALIVE_SECONDS"] == "65"  # longer than the load balancer's 60 s idle timeout
    assert environment["SERVING_WORKERS"] == "1"  # 512 CPU units: half a vCPU, one process


# --- routing and service ----------------------------------------------------------------------------------------------

def test_listener_rule_routes_the_path_to_the_target_group(staging):
    platform, stack = staging
    _, rule = only(stack, "aws_lb_listener_rule")
    assert across(platform, rule["listener_arn"]) == ref("aws_lb_listener", only(platform, "aws_lb_listener")[0],
                                                         "arn")
    assert rule["priority"] == derived_listener_priority("a")
    assert rule["condition"] == [{"path_pattern": {"values": ["/a/*"]}}]
    assert rule["action"] == [{"type": "forward", "target_group_arn": ref(
        "aws_lb_target_group", only(stack, "aws_lb_target_group")[0], "arn")}]


def test_service_runs_in_private_subnets_behind_the_target_group(staging):
    platform, stack = staging
    _, service = only(stack, "aws_ecs_service")
    network = service["network_configuration"]
    assert network["assign_public_ip"] is False
    private = sorted(ref("aws_subnet", lid, "id") for lid, body in resources(platform, "aws_subnet").items()
                     if body["tags"]["tier"] == "private")
    assert sorted(across(platform, subnet) for subnet in network["subnets"]) == private
    assert network["security_groups"] == [group_ref(stack, "identity/security-group")]
    assert service["task_definition"] == ref("aws_ecs_task_definition", service_task(stack)[0], "arn")
    (balancer,) = service["load_balancer"]
    assert balancer["target_group_arn"] == ref("aws_lb_target_group", only(stack, "aws_lb_target_group")[0], "arn")
    assert (balancer["container_name"], balancer["container_port"]) == (container(stack)["name"], 8080)
    assert across(platform, service["cluster"]) == ref("aws_ecs_cluster", only(platform, "aws_ecs_cluster")[0], "arn")


def test_service_deploys_safely_and_leaves_the_count_to_autoscaling(staging):
    _, stack = staging
    _, service = only(stack, "aws_ecs_service")
    assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    assert (service["deployment_minimum_healthy_percent"], service["deployment_maximum_percent"]) == (100, 200)
    assert service["lifecycle"] == {"ignore_changes": ["desired_count"]}
    assert service["wait_for_steady_state"] is True
    assert service["health_check_grace_period_seconds"] == 300
    # Rolling (not production): one target group, ECS's rolling update, rolled back on 5xx or p99 alarms.
    assert "deployment_configuration" not in service and "advanced_configuration" not in service["load_balancer"][0]
    metrics = sorted(target(stack, name)[2]["metric_name"] for name in service["alarms"]["alarm_names"])
    assert metrics == ["HTTPCode_Target_5XX_Count", "TargetResponseTime"] and service["alarms"]["rollback"] is True


def test_a_production_endpoint_deploys_as_a_canary_that_rolls_back_on_its_alarms(default_synth):
    stack = default_synth.stack("mlops-prod-endpoint-a")
    _, service = only(stack, "aws_ecs_service")
    assert service["deployment_configuration"] == {
        "strategy": "CANARY", "bake_time_in_minutes": "10",
        "canary_configuration": {"canary_percent": 5, "canary_bake_time_in_minutes": "5"}}
    (balancing,) = service["load_balancer"]
    groups = {target(stack, balancing[key])[1] for key in ("target_group_arn",)} | {
        target(stack, balancing["advanced_configuration"]["alternate_target_group_arn"])[1]}
    assert groups == set(resources(stack, "aws_lb_target_group"))  # the two target groups
    rule_id, rule = only(stack, "aws_lb_listener_rule")
    assert balancing["advanced_configuration"]["production_listener_rule"] == ref("aws_lb_listener_rule", rule_id,
                                                                                  "arn")
    weights = sorted((target(stack, group["arn"])[1], group["weight"]) for group in rule["action"][0]["forward"][
        "target_group"])
    assert [weight for _, weight in weights] in ([0, 100], [100, 0]) and rule["lifecycle"] == {
        "ignore_changes": ["action"]}  # ECS moves the weights; Terraform must not move them back
    _, _, role = target(stack, balancing["advanced_configuration"]["role_arn"])
    assert policy(role, "assume_role_policy")["Statement"][0]["Principal"] == {"Service": "ecs.amazonaws.com"}
    shift = policy(by_path_suffix(stack, "aws_iam_role_policy", "routing/traffic-shift-policy")[1])["Statement"]
    assert {s["Sid"]: s["Resource"] for s in shift}["ShiftThisEndpointsRule"] == ref("aws_lb_listener_rule",
                                                                                     rule_id, "arn")
    # The new version's own alarms, whichever target group it runs in, roll it back.
    alarmed = sorted((target(stack, name)[2]["metric_name"], target(stack, name)[2]["dimensions"]["TargetGroup"])
                     for name in service["alarms"]["alarm_names"])
    assert len(alarmed) == 4 and {metric for metric, _ in alarmed} == {"HTTPCode_Target_5XX_Count",
                                                                       "TargetResponseTime"}
    assert len({group for _, group in alarmed}) == 2 and service["alarms"]["rollback"] is True


def test_the_service_and_the_first_sync_start_only_once_tasks_can_mount_pull_and_log(staging):
    _, stack = staging
    _, service = only(stack, "aws_ecs_service")
    mountable = {f"aws_efs_mount_target.{lid}" for lid in resources(stack, "aws_efs_mount_target")} | {
        f"aws_efs_file_system_policy.{only(stack, 'aws_efs_file_system_policy')[0]}"}
    assert len(mountable) == 3  # a mount target per private subnet, and the policy
    service_policies = {f"aws_iam_role_policy.{lid}" for lid, body in resources(stack, "aws_iam_role_policy").items()
                        if "/service/" in body["//"]["metadata"]["path"]}
    assert len(service_policies) == 2  # the execution role's and the task role's
    assert set(service["depends_on"]) == {
        f"aws_lb_listener_rule.{only(stack, 'aws_lb_listener_rule')[0]}",
        f"aws_scheduler_schedule.{only(stack, 'aws_scheduler_schedule')[0]}", *mountable, *service_policies}
    _, first_sync = only(stack, "aws_scheduler_schedule")
    sync_policies = {f"aws_iam_role_policy.{lid}" for lid, body in resources(stack, "aws_iam_role_policy").items()
                     if "/model-sync/" in body["//"]["metadata"]["path"] and "events" not in lid}
    assert len(sync_policies) == 2
    assert set(first_sync["depends_on"]) == {*mountable, *sync_policies}


def test_spot_share_is_off_in_production_by_default(default_synth):
    staging_strategy = only(default_synth.stack(STAGING_A), "aws_ecs_service")[1]["capacity_provider_strategy"]
    assert staging_strategy == [{"base": 1, "capacity_provider": "FARGATE", "weight": 50},
                                {"base": 0, "capacity_provider": "FARGATE_SPOT", "weight": 50}]
    prod_strategy = only(default_synth.stack(PROD_A), "aws_ecs_service")[1]["capacity_provider_strategy"]
    assert prod_strategy == [{"base": 1, "capacity_provider": "FARGATE", "weight": 100}]


# --- autoscaling and alarms -------------------------------------------------------------------------------------------

def test_autoscaling_targets_the_service_with_the_configured_bounds(default_synth):
    platform, stack = default_synth.stack("mlops-prod-platform"), default_synth.stack(PROD_A)
    target_id, scaling = only(stack, "aws_appautoscaling_target")
    cluster_name = across(platform, scaling["resource_id"].split("/")[1])
    assert cluster_name == ref("aws_ecs_cluster", only(platform, "aws_ecs_cluster")[0], "name")
    assert scaling["resource_id"].endswith(f"/{ref('aws_ecs_service', only(stack, 'aws_ecs_service')[0], 'name')}")
    assert (scaling["min_capacity"], scaling["max_capacity"]) == (2, 4)  # prod overrides min_tasks for a
    metrics = {}
    for body in resources(stack, "aws_appautoscaling_policy").values():
        assert body["resource_id"] == ref("aws_appautoscaling_target", target_id, "resource_id")
        tracking = body["target_tracking_scaling_policy_configuration"]
        metrics[tracking["predefined_metric_specification"]["predefined_metric_type"]] = tracking
    assert {name: m["target_value"] for name, m in metrics.items()} == {
        "ECSServiceAverageCPUUtilization": 60, "ECSServiceAverageMemoryUtilization": 75,
        "ALBRequestCountPerTarget": 200}
    label = metrics["ALBRequestCountPerTarget"]["predefined_metric_specification"]["resource_label"]
    lb_suffix, tg_suffix = label.split("}/")
    assert across(platform, lb_suffix + "}") == ref("aws_lb", only(platform, "aws_lb")[0], "arn_suffix")
    primary = by_path_suffix(stack, "aws_lb_target_group", "routing/target-group")[0]
    assert tg_suffix == ref("aws_lb_target_group", primary, "arn_suffix")


def test_every_alarm_notifies_the_platform_topic(staging):
    platform, stack = staging
    topic = ref("aws_sns_topic", only(platform, "aws_sns_topic")[0], "arn")
    every = list(resources(stack, "aws_cloudwatch_metric_alarm").values())
    alarms = {body["metric_name"]: body for body in every if "metric_name" in body}
    assert sorted(alarms) == ["BurstCreditBalance", "FeaturesDrifted", "HTTPCode_Target_5XX_Count",
                              "RunningTaskCount", "TargetResponseTime", "UnHealthyHostCount"]  # with the monitor's
    # ... and the monitor's no-data alarm, by metric math on its NoData and the target group's requests.
    (no_data,) = [body for body in every if "metric_query" in body]
    requests = next(query["metric"] for query in no_data["metric_query"] if query["id"] == "requests")
    tg_suffix = ref("aws_lb_target_group", only(stack, "aws_lb_target_group")[0], "arn_suffix")
    assert requests["dimensions"]["TargetGroup"] == tg_suffix
    alarms["no data while serving"] = no_data
    for alarm in alarms.values():
        assert [across(platform, a) for a in alarm["alarm_actions"]] == [topic]
        assert [across(platform, a) for a in alarm["ok_actions"]] == [topic]
    assert alarms["TargetResponseTime"]["extended_statistic"] == "p99"
    assert alarms["RunningTaskCount"]["threshold"] == 1 and alarms["RunningTaskCount"]["treat_missing_data"] == \
        "breaching"
    assert alarms["BurstCreditBalance"]["dimensions"] == {"FileSystemId": ref(
        "aws_efs_file_system", only(stack, "aws_efs_file_system")[0], "id")}
    assert alarms["HTTPCode_Target_5XX_Count"]["dimensions"]["TargetGroup"] == tg_suffix


def test_dashboard_shows_requests_latency_errors_tasks_cpu_memory(staging):
    _, stack = staging
    body = json.loads(only(stack, "aws_cloudwatch_dashboard")[1]["dashboard_body"])
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    assert titles[:5] == ["Requests", "Latency (s)", "Errors", "Tasks", "CPU and memory (%)"]
    metric_names = {metric[1] for widget in body["widgets"] for metric in widget["properties"]["metrics"]}
    assert {"RequestCount", "TargetResponseTime", "HTTPCode_Target_5XX_Count", "RunningTaskCount",
            "CPUUtilization", "MemoryUtilization"} <= metric_names


def test_execution_role_pulls_only_the_serving_image_and_writes_only_its_logs(staging):
    platform, stack = staging
    statements = {s["Sid"]: s for s in policy(by_path_suffix(stack, "aws_iam_role_policy",
                                                             "service/execution-policy")[1])["Statement"]}
    assert across(platform, statements["PullServingImage"]["Resource"]) == ref(
        "aws_ecr_repository", only(platform, "aws_ecr_repository")[0], "arn")
    log_group = ref("aws_cloudwatch_log_group", by_path_suffix(stack, "aws_cloudwatch_log_group",
                                                               "service/log-group")[0], "arn")
    assert statements["WriteContainerLogs"]["Resource"] == f"{log_group}:*"
    wildcards = [sid for sid, s in statements.items() if s["Resource"] == "*"]
    assert wildcards == ["EcrToken"]  # the only action without a resource scope


# --- all options ------------------------------------------------------------------------------------------------------

def test_all_options_endpoint(options_synth):
    platform, stack = options_synth.stack("acme-ml-qa-platform"), options_synth.stack(CHURN)
    _, rule = only(stack, "aws_lb_listener_rule")
    public = next(lid for lid, body in resources(platform, "aws_lb").items()
                  if body["load_balancer_type"] == "application" and not body["internal"])
    https = [lid for lid, body in resources(platform, "aws_lb_listener").items()
             if body["port"] == 443 and body["load_balancer_arn"] == ref("aws_lb", public, "arn")]
    assert across(platform, rule["listener_arn"]) == ref("aws_lb_listener", https[0], "arn")
    assert rule["priority"] == 10
    assert rule["condition"] == [{"host_header": {"values": ["churn.ml.acme.example"]}}]
    _, record = only(stack, "aws_route53_record")
    assert record["name"] == "churn.ml.acme.example" and record["type"] == "A"
    assert across(platform, record["alias"]["name"]) == ref("aws_lb", public, "dns_name")
    _, service = only(stack, "aws_ecs_service")
    assert service["enable_execute_command"] is True
    assert service["capacity_provider_strategy"][1] == {"base": 0, "capacity_provider": "FARGATE_SPOT", "weight": 25}
    statements = {s["Sid"] for s in policy(by_path_suffix(stack, "aws_iam_role_policy", "service/task-policy")[1])[
        "Statement"]}
    assert "EcsExec" in statements
    schedules = sorted((s["name"], s["schedule"], s["scalable_target_action"]["min_capacity"])
                       for s in resources(stack, "aws_appautoscaling_scheduled_action").values())
    assert schedules == [("acme-ml-qa-churn-morning", "cron(0 6 * * ? *)", "3"),
                         ("acme-ml-qa-churn-night", "cron(0 20 * * ? *)", "1")]
    assert only(stack, "aws_appautoscaling_target")[1]["min_capacity"] == 3
    metric_names = {a.get("metric_name") for a in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    assert "BurstCreditBalance" not in metric_names  # elastic throughput has no burst credits
    environment = {e["name"]: e["value"] for e in container(stack)["environment"]}
    assert environment["SERVING_ROUTE_PREFIX"] == "" and environment["SERVING_CAPTURE_SAMPLE_PERCENT"] == "10"
    assert environment["SERVING_KEEP_ALIVE_SECONDS"] == "125"
    assert environment["SERVING_WORKERS"] == "2"  # 2048 CPU units: two vCPUs, a server process on each
    groups = resources(stack, "aws_lb_target_group").values()
    assert [group["port"] for group in groups] == [9000, 9000]  # the two target groups of a linear rollout
    assert only(stack, "aws_ecs_service")[1]["deployment_configuration"] == {
        "strategy": "LINEAR", "bake_time_in_minutes": "15",
        "linear_configuration": {"step_percent": 25, "step_bake_time_in_minutes": "4"}}


# --- adding endpoint B leaves endpoint A alone ------------------------------------------------------------------------

def test_endpoint_a_alone_and_beside_b_synthesize_the_same_stack(default_synth, tmp_path_factory):
    data = {"project": "mlops", "region": "eu-west-1",
            "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
            "endpoints": {"a": {"path": "/a/*"}}}
    alone = synthesize(parse_config(data, "a-only"), tmp_path_factory.mktemp("a-only") / "cdktf.out")
    with_b = copy.deepcopy(data)
    with_b["endpoints"]["b"] = {"path": "/b/*"}
    both = synthesize(parse_config(with_b, "a-and-b"), tmp_path_factory.mktemp("a-and-b") / "cdktf.out")
    assert sorted(alone.stacks) == ["mlops-bootstrap", "mlops-staging-endpoint-a", "mlops-staging-platform"]
    assert "mlops-staging-endpoint-b" in both.stacks
    assert alone.stack(STAGING_A) == both.stack(STAGING_A)
    assert alone.stack("mlops-staging-platform") == both.stack("mlops-staging-platform")
    # Giving B variants (with a shadow) changes B's stack only.
    with_b["endpoints"]["b"]["variants"] = {"current": {"weight": 80}, "candidate": {"weight": 20},
                                            "shadowed": {"weight": 0, "shadow_percent": 10}}
    variants = synthesize(parse_config(with_b, "b-variants"), tmp_path_factory.mktemp("b-variants") / "cdktf.out")
    assert variants.stack("mlops-staging-endpoint-b") != both.stack("mlops-staging-endpoint-b")
    assert alone.stack(STAGING_A) == variants.stack(STAGING_A)
    assert alone.stack("mlops-staging-platform") == variants.stack("mlops-staging-platform")
