"""modules/secure_bucket.py: a private, versioned, encrypted bucket that refuses plain HTTP, optionally a log delivery
target."""

from __future__ import annotations

import pytest

from modules.secure_bucket import SecureBucket, SecureBucketProps
from tests.infra.synth import only, policy
from tests.support.construct_synth import arn, synth_stack

KEY = arn("kms", "key/k")


def bucket(**options) -> dict:
    return synth_stack(lambda s: SecureBucket(s, "bucket", SecureBucketProps(bucket_name="p-data", **options)))


def test_defaults_private_versioned_aes_encrypted_tls_only():
    stack = bucket()
    assert only(stack, "aws_s3_bucket")[1] == {"bucket": "p-data"}
    access = only(stack, "aws_s3_bucket_public_access_block")[1]
    assert all(access[flag] is True for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                                 "restrict_public_buckets"))
    assert only(stack, "aws_s3_bucket_versioning")[1]["versioning_configuration"] == {"status": "Enabled"}
    rule = only(stack, "aws_s3_bucket_server_side_encryption_configuration")[1]["rule"][0]
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}
    statements = policy(only(stack, "aws_s3_bucket_policy")[1])["Statement"]
    assert [s["Sid"] for s in statements] == ["DenyInsecureTransport"]


def test_kms_access_logging_and_prevent_destroy():
    stack = bucket(kms_key_arn=KEY, access_log_bucket="p-logs", prevent_destroy=True, noncurrent_version_days=30)
    assert only(stack, "aws_s3_bucket")[1]["lifecycle"] == {"prevent_destroy": True}
    rule = only(stack, "aws_s3_bucket_server_side_encryption_configuration")[1]["rule"][0]
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "aws:kms", "kms_master_key_id": KEY}
    assert rule["bucket_key_enabled"] is True
    assert only(stack, "aws_s3_bucket_logging")[1]["target_bucket"] == "p-logs"
    expiry = only(stack, "aws_s3_bucket_lifecycle_configuration")[1]["rule"][0]["noncurrent_version_expiration"]
    assert expiry == [{"noncurrent_days": 30, "newer_noncurrent_versions": 10}]


def test_a_log_delivery_target_admits_the_service_for_one_account():
    stack = bucket(log_delivery_service="logging.s3.amazonaws.com", log_delivery_source_account="111111111111")
    statements = {s["Sid"]: s for s in policy(only(stack, "aws_s3_bucket_policy")[1])["Statement"]}
    delivery = statements["LogDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert "111111111111" in str(delivery["Condition"])


def test_objects_can_expire():
    rules = {rule["id"]: rule for rule in only(bucket(expire_after_days=30),
                                               "aws_s3_bucket_lifecycle_configuration")[1]["rule"]}
    assert rules["expire-objects"]["expiration"] == [{"days": 30}]
    assert "expire-objects" not in {rule["id"] for rule in only(bucket(), "aws_s3_bucket_lifecycle_configuration")[
        1]["rule"]}


@pytest.mark.parametrize("changes, message", [
    ({"expire_after_days": 0}, "at least 1 day"),
    ({"log_delivery_service": "logging.s3.amazonaws.com"}, "go together"),
    ({"log_delivery_service": "logging.s3.amazonaws.com", "log_delivery_source_account": "1", "kms_key_arn": KEY},
     "cannot use a KMS key"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        SecureBucketProps(bucket_name="b", **changes)
