"""Deploy one environment: `python -m pipeline.deploy --env staging [--dry-run]`.

In order, with no person in the loop:
1. refuse when the environment runs an endpoint the configuration no longer declares (it would keep routing and
   billing): the error names the one command that removes it;
2. synthesize with IMAGE_TAG set (for real, also with --dry-run: a broken synth must fail here, not in AWS);
3. `cdktf deploy` of the environment's platform stack (network, load balancer, cluster, repository, model bucket);
4. copy the commit's image from the pipeline's build repository into the environment's (pipeline.images): this
   stage runs after the environment's approval, so only approved images reach it;
5. promote each endpoint's `initial_model` where the endpoint has no live model yet (a first deploy);
6. `cdktf deploy` of the endpoint stacks. The ECS services wait for steady state, so the step fails when the new
   tasks do not become healthy;
7. wait until ECS reports every endpoint's deployment of this image completed (pipeline.rollouts): a deployment
   that ECS rolled back (circuit breaker or alarm, also after the apply returned), failed or got stuck fails the
   step with what ECS said;
8. issue the smoke test's key of each endpoint with `auth.type: api_key` where the key set does not hold it
   (pipeline.keys).
Every `cdktf deploy` applies against the S3/DynamoDB remote state, auto-approved.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.image_tag import TAG_RE
from configuration.naming import build_repository_name, endpoint_stack, platform_stack, serving_repository_name
from configuration.resolved import resolve_environment
from pipeline.build import monitoring_used
from pipeline.commands import PROJECT_ROOT, Commands, StepFailed, image_tag, run_step
from pipeline.images import Fetch, copy_image, fetch_url
from pipeline.rollouts import wait_for_rollouts
from pipeline.stacks_state import orphan_endpoints
from serving.contract import SERVER_CONTAINER, monitor_image_tag, read_remote_store

CDKTF = str(PROJECT_ROOT / "node_modules" / ".bin" / "cdktf")
AUTOMATION_ENV = {"CI": "1", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
                  "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


@dataclass(frozen=True)
class DeployClients:
    """AWS clients by account: the pipeline's (state bucket, build repository, `s3://` initial models) and the
    environment's (its repository and model bucket; the same account unless it has a deploy role)."""

    pipeline_s3: Any
    pipeline_ecr: Any
    environment_s3: Any
    environment_ecr: Any
    environment_ecs: Any
    fetch_layer: Fetch = fetch_url
    """Reads a layer from the download URL ECR gives."""
    environment_secrets: Any = None
    """The environment's Secrets Manager (API key sets); needed where an endpoint has `auth.type: api_key`."""


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
        store = read_remote_store(s3, bucket, f"{endpoint}/")
        if store.live not in store.versions:  # none at all, or LIVE naming an incomplete version
            missing.append(endpoint)
    return missing


def promote_initial_models(config: MlopsConfig, environment: str, clients: DeployClients,
                           commands: Commands) -> None:
    """Make each endpoint's `initial_model` live where the endpoint has none; fail naming what is missing."""
    from pipeline.models import CommandError, promote, resolve

    missing = endpoints_without_a_model(config, environment, clients.environment_s3)
    without_initial = [e for e in missing if config.endpoint_for(environment, e).initial_model is None]
    if without_initial:
        raise StepFailed(
            f"endpoint(s) {', '.join(without_initial)} have no live model in "
            f"s3://{config.model_bucket_name(environment)}/ and no `initial_model` in the configuration, so their "
            "services could never become healthy. Set endpoints.<name>.initial_model, or promote one, e.g. "
            f"`python -m pipeline.models promote --env {environment} --endpoint {without_initial[0]} --model-file "
            "model.onnx`, then retry this stage")
    for endpoint in missing:
        source = config.endpoint_for(environment, endpoint).initial_model
        assert source is not None
        with tempfile.TemporaryDirectory() as scratch:
            model_file = PROJECT_ROOT / source
            if source.startswith("s3://"):
                bucket, _, key = source[len("s3://"):].partition("/")
                model_file = Path(scratch) / "model.onnx"
                clients.pipeline_s3.download_file(bucket, key, str(model_file))
            try:
                result = promote(clients.environment_s3, resolve(config, environment, endpoint), model_file)
            except CommandError as exc:
                raise StepFailed(f"endpoint {endpoint}'s initial_model {source}: {exc}") from None
        commands.say(f"{endpoint}: no live model in {environment}: promoted initial_model {source} as version "
                     f"{result['version']}")


def missing_pinned_versions(config: MlopsConfig, environment: str, s3: Any) -> list[str]:
    """`<endpoint>/<variant> -> <version>` for each variant pinned to a version the model bucket does not hold."""
    bucket = config.model_bucket_name(environment)
    missing = []
    for endpoint in resolve_environment(config, environment).endpoints.values():
        if not endpoint.pinned_versions:
            continue
        held = read_remote_store(s3, bucket, f"{endpoint.name}/").versions
        missing += [f"{endpoint.name}/{variant} -> {version}" for variant, version in endpoint.pinned_versions.items()
                    if version not in held]
    return missing


