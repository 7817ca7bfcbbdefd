"""One of the environment's Application Load Balancers: internet-facing in the public subnets, or internal in the
private subnets (reachable from the VPC and the networks joined to it). Security group, listeners and, optionally,
access logs.

Without a certificate, one HTTP listener. With one, HTTPS with a current TLS policy and HTTP redirected to it.
Either way the default action is a fixed 404: only endpoint listener rules forward traffic. The load balancer's
security group has no egress of its own; each endpoint stack allows egress to its own service only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionFixedResponse,
    LbListenerDefaultActionRedirect,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from constructs import Construct

# TLS 1.3 and 1.2 only, the policy AWS recommends for new HTTPS listeners.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
NOT_FOUND_BODY = json.dumps({"error": {"code": "not_found", "message": "no endpoint serves this host and path"}})


@dataclass(frozen=True)
class LoadBalancerProps:
    name: str
    """At most 32 characters (an AWS limit)."""
    vpc_id: str
    subnet_ids: list[str]
    """The public subnets for an internet-facing load balancer, the private ones for an internal one."""
    internal: bool = False
    ingress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    """Every client network admitted, on the listener ports."""
    certificate_arn: str | None = None
    """When set: HTTPS on 443 with this certificate, HTTP redirected. When omitted: plain HTTP on 80."""
    idle_timeout_seconds: int = 60
    deletion_protection: bool = False
    web_acl_arn: str | None = None
    """WAFv2 web ACL to associate. When omitted, no WAF."""
    access_logs_bucket: str | None = None
    """Bucket name for access logs (its policy must admit ELB log delivery). When omitted, access logs are off."""

    def __post_init__(self) -> None:
        if len(self.name) > 32:
            raise ValueError(f"load balancer name {self.name!r} has {len(self.name)} characters; AWS allows 32")


class LoadBalancer(Construct):
    """Attributes: `lb`, `security_group_id`, `listener` (the one endpoint rules attach to), `dns_name`,
    `zone_id`, `arn_suffix`, `https` (bool), `internal` (bool)."""

    def __init__(self, scope: Construct, construct_id: str, props: LoadBalancerProps):
        super().__init__(scope, construct_id)
        self.https = props.certificate_arn is not None
        self.internal = props.internal
        ports = (80, 443) if self.https else (80,)
        group = SecurityGroup(self, "security-group", name=f"{props.name}-alb", vpc_id=props.vpc_id,
                              # A security group's description cannot change without replacing it.
                              description=f"{'Internal load balancer' if props.internal else 'Load balancer'} "
                                          f"{props.name}: clients in, endpoint services out",
                              tags={"Name": f"{props.name}-alb"})
        for cidr in props.ingress_cidrs:
            for port in ports:
                VpcSecurityGroupIngressRule(
                    self, f"ingress-{port}-{cidr.replace('.', '-').replace('/', '-')}",
                    security_group_id=group.id, ip_protocol="tcp", from_port=port, to_port=port, cidr_ipv4=cidr,
                    description=f"clients from {cidr} on {port}")
        self.security_group_id: str = group.id

        self.lb = Lb(
            self, "lb", name=props.name, load_balancer_type="application", internal=props.internal,
            subnets=props.subnet_ids, security_groups=[group.id],
            drop_invalid_header_fields=True, desync_mitigation_mode="defensive",
            idle_timeout=props.idle_timeout_seconds, enable_deletion_protection=props.deletion_protection,
            access_logs=LbAccessLogs(bucket=props.access_logs_bucket, enabled=True, prefix=props.name)
            if props.access_logs_bucket else None,
        )
        if props.web_acl_arn is not None:
            Wafv2WebAclAssociation(self, "web-acl", resource_arn=self.lb.arn, web_acl_arn=props.web_acl_arn)
        not_found = LbListenerDefaultAction(type="fixed-response", fixed_response=LbListenerDefaultActionFixedResponse(
            content_type="application/json", status_code="404", message_body=NOT_FOUND_BODY))
        if self.https:
            self.listener = LbListener(self, "https-listener", load_balancer_arn=self.lb.arn, port=443,
                                       protocol="HTTPS", ssl_policy=TLS_POLICY, certificate_arn=props.certificate_arn,
                                       default_action=[not_found])
            to_https = LbListenerDefaultActionRedirect(port="443", protocol="HTTPS", status_code="HTTP_301")
            LbListener(self, "http-redirect-listener", load_balancer_arn=self.lb.arn, port=80, protocol="HTTP",
                       default_action=[LbListenerDefaultAction(type="redirect", redirect=to_https)])
        else:
            self.listener = LbListener(self, "http-listener", load_balancer_arn=self.lb.arn, port=80,
                                       protocol="HTTP", default_action=[not_found])
        self.dns_name: str = self.lb.dns_name
        self.zone_id: str = self.lb.zone_id
        self.arn_suffix: str = self.lb.arn_suffix
