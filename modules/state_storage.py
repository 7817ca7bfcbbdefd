"""The storage every remote-state stack uses: S3 state bucket, its access-log bucket, DynamoDB lock table, KMS key."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from constructs import Construct

from modules.encryption import EncryptionKey, EncryptionKeyProps
from modules.secure_bucket import SecureBucket, SecureBucketProps

# Terraform's S3 backend locks on an item whose hash key is this string attribute.
LOCK_TABLE_HASH_KEY = "LockID"


@dataclass(frozen=True)
class StateStorageProps:
    bucket_name: str
    lock_table_name: str
    region: str
    key_alias: str
    """The state key's alias (without `alias/`)."""
    access_log_bucket_name: str
    noncurrent_version_days: int = 90
    """Old state versions are kept this long (and the newest 10 always), for recovery after a bad apply."""


class StateStorage(Construct):
    """Attributes: `bucket` (SecureBucket), `access_log_bucket` (SecureBucket), `lock_table`, `key`."""

    def __init__(self, scope: Construct, construct_id: str, props: StateStorageProps):
        super().__init__(scope, construct_id)
        self.key = EncryptionKey(self, "key", EncryptionKeyProps(
            alias=props.key_alias, description=f"Terraform state in {props.bucket_name}",
            region=props.region))
        account = DataAwsCallerIdentity(self, "account").account_id
        self.access_log_bucket = SecureBucket(self, "access-logs", SecureBucketProps(
            bucket_name=props.access_log_bucket_name,
            log_delivery_service="logging.s3.amazonaws.com",
            log_delivery_source_account=account,
        ))
        self.bucket = SecureBucket(self, "bucket", SecureBucketProps(
            bucket_name=props.bucket_name,
            kms_key_arn=self.key.arn,
            access_log_bucket=self.access_log_bucket.name,
            noncurrent_version_days=props.noncurrent_version_days,
            prevent_destroy=True,
        ))
        self.lock_table = DynamodbTable(
            self, "lock-table",
            name=props.lock_table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=LOCK_TABLE_HASH_KEY,
            attribute=[DynamodbTableAttribute(name=LOCK_TABLE_HASH_KEY, type="S")],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=self.key.arn),
            deletion_protection_enabled=True,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
        )
