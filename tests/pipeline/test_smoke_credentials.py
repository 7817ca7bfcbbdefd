"""The smoke test's credentials: the deploy step's smoke key for an `api_key` endpoint, a token by the
client-credentials grant for a `jwt` endpoint (against a local token endpoint), stored with `pipeline.keys
smoke-client` (the client secret from stdin, a token obtained before anything is stored)."""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from configuration.loader import parse_config
from pipeline import keys
from pipeline.smoke_credentials import CredentialsError, fetch_token, read_smoke_secret, smoke_headers
from tests.configuration.test_config import with_changes

JWT = {"type": "jwt", "issuer": "https://idp.example/pool", "jwks_url": "https://idp.example/pool/jwks.json"}


class TokenEndpoint(BaseHTTPRequestHandler):
    """An OAuth 2.0 token endpoint: client `smoke` with secret `s3cret` gets a token for scope `models/invoke`."""

    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        client = base64.b64decode(self.headers["Authorization"].removeprefix("Basic ")).decode()
        TokenEndpoint.seen.append({"form": form, "client": client})
        if client != "smoke:s3cret" or form.get("grant_type") != "client_credentials":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"access_token": f"token-for-{form.get('scope')}", "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def token_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    TokenEndpoint.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/oauth2/token"
    server.shutdown()


@pytest.fixture
def config():
    return parse_config(with_changes(
        environments={"staging": {"vpc_cidr": "10.10.0.0/16",
                                  "domain": {"name": "models.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ"}},
                      "prod": {"vpc_cidr": "10.20.0.0/16", "domain": {"name": "prod.example.com",
                                                                       "hosted_zone_id": "Z0123456789ABCDEFGHIJ"}}},
        endpoints={"a": {"path": "/a/*", "auth": JWT}, "b": {"path": "/b/*"}}), "test.yaml")


@pytest.fixture
def secrets(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name="mlops/staging/a/smoke-key")  # as the endpoint stack of a JWT endpoint leaves it
        yield client


def test_a_jwt_endpoint_s_smoke_test_calls_with_a_token_from_its_client(secrets, config, token_url):
    with pytest.raises(CredentialsError, match="no OAuth client in mlops/staging/a/smoke-key for the smoke test of "
                                               "JWT endpoint a in staging: store one with `python -m pipeline.keys "
                                               "smoke-client --env staging --endpoint a"):
        smoke_headers(secrets, config, "staging", "a")
    # Stored as `smoke-client` stores it (its https rule is checked in the next test; this endpoint is plain HTTP).
    client = {"token_url": token_url, "client_id": "smoke", "client_secret": "s3cret", "scope": "models/invoke"}
    secrets.put_secret_value(SecretId="mlops/staging/a/smoke-key", SecretString=json.dumps(client))
    assert smoke_headers(secrets, config, "staging", "a") == {"Authorization": "Bearer token-for-models/invoke"}
    assert TokenEndpoint.seen[-1] == {"form": {"grant_type": "client_credentials", "scope": "models/invoke"},
                                      "client": "smoke:s3cret"}
    assert smoke_headers(secrets, config, "staging", "b") == {}  # auth.type none
    with pytest.raises(CredentialsError, match="refused client smoke \\(401\\): check the client id, secret and"):
        fetch_token({**client, "client_secret": "wrong"})


def test_smoke_client_stores_the_client_only_once_a_token_was_obtained(secrets, config, token_url, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    def argv(url: str) -> list[str]:
        return ["smoke-client", "--env", "staging", "--endpoint", "a", "--token-url", url, "--client-id", "smoke",
                "--scope", "models/invoke"]

    with pytest.raises(keys.KeysError, match="--token-url must be an https:// URL"):
        keys.run(argv(token_url), secrets, config)
    assert read_smoke_secret(secrets, "mlops/staging/a/smoke-key") == {}
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    https_url = token_url.replace("http://", "https://")
    with pytest.raises(keys.KeysError, match="no token from https://127.0.0.1"):  # our endpoint speaks no TLS
        keys.run(argv(https_url), secrets, config)
    assert read_smoke_secret(secrets, "mlops/staging/a/smoke-key") == {}
    with pytest.raises(keys.KeysError, match="endpoint b in staging has auth.type none: smoke-client is for JWT"):
        keys.run(["smoke-client", "--env", "staging", "--endpoint", "b", "--token-url", https_url, "--client-id",
                  "x"], secrets, config)


def test_a_client_that_obtains_a_token_is_stored_for_the_smoke_step(secrets):
    from pipeline.smoke_credentials import store_smoke_client

    asked = []

    def fetch(request):
        asked.append(request.full_url)
        return io.BytesIO(json.dumps({"access_token": "t", "expires_in": 3600}).encode())

    lasts = store_smoke_client(secrets, "mlops/staging/a/smoke-key", "https://idp.example/oauth2/token", "smoke",
                               "s3cret", "models/invoke", fetch=fetch)
    assert lasts == 3600 and asked == ["https://idp.example/oauth2/token"]
    assert read_smoke_secret(secrets, "mlops/staging/a/smoke-key") == {
        "token_url": "https://idp.example/oauth2/token", "client_id": "smoke", "client_secret": "s3cret",
        "scope": "models/invoke"}
