"""`python -m pipeline.keys` against moto's Secrets Manager: create prints the key once and keeps only its digest,
list shows ids and last characters, revoke removes; the deploy step's smoke key; every mistake is one line."""

from __future__ import annotations

import json

import pytest

from configuration.loader import parse_config
from pipeline import keys
from pipeline.smoke_credentials import CredentialsError, read_smoke_secret, smoke_headers
from serving.auth import ApiKeys
from serving.contract import read_key_set
from tests.configuration.test_config import with_changes
from tests.support.secrets import current_stage_moves, endpoint_secrets

REGION = "eu-west-1"


@pytest.fixture
def config():
    return parse_config(with_changes(endpoints={"a": {"path": "/a/*", "auth": {"type": "api_key"}},
                                                "b": {"path": "/b/*"}}), "test.yaml")


@pytest.fixture
def secrets(monkeypatch):
    import boto3
    from moto import mock_aws

    current_stage_moves(monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        endpoint_secrets(client, "mlops", "staging", "a")
        yield client


def stored(secrets) -> dict:
    return read_key_set(secrets.get_secret_value(SecretId="mlops/staging/a/api-keys")["SecretString"])


def test_create_prints_the_key_once_and_stores_only_its_digest(secrets, config):
    printed = keys.run(["create", "--env", "staging", "--endpoint", "a", "--name", "fraud-team", "--format", "json"],
                       secrets, config)
    created = json.loads(printed)
    key = created["key"]
    assert key.startswith("ek_") and created["name"] == "fraud-team" and created["last4"] == key[-4:]
    document = secrets.get_secret_value(SecretId="mlops/staging/a/api-keys")["SecretString"]
    assert key not in document and key.split("_", 2)[2] not in document
    assert ApiKeys(stored(secrets)).check(key.encode()) == created["id"]  # the server accepts it
    listed = keys.run(["list", "--env", "staging", "--endpoint", "a"], secrets, config)
    assert created["id"] in listed and "fraud-team" in listed and key[-4:] in listed and key not in listed


def test_revoke_removes_one_key_and_keeps_the_others(secrets, config):
    first = json.loads(keys.run(["create", "--env", "staging", "--endpoint", "a", "--format", "json"], secrets, config))
    second = json.loads(keys.run(["create", "--env", "staging", "--endpoint", "a", "--format", "json"], secrets,
                                 config))
    text = keys.run(["revoke", "--env", "staging", "--endpoint", "a", first["id"]], secrets, config)
    assert text.startswith(f"revoked key {first['id']}")
    current = ApiKeys(stored(secrets))
    assert current.check(first["key"].encode()) is None and current.check(second["key"].encode()) == second["id"]
    with pytest.raises(keys.KeysError, match=f"no key {first['id']!r} in mlops/staging/a/api-keys"):
        keys.run(["revoke", "--env", "staging", "--endpoint", "a", first["id"]], secrets, config)


def test_a_change_another_operator_made_meanwhile_is_kept(secrets, config):
    """Between this command's read and its write, another operator adds a key: the swap of AWSCURRENT is refused,
    the command reads again, and both keys end up in the set."""
    where = keys.key_set_secret(config, "staging", "a")
    original_put = secrets.put_secret_value
    theirs: list[str] = []

    def put_after_another_operator(**request):
        if not theirs:
            theirs.append("")
            secrets.put_secret_value = original_put  # the other operator's own command runs unhindered
            theirs[0], _ = keys.create_key(secrets, where, "other operator")
        return original_put(**request)

    secrets.put_secret_value = put_after_another_operator
    mine, _ = keys.create_key(secrets, where, "mine")
    current = ApiKeys(stored(secrets))
    assert current.check(mine.encode()) is not None and current.check(theirs[0].encode()) is not None


def test_the_smoke_key_is_issued_once_kept_and_reissued_after_a_revoke(secrets, config):
    where = keys.key_set_secret(config, "staging", "a")
    assert keys.ensure_smoke_key(secrets, where) == "issued"
    smoke = read_smoke_secret(secrets, where.smoke_key)["key"]
    assert ApiKeys(stored(secrets)).check(smoke.encode()) is not None
    assert keys.ensure_smoke_key(secrets, where) == "kept"
    (smoke_id,) = [key_id for key_id, entry in stored(secrets).items() if entry.name == "smoke"]
    keys.revoke_key(secrets, where, smoke_id)
    assert keys.ensure_smoke_key(secrets, where) == "issued"
    renewed = read_smoke_secret(secrets, where.smoke_key)["key"]
    assert renewed != smoke and [entry.name for entry in stored(secrets).values()] == ["smoke"]


def test_mistakes_are_one_line_naming_the_fix(secrets, config, capsys, monkeypatch):
    with pytest.raises(keys.KeysError, match="endpoint b in staging has auth.type none, so it has no API keys; set "
                                             "endpoints.b.auth.type: api_key and deploy first"):
        keys.run(["list", "--env", "staging", "--endpoint", "b"], secrets, config)
    with pytest.raises(keys.KeysError, match="no key set mlops/prod/a/api-keys in this account: deploy the prod "
                                             "endpoint stack of a first"):
        keys.run(["list", "--env", "prod", "--endpoint", "a"], secrets, config)
    with pytest.raises(keys.KeysError, match="unknown environment 'qa'"):
        keys.run(["list", "--env", "qa", "--endpoint", "a"], secrets, config)
    with pytest.raises(CredentialsError, match="no smoke key in mlops/staging/a/smoke-key: the deploy step issues it"):
        smoke_headers(secrets, config, "staging", "a")
    monkeypatch.setattr(keys, "load_config", lambda: config)
    monkeypatch.setattr(keys, "run", lambda argv: (_ for _ in ()).throw(keys.KeysError("x")))
    assert keys.main(["list", "--env", "staging", "--endpoint", "a"]) == 2
    assert capsys.readouterr().err == "error: x\n"
