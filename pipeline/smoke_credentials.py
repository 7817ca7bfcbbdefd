"""What the pipeline's smoke test authenticates with, per endpoint: nothing (`auth.type: none`), the smoke key the
deploy step issued (`api_key`), or a token from the endpoint's OAuth issuer by the client-credentials flow (`jwt`),
with the client an operator stored once (`python -m pipeline.keys smoke-client`).

Both live in the endpoint's smoke credentials secret (`<project>/<env>/<endpoint>/smoke-key`), which only the smoke
step's role may read: `{"key": ...}` for API keys, `{"token_url", "client_id", "client_secret", "scope"}` for JWT.
"""

from __future__ import annotations

import json
from typing import Any

from configuration import MlopsConfig
from configuration.resolved import resolve_endpoint
from serving.endpoint_check import CredentialsError, Fetch, fetch_token, open_url, stored_credentials_headers

__all__ = ["CredentialsError", "fetch_token", "read_smoke_secret", "smoke_headers", "store_smoke_client"]


def read_smoke_secret(secrets: Any, name: str) -> dict[str, Any]:
    """The smoke credentials secret's value ({} while it has none)."""
    try:
        text = secrets.get_secret_value(SecretId=name)["SecretString"]
    except secrets.exceptions.ResourceNotFoundException:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise CredentialsError(f"{name} does not hold JSON; store the credentials again") from None
    return value if isinstance(value, dict) else {}


def smoke_headers(secrets: Any, config: MlopsConfig, environment: str, endpoint: str,
                  fetch: Fetch = open_url) -> dict[str, str]:
    """The Authorization header the smoke test sends to the endpoint ({} for `auth.type: none`)."""
    auth = config.endpoint_for(environment, endpoint).auth.type
    if auth == "none":
        return {}
    name = resolve_endpoint(config, environment, endpoint).smoke_key_secret_name
    stored = read_smoke_secret(secrets, name)
    if auth == "api_key":
        if not stored.get("key"):
            raise CredentialsError(f"no smoke key in {name}: the deploy step issues it; run the environment's "
                                   "Deploy stage (or `python -m pipeline.deploy`) first")
        return stored_credentials_headers({"key": stored["key"]}, fetch)
    if not stored.get("token_url"):
        raise CredentialsError(
            f"no OAuth client in {name} for the smoke test of JWT endpoint {endpoint} in {environment}: store one "
            f"with `python -m pipeline.keys smoke-client --env {environment} --endpoint {endpoint} --token-url URL "
            "--client-id ID --scope SCOPE` (the client secret on stdin)")
    return stored_credentials_headers({key: value for key, value in stored.items() if key != "key"}, fetch)


def store_smoke_client(secrets: Any, name: str, token_url: str, client_id: str, client_secret: str,
                       scope: str = "", fetch: Fetch = open_url) -> int:
    """Store the smoke test's OAuth client once a token was obtained with it; the token's lifetime in seconds."""
    if not token_url.startswith("https://"):
        raise CredentialsError(f"--token-url must be an https:// URL, got {token_url!r}")
    if not client_id or not client_secret:
        raise CredentialsError("the client id and its secret (on stdin) are both needed")
    client = {"token_url": token_url, "client_id": client_id, "client_secret": client_secret, "scope": scope}
    _, lasts = fetch_token(client, fetch)
    try:
        secrets.put_secret_value(SecretId=name, SecretString=json.dumps(client))
    except secrets.exceptions.ResourceNotFoundException:
        raise CredentialsError(f"no secret {name}: deploy the endpoint's stack with auth.type jwt first") from None
    return lasts
