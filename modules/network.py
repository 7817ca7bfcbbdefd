"""The environment's network: VPC, public and private subnets over several AZs, NAT, routes, flow logs and,
optionally, VPC endpoints so that private tasks reach S3, ECR and CloudWatch Logs without NAT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.iam import assume_role_policy, policy_document

ANYWHERE = "0.0.0.0/0"
IAM_NAME_PREFIX_MAX = 38
# Interface endpoints a Fargate task needs to pull from ECR and ship logs without a NAT gateway
# (image layers come from S3, through the gateway endpoint).
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "logs")


@dataclass(frozen=True)
class NetworkProps:
    name_prefix: str
    """Prefix of every Name tag, e.g. `mlops-staging`."""
    region: str
    vpc_cidr: str
    public_subnet_cidrs: tuple[str, ...]
    """One per AZ, in AZ order."""
    private_subnet_cidrs: tuple[str, ...]
    """One per AZ, in AZ order; same length as public_subnet_cidrs."""
    availability_zones: tuple[str, ...]
    """AZ names, one per subnet pair. Named, not looked up: a lookup would move subnets when AWS adds a zone."""
    flow_log_role_name_prefix: str
    """Name prefix of the flow log role; Terraform appends a unique suffix. IAM allows 38 characters."""
    permissions_boundary_arn: str | None = None
    """Caps the flow log role whatever its policy says (see modules/permission_boundaries.py)."""
    nat_gateways: Literal["one_per_az", "single"] = "one_per_az"
    """`one_per_az`: each private subnet leaves through the NAT gateway of its own AZ. `single`: all share one."""
    enable_vpc_endpoints: bool = False
    """Add the S3 gateway endpoint and the ECR and CloudWatch Logs interface endpoints."""
    flow_logs_retention_days: int = 365
    flow_logs_kms_key_arn: str | None = None
    """KMS key for the flow log group. When omitted, CloudWatch Logs' own encryption."""

    def __post_init__(self) -> None:
        counts = {len(self.public_subnet_cidrs), len(self.private_subnet_cidrs), len(self.availability_zones)}
        if len(counts) != 1 or len(self.availability_zones) < 2:
            raise ValueError("NetworkProps needs as many public and private subnet CIDRs as availability zones, and "
                             f"at least 2; got {len(self.public_subnet_cidrs)} public, "
                             f"{len(self.private_subnet_cidrs)} private, {len(self.availability_zones)} zones")
        if len(self.flow_log_role_name_prefix) > IAM_NAME_PREFIX_MAX:
            raise ValueError(f"NetworkProps.flow_log_role_name_prefix {self.flow_log_role_name_prefix!r} is longer "
                             f"than the {IAM_NAME_PREFIX_MAX} characters IAM allows for a name prefix")


