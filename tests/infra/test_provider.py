"""Provider settings: default tags on every resource, account guard and deploy role per environment."""

from __future__ import annotations


def provider(stack) -> dict:
    (aws,) = stack["provider"]["aws"]
    return aws


def test_default_tags_name_project_environment_and_owner(default_synth):
    aws = provider(default_synth.stack("mlops-prod-platform"))
    assert aws["region"] == "eu-west-1"
    assert aws["default_tags"] == [{"tags": {"project": "mlops", "environment": "prod",
                                             "managed-by": "cdktf/ecs-mlops"}}]
    assert "allowed_account_ids" not in aws and "assume_role" not in aws


def test_bootstrap_is_tagged_without_an_environment(default_synth):
    tags = provider(default_synth.stack("mlops-bootstrap"))["default_tags"][0]["tags"]
    assert tags == {"project": "mlops", "managed-by": "cdktf/ecs-mlops"}


def test_environment_account_and_role(options_synth):
    aws = provider(options_synth.stack("acme-ml-qa-platform"))
    assert aws["allowed_account_ids"] == ["111111111111"]
    assert aws["assume_role"] == [{"role_arn": "arn:aws:iam::111111111111:role/acme-deploy",
                                   "session_name": "acme-ml-deploy"}]
    # User tags are kept, but cannot replace the tags the platform relies on.
    assert aws["default_tags"][0]["tags"] == {"cost-center": "ml-42", "project": "acme-ml", "environment": "qa",
                                              "managed-by": "cdktf/ecs-mlops"}
