"""What every stack shares: the AWS provider with default tags and account guard, the remote-state backend, and
the ARN of a permissions boundary."""

from __future__ import annotations

from cdktf import S3Backend, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderAssumeRole, AwsProviderDefaultTags

from configuration import MlopsConfig
from configuration.naming import state_key

MANAGED_BY = "cdktf/ecs-mlops"


def default_tags(config: MlopsConfig, environment: str | None = None,
                 endpoint: str | None = None) -> dict[str, str]:
    """Tags on every resource of a stack, so cost and ownership show in the console. User tags come first so that
    ours, which the platform relies on, win."""
    tags = {**config.tags, "project": config.project, "managed-by": MANAGED_BY}
    if environment is not None:
        tags["environment"] = environment
    if endpoint is not None:
        tags["endpoint"] = endpoint
    return tags


def add_aws_provider(stack: TerraformStack, config: MlopsConfig, environment: str | None = None,
                     endpoint: str | None = None) -> AwsProvider:
    """The stack's AWS provider. In an environment with `account_id`, Terraform refuses any other account; with
    `deploy_role_arn`, it assumes that role."""
    env = config.environments[environment] if environment is not None else None
    return AwsProvider(
        stack, "aws",
        region=config.region,
        default_tags=[AwsProviderDefaultTags(tags=default_tags(config, environment, endpoint))],
        allowed_account_ids=[env.account_id] if env is not None and env.account_id else None,
        assume_role=[AwsProviderAssumeRole(role_arn=env.deploy_role_arn, session_name=f"{config.project}-deploy")]
        if env is not None and env.deploy_role_arn else None,
    )


def use_remote_state(stack: TerraformStack, config: MlopsConfig, stack_name: str) -> S3Backend:
    """Keep the stack's state in the bootstrap bucket under its own key, locked as `state.locking` says.

    The backend's `encrypt` flag stays off on purpose: it would force SSE-S3 on every state object, while the bucket
    encrypts by default with its own KMS key.
    """
    locking = config.state.locking
    backend = S3Backend(
        stack,
        bucket=config.state_bucket_name,
        key=state_key(stack_name),
        region=config.region,
        dynamodb_table=config.lock_table_name if locking in ("dynamodb", "s3_and_dynamodb") else None,
    )
    if locking in ("s3", "s3_and_dynamodb"):
        # cdktf 0.21's S3Backend predates `use_lockfile` (Terraform >= 1.10): set it through an override.
        stack.add_override("terraform.backend.s3.use_lockfile", True)
    return backend


def _partition(stack: TerraformStack) -> str:
    existing = stack.node.try_find_child("partition")
    source = existing if isinstance(existing, DataAwsPartition) else DataAwsPartition(stack, "partition")
    return source.partition


def policy_arn(stack: TerraformStack, account: str, policy_name: str) -> str:
    """The ARN of a customer managed policy of the stack's account (a permissions boundary), in its partition."""
    return f"arn:{_partition(stack)}:iam::{account}:policy/{policy_name}"


def role_arn(stack: TerraformStack, account: str, role_name: str, path: str = "/") -> str:
    """The ARN of a role of the stack's account, in its partition."""
    return f"arn:{_partition(stack)}:iam::{account}:role{path}{role_name}"
