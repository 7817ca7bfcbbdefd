"""The platform network: subnets in the VPC, private routes through NAT, closed default group, flow logs."""

from __future__ import annotations

import ipaddress

import pytest

from tests.infra.synth import assert_has_resource, by_path_suffix, only, policy, ref, resources, target

STAGING = "mlops-staging-platform"  # nat_gateways: single
PROD = "mlops-prod-platform"  # nat_gateways: one_per_az
OPTIONS = "acme-ml-qa-platform"  # 3 AZs, VPC endpoints


def subnets(stack, tier: str) -> dict[str, dict]:
    return {logical_id: body for logical_id, body in resources(stack, "aws_subnet").items()
            if body["tags"]["tier"] == tier}


def route_table_of(stack, subnet_id: str) -> str:
    """Logical ID of the route table a subnet is associated with."""
    tables = [target(stack, assoc["route_table_id"])[1] for assoc in resources(stack, "aws_route_table_association")
              .values() if assoc["subnet_id"] == ref("aws_subnet", subnet_id, "id")]
    assert len(tables) == 1, f"subnet {subnet_id} has {len(tables)} route table associations"
    return tables[0]


def default_route(stack, table_id: str) -> dict:
    routes = [route for route in resources(stack, "aws_route").values()
              if route["route_table_id"] == ref("aws_route_table", table_id, "id")
              and route["destination_cidr_block"] == "0.0.0.0/0"]
    assert len(routes) == 1
    return routes[0]


@pytest.mark.parametrize("stack_name,cidr", [(STAGING, "10.10.0.0/16"), (PROD, "10.20.0.0/16")])
def test_every_subnet_is_in_the_vpc_and_inside_its_block(default_synth, stack_name, cidr):
    stack = default_synth.stack(stack_name)
    vpc_id, vpc = only(stack, "aws_vpc")
    assert vpc["cidr_block"] == cidr and vpc["enable_dns_hostnames"] is True
    vpc_network = ipaddress.IPv4Network(cidr)
    blocks = []
    for body in resources(stack, "aws_subnet").values():
        assert body["vpc_id"] == ref("aws_vpc", vpc_id, "id")
        block = ipaddress.IPv4Network(body["cidr_block"])
        assert block.subnet_of(vpc_network)
        assert not any(block.overlaps(other) for other in blocks)
        blocks.append(block)
    assert len(subnets(stack, "public")) == 2 and len(subnets(stack, "private")) == 2


def test_public_and_private_subnets_span_two_azs(default_synth):
    stack = default_synth.stack(PROD)
    for tier in ("public", "private"):
        zones = sorted(body["availability_zone"] for body in subnets(stack, tier).values())
        assert zones == ["eu-west-1a", "eu-west-1b"]
        assert all(body.get("map_public_ip_on_launch") is not True for body in subnets(stack, tier).values())


def test_public_subnets_route_to_the_internet_gateway(default_synth):
    stack = default_synth.stack(PROD)
    igw_id, _ = only(stack, "aws_internet_gateway")
    for subnet_id in subnets(stack, "public"):
        route = default_route(stack, route_table_of(stack, subnet_id))
        assert route["gateway_id"] == ref("aws_internet_gateway", igw_id, "id")


def test_one_nat_per_az_each_private_subnet_leaves_through_its_own_az(default_synth):
    stack = default_synth.stack(PROD)
    assert len(resources(stack, "aws_nat_gateway")) == 2
    for subnet_id, subnet in subnets(stack, "private").items():
        route = default_route(stack, route_table_of(stack, subnet_id))
        _, _, nat = target(stack, route["nat_gateway_id"])
        _, _, nat_subnet = target(stack, nat["subnet_id"])
        assert nat_subnet["tags"]["tier"] == "public"
        assert nat_subnet["availability_zone"] == subnet["availability_zone"]
        _, _, address = target(stack, nat["allocation_id"])
        assert address["domain"] == "vpc"


def test_single_nat_is_shared_by_every_private_subnet(default_synth):
    stack = default_synth.stack(STAGING)
    nat_id, nat = only(stack, "aws_nat_gateway")
    for subnet_id in subnets(stack, "private"):
        route = default_route(stack, route_table_of(stack, subnet_id))
        assert route["nat_gateway_id"] == ref("aws_nat_gateway", nat_id, "id")
    assert target(stack, nat["subnet_id"])[2]["tags"]["tier"] == "public"


