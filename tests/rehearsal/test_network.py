"""The network stand-in decides flows as the VPC documentation describes them, on a small network in the shape the
EC2 API returns it: security groups are stateful and need a rule on both ends, network ACLs are stateless and
ordered (the answer's ephemeral port too), a private subnet reaches the internet only through a NAT gateway in a
routed public subnet, an internal load balancer has no public address, endpoints carry AWS API calls."""

from __future__ import annotations

import copy

import pytest

from tests.rehearsal.network import INTERNET_CLIENT, AppliedNetwork, Interface

VPC = "vpc-1"


def group(group_id: str, ingress: list[dict] | None = None, egress: list[dict] | None = None) -> dict:
    return {"GroupId": group_id, "VpcId": VPC, "IpPermissions": ingress or [], "IpPermissionsEgress": egress or []}


def tcp(port: int, cidr: str | None = None, group_id: str | None = None) -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}] if cidr else [],
            "UserIdGroupPairs": [{"GroupId": group_id}] if group_id else [], "PrefixListIds": []}


ALLOW_ALL_ACL = [{"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": egress,
                  "CidrBlock": "0.0.0.0/0"} for egress in (True, False)] + \
                [{"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": egress,
                  "CidrBlock": "0.0.0.0/0"} for egress in (True, False)]


