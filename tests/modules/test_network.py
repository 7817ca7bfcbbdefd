"""modules/network.py: a VPC with public and private subnets per zone, NAT per zone or shared, flow logs and
optional VPC endpoints."""

from __future__ import annotations

import pytest

from modules.network import Network, NetworkProps
from tests.infra.synth import only, ref, resources
from tests.support.construct_synth import arn, synth_stack

BASE = {"name_prefix": "p-dev", "region": "eu-west-1", "vpc_cidr": "10.0.0.0/16",
        "public_subnet_cidrs": ("10.0.0.0/18", "10.0.64.0/18"), "private_subnet_cidrs": ("10.0.128.0/18",
                                                                                         "10.0.192.0/18"),
        "availability_zones": ("eu-west-1a", "eu-west-1b"), "flow_log_role_name_prefix": "p-dev-flow-logs-"}


def network(**options) -> dict:
    return synth_stack(lambda s: Network(s, "network", NetworkProps(**{**BASE, **options})))


def test_defaults_one_nat_per_zone_and_private_subnets_leave_through_their_own_zone():
    stack = network()
    vpc_id, _ = only(stack, "aws_vpc")
    subnets = {body["cidr_block"]: body for body in resources(stack, "aws_subnet").values()}
    assert {cidr: (s["availability_zone"], s["tags"]["tier"]) for cidr, s in subnets.items()} == {
        "10.0.0.0/18": ("eu-west-1a", "public"), "10.0.64.0/18": ("eu-west-1b", "public"),
        "10.0.128.0/18": ("eu-west-1a", "private"), "10.0.192.0/18": ("eu-west-1b", "private")}
    assert all(s["vpc_id"] == ref("aws_vpc", vpc_id, "id") for s in subnets.values())
    assert len(resources(stack, "aws_nat_gateway")) == 2
    private_routes = [route for route in resources(stack, "aws_route").values() if "nat_gateway_id" in route]
    assert len({route["nat_gateway_id"] for route in private_routes}) == 2
    assert only(stack, "aws_iam_role")[1]["name_prefix"] == "p-dev-flow-logs-"
    assert only(stack, "aws_flow_log")[1]["traffic_type"] == "ALL"
    assert resources(stack, "aws_vpc_endpoint") == {}


def test_a_single_nat_and_vpc_endpoints():
    stack = network(nat_gateways="single", enable_vpc_endpoints=True, flow_logs_kms_key_arn=arn("kms", "key/k"))
    assert len(resources(stack, "aws_nat_gateway")) == 1
    services = sorted(body["service_name"] for body in resources(stack, "aws_vpc_endpoint").values())
    assert services == ["com.amazonaws.eu-west-1.ecr.api", "com.amazonaws.eu-west-1.ecr.dkr",
                        "com.amazonaws.eu-west-1.logs", "com.amazonaws.eu-west-1.s3"]
    assert only(stack, "aws_cloudwatch_log_group")[1]["kms_key_id"] == arn("kms", "key/k")


@pytest.mark.parametrize("changes, message", [
    ({"availability_zones": ("eu-west-1a",)}, "as many public and private subnet CIDRs as availability zones"),
    ({"flow_log_role_name_prefix": "x" * 39}, "longer than the 38 characters IAM allows"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        NetworkProps(**{**BASE, **changes})
