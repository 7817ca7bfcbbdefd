"""How an endpoint's serving variants reach its shadow variant inside the VPC: a private DNS namespace (Cloud Map)
with one service whose A records ECS keeps pointing at the shadow's tasks, and the security group rules that let
the endpoint's tasks call each other on the container port. No load balancer, no NAT: copies stay in the VPC."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.service_discovery_private_dns_namespace import ServiceDiscoveryPrivateDnsNamespace
from cdktf_cdktf_provider_aws.service_discovery_service import (
    ServiceDiscoveryService,
    ServiceDiscoveryServiceDnsConfig,
    ServiceDiscoveryServiceDnsConfigDnsRecords,
)
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

DNS_TTL_SECONDS = 10
"""Short, so a replaced shadow task is found within seconds (the copies that fail meanwhile are counted)."""


@dataclass(frozen=True)
class ShadowDiscoveryProps:
    namespace_name: str
    """A private DNS domain, e.g. `mlops-prod-a.internal`."""
    service_label: str
    """The shadow's host label in it, e.g. `shadowed`."""
    vpc_id: str
    security_group_id: str
    """The endpoint's task security group (every variant's tasks carry it)."""
    container_port: int

    def __post_init__(self) -> None:
        if not self.namespace_name or "." not in self.namespace_name:
            raise ValueError(f"ShadowDiscoveryProps.namespace_name {self.namespace_name!r}: a DNS domain such as "
                             "mlops-prod-a.internal")
        if not 1 <= self.container_port <= 65535:
            raise ValueError(f"ShadowDiscoveryProps.container_port {self.container_port}: 1 to 65535")


class ShadowDiscovery(Construct):
    """Attributes: `namespace`, `service`, `registry_arn` (for the shadow's ECS service), `url` (what the serving
    variants post copies to)."""

    def __init__(self, scope: Construct, construct_id: str, props: ShadowDiscoveryProps):
        super().__init__(scope, construct_id)
        self.namespace = ServiceDiscoveryPrivateDnsNamespace(
            self, "namespace", name=props.namespace_name, vpc=props.vpc_id,
            description="The endpoint's variants find its shadow here")
        self.service = ServiceDiscoveryService(
            self, "service", name=props.service_label,
            dns_config=ServiceDiscoveryServiceDnsConfig(
                namespace_id=self.namespace.id, routing_policy="MULTIVALUE",
                dns_records=[ServiceDiscoveryServiceDnsConfigDnsRecords(ttl=DNS_TTL_SECONDS, type="A")]))
        self.registry_arn: str = self.service.arn
        self.url = f"http://{props.service_label}.{props.namespace_name}:{props.container_port}"
        port = props.container_port
        VpcSecurityGroupIngressRule(self, "shadow-from-variants", security_group_id=props.security_group_id,
                                    referenced_security_group_id=props.security_group_id, ip_protocol="tcp",
                                    from_port=port, to_port=port, description="copies from the serving variants")
        VpcSecurityGroupEgressRule(self, "variants-to-shadow", security_group_id=props.security_group_id,
                                   referenced_security_group_id=props.security_group_id, ip_protocol="tcp",
                                   from_port=port, to_port=port, description="copies to the shadow variant")
