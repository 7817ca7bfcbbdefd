"""`<project>-bootstrap`: the state bucket and lock table every other stack uses. Its own state stays local."""

from __future__ import annotations

from cdktf import LocalBackend, TerraformOutput, TerraformStack
from constructs import Construct

from configuration import MlopsConfig
from configuration.naming import KMS_ALIAS_MAX, S3_BUCKET_NAME_MAX, aws_name
from modules.state_storage import StateStorage, StateStorageProps
from stacks.common import add_aws_provider


class BootstrapStack(TerraformStack):
    """Attributes: `storage` (StateStorage)."""

    def __init__(self, scope: Construct, stack_name: str, config: MlopsConfig):
        super().__init__(scope, stack_name)
        add_aws_provider(self, config)
        # Relative to the stack's working directory (cdktf.out/stacks/<name>): the project root, on any machine.
        LocalBackend(self, path=f"../../../terraform.{stack_name}.tfstate")
        self.storage = StateStorage(self, "state", StateStorageProps(
            bucket_name=config.state_bucket_name, lock_table_name=config.lock_table_name, region=config.region,
            key_alias=aws_name(config.state_bucket_name, max_length=KMS_ALIAS_MAX),
            access_log_bucket_name=aws_name(config.state_bucket_name, "logs", max_length=S3_BUCKET_NAME_MAX)))
        TerraformOutput(self, "state-bucket", value=self.storage.bucket.name,
                        description="S3 bucket holding every other stack's state")
        TerraformOutput(self, "lock-table", value=self.storage.lock_table.name,
                        description="DynamoDB table holding state locks")
        TerraformOutput(self, "state-key-arn", value=self.storage.key.arn,
                        description="KMS key that encrypts state; deploy roles need to use it")