def deploy(config: MlopsConfig, environment: str, commands: Commands, tag: str,
           clients: DeployClients | None = None, rollout_timeout_seconds: float = 1800) -> None:
    """Without `clients` (a dry run), AWS is not read: the AWS steps are printed."""
    if environment not in config.environments:
        raise StepFailed(f"unknown environment {environment!r}; configured: {', '.join(config.environments)}")
    if not TAG_RE.match(tag):
        raise StepFailed(f"image tag {tag!r} is not a valid tag")
    if clients is not None:
        orphans = orphan_endpoints(config, environment, clients.pipeline_s3)
        if orphans:
            raise StepFailed(
                f"{environment} runs endpoint(s) {', '.join(orphans)}, which the configuration no longer declares. "
                "Remove each with `make destroy ENV=" + environment + f" ENDPOINT={orphans[0]}` (python -m "
                f"pipeline.teardown --env {environment} --endpoint {orphans[0]}), or declare it again; then retry")
    env = {**AUTOMATION_ENV, "IMAGE_TAG": tag}
    platform, *endpoints = environment_stacks(config, environment)
    commands.say(f"deploying {environment} with image tag {tag}: {', '.join([platform, *endpoints])}")
    commands.run([CDKTF, "synth"], also_in_dry_run=True, env=env)
    commands.run(_deploy_command(environment, [platform], "platform"), env=env)

    source, target = build_repository_name(config.project), serving_repository_name(config.project, environment)
    tags = [tag, *([monitor_image_tag(tag)] if monitoring_used(config, [environment]) else [])]
    if clients is None:
        for each_tag in tags:
            commands.say(f"would copy image {source}:{each_tag} to {target}")
        commands.say(f"would promote each endpoint's initial_model where {config.model_bucket_name(environment)} "
                     "has no live model")
    else:
        for each_tag in tags:  # the server's image, and the monitor's where this environment monitors an endpoint
            copy_image(clients.pipeline_ecr, source, clients.environment_ecr, target, each_tag,
                       fetch=clients.fetch_layer, say=commands.say)
        promote_initial_models(config, environment, clients, commands)
        missing_pins = missing_pinned_versions(config, environment, clients.environment_s3)
        if missing_pins:
            raise StepFailed(
                f"variant(s) pinned to a version s3://{config.model_bucket_name(environment)}/ does not hold: "
                f"{', '.join(missing_pins)}; their services could never become healthy. Promote the version "
                "(python -m pipeline.models promote ... --version <v>) or change the pin, then retry this stage")
    if endpoints:
        # The platform they depend on was applied above; cdktf refuses a partial set without being told.
        commands.run([*_deploy_command(environment, endpoints, "endpoints"), "--ignore-missing-stack-dependencies"],
                     env=env)
        resolved = resolve_environment(config, environment)
        services = [name for endpoint in resolved.endpoints.values() for name in endpoint.service_names]
        if clients is None:
            commands.say(f"would wait until ECS reports the deployment of image {tag} completed for service(s) "
                         f"{', '.join(services)} in cluster {resolved.cluster_name}")
        else:
            wait_for_rollouts(clients.environment_ecs, resolved.cluster_name, services, SERVER_CONTAINER, tag,
                              commands.say, timeout_seconds=rollout_timeout_seconds)
        issue_smoke_keys(config, environment, clients, commands)


def issue_smoke_keys(config: MlopsConfig, environment: str, clients: DeployClients | None,
                     commands: Commands) -> None:
    """The key the smoke test calls each `api_key` endpoint with: issued once, reissued when revoked."""
    from pipeline.keys import KeysError, ensure_smoke_key, key_set_secret

    keyed = [name for name in config.endpoints if config.endpoint_for(environment, name).auth.type == "api_key"]
    for endpoint in keyed:
        where = key_set_secret(config, environment, endpoint)
        if clients is None:
            commands.say(f"would issue the smoke test's key of endpoint {endpoint} unless {where.key_set} holds it")
            continue
        try:
            outcome = ensure_smoke_key(clients.environment_secrets, where)
        except KeysError as exc:
            raise StepFailed(str(exc)) from None
        commands.say(f"{endpoint}: smoke test key {outcome} ({where.smoke_key})")


def _deploy_command(environment: str, stacks: list[str], part: str) -> list[str]:
    return [CDKTF, "deploy", *stacks, "--auto-approve", "--skip-synth", "--no-color",
            "--outputs-file", f"cdktf.out/outputs-{environment}-{part}.json"]


def deploy_clients(config: MlopsConfig, environment: str) -> DeployClients:
    from pipeline.aws import environment_session, pipeline_session

    pipeline, target = pipeline_session(config), environment_session(config, environment)
    return DeployClients(pipeline.client("s3"), pipeline.client("ecr"), target.client("s3"), target.client("ecr"),
                         target.client("ecs"), environment_secrets=target.client("secretsmanager"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--dry-run", action="store_true", help="synthesize, and print the deploy instead of running it")
    args = parser.parse_args(argv)

    def step() -> None:
        config = load_config()
        clients = None
        if not args.dry_run and args.env in config.environments:
            from pipeline import preflight
            from pipeline.aws import pipeline_session

            preflight.check(config, pipeline_session(config), [args.env], needs_terraform=True, needs_bootstrap=True)
            clients = deploy_clients(config, args.env)
        deploy(config, args.env, Commands(args.dry_run), image_tag(), clients)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
