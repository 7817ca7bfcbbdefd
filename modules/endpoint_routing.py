"""How the shared load balancer reaches one endpoint: a target group (IP targets, health-checked on the container's
port and path) and a listener rule matching the endpoint's host and/or path.

For a gradual rollout (ECS canary or linear deployments) also an alternate target group, a rule that forwards to
both by weight (100/0; ECS moves the weights during a deployment, so Terraform leaves the rule's action alone
afterwards), and the role ECS assumes to move them, allowed on this rule and these target groups only.

For an endpoint with variants, one target group per serving variant and a rule that forwards to them by the
configured weights (Terraform owns the weights: reweighting is a deploy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lb_listener_rule import (
    LbListenerRule,
    LbListenerRuleAction,
    LbListenerRuleActionForward,
    LbListenerRuleActionForwardTargetGroup,
    LbListenerRuleActionJwtValidation,
    LbListenerRuleActionJwtValidationAdditionalClaim,
    LbListenerRuleCondition,
    LbListenerRuleConditionHostHeader,
    LbListenerRuleConditionPathPattern,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from constructs import Construct

from modules.iam import assume_role_policy, policy_document


@dataclass(frozen=True)
class TrafficShifting:
    """What a gradual rollout needs besides the primary target group."""

    alternate_target_group_name: str
    """At most 32 characters (an AWS limit)."""
    role_name: str
    """The role ECS assumes to move the rule's weights (IAM: at most 64 characters)."""
    account_id: str
    permissions_boundary_arn: str | None = None


@dataclass(frozen=True)
class RequiredClaim:
    name: str
    values: tuple[str, ...]
    format: str = "single-string"
    """`single-string`, `string-array` or `space-separated-values` (how the token carries the claim)."""


@dataclass(frozen=True)
class JwtValidation:
    """The load balancer verifies a bearer token before forwarding (HTTPS listeners only): signature against the
    issuer's JWKS, `iss`, `exp` (and `nbf`, `iat` when present) and every required claim. Anything else gets 401."""

    issuer: str
    jwks_endpoint: str
    claims: tuple[RequiredClaim, ...] = ()


@dataclass(frozen=True)
class WeightedTargetGroup:
    """A serving variant's target group and its share of the endpoint's requests."""

    key: str
    """The variant's name: the construct ID's suffix and the key of `EndpointRouting.target_groups`."""
    name: str
    """At most 32 characters (an AWS limit)."""
    weight: int
    """0 to 999 (the load balancer's range); the shares are weight / sum of weights."""


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
    traffic_shifting: TrafficShifting | None = None
    """When given, the routing a canary or linear deployment needs; when omitted, one target group (rolling)."""
    weighted_target_groups: tuple[WeightedTargetGroup, ...] = ()
    """When given (variants), these target groups instead of `target_group_name`'s, forwarded to by weight."""
    jwt_validation: JwtValidation | None = None
    """When given, the rule verifies a JWT before it forwards (the listener must be HTTPS)."""

    def __post_init__(self) -> None:
        if self.weighted_target_groups:
            if self.traffic_shifting is not None:
                raise ValueError(f"target group {self.target_group_name}: weighted target groups (variants) and "
                                 "traffic shifting (canary/linear) both set the rule's weights; choose one")
            for group in self.weighted_target_groups:
                if not 0 <= group.weight <= 999 or len(group.name) > 32:
                    raise ValueError(f"weighted target group {group.name!r}: weight {group.weight} must be 0 to "
                                     "999 and the name at most 32 characters")
            if not any(group.weight for group in self.weighted_target_groups):
                raise ValueError(f"target group {self.target_group_name}: at least one weighted target group needs "
                                 "a weight above 0")
        if self.host is None and self.path is None:
            raise ValueError(f"target group {self.target_group_name}: a listener rule needs a host, a path or both")
        if len(self.target_group_name) > 32:
            raise ValueError(f"target group name {self.target_group_name!r} is longer than AWS's 32 characters")
        if self.traffic_shifting is not None and len(self.traffic_shifting.alternate_target_group_name) > 32:
            raise ValueError(f"target group name {self.traffic_shifting.alternate_target_group_name!r} is longer "
                             "than AWS's 32 characters")


