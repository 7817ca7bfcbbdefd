"""A customer-managed KMS key with rotation, administered by the account and usable by named AWS services."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from modules.iam import Statement, policy_document


@dataclass(frozen=True)
class EncryptionKeyProps:
    alias: str
    """Alias name without the `alias/` prefix."""
    description: str
    region: str
    allow_cloudwatch_logs: bool = False
    """Let CloudWatch Logs in this region and account encrypt log groups with the key."""
    allow_service_publishers: tuple[str, ...] = field(default_factory=tuple)
    """Service principals (e.g. `cloudwatch.amazonaws.com`) that publish to SNS topics encrypted with the key."""
    extra_statements: tuple[Statement, ...] = field(default_factory=tuple)
    deletion_window_days: int = 30

    def __post_init__(self) -> None:
        if not 7 <= self.deletion_window_days <= 30:
            raise ValueError(f"EncryptionKeyProps.deletion_window_days {self.deletion_window_days}: AWS allows 7 to 30")
    """Days a scheduled deletion can still be cancelled (AWS allows 7-30)."""


class EncryptionKey(Construct):
    """KMS key with yearly rotation. Attributes: `key` (the KmsKey), `arn`."""

    def __init__(self, scope: Construct, construct_id: str, props: EncryptionKeyProps):
        super().__init__(scope, construct_id)
        account = DataAwsCallerIdentity(self, "account").account_id
        partition = DataAwsPartition(self, "partition").partition
        statements: list[Statement] = [{
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }]
        if props.allow_cloudwatch_logs:
            statements.append({
                "Sid": "CloudWatchLogsEncrypts",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{props.region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{props.region}:{account}:*"}},
            })
        if props.allow_service_publishers:
            statements.append({
                "Sid": "ServicesPublishToEncryptedTopics",
                "Effect": "Allow",
                "Principal": {"Service": list(props.allow_service_publishers)},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            })
        statements.extend(props.extra_statements)
        self.key = KmsKey(
            self, "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            policy=policy_document(*statements),
        )
        KmsAlias(self, "alias", name=f"alias/{props.alias}", target_key_id=self.key.key_id)
        self.arn: str = self.key.arn
