"""Every operator command checks what it needs before it acts (pipeline/preflight.py): without credentials, with
expired ones, in the wrong account, through a deploy role in another account, with no or an old Terraform, before
bootstrap. Each failure is one `error:` line naming the fix, with no traceback, and nothing changed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from configuration.loader import parse_config
from pipeline import preflight
from pipeline.preflight import PreflightFailed
from tests.configuration.test_config import with_changes
from tests.support.paths import PROJECT_ROOT

REGION = "eu-west-1"
MOTO_ACCOUNT = "123456789012"


def without_credentials(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**env, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", **extra}


COMMANDS = [
    (["pipeline.bootstrap"], 1),
    (["pipeline.teardown", "--env", "staging"], 1),
    (["pipeline.teardown", "--all"], 1),
    (["pipeline.deploy", "--env", "staging"], 1),
    (["pipeline.smoke", "--env", "staging"], 1),
    (["pipeline.build"], 1),
    (["pipeline.models", "list", "--env", "staging", "--endpoint", "a"], 2),
    (["pipeline.keys", "list", "--env", "staging", "--endpoint", "a"], 2),
]


@pytest.mark.parametrize("argv, code", COMMANDS, ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_without_credentials_every_command_says_so_in_one_line_and_changes_nothing(argv, code, tmp_path):
    before = sorted(path.name for path in PROJECT_ROOT.iterdir())
    completed = subprocess.run([sys.executable, "-m", *argv], cwd=PROJECT_ROOT, env=without_credentials(tmp_path),
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == code, completed.stderr
    assert completed.stderr.splitlines() == [f"error: {preflight.NO_CREDENTIALS}"], completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    assert not any(line.startswith("+ ") for line in completed.stdout.splitlines())  # no command ran
    assert sorted(path.name for path in PROJECT_ROOT.iterdir()) == before


def fake_terraform(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "terraform"
    script.write_text(f"#!/bin/sh\necho '{{\"terraform_version\": \"{version}\"}}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def test_terraform_missing_or_too_old_is_named_before_anything_runs(tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("python3", "node", "sh", "env"):  # a PATH with what the command needs, and no terraform
        found = subprocess.run(["which", name], capture_output=True, text=True, check=False).stdout.strip()
        if found:
            (tools / name).symlink_to(found)
    completed = subprocess.run([sys.executable, "-m", "pipeline.bootstrap"], cwd=PROJECT_ROOT,
                               env=without_credentials(tmp_path, PATH=str(tools)), capture_output=True, text=True,
                               timeout=120, check=False)
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == ["error: no `terraform` on PATH; install Terraform 1.11.4 (the version "
                                             "the pipeline pins; at least 1.5.0) and retry"]
    old = fake_terraform(tmp_path / "old", "1.1.9")
    completed = subprocess.run([sys.executable, "-m", "pipeline.teardown", "--env", "staging"], cwd=PROJECT_ROOT,
                               env=without_credentials(tmp_path, PATH=f"{old}:{tools}"), capture_output=True,
                               text=True, timeout=120, check=False)
    assert completed.stderr.splitlines() == [f"error: Terraform 1.1.9 at {old}/terraform is older than 1.5.0, the "
                                             "oldest this configuration works with; install Terraform 1.11.4"]


def test_s3_locking_needs_terraform_1_10(tmp_path, monkeypatch):
    config = parse_config(with_changes(state={"locking": "s3"}), "t")
    monkeypatch.setenv("PATH", str(fake_terraform(tmp_path, "1.9.8")))
    with pytest.raises(PreflightFailed, match="older than 1.10.0, the oldest this configuration works with \\(state"
                                              ".locking uses S3 lock files\\)"):
        preflight.terraform(config)
    monkeypatch.setenv("PATH", str(fake_terraform(tmp_path / "new", "1.11.4")))
    assert preflight.terraform(config) == "1.11.4"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def test_the_account_an_environment_names_is_checked_directly_and_through_its_deploy_role(aws):
    config = parse_config(with_changes(environments={
        "staging": {"vpc_cidr": "10.10.0.0/16", "account_id": MOTO_ACCOUNT},
        "prod": {"vpc_cidr": "10.20.0.0/16", "account_id": "210987654321",
                 "deploy_role_arn": "arn:aws:iam::210987654321:role/deploy"}}), "t")
    who = preflight.caller(aws, REGION)
    assert who.account == MOTO_ACCOUNT
    assert preflight.environment_account(config, "staging", aws, who) == MOTO_ACCOUNT
    assert preflight.environment_account(config, "prod", aws, who) == "210987654321"  # the assumed role's account
    wrong = parse_config(with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16",
                                                                "account_id": "111111111111"}}), "t")
    with pytest.raises(PreflightFailed) as failed:
        preflight.check(wrong, aws, ["staging"])
    assert str(failed.value) == (
        "environment staging lives in account 111111111111 (its account_id), but these credentials "
        f"(arn:aws:sts::{MOTO_ACCOUNT}:user/moto) act in account {MOTO_ACCOUNT}; use credentials of account "
        "111111111111 (AWS_PROFILE=...)")


def stubbed(session, operation: str, code: str, message: str = "no"):
    client = session.client("sts", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(operation, service_error_code=code, service_message=message)
    stubber.activate()

    class Session:
        def client(self, *args, **kwargs):
            return client

    return Session()


def test_expired_credentials_and_a_refused_deploy_role_are_one_line_each(aws):
    with pytest.raises(PreflightFailed, match="^the AWS credentials have expired; refresh them"):
        preflight.caller(stubbed(aws, "get_caller_identity", "ExpiredToken"), REGION)
    with pytest.raises(PreflightFailed, match="^the AWS credentials are not valid"):
        preflight.caller(stubbed(aws, "get_caller_identity", "InvalidClientTokenId"), REGION)
    config = parse_config(with_changes(environments={
        "staging": {"vpc_cidr": "10.10.0.0/16", "deploy_role_arn": "arn:aws:iam::210987654321:role/deploy"}}), "t")
    who = preflight.Caller(MOTO_ACCOUNT, "arn:aws:iam::123456789012:user/operator")
    with pytest.raises(PreflightFailed) as failed:
        preflight.environment_account(config, "staging", stubbed(aws, "assume_role", "AccessDenied", "not trusted"),
                                      who)
    assert str(failed.value) == (
        "cannot assume environment staging's deploy_role_arn arn:aws:iam::210987654321:role/deploy as "
        "arn:aws:iam::123456789012:user/operator: AWS denied AssumeRole: not trusted; its trust policy must allow "
        "this principal")


def test_anything_after_bootstrap_needs_the_state_bucket(aws):
    config = parse_config(with_changes(), "t")
    with pytest.raises(PreflightFailed, match="no state bucket mlops-tfstate-eu-west-1 in this account: run `make "
                                              "bootstrap` first"):
        preflight.check(config, aws, ["staging"], needs_bootstrap=True)
    aws.client("s3").create_bucket(Bucket="mlops-tfstate-eu-west-1",
                                   CreateBucketConfiguration={"LocationConstraint": REGION})
    assert preflight.check(config, aws, ["staging"], needs_bootstrap=True).account == MOTO_ACCOUNT


def test_sdk_failures_a_user_can_cause_are_worded_not_raised():
    def error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutObject")

    assert preflight.aws_error_line(error("Throttling")) == ("AWS kept throttling PutObject after the SDK's retries; "
                                                             "wait a minute and retry")
    assert preflight.aws_error_line(error("AccessDenied")) == "AWS denied PutObject: m"
    assert preflight.aws_error_line(EndpointConnectionError(endpoint_url="https://sts.eu-west-1.amazonaws.com")) \
        .startswith("cannot reach AWS (Could not connect to the endpoint URL")
    assert preflight.aws_error_line(ValueError("a bug")) is None  # a bug still shows its traceback
