"""How the shared load balancer reaches one endpoint: a target group (IP targets, health-checked on the container's
port and path) and a listener rule matching the endpoint's host and/or path."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.lb_listener_rule import (
    LbListenerRule,
    LbListenerRuleAction,
    LbListenerRuleCondition,
    LbListenerRuleConditionHostHeader,
    LbListenerRuleConditionPathPattern,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from constructs import Construct


@dataclass(frozen=True)
class EndpointRoutingProps:
    target_group_name: str
    """At most 32 characters (an AWS limit)."""
    vpc_id: str
    listener_arn: str
    container_port: int
    """The target group's port: the same value the container listens on."""
    health_check_path: str
    """The same value the container health check probes."""
    priority: int
    host: str | None = None
    path: str | None = None
    deregistration_delay_seconds: int = 30

    def __post_init__(self) -> None:
        if self.host is None and self.path is None:
            raise ValueError(f"target group {self.target_group_name}: a listener rule needs a host, a path or both")
        if len(self.target_group_name) > 32:
            raise ValueError(f"target group name {self.target_group_name!r} is longer than AWS's 32 characters")


class EndpointRouting(Construct):
    """Attributes: `target_group`, `listener_rule`."""

    def __init__(self, scope: Construct, construct_id: str, props: EndpointRoutingProps):
        super().__init__(scope, construct_id)
        self.target_group = LbTargetGroup(
            self, "target-group", name=props.target_group_name, vpc_id=props.vpc_id, target_type="ip",
            port=props.container_port, protocol="HTTP", deregistration_delay=str(props.deregistration_delay_seconds),
            health_check=LbTargetGroupHealthCheck(
                enabled=True, path=props.health_check_path, port="traffic-port", protocol="HTTP", matcher="200",
                interval=15, timeout=5, healthy_threshold=2, unhealthy_threshold=3))
        conditions = []
        if props.host is not None:
            conditions.append(LbListenerRuleCondition(host_header=LbListenerRuleConditionHostHeader(
                values=[props.host])))
        if props.path is not None:
            conditions.append(LbListenerRuleCondition(path_pattern=LbListenerRuleConditionPathPattern(
                values=[props.path])))
        self.listener_rule = LbListenerRule(
            self, "listener-rule", listener_arn=props.listener_arn, priority=props.priority, condition=conditions,
            action=[LbListenerRuleAction(type="forward", target_group_arn=self.target_group.arn)])