def test_default_security_group_is_closed(default_synth):
    stack = default_synth.stack(PROD)
    vpc_id, _ = only(stack, "aws_vpc")
    _, group = only(stack, "aws_default_security_group")
    assert group["vpc_id"] == ref("aws_vpc", vpc_id, "id")
    assert not group.get("ingress") and not group.get("egress")


def test_flow_logs_capture_all_traffic_into_an_encrypted_group(default_synth):
    stack = default_synth.stack(PROD)
    vpc_id, _ = only(stack, "aws_vpc")
    group_id, group = by_path_suffix(stack, "aws_cloudwatch_log_group", "network/flow-log-group")
    key_id, key = only(stack, "aws_kms_key")
    assert group["retention_in_days"] == 365
    assert group["kms_key_id"] == ref("aws_kms_key", key_id, "arn")
    key_policy = policy(key)
    assert any(s["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"} for s in key_policy["Statement"])
    role_id, role = by_path_suffix(stack, "aws_iam_role", "network/flow-log-role")
    assert policy(role, "assume_role_policy")["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert_has_resource(stack, "aws_flow_log", {
        "vpc_id": ref("aws_vpc", vpc_id, "id"), "traffic_type": "ALL",
        "log_destination": ref("aws_cloudwatch_log_group", group_id, "arn"),
        "iam_role_arn": ref("aws_iam_role", role_id, "arn")})
    _, role_policy = by_path_suffix(stack, "aws_iam_role_policy", "network/flow-log-policy")
    (statement,) = policy(role_policy)["Statement"]
    assert statement["Resource"] == ref("aws_cloudwatch_log_group", group_id, "arn") + ":*"


def test_no_vpc_endpoints_by_default(default_synth):
    assert resources(default_synth.stack(PROD), "aws_vpc_endpoint") == {}


def test_all_options_three_azs_pinned_zones_and_sized_subnets(options_synth):
    stack = options_synth.stack(OPTIONS)
    public = sorted((b["availability_zone"], b["cidr_block"]) for b in subnets(stack, "public").values())
    private = sorted((b["availability_zone"], b["cidr_block"]) for b in subnets(stack, "private").values())
    zones = ["us-east-1b", "us-east-1c", "us-east-1d"]
    assert public == list(zip(zones, ["172.20.0.0/24", "172.20.1.0/24", "172.20.2.0/24"], strict=True))
    assert private == list(zip(zones, ["172.20.3.0/24", "172.20.4.0/24", "172.20.5.0/24"], strict=True))
    assert len(resources(stack, "aws_nat_gateway")) == 3
    assert by_path_suffix(stack, "aws_cloudwatch_log_group", "network/flow-log-group")[1]["retention_in_days"] == 90


def test_vpc_endpoints_serve_the_private_subnets(options_synth):
    stack = options_synth.stack(OPTIONS)
    endpoints = {body["service_name"]: body for body in resources(stack, "aws_vpc_endpoint").values()}
    assert sorted(endpoints) == ["com.amazonaws.us-east-1.ecr.api", "com.amazonaws.us-east-1.ecr.dkr",
                                 "com.amazonaws.us-east-1.logs", "com.amazonaws.us-east-1.s3"]
    private_ids = sorted(ref("aws_subnet", logical_id, "id") for logical_id in subnets(stack, "private"))
    private_tables = sorted(ref("aws_route_table", route_table_of(stack, logical_id), "id")
                            for logical_id in subnets(stack, "private"))
    gateway = endpoints["com.amazonaws.us-east-1.s3"]
    assert gateway["vpc_endpoint_type"] == "Gateway"
    assert sorted(gateway["route_table_ids"]) == private_tables
    group_id, _ = by_path_suffix(stack, "aws_security_group", "network/endpoint-security-group")
    for service in ("ecr.api", "ecr.dkr", "logs"):
        endpoint = endpoints[f"com.amazonaws.us-east-1.{service}"]
        assert endpoint["vpc_endpoint_type"] == "Interface" and endpoint["private_dns_enabled"] is True
        assert sorted(endpoint["subnet_ids"]) == private_ids
        assert endpoint["security_group_ids"] == [ref("aws_security_group", group_id, "id")]
    assert_has_resource(stack, "aws_vpc_security_group_ingress_rule", {
        "security_group_id": ref("aws_security_group", group_id, "id"), "from_port": 443, "to_port": 443,
        "ip_protocol": "tcp", "cidr_ipv4": "172.20.0.0/20"})
