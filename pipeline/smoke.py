"""Smoke-test one environment through its load balancer: `python -m pipeline.smoke --env staging [--dry-run]`.

For every endpoint: readiness, the model's metadata, and one prediction built from that metadata (zeros of the
declared shape), routed exactly as clients are. With a domain, that is the endpoint's own HTTPS address (its host,
else the environment's domain), with the certificate verified; without one, the load balancer's address with the
endpoint's host header. Then `GET /status`: the image answering must be the commit deployed (IMAGE_TAG), so a
rolled-back deployment, answering from the old image, fails the step. Retries for a while: a deploy has just
replaced the tasks. The load balancer is found by its name (derived from the configuration) in the environment's
own account (through its deploy role). The checks themselves are serving/endpoint_check.py.

An endpoint behind the internal load balancer is checked from inside the VPC: Smoke runs the endpoint's probe task,
which makes the same calls as a client in the VPC (pipeline/smoke_probe.py). With --base-url every endpoint is
called directly at that address instead.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.model import EXPOSURE_OF_BALANCER
from configuration.resolved import load_balancer_name_for, resolve_endpoint, resolve_environment
from pipeline.commands import Commands, StepFailed, image_tag, run_step
from pipeline.smoke_probe import probe_in_vpc
from serving.endpoint_check import CheckFailed, EndpointTarget, check_endpoint, example_request

__all__ = ["endpoint_address", "example_request", "load_balancer_url", "smoke", "smoke_key_headers"]

Probe = Callable[[str], None]
"""Checks one endpoint from inside the VPC (pipeline.smoke_probe); raises StepFailed when it did not pass."""
AsyncCheck = Callable[[str], None]
"""Checks one asynchronous endpoint through its bucket (pipeline.smoke_async); raises StepFailed when it failed."""


def load_balancer_url(config: MlopsConfig, environment: str, elbv2: Any, exposure: str = "public") -> str:
    name = load_balancer_name_for(resolve_environment(config, environment), exposure)
    try:
        (balancer,) = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    except elbv2.exceptions.LoadBalancerNotFoundException:
        raise StepFailed(f"no load balancer named {name}: is the {environment} platform deployed?") from None
    return f"http://{balancer['DNSName']}"


def endpoint_address(config: MlopsConfig, environment: str, endpoint: str,
                     balancer_url: str | None) -> tuple[str, str | None]:
    """(base URL, Host header to send) by which clients reach the endpoint. With a domain the certificate only
    matches the domain's names, so the call goes to the name itself; `balancer_url` (or --base-url) is then unused."""
    settings = config.endpoint_for(environment, endpoint)
    domain = config.environments[environment].domain
    if domain is not None and balancer_url is None:
        return f"https://{settings.host or domain.name}", None
    assert balancer_url is not None
    return balancer_url, settings.host


Credentials = Callable[[str], dict[str, str]]
"""Endpoint -> the headers that authenticate the smoke test's calls (none for `auth.type: none`)."""


