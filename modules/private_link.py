"""The internal load balancer published to other accounts as a VPC endpoint service (PrivateLink).

A PrivateLink service fronts a Network Load Balancer, so one sits in the private subnets with the internal
Application Load Balancer as its only target (an `alb` target group on the ALB listener's port). Consumers create an
interface endpoint to the service in their own VPC; the allowed principals may, and each connection waits for the
owner's acceptance unless `acceptance_required` is off. The NLB has its own security group (egress to the ALB only;
PrivateLink traffic is not filtered on the way in, AWS's setting for endpoint services) and the ALB admits it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.lb import Lb
from cdktf_cdktf_provider_aws.lb_listener import LbListener, LbListenerDefaultAction
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.lb_target_group_attachment import LbTargetGroupAttachment
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_endpoint_service import VpcEndpointService
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.load_balancer import LoadBalancer


@dataclass(frozen=True)
class PrivateLinkServiceProps:
    name: str
    """The NLB's and its target group's name: at most 32 characters (an AWS limit)."""
    vpc_id: str
    subnet_ids: list[str]
    load_balancer: LoadBalancer
    """The internal Application Load Balancer published."""
    port: int
    """The ALB listener's port (443 with HTTPS, else 80): consumers connect on the same."""
    allowed_principals: tuple[str, ...]
    acceptance_required: bool = True
    deletion_protection: bool = False

    def __post_init__(self) -> None:
        if len(self.name) > 32:
            raise ValueError(f"PrivateLink load balancer name {self.name!r} is longer than AWS's 32 characters")
        if not self.load_balancer.internal:
            raise ValueError("PrivateLink publishes the internal load balancer, not an internet-facing one")


class PrivateLinkService(Construct):
    """Attributes: `network_load_balancer`, `endpoint_service`, `service_name` (what consumers connect to)."""

    def __init__(self, scope: Construct, construct_id: str, props: PrivateLinkServiceProps):
        super().__init__(scope, construct_id)
        balancer = props.load_balancer
        group = SecurityGroup(self, "security-group", name=f"{props.name}-nlb", vpc_id=props.vpc_id,
                              description=f"PrivateLink load balancer {props.name}: to the internal ALB only",
                              tags={"Name": f"{props.name}-nlb"})
        VpcSecurityGroupEgressRule(self, "to-application-load-balancer", security_group_id=group.id,
                                   referenced_security_group_id=balancer.security_group_id, ip_protocol="tcp",
                                   from_port=props.port, to_port=props.port, description="to the internal ALB")
        VpcSecurityGroupIngressRule(self, "application-load-balancer-from-link",
                                    security_group_id=balancer.security_group_id,
                                    referenced_security_group_id=group.id, ip_protocol="tcp", from_port=props.port,
                                    to_port=props.port, description="PrivateLink consumers, through the NLB")
        self.network_load_balancer = Lb(
            self, "network-load-balancer", name=props.name, load_balancer_type="network", internal=True,
            subnets=props.subnet_ids, security_groups=[group.id],
            enforce_security_group_inbound_rules_on_private_link_traffic="off",
            enable_cross_zone_load_balancing=True, enable_deletion_protection=props.deletion_protection)
        target_group = LbTargetGroup(
            self, "target-group", name=props.name, target_type="alb", protocol="TCP", port=props.port,
            vpc_id=props.vpc_id, health_check=LbTargetGroupHealthCheck(
                enabled=True, protocol="HTTPS" if props.port == 443 else "HTTP", path="/",
                # The ALB answers any path it serves no endpoint on with its fixed 404: any answer means alive.
                matcher="200-499", interval=30, healthy_threshold=3, unhealthy_threshold=3))
        LbTargetGroupAttachment(self, "application-load-balancer-target", target_group_arn=target_group.arn,
                                target_id=balancer.lb.arn, port=props.port, depends_on=[balancer.listener])
        LbListener(self, "listener", load_balancer_arn=self.network_load_balancer.arn, port=props.port,
                   protocol="TCP", default_action=[LbListenerDefaultAction(type="forward",
                                                                           target_group_arn=target_group.arn)])
        self.endpoint_service = VpcEndpointService(
            self, "endpoint-service", acceptance_required=props.acceptance_required,
            network_load_balancer_arns=[self.network_load_balancer.arn],
            allowed_principals=list(props.allowed_principals), tags={"Name": props.name})
        self.service_name: str = self.endpoint_service.service_name
