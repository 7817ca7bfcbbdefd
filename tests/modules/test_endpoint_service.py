"""modules/endpoint_service.py: the model server's task definition and Fargate service behind the target group."""

from __future__ import annotations

import json

import pytest

from modules.endpoint_service import CONTAINER_NAME, EndpointService, EndpointServiceProps
from serving.contract import DATA_MOUNT, LIVENESS_PATH, MODELS_MOUNT
from tests.infra.synth import only, ref, resources
from tests.support.construct_synth import arn, synth_stack
from tests.support.endpoint_parts import CLUSTER, KEY, endpoint_parts

BASE = {"name": "a", "name_prefix": "p-dev-a", "region": "eu-west-1", "subnet_ids": ["subnet-a"],
        "cluster_arn": CLUSTER, "load_balancer_security_group_id": "sg-lb", "image": "repo:tag",
        "repository_arn": arn("ecr", "repository/p/dev/model-server"), "kms_key_arn": KEY, "cpu": 512,
        "memory_mib": 1024, "container_port": 8080, "health_check_path": "/v2/health/ready", "desired_count": 2}


def service_stack(**options) -> dict:
    def build(stack):
        parts = endpoint_parts(stack)
        EndpointService(stack, "service", EndpointServiceProps(**BASE, **options), parts.identity, parts.storage,
                        parts.routing)
    return synth_stack(build)


def service_of(stack) -> dict:
    return only(stack, "aws_ecs_service")[1]


def test_defaults_all_on_fargate_rolling_with_circuit_breaker_and_scale_left_to_autoscaling():
    stack = service_stack()
    service = service_of(stack)
    assert service["capacity_provider_strategy"] == [{"capacity_provider": "FARGATE", "base": 1, "weight": 100}]
    assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    assert (service["deployment_minimum_healthy_percent"], service["deployment_maximum_percent"]) == (100, 200)
    assert service["lifecycle"] == {"ignore_changes": ["desired_count"]} and service["wait_for_steady_state"] is True
    assert "alarms" not in service
    group_id, _ = only(stack, "aws_lb_target_group")
    assert service["load_balancer"] == [{"target_group_arn": ref("aws_lb_target_group", group_id, "arn"),
                                         "container_name": CONTAINER_NAME, "container_port": 8080}]
    rule_id, _ = only(stack, "aws_lb_listener_rule")
    assert f"aws_lb_listener_rule.{rule_id}" in service["depends_on"]
    assert sum(dep.startswith("aws_efs_mount_target.") for dep in service["depends_on"]) == 2


def test_the_container_reads_models_writes_data_and_is_checked_on_liveness():
    stack = service_stack(environment={"SERVING_PORT": "8080"}, stop_timeout_seconds=60)
    task = next(t for t in resources(stack, "aws_ecs_task_definition").values() if t["family"] == "p-dev-a")
    (container,) = json.loads(task["container_definitions"])
    mounts = {mount["containerPath"]: mount["readOnly"] for mount in container["mountPoints"]}
    assert mounts[MODELS_MOUNT] is True and mounts[DATA_MOUNT] is False
    assert container["readonlyRootFilesystem"] is True and container["stopTimeout"] == 60
    assert f"http://127.0.0.1:8080{LIVENESS_PATH}" in container["healthCheck"]["command"][-1]
    assert container["environment"] == [{"name": "SERVING_PORT", "value": "8080"}]


def test_spot_share_and_rollback_alarms():
    service = service_of(service_stack(fargate_spot_percent=25, rollback_alarm_names=["p-dev-a-target-5xx"]))
    assert service["capacity_provider_strategy"] == [
        {"capacity_provider": "FARGATE", "base": 1, "weight": 75},
        {"capacity_provider": "FARGATE_SPOT", "base": 0, "weight": 25}]
    assert service["alarms"] == {"alarm_names": ["p-dev-a-target-5xx"], "enable": True, "rollback": True}


