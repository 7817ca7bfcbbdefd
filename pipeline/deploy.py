"""Deploy one environment: `python -m pipeline.deploy --env staging [--dry-run]`.

Synthesizes with IMAGE_TAG set (for real, also with --dry-run: a broken synth must fail here, not in AWS), then one
`cdktf deploy` of the environment's platform and endpoint stacks, which applies them in dependency order against
the S3/DynamoDB remote state, auto-approved. The ECS services wait for steady state, so the step fails when the new
tasks do not become healthy.

An endpoint can only become healthy once a model version of it is live in the environment's model bucket. When one
is missing (always so on an environment's first run, before the bucket exists), only the platform stack is deployed
and the step fails, saying which endpoints need `python -m pipeline.models promote` before a re-run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.image_tag import TAG_RE
from configuration.naming import endpoint_stack, platform_stack
from pipeline.commands import PROJECT_ROOT, Commands, StepFailed, image_tag, run_step
from serving.sync import remote_state

CDKTF = str(PROJECT_ROOT / "node_modules" / ".bin" / "cdktf")
AUTOMATION_ENV = {"CI": "1", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
                  "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def environment_stacks(config: MlopsConfig, environment: str) -> list[str]:
    return [platform_stack(config.project, environment),
            *(endpoint_stack(config.project, environment, endpoint) for endpoint in config.endpoints)]


def endpoints_without_a_model(config: MlopsConfig, environment: str, s3: Any) -> list[str]:
    """Endpoints with no live model version in the environment's model bucket (all of them if it does not exist)."""
    from botocore.exceptions import ClientError

    bucket = config.model_bucket_name(environment)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return list(config.endpoints)
    missing = []
    for endpoint in config.endpoints:
        versions, live = remote_state(s3, bucket, f"{endpoint}/")
        if not versions or (live is not None and live not in versions):
            missing.append(endpoint)
    return missing


def deploy(config: MlopsConfig, environment: str, commands: Commands, tag: str, s3: Any = None) -> None:
    """With `s3` (the model bucket's account), endpoints are deployed only once each has a live model."""
    if environment not in config.environments:
        raise StepFailed(f"unknown environment {environment!r}; configured: {', '.join(config.environments)}")
    if not TAG_RE.match(tag):
        raise StepFailed(f"image tag {tag!r} is not a valid tag")
    env = {**AUTOMATION_ENV, "IMAGE_TAG": tag}
    stacks = environment_stacks(config, environment)
    missing = endpoints_without_a_model(config, environment, s3) if s3 is not None else []
    if missing:
        stacks = stacks[:1]
    commands.say(f"deploying {environment} with image tag {tag}: {', '.join(stacks)}")
    commands.run([CDKTF, "synth"], also_in_dry_run=True, env=env)
    commands.run([CDKTF, "deploy", *stacks, "--auto-approve", "--skip-synth", "--no-color",
                  "--outputs-file", f"cdktf.out/outputs-{environment}.json"], env=env)
    if missing:
        bucket = config.model_bucket_name(environment)
        raise StepFailed(
            f"the {environment} platform is deployed, but endpoint(s) {', '.join(missing)} have no live model in "
            f"s3://{bucket}/, so their services could never become healthy. Promote one per endpoint, e.g. "
            f"`python -m pipeline.models promote --env {environment} --endpoint {missing[0]} --model-file "
            "model.onnx`, then retry this stage")


def model_bucket_client(config: MlopsConfig, environment: str) -> Any:
    """S3 in the environment's account: through its deploy role when it has one."""
    import boto3

    role = config.environments[environment].deploy_role_arn
    if role is None:
        return boto3.client("s3", region_name=config.region)
    credentials = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName=f"{config.project}-deploy")[
        "Credentials"]
    return boto3.client("s3", region_name=config.region, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--dry-run", action="store_true", help="synthesize, and print the deploy instead of running it")
    args = parser.parse_args(argv)

    def step() -> None:
        config = load_config()
        commands = Commands(args.dry_run)
        if args.dry_run:
            commands.say(f"would check s3://{config.model_bucket_name(args.env)}/ for a live model per endpoint")
        s3 = None if args.dry_run or args.env not in config.environments else model_bucket_client(config, args.env)
        deploy(config, args.env, commands, image_tag(), s3)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