class Network(Construct):
    """Attributes: `vpc`, `vpc_id`, `public_subnet_ids`, `private_subnet_ids`, `private_route_table_ids`,
    `nat_gateways`, `flow_log_group`."""

    def __init__(self, scope: Construct, construct_id: str, props: NetworkProps):
        super().__init__(scope, construct_id)
        prefix = props.name_prefix
        az_count = len(props.availability_zones)

        self.vpc = Vpc(self, "vpc", cidr_block=props.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                       tags={"Name": prefix})
        self.vpc_id: str = self.vpc.id
        # Adopting the default security group with no rules removes AWS's allow-all-within-the-group default.
        DefaultSecurityGroup(self, "default-security-group", vpc_id=self.vpc.id, tags={"Name": f"{prefix}-default"})

        internet_gateway = InternetGateway(self, "internet-gateway", vpc_id=self.vpc.id, tags={"Name": prefix})
        public_routes = RouteTable(self, "public-routes", vpc_id=self.vpc.id, tags={"Name": f"{prefix}-public"})
        Route(self, "public-default-route", route_table_id=public_routes.id, destination_cidr_block=ANYWHERE,
              gateway_id=internet_gateway.id)

        public_subnets: list[Subnet] = []
        private_subnets: list[Subnet] = []
        self.nat_gateways: list[NatGateway] = []
        private_route_tables: list[RouteTable] = []
        for index in range(az_count):
            az = f"az{index + 1}"
            zone = props.availability_zones[index]
            public = Subnet(self, f"public-subnet-{az}", vpc_id=self.vpc.id, availability_zone=zone,
                            cidr_block=props.public_subnet_cidrs[index], map_public_ip_on_launch=False,
                            tags={"Name": f"{prefix}-public-{az}", "tier": "public"})
            RouteTableAssociation(self, f"public-routes-{az}", subnet_id=public.id, route_table_id=public_routes.id)
            public_subnets.append(public)
            private = Subnet(self, f"private-subnet-{az}", vpc_id=self.vpc.id, availability_zone=zone,
                             cidr_block=props.private_subnet_cidrs[index],
                             tags={"Name": f"{prefix}-private-{az}", "tier": "private"})
            private_subnets.append(private)

            if props.nat_gateways == "one_per_az" or index == 0:
                address = Eip(self, f"nat-address-{az}", domain="vpc", tags={"Name": f"{prefix}-nat-{az}"})
                self.nat_gateways.append(NatGateway(
                    self, f"nat-gateway-{az}", allocation_id=address.id, subnet_id=public.id,
                    tags={"Name": f"{prefix}-{az}"}, depends_on=[internet_gateway]))
            nat = self.nat_gateways[-1]
            routes = RouteTable(self, f"private-routes-{az}", vpc_id=self.vpc.id,
                                tags={"Name": f"{prefix}-private-{az}"})
            Route(self, f"private-default-route-{az}", route_table_id=routes.id, destination_cidr_block=ANYWHERE,
                  nat_gateway_id=nat.id)
            RouteTableAssociation(self, f"private-routes-{az}-association", subnet_id=private.id,
                                  route_table_id=routes.id)
            private_route_tables.append(routes)

        self.public_subnet_ids: list[str] = [subnet.id for subnet in public_subnets]
        self.private_subnet_ids: list[str] = [subnet.id for subnet in private_subnets]
        self.private_route_table_ids: list[str] = [table.id for table in private_route_tables]

        self.flow_log_group = self._flow_logs(props)
        if props.enable_vpc_endpoints:
            self._endpoints(props)

    def _flow_logs(self, props: NetworkProps) -> CloudwatchLogGroup:
        group = CloudwatchLogGroup(self, "flow-log-group", name=f"/vpc/{props.name_prefix}/flow-logs",
                                   retention_in_days=props.flow_logs_retention_days,
                                   kms_key_id=props.flow_logs_kms_key_arn)
        account = DataAwsCallerIdentity(self, "account").account_id
        role = IamRole(self, "flow-log-role", name_prefix=props.flow_log_role_name_prefix,
                       permissions_boundary=props.permissions_boundary_arn,
                       assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com", account))
        IamRolePolicy(self, "flow-log-policy", role=role.id, policy=policy_document({
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": f"{group.arn}:*",
        }))
        FlowLog(self, "flow-log", vpc_id=self.vpc.id, traffic_type="ALL", log_destination=group.arn,
                iam_role_arn=role.arn, max_aggregation_interval=60, tags={"Name": props.name_prefix})
        return group

    def _endpoints(self, props: NetworkProps) -> None:
        VpcEndpoint(self, "s3-endpoint", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{props.region}.s3",
                    vpc_endpoint_type="Gateway", route_table_ids=self.private_route_table_ids,
                    tags={"Name": f"{props.name_prefix}-s3"})
        group = SecurityGroup(self, "endpoint-security-group", vpc_id=self.vpc.id,
                              name=f"{props.name_prefix}-vpc-endpoints",
                              description="HTTPS from inside the VPC to the interface endpoints",
                              tags={"Name": f"{props.name_prefix}-vpc-endpoints"})
        VpcSecurityGroupIngressRule(self, "endpoint-https-from-vpc", security_group_id=group.id,
                                    ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4=props.vpc_cidr,
                                    description="HTTPS from the VPC")
        for service in INTERFACE_ENDPOINT_SERVICES:
            VpcEndpoint(self, f"{service.replace('.', '-')}-endpoint", vpc_id=self.vpc.id,
                        service_name=f"com.amazonaws.{props.region}.{service}", vpc_endpoint_type="Interface",
                        subnet_ids=self.private_subnet_ids, security_group_ids=[group.id],
                        private_dns_enabled=True, tags={"Name": f"{props.name_prefix}-{service}"})
