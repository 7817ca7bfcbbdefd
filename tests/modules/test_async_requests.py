"""modules/async_requests.py: the endpoint's bucket tells its queue of every request under the input prefix (and of
nothing else), the queue dead-letters after its receives, only this bucket may send to it, the topics are
encrypted, and the worker may do exactly what answering needs (evaluated request by request)."""

from __future__ import annotations

import json

import pytest
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy

from modules.async_requests import AsyncRequests, AsyncRequestsProps
from modules.iam import policy_document
from tests.infra.synth import only, ref, resources, target
from tests.support.construct_synth import arn, synth_stack
from tests.support.endpoint_parts import KEY
from tests.support.iam_evaluation import Caller, Policy, Request, evaluate, statements_of

BASE = {"name_prefix": "p-dev-s", "bucket_name": "p-dev-s-async", "account_id": "111111111111", "kms_key_arn": KEY,
        "input_prefix": "async/s/input/", "output_prefix": "async/s/output/", "failure_prefix": "async/s/failure/"}
BUCKET = "arn:aws:s3:::p-dev-s-async"
QUEUE, DLQ = arn("sqs", "p-dev-s-requests"), arn("sqs", "p-dev-s-requests-dlq")
ANSWERED, FAILED = arn("sns", "p-dev-s-answered"), arn("sns", "p-dev-s-failed")
VALUES = {"aws_s3_bucket.*.arn": BUCKET, "aws_sqs_queue.*dead-letter-queue*.arn": DLQ,
          "aws_sqs_queue.*queue*.arn": QUEUE, "aws_sns_topic.*success-topic*.arn": ANSWERED,
          "aws_sns_topic.*error-topic*.arn": FAILED}


@pytest.fixture(scope="module")
def built() -> tuple[dict, list]:
    def build(stack):
        requests = AsyncRequests(stack, "async-requests", AsyncRequestsProps(
            **BASE, retention_days=3, visibility_timeout_seconds=300, message_retention_days=7, max_receives=5))
        # As the endpoint's worker gets them: in its task role's policy (references resolve at synth).
        IamRolePolicy(stack, "worker-policy", role="p-dev-s-task",
                      policy=policy_document(*requests.worker_statements()))
    stack = synth_stack(build)
    _, worker_policy = only(stack, "aws_iam_role_policy")
    return stack, statements_of(worker_policy["policy"], VALUES)


def test_the_queue_dead_letters_after_its_receives_and_waits_long(built):
    stack, _ = built
    queues = {body["name"]: (logical_id, body) for logical_id, body in resources(stack, "aws_sqs_queue").items()}
    dlq_id, dlq = queues["p-dev-s-requests-dlq"]
    _, queue = queues["p-dev-s-requests"]
    assert json.loads(queue["redrive_policy"]) == {"deadLetterTargetArn": ref("aws_sqs_queue", dlq_id, "arn"),
                                                   "maxReceiveCount": 5}
    assert queue["visibility_timeout_seconds"] == 300 and queue["receive_wait_time_seconds"] == 20
    assert queue["message_retention_seconds"] == 7 * 86_400 and dlq["message_retention_seconds"] == 14 * 86_400
    assert queue["sqs_managed_sse_enabled"] and dlq["sqs_managed_sse_enabled"]


