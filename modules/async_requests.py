"""Where an asynchronous endpoint's requests arrive and its answers go: a bucket with input, output and failure
prefixes, a queue the bucket tells of every new request (with a dead-letter queue), and success and error topics.

The bucket is the endpoint's own: S3 keeps one notification configuration per bucket, so endpoints sharing a bucket
would overwrite each other's. The queue is encrypted with SQS-managed keys, which S3 may send to without a key
policy; the topics with the platform key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification, S3BucketNotificationQueue
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct

from modules.iam import Statement, policy_document
from modules.secure_bucket import SecureBucket, SecureBucketProps
from serving.contract import BATCH_PREFIX

DAY_SECONDS = 86_400
DEAD_LETTER_RETENTION_DAYS = 14
"""SQS's longest: time to look at a dead letter and send it back."""
LONG_POLL_SECONDS = 20


@dataclass(frozen=True)
class AsyncRequestsProps:
    name_prefix: str
    """`<project>-<env>-<endpoint>`: queue and topic names."""
    bucket_name: str
    account_id: str
    kms_key_arn: str
    """The platform key: the bucket's default encryption and the topics'."""
    input_prefix: str
    output_prefix: str
    failure_prefix: str
    retention_days: int = 7
    """Requests, answers and failures expire this many days after they were written."""
    visibility_timeout_seconds: int = 120
    message_retention_days: int = 4
    max_receives: int = 3
    """Receives before SQS moves a message to the dead-letter queue (the worker moves it itself on the last one,
    with its error)."""

    def __post_init__(self) -> None:
        prefixes = (self.input_prefix, self.output_prefix, self.failure_prefix)
        if len(set(prefixes)) != 3 or not all(prefix.endswith("/") for prefix in prefixes):
            raise ValueError(f"AsyncRequestsProps: three distinct prefixes ending in '/', got {prefixes}")
        if any(other.startswith(self.input_prefix) for other in prefixes[1:]):
            raise ValueError("AsyncRequestsProps: answers under the input prefix would each be a new request")
        if not 1 <= self.message_retention_days <= 14:
            raise ValueError(f"AsyncRequestsProps.message_retention_days {self.message_retention_days}: 1 to 14")
        if not 0 <= self.visibility_timeout_seconds <= 43_200:
            raise ValueError(f"AsyncRequestsProps.visibility_timeout_seconds {self.visibility_timeout_seconds}: "
                             "0 to 43200")
        if not 1 <= self.max_receives <= 1000:
            raise ValueError(f"AsyncRequestsProps.max_receives {self.max_receives}: 1 to 1000")


def queue_name(name_prefix: str) -> str:
    """The request queue's name: other constructs refer to its metrics by it."""
    return f"{name_prefix}-requests"


class AsyncRequests(Construct):
    """Attributes: `bucket` (SecureBucket), `queue`, `dead_letter_queue`, `success_topic`, `error_topic`,
    `notification`."""

    def __init__(self, scope: Construct, construct_id: str, props: AsyncRequestsProps):
        super().__init__(scope, construct_id)
        self.props = props
        self.bucket = SecureBucket(self, "bucket", SecureBucketProps(
            bucket_name=props.bucket_name, kms_key_arn=props.kms_key_arn, expire_after_days=props.retention_days,
            # An expired request or answer is not kept as an old version for long.
            noncurrent_version_days=1, noncurrent_versions_kept=1))
        self.dead_letter_queue = SqsQueue(
            self, "dead-letter-queue", name=f"{queue_name(props.name_prefix)}-dlq", sqs_managed_sse_enabled=True,
            message_retention_seconds=DEAD_LETTER_RETENTION_DAYS * DAY_SECONDS)
        self.queue = SqsQueue(
            self, "queue", name=queue_name(props.name_prefix), sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=props.visibility_timeout_seconds,
            message_retention_seconds=props.message_retention_days * DAY_SECONDS,
            receive_wait_time_seconds=LONG_POLL_SECONDS,
            redrive_policy=json.dumps({"deadLetterTargetArn": self.dead_letter_queue.arn,
                                       "maxReceiveCount": props.max_receives}))
        queue_policy = SqsQueuePolicy(self, "queue-policy", queue_url=self.queue.url, policy=policy_document({
            "Sid": "BucketNotifications", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": self.queue.arn,
            # Only this bucket, in this account, may tell the queue (confused deputy).
            "Condition": {"ArnEquals": {"aws:SourceArn": self.bucket.arn},
                          "StringEquals": {"aws:SourceAccount": props.account_id}}}))
        # S3 checks that it may send to the queue when the notification is written: the policy comes first.
        self.notification = S3BucketNotification(
            self, "notification", bucket=self.bucket.bucket.id, depends_on=[queue_policy],
            queue=[S3BucketNotificationQueue(id="requests", queue_arn=self.queue.arn, events=["s3:ObjectCreated:*"],
                                             filter_prefix=props.input_prefix)])
        self.success_topic = SnsTopic(self, "success-topic", name=f"{props.name_prefix}-answered",
                                      kms_master_key_id=props.kms_key_arn)
        self.error_topic = SnsTopic(self, "error-topic", name=f"{props.name_prefix}-failed",
                                    kms_master_key_id=props.kms_key_arn)

    def worker_statements(self) -> tuple[Statement, ...]:
        """What the endpoint's worker may do, and nothing more: take and settle its queue's messages, move one to
        the dead-letter queue, read requests, write and find answers and failures, tell its topics; and for batch
        runs, read and write under `batch/`."""
        props, bucket = self.props, self.bucket.arn
        return (
            {"Sid": "TakeRequests", "Effect": "Allow", "Resource": self.queue.arn, "Action": [
                "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]},
            {"Sid": "DeadLetter", "Effect": "Allow", "Action": "sqs:SendMessage",
             "Resource": self.dead_letter_queue.arn},
            {"Sid": "ReadRequests", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"{bucket}/{props.input_prefix}*"},
            {"Sid": "WriteOutcomes", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": [f"{bucket}/{props.output_prefix}*", f"{bucket}/{props.failure_prefix}*"]},
            {"Sid": "FindOutcomes", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket,
             "Condition": {"StringLike": {"s3:prefix": [f"{props.output_prefix}*", f"{props.failure_prefix}*"]}}},
            # Batch runs (python -m pipeline.batch): inputs, outputs and manifests under batch/ of the same bucket.
            {"Sid": "ReadAndWriteBatchRuns", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": f"{bucket}/{BATCH_PREFIX}*"},
            {"Sid": "FindBatchOutcomes", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket,
             "Condition": {"StringLike": {"s3:prefix": f"{BATCH_PREFIX}*"}}},
            {"Sid": "TellOutcomes", "Effect": "Allow", "Action": "sns:Publish",
             "Resource": [self.success_topic.arn, self.error_topic.arn]},
            # The bucket's objects and the topics' messages are encrypted with the platform key.
            {"Sid": "UsePlatformKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
             "Resource": props.kms_key_arn},
        )
