"""Take an environment down, or everything: `python -m pipeline.teardown --env staging [--endpoint a] | --all
[--dry-run]` (`make destroy ENV=staging [ENDPOINT=a]`, `make destroy-all`).

`--env E` destroys E's endpoint stacks, including any endpoint the configuration no longer declares (from its
state alone), then E's platform. `--endpoint N` destroys that one endpoint stack. `--all` destroys every environment,
last first, then the pipeline stack. Kept on purpose: the bootstrap stack's state bucket and lock table (they hold
the state of everything else, and `prevent_destroy` guards them; remove them by hand once nothing is left).

What Terraform cannot delete while it has content is emptied first, so a destroy never stops halfway: the
environment's image repository, model bucket and capture bucket (every version), the pipeline's build repository
and artifact bucket; a production load balancer's deletion protection is switched off just before its stack goes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.naming import (
    build_repository_name,
    endpoint_stack,
    pipeline_artifact_bucket_name,
    pipeline_stack,
    platform_stack,
    serving_repository_name,
    state_key,
)
from configuration.resolved import resolve_environment
from pipeline.commands import PROJECT_ROOT, Commands, StepFailed, run_step
from pipeline.deploy import AUTOMATION_ENV, CDKTF
from pipeline.stacks_state import environment_deployed, orphan_endpoints

SYNTH_DIR = PROJECT_ROOT / "cdktf.out"


def empty_repository(ecr: Any, repository: str, commands: Commands) -> None:
    try:
        pages = list(ecr.get_paginator("list_images").paginate(repositoryName=repository))
    except ecr.exceptions.RepositoryNotFoundException:
        return
    images = [image for page in pages for image in page["imageIds"]]
    for start in range(0, len(images), 100):
        ecr.batch_delete_image(repositoryName=repository, imageIds=images[start:start + 100])
    commands.say(f"deleted {len(images)} image(s) from {repository}")


def empty_bucket(s3: Any, bucket: str, commands: Commands) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [{"Key": item["Key"], "VersionId": item["VersionId"]}
                   for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            deleted += len(objects)
    commands.say(f"deleted {deleted} object version(s) from s3://{bucket}")


def allow_load_balancer_deletion(elbv2: Any, name: str, commands: Commands) -> None:
    try:
        (balancer,) = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    except elbv2.exceptions.LoadBalancerNotFoundException:
        return
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=balancer["LoadBalancerArn"], Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    commands.say(f"switched off deletion protection of load balancer {name}")


def state_only_configuration(config: MlopsConfig, environment: str, stack: str, synth_dir: Path = SYNTH_DIR) -> Path:
    """A root module with the environment's provider and backend and no resources: applying it destroys everything
    the stack's state holds, without the stack's code (an endpoint no longer in the configuration has none). The
    provider and backend blocks are the synthesized platform stack's, so they match what deployed the endpoint."""
    platform = json.loads((synth_dir / "stacks" / platform_stack(config.project, environment) / "cdk.tf.json")
                          .read_text())
    backend = {**platform["terraform"]["backend"]["s3"], "key": state_key(stack)}
    module = {"terraform": {"backend": {"s3": backend},
                            "required_providers": platform["terraform"]["required_providers"]},
              "provider": platform["provider"]}
    folder = synth_dir / "state-only" / stack
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.tf.json").write_text(json.dumps(module, indent=2))
    return folder