@pytest.fixture
def network() -> AppliedNetwork:
    return AppliedNetwork(
        subnets=[{"SubnetId": "public-a", "VpcId": VPC, "CidrBlock": "10.0.0.0/24", "AvailabilityZone": "z-a"},
                 {"SubnetId": "private-a", "VpcId": VPC, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "z-a"}],
        route_tables=[
            {"RouteTableId": "rtb-main", "VpcId": VPC, "Associations": [{"Main": True}],
             "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}]},
            {"RouteTableId": "rtb-public", "VpcId": VPC, "Associations": [{"SubnetId": "public-a"}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1"}]},
            {"RouteTableId": "rtb-private", "VpcId": VPC, "Associations": [{"SubnetId": "private-a"}],
             "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"}]}],
        security_groups=[group("sg-alb", [tcp(80, "0.0.0.0/0")], [tcp(8080, group_id="sg-task")]),
                         group("sg-task", [tcp(8080, group_id="sg-alb")], [tcp(443, "0.0.0.0/0")])],
        network_acls=[{"NetworkAclId": "acl-default", "VpcId": VPC, "IsDefault": True, "Associations": [],
                       "Entries": copy.deepcopy(ALLOW_ALL_ACL)}],
        nat_gateways=[{"NatGatewayId": "nat-1", "SubnetId": "public-a", "State": "available"}],
        internet_gateways=[{"InternetGatewayId": "igw-1", "Attachments": [{"VpcId": VPC}]}],
        vpc_endpoints=[])


def balancer(network: AppliedNetwork, public: bool = True) -> Interface:
    return network.interface_in("load balancer", "public-a", ["sg-alb"], public=public)


def task(network: AppliedNetwork) -> Interface:
    return network.interface_in("task", "private-a", ["sg-task"])


CLIENT = Interface("client", INTERNET_CLIENT)


def test_the_shipped_shape_delivers_every_flow(network):
    assert network.refusals(CLIENT, balancer(network), 80) == []
    assert network.refusals(balancer(network), task(network), 8080) == []
    assert network.to_aws_service(task(network), "ecr.api", "eu-west-1") == []


def test_security_groups_need_a_rule_on_both_ends_for_the_port(network):
    assert "no ingress rule of sg-alb allows tcp/443" in network.refusals(CLIENT, balancer(network), 443)[0]
    network.security_groups[0]["IpPermissionsEgress"] = []
    (refusal,) = network.refusals(balancer(network), task(network), 8080)
    assert "no egress rule of sg-alb allows tcp/8080 to task" in refusal
    network.security_groups[0]["IpPermissionsEgress"] = [tcp(8080, group_id="sg-other")]
    assert network.refusals(balancer(network), task(network), 8080)  # a rule for another group does not count


def test_network_acls_are_ordered_and_stateless(network):
    acl = network.network_acls[0]["Entries"]
    acl.append({"RuleNumber": 50, "Protocol": "6", "RuleAction": "deny", "Egress": False,
                "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 8080, "To": 8080}})
    (refusal,) = network.refusals(balancer(network), task(network), 8080)
    assert "rule 50 denies the request (inbound tcp/8080)" in refusal
    acl[:] = copy.deepcopy(ALLOW_ALL_ACL)
    # Answers go out to an ephemeral port: an outbound ACL that allows only 80 drops them.
    acl[0] = {"RuleNumber": 100, "Protocol": "6", "RuleAction": "allow", "Egress": True, "CidrBlock": "0.0.0.0/0",
              "PortRange": {"From": 80, "To": 80}}
    assert any("denies the answer (outbound tcp/49152)" in r for r in network.refusals(CLIENT, balancer(network), 80))


def test_a_private_subnet_reaches_the_internet_only_through_a_routed_nat_gateway(network):
    network.route_tables[2]["Routes"] = []
    (refusal,) = network.to_aws_service(task(network), "logs", "eu-west-1")
    assert "route table rtb-private of subnet private-a has no route to 0.0.0.0/0" in refusal
    network.route_tables[2]["Routes"] = [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"}]
    network.route_tables[1]["Routes"] = []  # the NAT gateway's own subnet loses its internet route
    assert "nat-1: route table rtb-public" in network.to_aws_service(task(network), "logs", "eu-west-1")[0]
    # A private interface in a subnet routed straight to the internet gateway has no public address to use.
    network.route_tables[2]["Routes"] = [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1"}]
    assert "no public address" in network.to_aws_service(task(network), "logs", "eu-west-1")[0]


def test_an_internal_load_balancer_is_not_reachable_from_the_internet(network):
    assert "internal" in network.refusals(CLIENT, balancer(network, public=False), 80)[0]


def test_endpoints_carry_api_calls_without_nat(network):
    network.route_tables[2]["Routes"] = []  # no NAT route at all
    network.vpc_endpoints = [
        {"VpcId": VPC, "ServiceName": "com.amazonaws.eu-west-1.s3", "VpcEndpointType": "Gateway",
         "RouteTableIds": ["rtb-private"]},
        {"VpcId": VPC, "ServiceName": "com.amazonaws.eu-west-1.logs", "VpcEndpointType": "Interface",
         "PrivateDnsEnabled": True, "SubnetIds": ["private-a"], "Groups": [{"GroupId": "sg-endpoints"}]}]
    network.security_groups.append(group("sg-endpoints", [tcp(443, "10.0.0.0/16")]))
    assert network.to_aws_service(task(network), "s3", "eu-west-1") == []
    assert network.to_aws_service(task(network), "logs", "eu-west-1") == []
    network.security_groups[-1]["IpPermissions"] = []
    assert "no ingress rule of sg-endpoints allows tcp/443" in network.to_aws_service(
        task(network), "logs", "eu-west-1")[0]
    assert network.to_aws_service(task(network), "ecr.api", "eu-west-1")  # no endpoint, no NAT: refused


def test_two_vpcs_without_peering_do_not_connect(network):
    network.subnets.append({"SubnetId": "other", "VpcId": "vpc-2", "CidrBlock": "10.9.0.0/24",
                            "AvailabilityZone": "z-a"})
    network.network_acls.append({"NetworkAclId": "acl-2", "VpcId": "vpc-2", "IsDefault": True, "Associations": [],
                                 "Entries": copy.deepcopy(ALLOW_ALL_ACL)})
    stranger = network.interface_in("stranger", "other", ["sg-alb"])
    assert "are not peered" in network.refusals(stranger, task(network), 8080)[0]
