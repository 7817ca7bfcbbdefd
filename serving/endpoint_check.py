"""The smoke test of one endpoint, shared by the pipeline's Smoke step (which calls from where it runs) and the probe
task (`python -m serving.probe`) that Smoke starts inside the VPC for an endpoint behind an internal load balancer.

Readiness, the model's metadata, one prediction built from that metadata (zeros of the declared shape), then
`GET /status`: the image answering must be the commit deployed, so a rolled-back deployment fails. An endpoint that
checks credentials must also refuse a call without them (401). Retried for a while: a deploy has just replaced the
tasks. Standard library only, so the pipeline imports it without the server's runtime.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from serving.contract import READINESS_PATH

ZERO_BY_DATATYPE = {"BOOL": False, "BYTES": ""}

Fetch = Callable[[urllib.request.Request], Any]
"""Opens a request and returns a response with `.read()` (urllib's urlopen; tests pass their own)."""


class CheckFailed(Exception):
    """The endpoint did not pass: says what it answered."""


class CredentialsError(Exception):
    """No credentials to call the endpoint with: says why and the command that fixes it."""


@dataclass(frozen=True)
class EndpointTarget:
    name: str
    root: str
    """The endpoint's base URL, route prefix included (`http://<load balancer>/a`)."""
    host: str | None = None
    """The Host header to send (the endpoint's host rule, when the call goes to the load balancer's own name)."""
    credentials: dict[str, str] = field(default_factory=dict)
    """The headers that authenticate the calls ({} for `auth.type: none`)."""
    keyed: bool = False
    """The endpoint checks credentials: a call without them must be refused."""

    def calls(self) -> list[tuple[str, str]]:
        return [("GET", f"{self.root}{READINESS_PATH}"), ("GET", f"{self.root}/v2/models/{self.name}"),
                ("POST", f"{self.root}/v2/models/{self.name}/infer"), ("GET", f"{self.root}/status")]


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


def call(url: str, host: str | None, body: dict[str, Any] | None = None,
         credentials: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Host": host} if host else {}), **(credentials or {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the environment's own URL
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def check_endpoint(target: EndpointTarget, say: Callable[[str], None], attempts: int = 30,
                   wait_seconds: float = 10.0, expected_image_tag: str | None = None) -> dict[str, str]:
    """{"image_tag", "model_version"} that answered; CheckFailed after `attempts` tries."""
    readiness, metadata_url, infer_url, status_url = (url for _, url in target.calls())
    answering = None
    for attempt in range(1, attempts + 1):
        try:
            status, _ = call(readiness, target.host, credentials=target.credentials)
            if status == 200:
                status, metadata = call(metadata_url, target.host, credentials=target.credentials)
                if status == 200:
                    status, result = call(infer_url, target.host, example_request(metadata), target.credentials)
                    if status == 200 and result.get("outputs"):
                        status, server = call(status_url, target.host, credentials=target.credentials)
                        answering = server.get("image_tag")
                        if expected_image_tag is None or answering == expected_image_tag:
                            say(f"{target.name}: ready, image {answering} and model version "
                                f"{result['model_version']} answer")
                            if target.keyed:
                                refuses_without_credentials(target, example_request(metadata), say)
                            return {"image_tag": str(answering), "model_version": str(result["model_version"])}
                        status = f"image {answering} answers, not {expected_image_tag}"
            say(f"{target.name}: attempt {attempt}: status {status}")
        except (OSError, ValueError) as exc:
            say(f"{target.name}: attempt {attempt}: {exc}")
        if attempt < attempts:
            time.sleep(wait_seconds)
    if answering is not None and expected_image_tag is not None:
        raise CheckFailed(f"endpoint {target.name} answers from image {answering}, not from {expected_image_tag} "
                          "(the commit deployed): its deployment was rolled back or has not finished")
    raise CheckFailed(f"endpoint {target.name} did not answer a prediction at {target.root}")


def refuses_without_credentials(target: EndpointTarget, body: dict[str, Any], say: Callable[[str], None]) -> None:
    status, _ = call(target.calls()[2][1], target.host, body)
    if status != 401:
        raise CheckFailed(f"endpoint {target.name} answered a call without credentials with {status}, not 401: it "
                          "does not check them (API keys: is SERVING_API_KEYS set in its task definition? JWT: "
                          "does its listener rule validate tokens?)")
    say(f"{target.name}: a call without credentials is refused (401)")


def open_url(request: urllib.request.Request) -> Any:
    return urllib.request.urlopen(request, timeout=10)  # noqa: S310 - the configured https token URL


def fetch_token(client: dict[str, Any], fetch: Fetch = open_url) -> tuple[str, int]:
    """(access token, seconds it lasts) from the client-credentials grant at the client's token URL."""
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    form = {"grant_type": "client_credentials", **({"scope": client["scope"]} if client.get("scope") else {})}
    request = urllib.request.Request(  # noqa: S310 - an https URL, checked when it was stored
        client["token_url"], data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
    try:
        answer = json.loads(fetch(request).read())
    except urllib.error.HTTPError as exc:
        raise CredentialsError(f"the token URL {client['token_url']} refused client {client['client_id']} "
                               f"({exc.code}): check the client id, secret and scope") from None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"no token from {client['token_url']}: {exc}") from None
    if not answer.get("access_token"):
        raise CredentialsError(f"the token URL {client['token_url']} answered without an access_token")
    return str(answer["access_token"]), int(answer.get("expires_in", 0))


def stored_credentials_headers(stored: dict[str, Any], fetch: Fetch = open_url) -> dict[str, str]:
    """The Authorization header from what the smoke credentials secret holds: `{"key"}` (API keys) or an OAuth
    client (`{"token_url", "client_id", "client_secret", "scope"}`, a token fetched now); {} when it holds neither."""
    if stored.get("key"):
        return {"Authorization": f"Bearer {stored['key']}"}
    if stored.get("token_url"):
        token, _ = fetch_token(stored, fetch)
        return {"Authorization": f"Bearer {token}"}
    return {}
