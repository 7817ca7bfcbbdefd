"""modules/shadow_discovery.py: a private DNS namespace in the VPC, the shadow's service in it (A records, short TTL)
and the endpoint's tasks allowed to call each other on the container port, nothing wider."""

from __future__ import annotations

import pytest

from modules.shadow_discovery import ShadowDiscovery, ShadowDiscoveryProps
from tests.infra.synth import only, ref, resources
from tests.support.construct_synth import synth_stack

PROPS = {"namespace_name": "p-dev-a.internal", "service_label": "shadowed", "vpc_id": "vpc-1",
         "security_group_id": "sg-tasks", "container_port": 8080}


def test_the_shadow_is_found_by_name_inside_the_vpc():
    def build(stack):
        build.discovery = ShadowDiscovery(stack, "discovery", ShadowDiscoveryProps(**PROPS))
    stack = synth_stack(build)
    namespace_id, namespace = only(stack, "aws_service_discovery_private_dns_namespace")
    assert (namespace["name"], namespace["vpc"]) == ("p-dev-a.internal", "vpc-1")
    _, service = only(stack, "aws_service_discovery_service")
    assert service["name"] == "shadowed"
    assert service["dns_config"] == {
        "namespace_id": ref("aws_service_discovery_private_dns_namespace", namespace_id, "id"),
        "routing_policy": "MULTIVALUE", "dns_records": [{"ttl": 10, "type": "A"}]}
    assert build.discovery.url == "http://shadowed.p-dev-a.internal:8080"
    rules = [(kind, rule["security_group_id"], rule["referenced_security_group_id"], rule["from_port"])
             for kind in ("ingress", "egress")
             for rule in resources(stack, f"aws_vpc_security_group_{kind}_rule").values()]
    assert sorted(rules) == [("egress", "sg-tasks", "sg-tasks", 8080), ("ingress", "sg-tasks", "sg-tasks", 8080)]


@pytest.mark.parametrize("changes, message", [
    ({"namespace_name": "internal"}, "a DNS domain"),
    ({"container_port": 0}, "1 to 65535"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        ShadowDiscoveryProps(**{**PROPS, **changes})
