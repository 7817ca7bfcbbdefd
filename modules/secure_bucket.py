"""An S3 bucket hardened the same way everywhere: versioned, encrypted, private, TLS-only, lifecycle-managed."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from modules.iam import Statement, deny_insecure_transport, policy_document


@dataclass(frozen=True)
class SecureBucketProps:
    bucket_name: str
    kms_key_arn: str | None = None
    """Default encryption with this KMS key (with an S3 bucket key to cut KMS calls). When omitted, SSE-S3, which
    is what S3 server access log delivery requires of its target bucket."""
    access_log_bucket: str | None = None
    """Bucket that receives this bucket's server access logs. When omitted, access logging is off."""
    noncurrent_version_days: int = 90
    """Noncurrent object versions expire after this many days ..."""
    noncurrent_versions_kept: int = 10
    """... except the newest this many, which are kept regardless."""
    expire_after_days: int | None = None
    """Objects expire (become noncurrent, then go as above) this many days after they were written; when omitted,
    they stay until deleted."""
    extra_policy_statements: tuple[Statement, ...] = field(default_factory=tuple)
    """Statements added to the bucket policy beside the TLS-only deny."""
    log_delivery_service: str | None = None
    """Make this bucket a log target: this AWS log delivery service principal (S3 server access logs:
    `logging.s3.amazonaws.com`, load balancer logs: `logdelivery.elasticloadbalancing.amazonaws.com`) may write
    objects, for resources of `log_delivery_source_account` only."""
    log_delivery_source_account: str | None = None
    prevent_destroy: bool = False
    """Make Terraform refuse to destroy the bucket (for data that must outlive a mistaken destroy)."""

    def __post_init__(self) -> None:
        if self.expire_after_days is not None and self.expire_after_days < 1:
            raise ValueError(f"SecureBucketProps.expire_after_days {self.expire_after_days}: at least 1 day")
        if (self.log_delivery_service is None) != (self.log_delivery_source_account is None):
            raise ValueError("SecureBucketProps: log_delivery_service and log_delivery_source_account go together "
                             f"(got {self.log_delivery_service!r} and {self.log_delivery_source_account!r})")
        if self.log_delivery_service is not None and self.kms_key_arn is not None:
            raise ValueError("SecureBucketProps: a log delivery target cannot use a KMS key (log delivery writes "
                             "with S3-managed keys only); leave kms_key_arn unset")


class SecureBucket(Construct):
    """Attributes: `bucket` (the S3Bucket), `name`, `arn`."""

    def __init__(self, scope: Construct, construct_id: str, props: SecureBucketProps):
        super().__init__(scope, construct_id)
        lifecycle = TerraformResourceLifecycle(prevent_destroy=True) if props.prevent_destroy else None
        self.bucket = S3Bucket(self, "bucket", bucket=props.bucket_name, lifecycle=lifecycle)
        bucket_id = self.bucket.id
        self.name: str = self.bucket.bucket
        self.arn: str = self.bucket.arn

        S3BucketOwnershipControls(self, "ownership", bucket=bucket_id,
                                  rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
        public_access = S3BucketPublicAccessBlock(
            self, "public-access", bucket=bucket_id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketVersioningA(self, "versioning", bucket=bucket_id,
                            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))
        if props.kms_key_arn is not None:
            default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="aws:kms", kms_master_key_id=props.kms_key_arn)
            rule = S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=default, bucket_key_enabled=True)
        else:
            default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                sse_algorithm="AES256")
            rule = S3BucketServerSideEncryptionConfigurationRuleA(apply_server_side_encryption_by_default=default)
        S3BucketServerSideEncryptionConfigurationA(self, "encryption", bucket=bucket_id, rule=[rule])
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=bucket_id, rule=[
            S3BucketLifecycleConfigurationRule(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=props.noncurrent_version_days,
                    newer_noncurrent_versions=props.noncurrent_versions_kept)],
                abort_incomplete_multipart_upload=[
                    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)],
            ),
            *([S3BucketLifecycleConfigurationRule(
                id="expire-objects", status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=props.expire_after_days)])]
              if props.expire_after_days is not None else []),
        ])
        if props.access_log_bucket is not None:
            S3BucketLoggingA(self, "access-logging", bucket=bucket_id, target_bucket=props.access_log_bucket,
                             target_prefix=f"{props.bucket_name}/")
        statements = [deny_insecure_transport(self.arn), *props.extra_policy_statements]
        if props.log_delivery_service is not None:
            statements.append({
                "Sid": "LogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": props.log_delivery_service},
                "Action": "s3:PutObject",
                "Resource": f"{self.arn}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": props.log_delivery_source_account}},
            })
        # The policy waits for the public access block: S3 rejects policies while the block is being changed.
        S3BucketPolicy(self, "policy", bucket=bucket_id, depends_on=[public_access],
                       policy=policy_document(*statements))
