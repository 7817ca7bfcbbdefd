"""modules/iam.py: policy documents as data."""

from __future__ import annotations

import json

from modules.iam import assume_role_policy, deny_insecure_transport, policy_document


def test_a_trust_policy_is_scoped_to_the_source_account_when_given():
    open_trust = json.loads(assume_role_policy("ecs-tasks.amazonaws.com"))
    assert open_trust == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    scoped = json.loads(assume_role_policy(["events.amazonaws.com"], "111111111111"))["Statement"][0]
    assert scoped["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}


def test_insecure_transport_is_denied_on_the_bucket_and_its_objects():
    statement = deny_insecure_transport("arn:aws:s3:::b")
    assert statement["Effect"] == "Deny" and statement["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
    assert json.loads(policy_document(statement))["Statement"] == [statement]