def smoke(config: MlopsConfig, environment: str, balancer_url: str | dict[str, str] | None, commands: Commands,
          attempts: int = 30, wait_seconds: float = 10.0, expected_image_tag: str | None = None,
          credentials: Credentials | None = None, probe: Probe | None = None,
          async_check: AsyncCheck | None = None) -> None:
    """`balancer_url`: the load balancer's (or a stand-in's) address, or one per exposure (`public`, `internal`);
    None with a domain (each endpoint's own). `expected_image_tag`: the commit deployed; an endpoint still (or
    again, after a rollback) answering from another image fails the step. An endpoint with API keys or JWTs must
    also refuse a call without credentials. `probe`: how an endpoint behind an internal load balancer is checked
    from inside the VPC (pipeline.smoke_probe); without it, such an endpoint is called directly like the others
    (--base-url, or a runner inside the VPC). `async_check`: how an asynchronous endpoint is checked (a request
    through its bucket, `through_bucket`); None in a dry run, which says what it would do."""
    for endpoint in config.endpoints:
        settings = config.endpoint_for(environment, endpoint)
        if settings.mode == "async":
            if async_check is not None:
                async_check(endpoint)
            else:
                commands.say(f"would submit a request to asynchronous endpoint {endpoint} through "
                             f"s3://{config.async_bucket_name(environment, endpoint)}/ and wait for its answer")
            continue
        if settings.exposure == "internal" and probe is not None:
            probe(endpoint)
            continue
        url = balancer_url.get(settings.exposure or "public") if isinstance(balancer_url, dict) else balancer_url
        base_url, host = endpoint_address(config, environment, endpoint, url)
        keyed = settings.auth.type != "none"
        target = EndpointTarget(endpoint, f"{base_url}{resolve_endpoint(config, environment, endpoint).route_prefix}",
                                host, credentials(endpoint) if credentials is not None and keyed else {}, keyed)
        if commands.dry_run:
            # Readiness too: a JWT endpoint's rule asks every path for a token (the server's health paths are open).
            for method, call in target.calls():
                commands.say(f"would call: {method} {call}" + (f" (Host: {host})" if host else "")
                             + (" with the smoke test's credentials" if keyed else ""))
            if keyed:
                commands.say(f"would check that POST {target.calls()[2][1]} without credentials is refused (401)")
            continue
        try:
            check_endpoint(target, commands.say, attempts, wait_seconds, expected_image_tag)
        except CheckFailed as failed:
            raise StepFailed(str(failed)) from None


def through_bucket(session: Any, config: MlopsConfig, environment: str, commands: Commands,
                   expected_image_tag: str) -> AsyncCheck:
    """The check of an asynchronous endpoint: a request through its bucket (pipeline.smoke_async)."""
    from pipeline.smoke_async import check_async_endpoint

    s3 = session.client("s3")
    return lambda endpoint: check_async_endpoint(s3, config, environment, endpoint, commands.say,
                                                 expected_image_tag)


def smoke_key_headers(config: MlopsConfig, environment: str, secrets: Any) -> Credentials:
    """Each endpoint's smoke credentials as headers (pipeline.smoke_credentials), read once per endpoint."""
    from pipeline.smoke_credentials import CredentialsError, smoke_headers

    def headers(endpoint: str) -> dict[str, str]:
        try:
            return smoke_headers(secrets, config, environment, endpoint)
        except CredentialsError as exc:
            raise StepFailed(str(exc)) from None

    return functools.cache(headers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--base-url", help="skip the load balancer lookup (e.g. a local server)")
    parser.add_argument("--dry-run", action="store_true", help="print the calls, make none")
    args = parser.parse_args(argv)

    def step() -> None:
        config = load_config()
        if args.env not in config.environments:
            raise StepFailed(f"unknown environment {args.env!r}; configured: {', '.join(config.environments)}")
        balancer_url: str | dict[str, str] | None = args.base_url.rstrip("/") if args.base_url else None
        session = None
        if not args.dry_run:
            from pipeline import preflight
            from pipeline.aws import environment_session, pipeline_session

            preflight.check(config, pipeline_session(config), [args.env])
            session = environment_session(config, args.env)
        # Behind the internal load balancer: checked from inside the VPC by the endpoint's probe task.
        probe = probe_in_vpc(session, config, args.env, Commands(args.dry_run)) if balancer_url is None else None
        if balancer_url is None and config.environments[args.env].domain is None:
            resolved = resolve_environment(config, args.env)
            exposures = {EXPOSURE_OF_BALANCER[kind] for kind in config.environments[args.env].load_balancers} - {
                "internal"}
            if session is None:
                balancer_url = {exposure: f"http://<{load_balancer_name_for(resolved, exposure)} dns name>"
                                for exposure in exposures}
            else:
                elbv2 = session.client("elbv2")
                balancer_url = {exposure: load_balancer_url(config, args.env, elbv2, exposure)
                                for exposure in exposures}
        credentials = smoke_key_headers(config, args.env, session.client("secretsmanager")) if session else None
        commands = Commands(args.dry_run)
        tag = image_tag()
        smoke(config, args.env, balancer_url, commands, expected_image_tag=tag, credentials=credentials, probe=probe,
              async_check=through_bucket(session, config, args.env, commands, tag) if session else None)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
