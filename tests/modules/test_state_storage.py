"""modules/state_storage.py: the Terraform state bucket (KMS, access-logged, kept on destroy) and lock table."""

from __future__ import annotations

from modules.state_storage import LOCK_TABLE_HASH_KEY, StateStorage, StateStorageProps
from tests.infra.synth import only, ref, resources
from tests.support.construct_synth import synth_stack


def test_state_bucket_and_lock_table_survive_a_destroy_and_are_encrypted_with_the_state_key():
    stack = synth_stack(lambda s: StateStorage(s, "state", StateStorageProps(
        bucket_name="p-tfstate", lock_table_name="p-locks", region="eu-west-1", key_alias="p-tfstate",
        access_log_bucket_name="p-tfstate-logs")))
    key_id, _ = only(stack, "aws_kms_key")
    assert only(stack, "aws_kms_alias")[1]["name"] == "alias/p-tfstate"
    buckets = {body["bucket"]: body for body in resources(stack, "aws_s3_bucket").values()}
    assert set(buckets) == {"p-tfstate", "p-tfstate-logs"}
    assert buckets["p-tfstate"]["lifecycle"] == {"prevent_destroy": True}
    encryption = {rule["rule"][0]["apply_server_side_encryption_by_default"].get("kms_master_key_id")
                  for rule in resources(stack, "aws_s3_bucket_server_side_encryption_configuration").values()}
    assert encryption == {ref("aws_kms_key", key_id, "arn"), None}  # the log bucket: S3-managed, as logging needs
    _, logging = only(stack, "aws_s3_bucket_logging")
    assert logging["target_prefix"] == "p-tfstate/"
    _, table = only(stack, "aws_dynamodb_table")
    assert (table["name"], table["hash_key"], table["billing_mode"]) == ("p-locks", LOCK_TABLE_HASH_KEY,
                                                                         "PAY_PER_REQUEST")
    assert table["attribute"] == [{"name": "LockID", "type": "S"}]
    assert table["point_in_time_recovery"] == {"enabled": True} and table["deletion_protection_enabled"] is True
    assert table["server_side_encryption"] == {"enabled": True, "kms_key_arn": ref("aws_kms_key", key_id, "arn")}
    assert table["lifecycle"] == {"prevent_destroy": True}
