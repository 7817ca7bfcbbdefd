"""Build the serving image once and push it to every environment's repository, tagged with the commit:
`python -m pipeline.build [--dry-run]`.

Tags are immutable in ECR: a re-run for the same commit finds the tag already there and pushes nothing.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.naming import serving_repository_name
from pipeline.commands import Commands, image_tag, run_step

DOCKERFILE = "serving/Dockerfile"


def registry_of(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def tag_exists(ecr: Any, repository: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        return True
    except ecr.exceptions.ImageNotFoundException:
        return False


def build(config: MlopsConfig, commands: Commands, tag: str, account: str, ecr: Any = None) -> list[str]:
    """Returns the image references pushed (or that would be)."""
    registry = registry_of(account, config.region)
    repositories = [serving_repository_name(config.project, environment) for environment in config.environments]
    local = f"model-server:{tag}"
    commands.run(["docker", "build", "--pull", "-f", DOCKERFILE, "-t", local, "."])
    password = b""
    if ecr is not None:
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        password = base64.b64decode(token).decode().split(":", 1)[1].encode()
    commands.run(["docker", "login", "--username", "AWS", "--password-stdin", registry], stdin=password,
                 secret_stdin=True)
    pushed = []
    for repository in repositories:
        reference = f"{registry}/{repository}:{tag}"
        if ecr is not None and tag_exists(ecr, repository, tag):
            commands.say(f"{reference} exists already (tags are immutable): not pushed again")
            continue
        commands.run(["docker", "tag", local, reference])
        commands.run(["docker", "push", reference])
        pushed.append(reference)
    return pushed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="build nothing; print every command")
    parser.add_argument("--account", help="AWS account of the repositories (default: the caller's)")
    args = parser.parse_args(argv)

    def step() -> None:
        config = load_config()
        if args.dry_run:  # no AWS call and no docker: every command is printed
            account, ecr = args.account or "<account>", None
        else:
            import boto3

            account = args.account or boto3.client("sts").get_caller_identity()["Account"]
            ecr = boto3.client("ecr", region_name=config.region)
        build(config, Commands(args.dry_run), image_tag(), account, ecr)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
