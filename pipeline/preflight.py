"""What an operator command needs, checked before it changes anything: the caller's AWS identity, the account of
each environment it touches (its `account_id`; through its `deploy_role_arn` when it has one), the Terraform CLI and
its version where Terraform runs, and the bootstrap's state bucket for anything after bootstrap.

Each failure raises PreflightFailed with one line: what is wrong and the command or setting that fixes it.
`aws_error_line` words an SDK failure met later the same way (credentials, expiry, network, a refusal naming the
action), so no command ends in a traceback for a condition a user can cause.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from configuration import MlopsConfig
from pipeline.commands import StepFailed

MINIMUM_TERRAFORM = (1, 5, 0)
"""What the README asks for (cdktf itself needs 1.2 since its 0.15)."""
MINIMUM_TERRAFORM_S3_LOCKING = (1, 10, 0)
"""S3-native state locking (`use_lockfile`, `state.locking: s3` or `s3_and_dynamodb`) came with Terraform 1.10."""
NO_CREDENTIALS = ("no AWS credentials found; configure a profile (AWS_PROFILE) or environment credentials, and check "
                  "with `aws sts get-caller-identity`")
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
INVALID = {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "InvalidAccessKeyId"}


class PreflightFailed(StepFailed):
    """A check before the command changed anything; the message is the one line to print."""


@dataclass(frozen=True)
class Caller:
    account: str
    arn: str


def aws_error_line(exc: BaseException) -> str | None:
    """One line for an AWS SDK failure a user can cause or fix; None for anything else."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        TokenRetrievalError,
    )

    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, TokenRetrievalError):
        return f"the AWS SSO session has expired ({exc}); run `aws sso login` and retry"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in EXPIRED:
            return ("the AWS credentials have expired; refresh them (`aws sso login`, or new session credentials) "
                    "and retry")
        if code in INVALID:
            return "the AWS credentials are not valid (wrong or deleted access key); check them with `aws configure`"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"AWS denied {exc.operation_name}: {error.get('Message')}"
        if code in ("Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"):
            return f"AWS kept throttling {exc.operation_name} after the SDK's retries; wait a minute and retry"
        return f"AWS refused {exc.operation_name}: {code}: {error.get('Message')}"
    if isinstance(exc, NoRegionError):
        return "no AWS region: set `region` in the configuration (the commands use it)"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach AWS ({exc}); check the network (proxy, VPN, firewall) and retry"
    if isinstance(exc, BotoCoreError):
        return f"the AWS SDK failed: {exc}"
    return None


def caller(session: Any, region: str) -> Caller:
    """Who the credentials are (sts:GetCallerIdentity, which no policy can deny)."""
    try:
        identity = session.client("sts", region_name=region).get_caller_identity()
    except Exception as exc:
        line = aws_error_line(exc)
        if line is None:
            raise
        raise PreflightFailed(line) from None
    return Caller(identity["Account"], identity["Arn"])


def environment_account(config: MlopsConfig, environment: str, session: Any, who: Caller) -> str:
    """The account the environment's commands would act in, refused when it is not the one the configuration
    names (`account_id`); through the environment's `deploy_role_arn` when it has one."""
    env = config.environments[environment]
    account = who.account
    if env.deploy_role_arn:
        try:
            answer = session.client("sts", region_name=config.region).assume_role(
                RoleArn=env.deploy_role_arn, RoleSessionName=f"{config.project}-preflight")
        except Exception as exc:
            line = aws_error_line(exc)
            if line is None:
                raise
            raise PreflightFailed(f"cannot assume environment {environment}'s deploy_role_arn {env.deploy_role_arn} "
                                  f"as {who.arn}: {line}; its trust policy must allow this principal") from None
        account = answer["AssumedRoleUser"]["Arn"].split(":")[4]
    if env.account_id and account != env.account_id:
        through = f"its deploy role {env.deploy_role_arn}" if env.deploy_role_arn else f"these credentials ({who.arn})"
        raise PreflightFailed(f"environment {environment} lives in account {env.account_id} (its account_id), but "
                              f"{through} act in account {account}; use credentials of account {env.account_id} "
                              "(AWS_PROFILE=...)")
    return account


def minimum_terraform(config: MlopsConfig) -> tuple[int, int, int]:
    return MINIMUM_TERRAFORM_S3_LOCKING if config.state.locking != "dynamodb" else MINIMUM_TERRAFORM


def terraform_version(path: str) -> tuple[int, int, int] | None:
    try:
        completed = subprocess.run([path, "version", "-json"], capture_output=True, text=True, timeout=60,
                                   check=False)
        text = json.loads(completed.stdout).get("terraform_version", "")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def terraform(config: MlopsConfig) -> str:
    """The Terraform CLI on PATH, at least the version this configuration needs; its version."""
    minimum = ".".join(map(str, minimum_terraform(config)))
    pinned = config.pipeline.terraform_version if config.pipeline else minimum
    path = shutil.which("terraform")
    if path is None:
        raise PreflightFailed(f"no `terraform` on PATH; install Terraform {pinned} (the version the pipeline pins; "
                              f"at least {minimum}) and retry")
    version = terraform_version(path)
    if version is None:
        raise PreflightFailed(f"`{path} version -json` did not say its version; reinstall Terraform {pinned}")
    shown = ".".join(map(str, version))
    if version < minimum_terraform(config):
        why = " (state.locking uses S3 lock files)" if config.state.locking != "dynamodb" else ""
        raise PreflightFailed(f"Terraform {shown} at {path} is older than {minimum}, the oldest this configuration "
                              f"works with{why}; install Terraform {pinned}")
    return shown


def bootstrap_state(config: MlopsConfig, s3: Any) -> None:
    """The state bucket every stack but bootstrap keeps its state in."""
    from botocore.exceptions import ClientError

    bucket = config.state_bucket_name
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise PreflightFailed(f"no state bucket {bucket} in this account: run `make bootstrap` first (or set "
                                  "state.bucket_name to the bucket bootstrap made)") from None
        if code in ("403", "AccessDenied"):
            raise PreflightFailed(f"the state bucket {bucket} exists, but these credentials may not read it (another "
                                  "account's bucket? set state.bucket_name)") from None
        raise PreflightFailed(aws_error_line(exc) or str(exc)) from None
    except Exception as exc:
        line = aws_error_line(exc)
        if line is None:
            raise
        raise PreflightFailed(line) from None


def check(config: MlopsConfig, session: Any, environments: list[str] = (), *,  # type: ignore[assignment]
          needs_terraform: bool = False, needs_bootstrap: bool = False) -> Caller:
    """Every check a command needs, in the order a user would fix them; the caller on success."""
    if needs_terraform:
        terraform(config)
    who = caller(session, config.region)
    for environment in environments:
        environment_account(config, environment, session, who)
    if needs_bootstrap:
        bootstrap_state(config, session.client("s3", region_name=config.region))
    return who
