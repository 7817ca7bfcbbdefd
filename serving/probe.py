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
from collections.abc import Mapping
from typing import Any

from serving.contract import PROBE_RESULT_PREFIX, ProbeVariable
from serving.endpoint_check import (
    CheckFailed,
    CredentialsError,
    EndpointTarget,
    check_endpoint,
    stored_credentials_headers,
)


class ProbeMisconfigured(Exception):
    """A variable is missing or malformed: the task definition, not the endpoint, is wrong."""


def target_from(environ: Mapping[str, str]) -> EndpointTarget:
    missing = [name for name in (ProbeVariable.ENDPOINT, ProbeVariable.ROOT, ProbeVariable.AUTH)
               if not environ.get(name)]
    if missing:
        raise ProbeMisconfigured(f"{', '.join(missing)} not set (the endpoint stack's probe task definition sets "
                                 "them)")
    auth = environ[ProbeVariable.AUTH]
    headers: dict[str, str] = {}
    if auth != "none":
        try:
            stored = json.loads(environ.get(ProbeVariable.CREDENTIALS) or "{}")
        except json.JSONDecodeError:
            raise ProbeMisconfigured(f"{ProbeVariable.CREDENTIALS} does not hold JSON: store the smoke "
                                     "credentials again") from None
        headers = stored_credentials_headers(stored if isinstance(stored, dict) else {})
        if not headers:
            raise CredentialsError(f"no smoke credentials in {ProbeVariable.CREDENTIALS} for an endpoint with "
                                   f"auth.type {auth}: the deploy step issues API keys; a JWT endpoint's client is "
                                   "stored with `python -m pipeline.keys smoke-client`")
    return EndpointTarget(environ[ProbeVariable.ENDPOINT], environ[ProbeVariable.ROOT].rstrip("/"),
                          environ.get(ProbeVariable.HOST) or None, headers, keyed=auth != "none")


def run(environ: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """(exit code, result)."""
    try:
        target = target_from(environ)
        answered = check_endpoint(target, say, attempts=int(environ.get(ProbeVariable.ATTEMPTS, "30")),
                                  wait_seconds=float(environ.get(ProbeVariable.WAIT_SECONDS, "10")),
                                  expected_image_tag=environ.get(ProbeVariable.IMAGE_TAG) or None)
    except (ProbeMisconfigured, CredentialsError, ValueError) as exc:
        return 2, {"passed": False, "error": str(exc)}
    except CheckFailed as exc:
        return 1, {"passed": False, "error": str(exc)}
    return 0, {"passed": True, **answered}


def say(line: str) -> None:
    print(line, flush=True)


def main() -> int:
    code, result = run(os.environ)
    say(PROBE_RESULT_PREFIX + json.dumps(result, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
