"""`<project>-<env>-platform`: what every endpoint of one environment shares."""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformStack
from constructs import Construct

from configuration import MlopsConfig
from modules.encryption import EncryptionKey, EncryptionKeyProps
from modules.network import Network, NetworkProps
from stacks.common import add_aws_provider, use_remote_state


class PlatformStack(TerraformStack):
    """Attributes: `network` (Network), `key` (EncryptionKey for the environment's logs and data)."""

    def __init__(self, scope: Construct, stack_name: str, config: MlopsConfig, environment: str):
        super().__init__(scope, stack_name)
        env = config.environments[environment]
        add_aws_provider(self, config, environment)
        use_remote_state(self, config, stack_name)
        name_prefix = f"{config.project}-{environment}"

        self.key = EncryptionKey(self, "key", EncryptionKeyProps(
            alias=name_prefix, description=f"{name_prefix}: logs and data at rest", region=config.region,
            allow_cloudwatch_logs=True))
        public_cidrs, private_cidrs = env.subnet_cidrs()
        self.network = Network(self, "network", NetworkProps(
            name_prefix=name_prefix,
            region=config.region,
            vpc_cidr=env.vpc_cidr,
            public_subnet_cidrs=tuple(public_cidrs),
            private_subnet_cidrs=tuple(private_cidrs),
            availability_zones=tuple(env.zone_names(config.region)),
            nat_gateways=env.nat_gateways,
            enable_vpc_endpoints=env.enable_vpc_endpoints,
            flow_logs_retention_days=env.flow_logs_retention_days,
            flow_logs_kms_key_arn=self.key.arn,
        ))
        TerraformOutput(self, "vpc-id", value=self.network.vpc_id)
        TerraformOutput(self, "private-subnet-ids", value=self.network.private_subnet_ids)
        TerraformOutput(self, "public-subnet-ids", value=self.network.public_subnet_ids)
