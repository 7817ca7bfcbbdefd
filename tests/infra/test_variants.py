"""An endpoint with variants (the all-options fixture's fraud in qa: current 90, candidate 10 pinned to 7, a shadow
pinned to 8 getting 25%): each variant its own service, the serving ones each their own target group behind one
weighted rule, the shadow reached inside the VPC through Cloud Map, all on the endpoint's one file system."""

from __future__ import annotations

import json

import pytest

from tests.infra.synth import by_path_suffix, ref, resources, target

FRAUD = "acme-ml-qa-endpoint-fraud"


@pytest.fixture(scope="module")
def fraud(options_synth):
    return options_synth.stack(FRAUD)


def service(stack, variant: str) -> dict:
    return by_path_suffix(stack, "aws_ecs_service", f"service-{variant}/service")[1]


def environment_of(stack, variant: str) -> dict[str, str]:
    _, _, task = target(stack, service(stack, variant)["task_definition"])
    (definition,) = json.loads(task["container_definitions"])
    return {entry["name"]: entry["value"] for entry in definition["environment"]}


def test_the_rule_forwards_to_the_serving_variants_by_weight(fraud):
    (rule,) = resources(fraud, "aws_lb_listener_rule").values()
    forward = rule["action"][0]["forward"]["target_group"]
    groups = {variant: ref("aws_lb_target_group", by_path_suffix(fraud, "aws_lb_target_group",
                                                                 f"routing/target-group-{variant}")[0], "arn")
              for variant in ("current", "candidate")}
    assert forward == [{"arn": groups["current"], "weight": 90}, {"arn": groups["candidate"], "weight": 10}]
    assert "lifecycle" not in rule  # Terraform owns the weights: reweighting is a deploy
    assert len(resources(fraud, "aws_lb_target_group")) == 2  # the shadow has none


def test_each_serving_variant_registers_in_its_own_target_group_and_all_share_the_file_system(fraud):
    file_system = ref("aws_efs_file_system", by_path_suffix(fraud, "aws_efs_file_system", "storage/file-system")[0],
                      "id")
    for variant in ("current", "candidate"):
        (balancer,) = service(fraud, variant)["load_balancer"]
        group_id = by_path_suffix(fraud, "aws_lb_target_group", f"routing/target-group-{variant}")[0]
        assert balancer["target_group_arn"] == ref("aws_lb_target_group", group_id, "arn")
    names = {variant: service(fraud, variant)["name"] for variant in ("current", "candidate", "shadowed")}
    assert names == {"current": "fraud-current", "candidate": "fraud-candidate", "shadowed": "fraud-shadowed"}
    for variant in names:
        _, _, task = target(fraud, service(fraud, variant)["task_definition"])
        assert {volume["efs_volume_configuration"]["file_system_id"] for volume in task["volume"]
                if "efs_volume_configuration" in volume} == {file_system}


def test_variants_are_told_their_name_version_and_shadow(fraud):
    shadow_url = "http://shadowed.acme-ml-qa-fraud.internal:8080"
    current, candidate, shadowed = (environment_of(fraud, v) for v in ("current", "candidate", "shadowed"))
    assert current["SERVING_VARIANT"] == "current" and "SERVING_MODEL_VERSION" not in current
    assert (current["SERVING_SHADOW_URL"], current["SERVING_SHADOW_PERCENT"]) == (shadow_url, "25")
    assert (candidate["SERVING_MODEL_VERSION"], candidate["SERVING_SHADOW_URL"]) == ("7", shadow_url)
    assert shadowed["SERVING_MODEL_VERSION"] == "8" and "SERVING_SHADOW_URL" not in shadowed
    (sync_task,) = [task for task in resources(fraud, "aws_ecs_task_definition").values()
                    if task["//"]["metadata"]["path"].endswith("model-sync/task-definition")]
    (sync,) = json.loads(sync_task["container_definitions"])
    assert {entry["name"]: entry["value"] for entry in sync["environment"]}["SYNC_PINNED_VERSIONS"] == "7,8"


def test_the_shadow_is_reached_inside_the_vpc_through_cloud_map(fraud):
    shadow = service(fraud, "shadowed")
    assert "load_balancer" not in shadow and "health_check_grace_period_seconds" not in shadow
    _, _, registry = target(fraud, shadow["service_registries"]["registry_arn"])
    assert registry["name"] == "shadowed"
    assert registry["dns_config"]["dns_records"] == [{"ttl": 10, "type": "A"}]
    _, _, namespace = target(fraud, registry["dns_config"]["namespace_id"])
    assert namespace["name"] == "acme-ml-qa-fraud.internal"
    tasks = {service(fraud, v)["network_configuration"]["security_groups"][0] for v in ("current", "shadowed")}
    assert len(tasks) == 1
    (group,) = tasks
    self_rules = [(kind, rule["from_port"]) for kind in ("ingress", "egress")
                  for rule in resources(fraud, f"aws_vpc_security_group_{kind}_rule").values()
                  if rule["security_group_id"] == group and rule.get("referenced_security_group_id") == group]
    assert sorted(self_rules) == [("egress", 8080), ("ingress", 8080)]


def test_each_variant_has_its_own_scaling_and_alarms(fraud):
    targets = sorted(t["resource_id"].rsplit("/", 1)[1] for t in resources(fraud, "aws_appautoscaling_target").values())
    assert targets == sorted(ref("aws_ecs_service", by_path_suffix(fraud, "aws_ecs_service", f"service-{v}/service")[0],
                                 "name") for v in ("current", "candidate", "shadowed"))
    alarms = {alarm["alarm_name"] for alarm in resources(fraud, "aws_cloudwatch_metric_alarm").values()}
    assert {"acme-ml-qa-fraud-current-target-5xx", "acme-ml-qa-fraud-candidate-target-5xx",
            "acme-ml-qa-fraud-shadowed-running-tasks-low"} <= alarms
    assert not any(name.startswith("acme-ml-qa-fraud-shadowed-target") for name in alarms)
    policies = {p["name"]: p for p in resources(fraud, "aws_appautoscaling_policy").values()}
    # fraud scales on concurrency: each variant on its own servers' requests in progress (the shadow's copies too),
    # none on load balancer requests
    assert not any(name.endswith("-requests") for name in policies)
    for variant in ("current", "candidate", "shadowed"):
        tracked = policies[f"acme-ml-qa-fraud-{variant}-concurrency"]["target_tracking_scaling_policy_configuration"]
        dimensions = tracked["customized_metric_specification"]["dimensions"]
        assert {"name": "Variant", "value": variant} in dimensions
