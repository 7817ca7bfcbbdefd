"""modules/endpoint_routing.py: an IP target group checked on the container's health path, and the listener rule
that forwards the endpoint's host and/or path to it."""

from __future__ import annotations

import pytest

from modules.endpoint_routing import EndpointRouting, EndpointRoutingProps, TrafficShifting, WeightedTargetGroup
from tests.infra.synth import only, policy, ref, resources
from tests.support.construct_synth import arn, synth_stack

LISTENER = arn("elasticloadbalancing", "listener/app/lb/1/2")


def routing(**options) -> dict:
    values = {"target_group_name": "p-dev-a", "vpc_id": "vpc-1", "listener_arn": LISTENER, "container_port": 8080,
              "health_check_path": "/v2/health/ready", "priority": 30499, "path": "/a/*", **options}
    return synth_stack(lambda s: EndpointRouting(s, "routing", EndpointRoutingProps(**values)))


def test_path_route_forwards_to_a_target_group_checked_on_the_container_port_and_path():
    stack = routing()
    group_id, group = only(stack, "aws_lb_target_group")
    assert (group["name"], group["target_type"], group["port"], group["protocol"]) == ("p-dev-a", "ip", 8080, "HTTP")
    assert group["deregistration_delay"] == "30"
    assert group["health_check"]["path"] == "/v2/health/ready" and group["health_check"]["port"] == "traffic-port"
    _, rule = only(stack, "aws_lb_listener_rule")
    assert rule["listener_arn"] == LISTENER and rule["priority"] == 30499
    assert rule["condition"] == [{"path_pattern": {"values": ["/a/*"]}}]
    assert rule["action"] == [{"type": "forward", "target_group_arn": ref("aws_lb_target_group", group_id, "arn")}]


def test_host_and_path_both_condition_the_rule():
    stack = routing(host="a.example.com", path="/v2/*", deregistration_delay_seconds=45)
    assert only(stack, "aws_lb_listener_rule")[1]["condition"] == [
        {"host_header": {"values": ["a.example.com"]}}, {"path_pattern": {"values": ["/v2/*"]}}]
    assert only(stack, "aws_lb_target_group")[1]["deregistration_delay"] == "45"


def test_variants_get_a_target_group_each_behind_one_weighted_rule():
    stack = routing(weighted_target_groups=(WeightedTargetGroup("blue", "p-dev-a-blue", 70),
                                            WeightedTargetGroup("green", "p-dev-a-green", 30)))
    groups = {body["name"]: logical_id for logical_id, body in resources(stack, "aws_lb_target_group").items()}
    assert set(groups) == {"p-dev-a-blue", "p-dev-a-green"}  # no group of the endpoint's own name
    _, rule = only(stack, "aws_lb_listener_rule")
    assert rule["action"] == [{"type": "forward", "forward": {"target_group": [
        {"arn": ref("aws_lb_target_group", groups["p-dev-a-blue"], "arn"), "weight": 70},
        {"arn": ref("aws_lb_target_group", groups["p-dev-a-green"], "arn"), "weight": 30}]}}]
    assert "lifecycle" not in rule


@pytest.mark.parametrize("changes, message", [
    ({"path": None}, "a listener rule needs a host, a path or both"),
    ({"target_group_name": "x" * 33}, "is longer than AWS's 32 characters"),
    ({"weighted_target_groups": (WeightedTargetGroup("a", "a", 0),)}, "needs a weight above 0"),
    ({"weighted_target_groups": (WeightedTargetGroup("a", "a", 1000),)}, "weight 1000 must be 0 to 999"),
    ({"weighted_target_groups": (WeightedTargetGroup("a", "a", 100),),
      "traffic_shifting": TrafficShifting("alt", "role", "111111111111")}, "choose one"),
])
def test_props_are_validated(changes, message):
    values = {"target_group_name": "t", "vpc_id": "v", "listener_arn": LISTENER, "container_port": 1,
              "health_check_path": "/", "priority": 1, "path": "/a/*", **changes}
    with pytest.raises(ValueError, match=message):
        EndpointRoutingProps(**values)


def test_traffic_shifting_adds_a_second_target_group_a_weighted_rule_and_a_role_for_ecs_on_them_only():
    stack = routing(traffic_shifting=TrafficShifting(alternate_target_group_name="p-dev-a-alt",
                                                     role_name="p-dev-a-traffic-shift", account_id="111111111111",
                                                     permissions_boundary_arn=arn("iam", "policy/boundary")))
    groups = {body["name"]: logical_id for logical_id, body in resources(stack, "aws_lb_target_group").items()}
    assert set(groups) == {"p-dev-a", "p-dev-a-alt"}
    rule_id, rule = only(stack, "aws_lb_listener_rule")
    assert rule["action"] == [{"type": "forward", "forward": {"target_group": [
        {"arn": ref("aws_lb_target_group", groups["p-dev-a"], "arn"), "weight": 100},
        {"arn": ref("aws_lb_target_group", groups["p-dev-a-alt"], "arn"), "weight": 0}]}}]
    assert rule["lifecycle"] == {"ignore_changes": ["action"]}
    _, role = only(stack, "aws_iam_role")
    assert role["permissions_boundary"] == arn("iam", "policy/boundary")
    assert policy(role, "assume_role_policy")["Statement"][0]["Principal"] == {"Service": "ecs.amazonaws.com"}
    grants = {s["Sid"]: s for s in policy(only(stack, "aws_iam_role_policy")[1])["Statement"]}
    assert grants["ShiftThisEndpointsRule"]["Resource"] == ref("aws_lb_listener_rule", rule_id, "arn")
    assert sorted(grants["MoveThisEndpointsTargets"]["Resource"]) == sorted(
        ref("aws_lb_target_group", group, "arn") for group in groups.values())


def test_a_rolling_endpoint_has_no_traffic_shifting():
    stack = routing()
    assert resources(stack, "aws_iam_role") == {} and "lifecycle" not in only(stack, "aws_lb_listener_rule")[1]
