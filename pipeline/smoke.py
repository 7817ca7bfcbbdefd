"""Smoke-test one environment through its load balancer: `python -m pipeline.smoke --env staging [--dry-run]`.

For every endpoint: readiness, the model's metadata, and one prediction built from that metadata (zeros of the
declared shape), routed exactly as clients are. With a domain, that is the endpoint's own HTTPS address (its host,
else the environment's domain), with the certificate verified; without one, the load balancer's address with the
endpoint's host header. Then `GET /status`: the image answering must be the commit deployed (IMAGE_TAG), so a
rolled-back deployment, answering from the old image, fails the step. Retries for a while: a deploy has just
replaced the tasks. The load balancer is found by its name (derived from the configuration) in the environment's
own account (through its deploy role).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.model import EXPOSURE_OF_BALANCER
from configuration.resolved import load_balancer_name_for, resolve_endpoint, resolve_environment
from pipeline.commands import Commands, StepFailed, image_tag, run_step
from serving.contract import READINESS_PATH

ZERO_BY_DATATYPE = {"BOOL": False, "BYTES": ""}


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


def example_request(metadata: dict[str, Any]) -> dict[str, Any]:
    inputs = []
    for spec in metadata["inputs"]:
        shape = [1 if dim < 0 else dim for dim in spec["shape"]]
        count = 1
        for dim in shape:
            count *= dim
        inputs.append({"name": spec["name"], "shape": shape, "datatype": spec["datatype"],
                       "data": [ZERO_BY_DATATYPE.get(spec["datatype"], 0)] * count})
    return {"id": "smoke-test", "inputs": inputs}


def _call(url: str, host: str | None, body: dict[str, Any] | None = None,
          credentials: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {}), **(credentials or {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the environment's own URL
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


Credentials = Callable[[str], dict[str, str]]
"""Endpoint -> the headers that authenticate the smoke test's calls (none for `auth.type: none`)."""


def smoke(config: MlopsConfig, environment: str, balancer_url: str | dict[str, str] | None, commands: Commands,
          attempts: int = 30, wait_seconds: float = 10.0, expected_image_tag: str | None = None,
          credentials: Credentials | None = None) -> None:
    """`balancer_url`: the load balancer's (or a stand-in's) address, or one per exposure (`public`, `internal`);
    None with a domain (each endpoint's own). `expected_image_tag`: the commit deployed; an endpoint still (or
    again, after a rollback) answering from another image fails the step. An endpoint with API keys or JWTs must
    also refuse a call without credentials."""
    for endpoint in config.endpoints:
        settings = config.endpoint_for(environment, endpoint)
        url = balancer_url.get(settings.exposure or "public") if isinstance(balancer_url, dict) else balancer_url
        base_url, host = endpoint_address(config, environment, endpoint, url)
        keyed = settings.auth.type != "none"
        headers = credentials(endpoint) if credentials is not None and keyed else {}
        root = f"{base_url}{resolve_endpoint(config, environment, endpoint).route_prefix}"
        checks = [("GET", f"{root}{READINESS_PATH}"), ("GET", f"{root}/v2/models/{endpoint}"),
                  ("POST", f"{root}/v2/models/{endpoint}/infer"), ("GET", f"{root}/status")]
        if commands.dry_run:
            # Readiness too: a JWT endpoint's rule asks every path for a token (the server's health paths are open).
            for method, call in checks:
                commands.say(f"would call: {method} {call}" + (f" (Host: {host})" if host else "")
                             + (" with the smoke test's credentials" if keyed else ""))
            if keyed:
                commands.say(f"would check that POST {checks[2][1]} without credentials is refused (401)")
            continue
        answering = None
        for attempt in range(1, attempts + 1):
            try:
                status, _ = _call(checks[0][1], host, credentials=headers)
                if status == 200:
                    status, metadata = _call(checks[1][1], host, credentials=headers)
                    if status == 200:
                        status, result = _call(checks[2][1], host, example_request(metadata), headers)
                        if status == 200 and result.get("outputs"):
                            status, server = _call(checks[3][1], host, credentials=headers)
                            answering = server.get("image_tag")
                            if expected_image_tag is None or answering == expected_image_tag:
                                commands.say(f"{endpoint}: ready, image {answering} and model version "
                                             f"{result['model_version']} answer")
                                if keyed:
                                    _refuses_without_a_key(endpoint, checks[2][1], host, example_request(metadata),
                                                           commands)
                                break
                            status = f"image {answering} answers, not {expected_image_tag}"
                commands.say(f"{endpoint}: attempt {attempt}: status {status}")
            except (OSError, ValueError) as exc:
                commands.say(f"{endpoint}: attempt {attempt}: {exc}")
            if attempt == attempts:
                if answering is not None and expected_image_tag is not None:
                    raise StepFailed(f"endpoint {endpoint} answers from image {answering}, not from "
                                     f"{expected_image_tag} (the commit deployed): its deployment was rolled back "
                                     "or has not finished")
                raise StepFailed(f"endpoint {endpoint} did not answer a prediction at {root}")
            time.sleep(wait_seconds)


def _refuses_without_a_key(endpoint: str, url: str, host: str | None, body: dict[str, Any],
                           commands: Commands) -> None:
    status, _ = _call(url, host, body)
    if status != 401:
        raise StepFailed(f"endpoint {endpoint} answered a call without credentials with {status}, not 401: it "
                         "does not check them (API keys: is SERVING_API_KEYS set in its task definition? JWT: does "
                         "its listener rule validate tokens?)")
    commands.say(f"{endpoint}: a call without credentials is refused (401)")


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
        if balancer_url is None and config.environments[args.env].domain is None:
            resolved = resolve_environment(config, args.env)
            exposures = {EXPOSURE_OF_BALANCER[kind] for kind in config.environments[args.env].load_balancers}
            if session is None:
                balancer_url = {exposure: f"http://<{load_balancer_name_for(resolved, exposure)} dns name>"
                                for exposure in exposures}
            else:
                elbv2 = session.client("elbv2")
                balancer_url = {exposure: load_balancer_url(config, args.env, elbv2, exposure)
                                for exposure in exposures}
        credentials = smoke_key_headers(config, args.env, session.client("secretsmanager")) if session else None
        smoke(config, args.env, balancer_url, Commands(args.dry_run), expected_image_tag=image_tag(),
              credentials=credentials)

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