class Teardown:
    def __init__(self, config: MlopsConfig, commands: Commands, sessions: Any = None, synth_dir: Path = SYNTH_DIR):
        """`sessions(environment or None)` gives a boto3 session for that environment's account (None: the
        pipeline's); without it (a dry run) nothing is read or emptied, only printed."""
        self.config = config
        self.synth_dir = synth_dir
        self.commands = commands
        self.sessions = sessions
        self.synthesized = False

    def _synth(self) -> None:
        if not self.synthesized:
            self.commands.run([CDKTF, "synth"], also_in_dry_run=True, env=AUTOMATION_ENV)
            self.synthesized = True

    def _destroy(self, stacks: list[str], *, partial: bool = False) -> None:
        """One `cdktf destroy`, which takes dependents first. `partial`: some stacks they depend on stay."""
        self.commands.run([CDKTF, "destroy", *stacks, "--auto-approve", "--skip-synth", "--no-color",
                           *(["--ignore-missing-stack-dependencies"] if partial else [])], env=AUTOMATION_ENV)

    def _async_buckets(self, environment: str, endpoints: list[str]) -> list[str]:
        """The buckets of the asynchronous ones among `endpoints` (S3 deletes only an empty bucket)."""
        return [self.config.async_bucket_name(environment, name) for name in endpoints
                if name in self.config.endpoints and self.config.endpoint_for(environment, name).mode == "async"]

    def _empty_async_buckets(self, environment: str, endpoints: list[str]) -> None:
        buckets = self._async_buckets(environment, endpoints)
        if self.sessions is None:
            for bucket in buckets:
                self.commands.say(f"would empty s3://{bucket}")
            return
        for bucket in buckets:
            empty_bucket(self.sessions(environment).client("s3"), bucket, self.commands)

    def endpoint(self, environment: str, endpoint: str) -> None:
        self._synth()
        stack = endpoint_stack(self.config.project, environment, endpoint)
        if endpoint in self.config.endpoints:
            self._empty_async_buckets(environment, [endpoint])
            self._destroy([stack], partial=True)
            return
        folder = state_only_configuration(self.config, environment, stack, self.synth_dir)
        self.commands.say(f"{stack} is not in the configuration: destroying what its state holds")
        self.commands.run(["terraform", f"-chdir={folder}", "init", "-input=false", "-reconfigure"],
                          env=AUTOMATION_ENV)
        self.commands.run(["terraform", f"-chdir={folder}", "apply", "-destroy", "-auto-approve", "-input=false"],
                          env=AUTOMATION_ENV)

    def environment(self, environment: str) -> None:
        project = self.config.project
        state = None if self.sessions is None else self.sessions(None).client("s3")
        if state is not None and not environment_deployed(self.config, environment, state):
            self.commands.say(f"{environment}: no stack holds resources, nothing to destroy")
            return
        self._synth()
        orphans = [] if state is None else orphan_endpoints(self.config, environment, state)
        for orphan in orphans:
            self.endpoint(environment, orphan)
        if self.sessions is None:
            self.commands.say(f"would empty {serving_repository_name(project, environment)}, "
                              f"s3://{self.config.model_bucket_name(environment)} and "
                              f"s3://{self.config.capture_bucket_name(environment)}, and allow the load balancer's "
                              "deletion")
        else:
            session = self.sessions(environment)
            empty_repository(session.client("ecr"), serving_repository_name(project, environment), self.commands)
            empty_bucket(session.client("s3"), self.config.model_bucket_name(environment), self.commands)
            empty_bucket(session.client("s3"), self.config.capture_bucket_name(environment), self.commands)
            allow_load_balancer_deletion(session.client("elbv2"),
                                         resolve_environment(self.config, environment).load_balancer_name,
                                         self.commands)
        self._empty_async_buckets(environment, list(self.config.endpoints))
        # One destroy of the environment's stacks: cdktf takes the endpoints first, then their platform.
        self._destroy([*(endpoint_stack(project, environment, e) for e in self.config.endpoints),
                       platform_stack(project, environment)])

    def everything(self) -> None:
        project = self.config.project
        for environment in reversed(self.config.environments):
            self.environment(environment)
        if self.config.pipeline is not None:
            artifacts = pipeline_artifact_bucket_name(project, self.config.region)
            if self.sessions is None:
                self.commands.say(f"would empty {build_repository_name(project)} and s3://{artifacts}")
            else:
                session = self.sessions(None)
                empty_repository(session.client("ecr"), build_repository_name(project), self.commands)
                empty_bucket(session.client("s3"), artifacts, self.commands)
            self._destroy([pipeline_stack(project)])
        self.commands.say(f"kept on purpose: state bucket {self.config.state_bucket_name} and lock table "
                          f"{self.config.lock_table_name} (stack {project}-bootstrap)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.teardown", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--env", help="the environment to take down")
    scope.add_argument("--all", action="store_true", help="every environment, then the pipeline")
    parser.add_argument("--endpoint", help="with --env: only this endpoint (also one no longer configured)")
    parser.add_argument("--dry-run", action="store_true", help="synthesize, and print what would be destroyed")
    args = parser.parse_args(argv)

    def step() -> None:
        config = load_config()
        if args.env is not None and args.env not in config.environments:
            raise StepFailed(f"unknown environment {args.env!r}; configured: {', '.join(config.environments)}")
        if args.endpoint is not None and args.env is None:
            raise StepFailed("--endpoint needs --env")
        sessions = None
        if not args.dry_run:
            from pipeline import preflight
            from pipeline.aws import environment_session, pipeline_session

            preflight.check(config, pipeline_session(config), list(config.environments) if args.all else [args.env],
                            needs_terraform=True, needs_bootstrap=True)

            def sessions(environment: str | None) -> Any:
                return pipeline_session(config) if environment is None else environment_session(config, environment)
        teardown = Teardown(config, Commands(args.dry_run), sessions)
        if args.all:
            teardown.everything()
        elif args.endpoint is not None:
            teardown.endpoint(args.env, args.endpoint)
        else:
            teardown.environment(args.env)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
