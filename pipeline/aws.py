"""AWS sessions for the delivery steps: the pipeline's own account, and each environment's (through its deploy
role when it has one, so Build, Deploy and Smoke act in the environment's own account)."""

from __future__ import annotations

from typing import Any

from configuration import MlopsConfig


def pipeline_session(config: MlopsConfig) -> Any:
    import boto3

    return boto3.Session(region_name=config.region)


def environment_session(config: MlopsConfig, environment: str) -> Any:
    """The caller's session, or one for the environment's `deploy_role_arn`."""
    import boto3

    role = config.environments[environment].deploy_role_arn
    if role is None:
        return pipeline_session(config)
    credentials = boto3.client("sts", region_name=config.region).assume_role(
        RoleArn=role, RoleSessionName=f"{config.project}-delivery")["Credentials"]
    return boto3.Session(region_name=config.region, aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"])
