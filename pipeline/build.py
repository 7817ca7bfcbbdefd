"""Build the serving image (and the model monitor's, where an endpoint is monitored) once and push it to the
pipeline's build repository, tagged with the commit:
`python -m pipeline.build [--dry-run]`.

The build repository belongs to the pipeline stack, so it exists before the first run. Environments receive the
image later, each from its own deploy step after its approval (pipeline.images). Tags are immutable in ECR: a
re-run for the same commit finds the tag already there and pushes nothing.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.naming import build_repository_name
from pipeline.commands import Commands, image_tag, run_step
from pipeline.images import tag_exists
from serving.contract import monitor_image_tag

DOCKERFILE = "serving/Dockerfile"
MONITOR_DOCKERFILE = "pipeline/monitor/Dockerfile"


def registry_of(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def monitoring_used(config: MlopsConfig, environments: list[str] | None = None) -> bool:
    """Whether any endpoint runs the model monitor, in any of `environments` (default: all): its image is built,
    and copied to an environment, only then."""
    return any(config.endpoint_for(environment, name).monitoring.enabled
               for environment in (environments or config.environments) for name in config.endpoints)


def build(config: MlopsConfig, commands: Commands, tag: str, account: str, ecr: Any = None) -> list[str]:
    """The server's image, and the monitor's where an endpoint is monitored (`<tag>-monitor`, the same repository).
    Returns the references pushed (or that would be); a tag there already is not built again."""
    registry = registry_of(account, config.region)
    repository = build_repository_name(config.project)
    images = [(DOCKERFILE, "model-server", tag)]
    if monitoring_used(config):
        images.append((MONITOR_DOCKERFILE, "model-monitor", monitor_image_tag(tag)))
    wanted = []
    for dockerfile, local_name, each_tag in images:
        reference = f"{registry}/{repository}:{each_tag}"
        if ecr is not None and tag_exists(ecr, repository, each_tag):
            commands.say(f"{reference} exists already (tags are immutable): not built again")
        else:
            wanted.append((dockerfile, f"{local_name}:{each_tag}", reference))
    if not wanted:
        return []
    for dockerfile, local, _ in wanted:
        commands.run(["docker", "build", "--pull", "-f", dockerfile, "-t", local, "."])
    password = b""
    if ecr is not None:
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        password = base64.b64decode(token).decode().split(":", 1)[1].encode()
    commands.run(["docker", "login", "--username", "AWS", "--password-stdin", registry], stdin=password,
                 secret_stdin=True)
    for _, local, reference in wanted:
        commands.run(["docker", "tag", local, reference])
        commands.run(["docker", "push", reference])
    return [reference for _, _, reference in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="build nothing; print every command")
    parser.add_argument("--account", help="AWS account of the build repository (default: the caller's)")
    args = parser.parse_args(argv)

    def step() -> None:
        config = load_config()
        if args.dry_run:  # no AWS call and no docker: every command is printed
            account, ecr = args.account or "<account>", None
        else:
            from pipeline import preflight
            from pipeline.aws import pipeline_session

            session = pipeline_session(config)
            account = args.account or preflight.check(config, session).account
            ecr = session.client("ecr")
        build(config, Commands(args.dry_run), image_tag(), account, ecr)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
