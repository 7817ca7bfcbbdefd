"""`<project>-bootstrap`: the state bucket and lock table every other stack uses, and the permissions boundaries
every role of the other stacks carries (deployed by an administrator, so no deploy role can change them). Its own
state stays local."""

from __future__ import annotations

from cdktf import LocalBackend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from constructs import Construct

from configuration import MlopsConfig
from configuration.naming import (
    KMS_ALIAS_MAX,
    S3_BUCKET_NAME_MAX,
    aws_name,
    delivery_boundary_name,
    delivery_role_path,
    workload_boundary_name,
)
from modules.permission_boundaries import PermissionBoundaries, PermissionBoundariesProps
from modules.state_storage import StateStorage, StateStorageProps
from stacks.common import add_aws_provider


class BootstrapStack(TerraformStack):
    """Attributes: `storage` (StateStorage), `boundaries` (PermissionBoundaries)."""

    def __init__(self, scope: Construct, stack_name: str, config: MlopsConfig):
        super().__init__(scope, stack_name)
        add_aws_provider(self, config)
        # Relative to the stack's working directory (cdktf.out/stacks/<name>): the project root, on any machine.
        LocalBackend(self, path=f"../../../terraform.{stack_name}.tfstate")
        self.storage = StateStorage(self, "state", StateStorageProps(
            bucket_name=config.state_bucket_name, lock_table_name=config.lock_table_name, region=config.region,
            key_alias=aws_name(config.state_bucket_name, max_length=KMS_ALIAS_MAX),
            access_log_bucket_name=aws_name(config.state_bucket_name, "logs", max_length=S3_BUCKET_NAME_MAX)))
        account = DataAwsCallerIdentity(self, "account").account_id
        partition = DataAwsPartition(self, "partition").partition
        self.boundaries = PermissionBoundaries(self, "boundaries", PermissionBoundariesProps(
            workload_boundary_name=workload_boundary_name(config.project),
            delivery_boundary_name=delivery_boundary_name(config.project),
            account_arn=f"arn:{partition}:iam::{account}", delivery_role_path=delivery_role_path(config.project)))
        TerraformOutput(self, "state-bucket", value=self.storage.bucket.name,
                        description="S3 bucket holding every other stack's state")
        TerraformOutput(self, "lock-table", value=self.storage.lock_table.name,
                        description="DynamoDB table holding state locks")
        TerraformOutput(self, "state-key-arn", value=self.storage.key.arn,
                        description="KMS key that encrypts state; deploy roles need to use it")