@pytest.mark.parametrize("changes, message", [
    ({"fargate_spot_percent": 101}, "fargate_spot_percent 101: 0 to 100"),
    ({"desired_count": -1}, "desired_count -1: at least 0"),
    ({"health_check_path": "health"}, "must start with /"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        EndpointServiceProps(**{**BASE, **changes})


def test_a_canary_goes_through_the_routing_s_two_target_groups():
    from modules.endpoint_routing import EndpointRouting, EndpointRoutingProps, TrafficShifting
    from modules.endpoint_service import GradualRollout

    def build(stack):
        parts = endpoint_parts(stack)
        routing = EndpointRouting(stack, "canary-routing", EndpointRoutingProps(
            target_group_name="p-dev-a-c", vpc_id="vpc-1", listener_arn="listener", container_port=8080,
            health_check_path="/v2/health/ready", priority=2, path="/c/*", traffic_shifting=TrafficShifting(
                alternate_target_group_name="p-dev-a-c-alt", role_name="shift", account_id="111111111111")))
        EndpointService(stack, "service", EndpointServiceProps(
            **BASE, gradual_rollout=GradualRollout("CANARY", 10.0, 3, 10)), parts.identity, parts.storage, routing)

    service = service_of(synth_stack(build))
    assert service["deployment_configuration"] == {"strategy": "CANARY", "bake_time_in_minutes": "10",
                                                   "canary_configuration": {"canary_percent": 10,
                                                                            "canary_bake_time_in_minutes": "3"}}
    advanced = service["load_balancer"][0]["advanced_configuration"]
    assert set(advanced) == {"alternate_target_group_arn", "production_listener_rule", "role_arn"}
    assert any(dep.startswith("aws_iam_role_policy.canary-routing_traffic-shift-policy")
               for dep in service["depends_on"])


def test_a_gradual_rollout_without_traffic_shifting_is_refused():
    from modules.endpoint_service import GradualRollout

    def build(stack):
        parts = endpoint_parts(stack)
        EndpointService(stack, "service", EndpointServiceProps(**BASE, gradual_rollout=GradualRollout(
            "LINEAR", 10.0, 6, 10)), parts.identity, parts.storage, parts.routing)

    with pytest.raises(ValueError, match="a gradual rollout needs routing with traffic shifting"):
        synth_stack(build)


@pytest.mark.parametrize("args, message", [
    (("BLUE", 5.0, 3, 10), "strategy 'BLUE': CANARY or LINEAR"),
    (("LINEAR", 2.0, 3, 10), "percent 2.0: ECS allows 3.0 to 100 for LINEAR"),
    (("CANARY", 5.0, 3, 2000), "bake_minutes 2000: ECS allows 0 to 1440"),
])
def test_gradual_rollout_props_are_validated(args, message):
    from modules.endpoint_service import GradualRollout

    with pytest.raises(ValueError, match=message):
        GradualRollout(*args)


def test_a_shadow_variant_is_reached_through_its_registry_not_the_load_balancer():
    stack = service_stack(behind_load_balancer=False, open_network_path=False,
                          service_registry_arn=arn("servicediscovery", "service/srv-1"))
    service = service_of(stack)
    assert "load_balancer" not in service and "health_check_grace_period_seconds" not in service
    assert service["service_registries"] == {"registry_arn": arn("servicediscovery", "service/srv-1")}
    # A second service on the same task identity opens no security group rules of its own.
    assert [rule for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values()
            if "from the load balancer" in rule.get("description", "")] == []


def test_a_variant_registers_in_its_keyed_target_group():
    def build(stack):
        from modules.endpoint_routing import EndpointRouting, EndpointRoutingProps, WeightedTargetGroup

        parts = endpoint_parts(stack)
        routing = EndpointRouting(stack, "variant-routing", EndpointRoutingProps(
            target_group_name="p-dev-v", vpc_id="vpc-1", listener_arn=arn("elasticloadbalancing", "listener/x"),
            container_port=8080, health_check_path="/v2/health/ready", priority=7, path="/v/*",
            weighted_target_groups=(WeightedTargetGroup("blue", "p-dev-v-blue", 100),)))
        EndpointService(stack, "service", EndpointServiceProps(**BASE, target_group_key="blue"), parts.identity,
                        parts.storage, routing)
    stack = synth_stack(build)
    group_id = next(lid for lid, body in resources(stack, "aws_lb_target_group").items()
                    if body["name"] == "p-dev-v-blue")
    assert service_of(stack)["load_balancer"][0]["target_group_arn"] == ref("aws_lb_target_group", group_id, "arn")


def test_a_queue_worker_runs_its_own_program_with_no_port_no_health_probe_and_no_load_balancer():
    def build(stack):
        parts = endpoint_parts(stack)
        EndpointService(stack, "worker", EndpointServiceProps(
            **{**BASE, "load_balancer_security_group_id": "", "desired_count": 0}, behind_load_balancer=False,
            serves_http=False, entry_point=("python", "-m", "serving.worker"),
            task_statements=({"Sid": "TakeRequests", "Effect": "Allow", "Action": "sqs:ReceiveMessage",
                              "Resource": arn("sqs", "p-dev-a-requests")},)), parts.identity, parts.storage, None)

    stack = synth_stack(build)
    service = service_of(stack)
    assert "load_balancer" not in service and service["desired_count"] == 0
    assert not any(dep.startswith("aws_lb_listener_rule.") for dep in service["depends_on"])
    (container,) = json.loads(only(stack, "aws_ecs_task_definition")[1]["container_definitions"])
    assert container["entryPoint"] == ["python", "-m", "serving.worker"] and container["name"] == CONTAINER_NAME
    assert container["portMappings"] == [] and "healthCheck" not in container
    # Out only: NFS to its file system and HTTPS to AWS; nothing may reach it.
    assert resources(stack, "aws_vpc_security_group_ingress_rule").keys() == {
        logical_id for logical_id in resources(stack, "aws_vpc_security_group_ingress_rule")
        if logical_id.startswith("storage_")}
    egress = {(rule.get("from_port"), rule.get("cidr_ipv4") is not None)
              for logical_id, rule in resources(stack, "aws_vpc_security_group_egress_rule").items()
              if logical_id.startswith("worker_")}
    assert egress == {(2049, False), (443, True)}
    task_policy = next(json.loads(body["policy"])
                       for logical_id, body in resources(stack, "aws_iam_role_policy").items()
                       if logical_id.startswith("worker_task-policy"))
    assert any(statement.get("Sid") == "TakeRequests" for statement in task_policy["Statement"])


@pytest.mark.parametrize(("changes", "message"), [
    ({"serves_http": False}, "a service that serves no HTTP is neither behind the load balancer"),
    ({"serves_http": False, "behind_load_balancer": False, "service_registry_arn": "arn:x"},
     "nor registered for callers"),
])
def test_a_worker_s_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        EndpointServiceProps(**BASE, **changes)


def test_a_service_behind_the_load_balancer_needs_the_routing():
    def build(stack):
        parts = endpoint_parts(stack)
        EndpointService(stack, "service", EndpointServiceProps(**BASE), parts.identity, parts.storage, None)

    with pytest.raises(ValueError, match="behind the load balancer, it needs the routing"):
        synth_stack(build)