def test_the_bucket_tells_the_queue_of_requests_only_and_only_it_may(built):
    stack, _ = built
    _, notification = only(stack, "aws_s3_bucket_notification")
    [entry] = notification["queue"]
    assert entry["events"] == ["s3:ObjectCreated:*"] and entry["filter_prefix"] == "async/s/input/"
    _, _, queue = target(stack, entry["queue_arn"])
    assert queue["name"] == "p-dev-s-requests"
    bucket_type, bucket_id, _ = target(stack, notification["bucket"])
    assert bucket_type == "aws_s3_bucket"
    policy_id, queue_policy = only(stack, "aws_sqs_queue_policy")
    assert f"aws_sqs_queue_policy.{policy_id}" in notification["depends_on"]  # S3 checks it may send first
    statements = statements_of(queue_policy["policy"], VALUES)
    bucket_ref = ref("aws_s3_bucket", bucket_id, "arn")
    assert json.loads(queue_policy["policy"])["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == bucket_ref
    s3 = Caller("111111111111", service="s3.amazonaws.com")
    resource_policy = Policy("queue", tuple(statements))
    allowed = evaluate(Request("sqs:SendMessage", QUEUE, {"aws:SourceArn": BUCKET,
                                                          "aws:SourceAccount": "111111111111"}),
                       s3, resource_policy=resource_policy)
    other_bucket = evaluate(Request("sqs:SendMessage", QUEUE, {"aws:SourceArn": "arn:aws:s3:::someone-else",
                                                               "aws:SourceAccount": "111111111111"}),
                            s3, resource_policy=resource_policy)
    assert allowed.allowed and not other_bucket.allowed


def test_the_bucket_is_private_encrypted_and_expires_what_it_holds(built):
    stack, _ = built
    _, encryption = only(stack, "aws_s3_bucket_server_side_encryption_configuration")
    rule = encryption["rule"][0]["apply_server_side_encryption_by_default"]
    assert rule == {"kms_master_key_id": KEY, "sse_algorithm": "aws:kms"}
    _, lifecycle = only(stack, "aws_s3_bucket_lifecycle_configuration")
    rules = {rule["id"]: rule for rule in lifecycle["rule"]}
    assert rules["expire-objects"]["expiration"] == [{"days": 3}]
    assert rules["expire-noncurrent-versions"]["noncurrent_version_expiration"][0]["noncurrent_days"] == 1
    _, public = only(stack, "aws_s3_bucket_public_access_block")
    assert public["block_public_policy"] and public["restrict_public_buckets"]


def test_the_topics_are_encrypted_with_the_platform_key(built):
    stack, _ = built
    topics = {body["name"]: body for body in resources(stack, "aws_sns_topic").values()}
    assert set(topics) == {"p-dev-s-answered", "p-dev-s-failed"}
    assert all(topic["kms_master_key_id"] == KEY for topic in topics.values())


@pytest.mark.parametrize(("action", "resource", "context", "allowed"), [
    ("sqs:ReceiveMessage", QUEUE, {}, True),
    ("sqs:ChangeMessageVisibility", QUEUE, {}, True),
    ("sqs:DeleteMessage", QUEUE, {}, True),
    ("sqs:SendMessage", DLQ, {}, True),
    ("s3:GetObject", f"{BUCKET}/async/s/input/team/r1.json", {}, True),
    ("s3:PutObject", f"{BUCKET}/async/s/output/team/r1.json", {}, True),
    ("s3:PutObject", f"{BUCKET}/async/s/failure/team/r1.json", {}, True),
    ("s3:ListBucket", BUCKET, {"s3:prefix": "async/s/output/team/r1."}, True),
    ("s3:ListBucket", BUCKET, {"s3:prefix": "async/s/failure/r1."}, True),
    ("sns:Publish", ANSWERED, {}, True),
    ("sns:Publish", FAILED, {}, True),
    ("kms:GenerateDataKey", KEY, {}, True),
    ("s3:GetObject", f"{BUCKET}/batch/_manifests/run-1/0.json", {}, True),
    ("s3:PutObject", f"{BUCKET}/batch/june/out/a.json", {}, True),
    ("s3:ListBucket", BUCKET, {"s3:prefix": "batch/june/out/a."}, True),
    # and nothing more: no new requests, no reading answers back, no other queue, topic or prefix
    ("s3:PutObject", f"{BUCKET}/async/s/input/r2.json", {}, False),
    ("s3:GetObject", f"{BUCKET}/async/s/output/r1.json", {}, False),
    ("s3:DeleteObject", f"{BUCKET}/async/s/input/r1.json", {}, False),
    ("s3:ListBucket", BUCKET, {"s3:prefix": "async/s/input/"}, False),
    ("s3:ListBucket", BUCKET, {}, False),
    ("sqs:SendMessage", QUEUE, {}, False),
    ("sqs:ReceiveMessage", DLQ, {}, False),
    ("sqs:PurgeQueue", QUEUE, {}, False),
    ("sns:Publish", arn("sns", "p-dev-alarms"), {}, False),
    ("s3:GetObject", "arn:aws:s3:::p-dev-models/s/7/model.onnx", {}, False),
])
def test_the_worker_may_do_what_answering_needs_and_nothing_more(built, action, resource, context, allowed):
    _, statements = built
    decision = evaluate(Request(action, resource, context), Caller("111111111111", role_arn=arn("iam", "role/t")),
                        [Policy("worker", tuple(statements))])
    assert decision.allowed is allowed, decision.reason


@pytest.mark.parametrize(("changes", "message"), [
    ({"output_prefix": "async/s/input/out/"}, "answers under the input prefix"),
    ({"failure_prefix": "async/s/output/"}, "three distinct prefixes"),
    ({"input_prefix": "async/s/input"}, "ending in '/'"),
    ({"message_retention_days": 15}, "1 to 14"),
    ({"max_receives": 0}, "1 to 1000"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        AsyncRequestsProps(**{**BASE, **changes})
