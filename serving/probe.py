"""`python -m serving.probe`: the smoke test of one endpoint, run inside the VPC as a one-off ECS task.

An endpoint behind an internal load balancer cannot be reached from where the pipeline's Smoke step runs; Smoke
starts this task instead (the endpoint stack defines it, with the image deployed) and reads its exit code and its
log. It runs the same checks as Smoke (serving/endpoint_check.py), calling the endpoint the way a client in the VPC
does, with the smoke credentials ECS hands it from the endpoint's smoke credentials secret. Its last log line is
`probe result: {...}` (JSON); it exits 0 when the endpoint passed, 1 when it did not, 2 when it was misconfigured.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.contract import PROBE_RESULT_PREFIX, PROBE_VARIABLE_PREFIX, ProbeVariable
from serving.endpoint_check import (
    CheckFailed,
    CredentialsError,
    EndpointTarget,
    check_endpoint,
    stored_credentials_headers,
)
from serving.settings import refuse_unknown_variables


class ProbeSettings(BaseSettings):
    """The probe's settings, from `PROBE_*` variables (the endpoint stack sets them; serving/contract.py)."""

    model_config = SettingsConfigDict(env_prefix=PROBE_VARIABLE_PREFIX, extra="forbid", frozen=True)

    endpoint: str
    root: str
    """The endpoint's base URL, route prefix included."""
    auth: Literal["none", "api_key", "jwt"]
    host: str | None = None
    """The Host header to send (the endpoint's host rule); None: the URL's own."""
    image_tag: str | None = None
    """The commit deployed: the image that must answer."""
    credentials: SecretStr | None = None
    """The smoke credentials secret's value (through ECS `secrets`)."""
    attempts: int = Field(default=30, ge=1)
    wait_seconds: float = Field(default=10.0, ge=0)


def target_of(settings: ProbeSettings) -> EndpointTarget:
    headers: dict[str, str] = {}
    if settings.auth != "none":
        try:
            stored = json.loads(settings.credentials.get_secret_value() if settings.credentials else "{}")
        except json.JSONDecodeError:
            raise CredentialsError(f"{ProbeVariable.CREDENTIALS} does not hold JSON: store the smoke credentials "
                                   "again") from None
        headers = stored_credentials_headers(stored if isinstance(stored, dict) else {})
        if not headers:
            raise CredentialsError(f"no smoke credentials in {ProbeVariable.CREDENTIALS} for an endpoint with "
                                   f"auth.type {settings.auth}: the deploy step issues API keys; a JWT endpoint's "
                                   "client is stored with `python -m pipeline.keys smoke-client`")
    return EndpointTarget(settings.endpoint, settings.root.rstrip("/"), settings.host, headers,
                          keyed=settings.auth != "none")


def run() -> tuple[int, dict[str, Any]]:
    """(exit code, result), from the process's variables."""
    try:
        refuse_unknown_variables(ProbeSettings, os.environ)
        settings = ProbeSettings()
        target = target_of(settings)
    except ValidationError as exc:
        problems = "; ".join(f"{PROBE_VARIABLE_PREFIX}{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
                             for error in exc.errors())
        return 2, {"passed": False, "error": f"{problems} (the endpoint stack's probe task definition sets them)"}
    except (CredentialsError, ValueError) as exc:
        return 2, {"passed": False, "error": str(exc)}
    try:
        answered = check_endpoint(target, say, settings.attempts, settings.wait_seconds, settings.image_tag)
    except CredentialsError as exc:
        return 2, {"passed": False, "error": str(exc)}
    except CheckFailed as exc:
        return 1, {"passed": False, "error": str(exc)}
    return 0, {"passed": True, **answered}


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    code, result = run()
    say(PROBE_RESULT_PREFIX + json.dumps(result, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
