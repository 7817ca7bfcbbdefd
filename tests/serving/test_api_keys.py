"""API keys, checked by the server as a real process: missing, wrong, revoked and valid keys in both headers, health
paths open, a key set replaced from Secrets Manager (moto's server) under load with no failed request for a valid key,
and neither key nor header in the logs or the captures."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import auth
from serving.contract import key_set_document, new_api_key, read_key_set, stored_api_key
from tests.support.repository_copy import free_port
from tests.support.serving_data import infer_body
from tests.support.serving_process import Load, Server

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def secrets_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def secrets(secrets_endpoint: str, monkeypatch):
    import boto3

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": secrets_endpoint}.items():
        monkeypatch.setenv(name, value)
    return boto3.client("secretsmanager")


def key_set(*keys: str) -> str:
    return key_set_document(stored_api_key(key, name=f"key-{index}") for index, key in enumerate(keys))


def infer(server: Server, headers: dict[str, str]) -> tuple[int, dict, dict[str, str]]:
    return server.exchange("POST", "/v2/models/example/infer", infer_body(), headers)


def test_keys_are_checked_in_both_headers_and_health_paths_stay_open(models_dir: Path, tmp_path: Path):
    valid, other = new_api_key(), new_api_key()
    server = Server(models_dir, tmp_path / "capture", SERVING_API_KEYS=key_set(valid),
                    SERVING_HEALTH_PATH="/a/health", SERVING_ROUTE_PREFIX="/a")
    try:
        server.wait_ready()
        for path in ("/v2/health/ready", "/v2/health/live", "/a/v2/health/ready", "/a/health"):
            assert server.request("GET", path)[0] == 200, path
        assert infer(server, {"Authorization": f"Bearer {valid}"})[0] == 200
        assert infer(server, {"x-api-key": valid})[0] == 200
        assert infer(server, {"authorization": f"bearer {valid}"})[0] == 200  # the scheme is case-insensitive
        assert server.request("GET", "/a/status", headers={"x-api-key": valid})[0] == 200

        status, body, headers = infer(server, {})
        assert status == 401 and "API key is required" in body["error"]
        assert headers["www-authenticate"] == 'Bearer realm="ecs-mlops"'
        for wrong in (other, valid[:-1] + ("A" if valid[-1] != "A" else "B"), "not-a-key", f"Basic {valid}"):
            status, body, headers = infer(server, {"Authorization": wrong if " " in wrong else f"Bearer {wrong}"})
            assert status == 401 and set(body) == {"error"}, wrong
        status, body, headers = infer(server, {"x-api-key": other})
        assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]
        for path in ("/status", "/v2/models/example", "/docs", "/openapi.json", "/predict"):
            assert server.request("GET", path)[0] == 401, path
    finally:
        server.stop()


def test_a_key_set_replaced_in_the_secret_takes_effect_under_load_without_a_failed_request(
        secrets, models_dir: Path, tmp_path: Path):
    kept, revoked, added = new_api_key(), new_api_key(), new_api_key()
    arn = secrets.create_secret(Name="mlops/staging/a/api-keys", SecretString=key_set(kept, revoked))["ARN"]
    server = Server(models_dir, tmp_path / "capture", SERVING_API_KEYS=key_set(kept, revoked),
                    SERVING_API_KEYS_SECRET=arn, SERVING_API_KEYS_REFRESH_SECONDS="0.5",
                    SERVING_ACCESS_LOG="true", SERVING_LOG_LEVEL="DEBUG", SERVING_METRICS_INTERVAL_SECONDS="1")
    try:
        server.wait_ready()
        assert infer(server, {"x-api-key": revoked})[0] == 200
        assert infer(server, {"x-api-key": added})[0] == 401
        with Load(server, threads=3, headers={"Authorization": f"Bearer {kept}"}) as load:
            assert load.wait_for(lambda: len(load.acknowledged) > 50)
            secrets.put_secret_value(SecretId=arn, SecretString=key_set(kept, added))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and infer(server, {"x-api-key": added})[0] != 200:
                time.sleep(0.1)
            assert infer(server, {"x-api-key": added})[0] == 200
            assert infer(server, {"x-api-key": revoked})[0] == 401
            secrets.put_secret_value(SecretId=arn, SecretString="{not json")  # a bad version keeps the set in hand
            time.sleep(1.5)
            assert infer(server, {"x-api-key": added})[0] == 200
            count = len(load.acknowledged)
            assert load.wait_for(lambda: len(load.acknowledged) > count + 50)
        assert load.errors == [] and set(load.statuses) == {200}, (load.statuses, load.errors[:3])
    finally:
        server.stop()
    output = server.output()
    captured = "".join(path.read_text() for path in (tmp_path / "capture").rglob("*.jsonl"))
    assert '"AuthenticatedRequests"' in output and '"KeyId":"' + kept.split("_")[1] + '"' in output
    assert '"Unauthorized"' in output and "API key set not refreshed" in output
    assert captured and "POST /v2/models/example/infer" in output  # the access log ran
    for secret in (kept, revoked, added, kept.split("_", 2)[2]):
        assert secret not in output and secret not in captured
    assert "Bearer" not in output and "Bearer" not in captured and "x-api-key" not in captured


def test_every_check_is_one_constant_time_comparison_and_a_proven_key_is_forgotten_with_its_set(monkeypatch):
    """Constant time: unknown ids, wrong keys and a valid key each make exactly one comparison of full-length digests
    with hmac.compare_digest (never `==`, which stops at the first differing character); once proven, a key is
    compared with itself (one comparison, no digest), also when a wrong secret names its id; a replaced set starts
    again from digests, and a key revoked by the replacement is refused."""
    valid = new_api_key()
    keys = auth.ApiKeys(read_key_set(key_set(valid)))
    compared: list[tuple[int, int]] = []
    original = hmac.compare_digest

    def compare_digest(left: str, right: str) -> bool:
        compared.append((len(left), len(right)))
        return original(left, right)

    monkeypatch.setattr(auth.hmac, "compare_digest", compare_digest)
    unknown_id = new_api_key()
    wrong_secret = valid[:-4] + ("aaaa" if valid[-4:] != "aaaa" else "bbbb")
    assert [keys.check(key.encode()) for key in (unknown_id, wrong_secret, "garbage", valid)] == [
        None, None, None, valid.split("_")[1]]
    assert compared == [(32, 32)] * 4  # SHA-256 digests, as bytes

    compared.clear()
    assert [keys.check(key.encode()) for key in (valid, wrong_secret)] == [valid.split("_")[1], None]
    assert compared == [(len(valid), len(valid))] * 2  # the proven key, no digest

    compared.clear()
    keys.replace(read_key_set(key_set(valid)))
    assert keys.check(valid.encode()) == valid.split("_")[1] and compared == [(32, 32)]
    keys.replace(read_key_set(key_set(new_api_key())))
    assert keys.check(valid.encode()) is None


def test_make_serve_key_set_helper_refuses_a_key_of_another_format(capsys):
    assert auth.main(["keyset", "hunter2"]) == 2
    assert "error: API_KEY: not an API key of this project" in capsys.readouterr().err
    key = new_api_key()
    assert auth.main(["keyset", key]) == 0
    document = json.loads(capsys.readouterr().out)
    assert key not in json.dumps(document) and document["keys"][0]["last4"] == key[-4:]


def test_the_key_set_is_not_read_again_once_the_server_is_shutting_down():
    """A draining server keeps the set in hand: when a stack is destroyed, ECS stops its tasks and Terraform deletes
    the task role's policy while they drain; a refresh then would be a call the account refuses."""
    import asyncio

    from serving.auth import ApiKeys, KeySetRefresher

    calls = []
    draining = {"now": False}

    class Secrets:
        def get_secret_value(self, SecretId):  # noqa: N803 - boto3's spelling
            calls.append(SecretId)
            draining["now"] = len(calls) == 2  # SIGTERM arrives between the second and third refresh
            return {"SecretString": key_set(new_api_key())}

    refresher = KeySetRefresher(ApiKeys({}), "mlops/staging/a/api-keys", 0.01, Secrets(),
                                stopping=lambda: draining["now"])
    asyncio.run(asyncio.wait_for(refresher.run(), timeout=5))  # returns: it stops by itself
    assert calls == ["mlops/staging/a/api-keys"] * 2
