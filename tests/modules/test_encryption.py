"""modules/encryption.py: a rotating KMS key whose policy admits exactly the services asked for."""

from __future__ import annotations

import pytest

from modules.encryption import EncryptionKey, EncryptionKeyProps
from tests.infra.synth import only, policy, ref
from tests.support.construct_synth import synth_stack


def key_policy(**options) -> tuple[dict, dict]:
    stack = synth_stack(lambda s: EncryptionKey(s, "key", EncryptionKeyProps(
        alias="p-dev", description="p-dev data", region="eu-west-1", **options)))
    return stack, {statement["Sid"]: statement for statement in policy(only(stack, "aws_kms_key")[1])["Statement"]}


def test_defaults_a_rotating_key_administered_by_the_account_only():
    stack, statements = key_policy()
    key_id, key = only(stack, "aws_kms_key")
    assert key["enable_key_rotation"] is True and key["deletion_window_in_days"] == 30
    assert list(statements) == ["AccountAdministers"]
    assert only(stack, "aws_kms_alias")[1] == {"name": "alias/p-dev",
                                               "target_key_id": ref("aws_kms_key", key_id, "key_id")}


def test_logs_and_publishers_are_admitted_for_this_account_only():
    _, statements = key_policy(allow_cloudwatch_logs=True, allow_service_publishers=("events.amazonaws.com",),
                               extra_statements=({"Sid": "Extra", "Effect": "Allow"},), deletion_window_days=7)
    assert list(statements) == ["AccountAdministers", "CloudWatchLogsEncrypts", "ServicesPublishToEncryptedTopics",
                                "Extra"]
    logs = statements["CloudWatchLogsEncrypts"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]
    publishers = statements["ServicesPublishToEncryptedTopics"]
    assert publishers["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert list(publishers["Condition"]["StringEquals"]) == ["aws:SourceAccount"]


@pytest.mark.parametrize("days", [6, 31])
def test_the_deletion_window_is_what_aws_allows(days):
    with pytest.raises(ValueError, match=f"deletion_window_days {days}: AWS allows 7 to 30"):
        EncryptionKeyProps(alias="a", description="d", region="eu-west-1", deletion_window_days=days)
