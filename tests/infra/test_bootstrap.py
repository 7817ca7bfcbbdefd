"""The bootstrap stack: a hardened state bucket and lock table, its own state kept locally."""

from __future__ import annotations

from tests.infra.synth import assert_has_resource, by_path_suffix, only, policy, ref, resources, target

BOOTSTRAP = "mlops-bootstrap"


def test_bootstrap_state_is_local_and_machine_independent(default_synth):
    backend = default_synth.stack(BOOTSTRAP)["terraform"]["backend"]
    assert backend == {"local": {"path": "../../../terraform.mlops-bootstrap.tfstate"}}


def test_state_bucket_is_versioned_kms_encrypted_private_and_logged(default_synth):
    stack = default_synth.stack(BOOTSTRAP)
    bucket_id, bucket = by_path_suffix(stack, "aws_s3_bucket", "state/bucket/bucket")
    assert bucket["bucket"] == "mlops-tfstate-eu-west-1"
    assert bucket["lifecycle"] == {"prevent_destroy": True}
    bucket_ref = ref("aws_s3_bucket", bucket_id, "id")
    key_id, _ = only(stack, "aws_kms_key")

    assert_has_resource(stack, "aws_s3_bucket_versioning", {
        "bucket": bucket_ref, "versioning_configuration": {"status": "Enabled"}})
    assert_has_resource(stack, "aws_s3_bucket_server_side_encryption_configuration", {
        "bucket": bucket_ref,
        "rule": [{"apply_server_side_encryption_by_default": {
            "sse_algorithm": "aws:kms", "kms_master_key_id": ref("aws_kms_key", key_id, "arn")},
            "bucket_key_enabled": True}]})
    assert_has_resource(stack, "aws_s3_bucket_public_access_block", {
        "bucket": bucket_ref, "block_public_acls": True, "block_public_policy": True, "ignore_public_acls": True,
        "restrict_public_buckets": True})
    logs_id, _ = by_path_suffix(stack, "aws_s3_bucket", "state/access-logs/bucket")
    assert_has_resource(stack, "aws_s3_bucket_logging", {
        "bucket": bucket_ref, "target_bucket": ref("aws_s3_bucket", logs_id, "bucket")})


def test_state_bucket_policy_denies_plain_http(default_synth):
    stack = default_synth.stack(BOOTSTRAP)
    bucket_id, _ = by_path_suffix(stack, "aws_s3_bucket", "state/bucket/bucket")
    _, body = by_path_suffix(stack, "aws_s3_bucket_policy", "state/bucket/policy")
    assert body["bucket"] == ref("aws_s3_bucket", bucket_id, "id")
    (statement,) = policy(body)["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    arn = ref("aws_s3_bucket", bucket_id, "arn")
    assert statement["Resource"] == [arn, f"{arn}/*"]


def test_access_log_bucket_accepts_log_delivery_from_our_account_only(default_synth):
    stack = default_synth.stack(BOOTSTRAP)
    _, body = by_path_suffix(stack, "aws_s3_bucket_policy", "state/access-logs/policy")
    delivery = [s for s in policy(body)["Statement"] if s.get("Sid") == "LogDelivery"]
    assert len(delivery) == 1
    assert delivery[0]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert "aws:SourceAccount" in delivery[0]["Condition"]["StringEquals"]


def test_lock_table_is_on_demand_with_pitr_and_kms(default_synth):
    stack = default_synth.stack(BOOTSTRAP)
    key_id, key = only(stack, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert_has_resource(stack, "aws_dynamodb_table", {
        "name": "mlops-tfstate-locks",
        "billing_mode": "PAY_PER_REQUEST",
        "hash_key": "LockID",
        "attribute": [{"name": "LockID", "type": "S"}],
        "point_in_time_recovery": {"enabled": True},
        "server_side_encryption": {"enabled": True, "kms_key_arn": ref("aws_kms_key", key_id, "arn")},
        "deletion_protection_enabled": True,
        "lifecycle": {"prevent_destroy": True},
    })


def test_outputs_name_the_bucket_and_table(default_synth):
    stack = default_synth.stack(BOOTSTRAP)
    outputs = stack["output"]
    assert target(stack, outputs["state-bucket"]["value"])[0] == "aws_s3_bucket"
    assert target(stack, outputs["lock-table"]["value"])[0] == "aws_dynamodb_table"
    assert len(resources(stack, "aws_s3_bucket")) == 2
