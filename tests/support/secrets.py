"""Secrets Manager in moto, as AWS behaves for the key sets: moving AWSCURRENT moves what GetSecretValue returns
(moto 5.2.5 does not; tests/rehearsal/moto_shims.py), and an endpoint's secrets as its stack leaves them."""

from __future__ import annotations

from typing import Any

from serving.contract import key_set_document


def current_stage_moves(monkeypatch: Any) -> None:
    """Apply the rehearsal's shim for this test only (monkeypatch restores moto afterwards)."""
    from moto.secretsmanager.models import SecretsManagerBackend

    from tests.rehearsal import moto_shims

    monkeypatch.setattr(SecretsManagerBackend, "update_secret_version_stage",
                        SecretsManagerBackend.update_secret_version_stage)
    next(shim for shim in moto_shims.SHIMS if shim.name == "secretsmanager-current-stage").apply()


def endpoint_secrets(client: Any, project: str, environment: str, endpoint: str) -> None:
    """An empty key set and a smoke key secret without a value, as the endpoint stack creates them."""
    client.create_secret(Name=f"{project}/{environment}/{endpoint}/api-keys", SecretString=key_set_document([]))
    client.create_secret(Name=f"{project}/{environment}/{endpoint}/smoke-key")