class EndpointRouting(Construct):
    """Attributes: `target_group` (with variants: the first variant's), `target_groups` (variant -> group; empty
    without variants), `listener_rule`; with traffic shifting also `alternate_target_group`, `traffic_shift_role`
    and `traffic_shift_policy` (else None)."""

    def __init__(self, scope: Construct, construct_id: str, props: EndpointRoutingProps):
        super().__init__(scope, construct_id)
        self.target_groups = {group.key: self._target_group(f"target-group-{group.key}", group.name, props)
                              for group in props.weighted_target_groups}
        self.target_group = (next(iter(self.target_groups.values())) if self.target_groups
                             else self._target_group("target-group", props.target_group_name, props))
        conditions = []
        if props.host is not None:
            conditions.append(LbListenerRuleCondition(host_header=LbListenerRuleConditionHostHeader(
                values=[props.host])))
        if props.path is not None:
            conditions.append(LbListenerRuleCondition(path_pattern=LbListenerRuleConditionPathPattern(
                values=[props.path])))
        shifting = props.traffic_shifting
        self.alternate_target_group: LbTargetGroup | None = None
        self.traffic_shift_role: IamRole | None = None
        self.traffic_shift_policy: IamRolePolicy | None = None
        if self.target_groups:
            self.listener_rule = LbListenerRule(
                self, "listener-rule", listener_arn=props.listener_arn, priority=props.priority,
                condition=conditions,
                action=_actions(props, forward=LbListenerRuleActionForward(target_group=[
                    LbListenerRuleActionForwardTargetGroup(arn=self.target_groups[group.key].arn, weight=group.weight)
                    for group in props.weighted_target_groups])))
            return
        if shifting is None:
            self.listener_rule = LbListenerRule(
                self, "listener-rule", listener_arn=props.listener_arn, priority=props.priority,
                condition=conditions,
                action=_actions(props, target_group_arn=self.target_group.arn))
            return
        self.alternate_target_group = self._target_group("alternate-target-group",
                                                         shifting.alternate_target_group_name, props)
        self.listener_rule = LbListenerRule(
            self, "listener-rule", listener_arn=props.listener_arn, priority=props.priority, condition=conditions,
            action=_actions(props, forward=LbListenerRuleActionForward(target_group=[
                LbListenerRuleActionForwardTargetGroup(arn=self.target_group.arn, weight=100),
                LbListenerRuleActionForwardTargetGroup(arn=self.alternate_target_group.arn, weight=0)])),
            lifecycle=TerraformResourceLifecycle(ignore_changes=["action"]))
        self.traffic_shift_role = IamRole(
            self, "traffic-shift-role", name=shifting.role_name,
            permissions_boundary=shifting.permissions_boundary_arn,
            assume_role_policy=assume_role_policy("ecs.amazonaws.com", shifting.account_id),
            description="ECS moves this endpoint's traffic between its two target groups during a deployment")
        groups = [self.target_group.arn, self.alternate_target_group.arn]
        self.traffic_shift_policy = IamRolePolicy(
            self, "traffic-shift-policy", role=self.traffic_shift_role.id, policy=policy_document(
            # Reads have no resource scope in Elastic Load Balancing.
            {"Sid": "ReadLoadBalancing", "Effect": "Allow", "Action": [
                "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"],
             "Resource": "*"},
            {"Sid": "MoveThisEndpointsTargets", "Effect": "Allow",
             "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
             "Resource": groups},
            {"Sid": "ShiftThisEndpointsRule", "Effect": "Allow", "Action": "elasticloadbalancing:ModifyRule",
             "Resource": self.listener_rule.arn}))

    def _target_group(self, construct_id: str, name: str, props: EndpointRoutingProps) -> LbTargetGroup:
        return LbTargetGroup(
            self, construct_id, name=name, vpc_id=props.vpc_id, target_type="ip",
            port=props.container_port, protocol="HTTP", deregistration_delay=str(props.deregistration_delay_seconds),
            health_check=LbTargetGroupHealthCheck(
                enabled=True, path=props.health_check_path, port="traffic-port", protocol="HTTP", matcher="200",
                interval=15, timeout=5, healthy_threshold=2, unhealthy_threshold=3))


def _actions(props: EndpointRoutingProps, **forward: Any) -> list[LbListenerRuleAction]:
    """The rule's actions in order: the JWT check first when configured, then the forward."""
    jwt = props.jwt_validation
    if jwt is None:
        return [LbListenerRuleAction(type="forward", **forward)]
    check = LbListenerRuleAction(type="jwt-validation", order=1, jwt_validation=LbListenerRuleActionJwtValidation(
        issuer=jwt.issuer, jwks_endpoint=jwt.jwks_endpoint, additional_claim=[
            LbListenerRuleActionJwtValidationAdditionalClaim(name=claim.name, format=claim.format,
                                                             values=list(claim.values))
            for claim in jwt.claims] or None))
    return [check, LbListenerRuleAction(type="forward", order=2, **forward)]
