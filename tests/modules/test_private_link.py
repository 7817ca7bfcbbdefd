"""modules/private_link.py: the internal ALB behind an NLB published as a VPC endpoint service, with its principals,
and the security group chain that lets the NLB (only) reach the ALB."""

from __future__ import annotations

import pytest

from modules.load_balancer import LoadBalancer, LoadBalancerProps
from modules.private_link import PrivateLinkService, PrivateLinkServiceProps
from tests.infra.synth import only, ref, resources
from tests.support.construct_synth import synth_stack

PRINCIPAL = "arn:aws:iam::222222222222:root"


def published(**options) -> dict:
    def build(stack):
        internal = LoadBalancer(stack, "alb", LoadBalancerProps(name="p-dev-internal", vpc_id="vpc-1",
                                                                subnet_ids=["private-a", "private-b"], internal=True))
        PrivateLinkService(stack, "link", PrivateLinkServiceProps(
            name="p-dev-link", vpc_id="vpc-1", subnet_ids=["private-a", "private-b"], load_balancer=internal,
            port=80, allowed_principals=(PRINCIPAL,), **options))
    return synth_stack(build)


def test_the_internal_alb_is_the_nlb_s_only_target_and_the_service_lists_its_principals():
    stack = published(acceptance_required=False)
    balancers = {body["load_balancer_type"]: (key, body) for key, body in resources(stack, "aws_lb").items()}
    alb_id, alb = balancers["application"]
    nlb_id, nlb = balancers["network"]
    assert nlb["internal"] is True and nlb["subnets"] == ["private-a", "private-b"]
    _, group = only(stack, "aws_lb_target_group")
    assert (group["target_type"], group["protocol"], group["port"]) == ("alb", "TCP", 80)
    _, attachment = only(stack, "aws_lb_target_group_attachment")
    assert attachment["target_id"] == ref("aws_lb", alb_id, "arn") and attachment["port"] == 80
    listener = next(body for body in resources(stack, "aws_lb_listener").values()
                    if body["load_balancer_arn"] == ref("aws_lb", nlb_id, "arn"))
    assert listener["protocol"] == "TCP" and listener["port"] == 80
    _, service = only(stack, "aws_vpc_endpoint_service")
    assert service["allowed_principals"] == [PRINCIPAL] and service["acceptance_required"] is False
    assert service["network_load_balancer_arns"] == [ref("aws_lb", nlb_id, "arn")]


def test_only_the_nlb_s_group_is_admitted_to_the_alb_from_it():
    stack = published()
    groups = {body["name"]: key for key, body in resources(stack, "aws_security_group").items()}
    alb_group, nlb_group = ref("aws_security_group", groups["p-dev-internal-alb"], "id"), ref(
        "aws_security_group", groups["p-dev-link-nlb"], "id")
    (ingress,) = [rule for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values()
                  if rule.get("referenced_security_group_id") == nlb_group]
    assert ingress["security_group_id"] == alb_group and ingress["from_port"] == 80
    (egress,) = resources(stack, "aws_vpc_security_group_egress_rule").values()
    assert egress["security_group_id"] == nlb_group and egress["referenced_security_group_id"] == alb_group
    nlb = next(body for body in resources(stack, "aws_lb").values() if body["load_balancer_type"] == "network")
    assert nlb["security_groups"] == [nlb_group]


def test_only_an_internal_load_balancer_can_be_published():
    def build(stack):
        public = LoadBalancer(stack, "alb", LoadBalancerProps(name="p", vpc_id="v", subnet_ids=[]))
        PrivateLinkServiceProps(name="p-link", vpc_id="v", subnet_ids=[], load_balancer=public, port=80,
                                allowed_principals=(PRINCIPAL,))
    with pytest.raises(ValueError, match="publishes the internal load balancer"):
        synth_stack(build)
