"""modules/load_balancer.py: the public ALB, its listeners (HTTP, or HTTPS with HTTP redirected) answering 404 unless
an endpoint rule matches, and ingress only from the configured networks."""

from __future__ import annotations

import pytest

from modules.load_balancer import LoadBalancer, LoadBalancerProps
from tests.infra.synth import only, ref, resources
from tests.support.construct_synth import arn, synth_stack

CERTIFICATE = arn("acm", "certificate/c")


def balancer(**options) -> dict:
    return synth_stack(lambda s: LoadBalancer(s, "lb", LoadBalancerProps(
        name="p-dev", vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"], **options)))


def ingress(stack) -> list[tuple[str, int]]:
    return sorted((rule["cidr_ipv4"], rule["from_port"])
                  for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values())


def test_defaults_http_only_open_to_everyone_with_a_404_default():
    stack = balancer()
    lb_id, lb = only(stack, "aws_lb")
    assert lb["internal"] is False and lb["drop_invalid_header_fields"] is True
    assert lb["enable_deletion_protection"] is False and "access_logs" not in lb
    (listener,) = resources(stack, "aws_lb_listener").values()
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    assert listener["load_balancer_arn"] == ref("aws_lb", lb_id, "arn")
    assert listener["default_action"][0]["fixed_response"]["status_code"] == "404"
    assert ingress(stack) == [("0.0.0.0/0", 80)]
    assert resources(stack, "aws_wafv2_web_acl_association") == {}


def test_with_a_certificate_https_serves_and_http_redirects():
    stack = balancer(certificate_arn=CERTIFICATE, ingress_cidrs=("10.0.0.0/8", "192.168.0.0/16"),
                     deletion_protection=True, web_acl_arn=arn("wafv2", "regional/webacl/w/1"),
                     access_logs_bucket="logs", idle_timeout_seconds=120)
    listeners = {body["port"]: body for body in resources(stack, "aws_lb_listener").values()}
    assert listeners[443]["protocol"] == "HTTPS" and listeners[443]["certificate_arn"] == CERTIFICATE
    assert listeners[80]["default_action"][0]["redirect"] == {"port": "443", "protocol": "HTTPS",
                                                              "status_code": "HTTP_301"}
    assert ingress(stack) == [("10.0.0.0/8", 80), ("10.0.0.0/8", 443), ("192.168.0.0/16", 80),
                              ("192.168.0.0/16", 443)]
    _, lb = only(stack, "aws_lb")
    assert lb["enable_deletion_protection"] is True and lb["idle_timeout"] == 120
    assert lb["access_logs"] == {"bucket": "logs", "enabled": True, "prefix": "p-dev"}
    assert only(stack, "aws_wafv2_web_acl_association")[1]["web_acl_arn"] == arn("wafv2", "regional/webacl/w/1")


def test_a_name_aws_would_refuse_is_refused_here():
    with pytest.raises(ValueError, match="has 33 characters; AWS allows 32"):
        LoadBalancerProps(name="x" * 33, vpc_id="v", subnet_ids=[])


def test_an_internal_load_balancer_sits_in_the_given_subnets_with_its_own_group():
    stack = synth_stack(lambda s: LoadBalancer(s, "lb", LoadBalancerProps(
        name="p-dev-internal", vpc_id="vpc-1", subnet_ids=["private-a", "private-b"], internal=True,
        ingress_cidrs=("10.20.0.0/16",))))
    group_id, group = only(stack, "aws_security_group")
    _, lb = only(stack, "aws_lb")
    assert lb["internal"] is True and lb["subnets"] == ["private-a", "private-b"]
    assert lb["security_groups"] == [ref("aws_security_group", group_id, "id")]
    assert group["description"].startswith("Internal load balancer p-dev-internal")
    assert ingress(stack) == [("10.20.0.0/16", 80)]
