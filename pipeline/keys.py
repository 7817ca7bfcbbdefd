"""An endpoint's API keys: `python -m pipeline.keys create | list | revoke --env E --endpoint N`.

    create   make a key, store its salted digest in the endpoint's key set and print the key once (it is not kept
             anywhere; store it where the client keeps secrets)
    list     the keys of the set: id, name, last four characters, creation time
    revoke   remove a key by its id
    smoke-client  for a JWT endpoint: store the OAuth client (token URL, client id, the secret read from stdin)
             the pipeline's smoke test gets its tokens with; a token is obtained first, to prove the client works

The key set is the endpoint's Secrets Manager secret (`<project>/<env>/<endpoint>/api-keys`), created by the endpoint
stack of an endpoint with `auth.type: api_key`; running servers read it again every 30 seconds, so a new or revoked
key takes effect within a minute, with no restart. Every change is a compare-and-swap on the secret's current version:
a change another operator made at the same moment is read again and kept, never overwritten.

The deploy step issues the key the pipeline's smoke test calls with (`ensure_smoke_key`): a key named `smoke`, whose
value only the smoke step can read.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from configuration import MlopsConfig, load_config
from configuration.resolved import resolve_endpoint
from pipeline.commands import run_operator_command
from serving.contract import StoredApiKey, key_set_document, new_api_key, read_key_set, stored_api_key

SMOKE_KEY_NAME = "smoke"
ATTEMPTS = 5
PENDING_LABEL = "KEYS_PENDING"
"""Marks a key set version written and not yet current (not AWSPENDING, which belongs to rotation)."""


class KeysError(Exception):
    """A clear, user-facing reason the command cannot go on."""


@dataclass(frozen=True)
class KeySetSecret:
    environment: str
    endpoint: str
    key_set: str
    """The secret holding the key set (name)."""
    smoke_key: str


def key_set_secret(config: MlopsConfig, environment: str, endpoint: str) -> KeySetSecret:
    if environment not in config.environments:
        raise KeysError(f"unknown environment {environment!r}; configured: {', '.join(config.environments)}")
    if endpoint not in config.endpoints:
        raise KeysError(f"unknown endpoint {endpoint!r}; configured: {', '.join(config.endpoints) or 'none'}")
    auth = config.endpoint_for(environment, endpoint).auth.type
    if auth != "api_key":
        raise KeysError(f"endpoint {endpoint} in {environment} has auth.type {auth}, so it has no API keys; set "
                        f"endpoints.{endpoint}.auth.type: api_key and deploy first")
    resolved = resolve_endpoint(config, environment, endpoint)
    return KeySetSecret(environment, endpoint, resolved.api_keys_secret_name, resolved.smoke_key_secret_name)


def _read(secrets: Any, where: KeySetSecret) -> tuple[dict[str, StoredApiKey], str]:
    """The key set and the id of the version it was read from (AWSCURRENT's)."""
    try:
        answer = secrets.get_secret_value(SecretId=where.key_set)
    except secrets.exceptions.ResourceNotFoundException:
        raise KeysError(f"no key set {where.key_set} in this account: deploy the {where.environment} endpoint "
                        f"stack of {where.endpoint} first (it creates it)") from None
    try:
        return read_key_set(answer["SecretString"]), answer["VersionId"]
    except ValueError as exc:
        raise KeysError(f"the key set {where.key_set} is not readable ({exc}); restore a previous version with "
                        "`aws secretsmanager update-secret-version-stage`") from None


def read_keys(secrets: Any, where: KeySetSecret) -> dict[str, StoredApiKey]:
    return _read(secrets, where)[0]


def _change(secrets: Any, where: KeySetSecret, edit: Any) -> dict[str, StoredApiKey]:
    """Apply `edit` (keys -> keys) as a compare-and-swap: the new version is written under a label of its own, then
    AWSCURRENT moves to it only if it is still on the version that was read (Secrets Manager refuses the move
    otherwise). A change another operator made meanwhile is read again and kept, never overwritten."""
    for _ in range(ATTEMPTS):
        keys, read_version = _read(secrets, where)
        changed = edit(keys)
        written = secrets.put_secret_value(SecretId=where.key_set, SecretString=key_set_document(changed.values()),
                                           VersionStages=[PENDING_LABEL])["VersionId"]
        try:
            secrets.update_secret_version_stage(SecretId=where.key_set, VersionStage="AWSCURRENT",
                                                MoveToVersionId=written, RemoveFromVersionId=read_version)
        except secrets.exceptions.InvalidParameterException:
            continue  # AWSCURRENT moved since the read: another change landed first
        return changed
    raise KeysError(f"the key set {where.key_set} kept changing under this command ({ATTEMPTS} attempts); run it "
                    "again")


def create_key(secrets: Any, where: KeySetSecret, name: str = "",
               now: datetime | None = None) -> tuple[str, StoredApiKey]:
    key = new_api_key()
    stored = stored_api_key(key, name=name, created=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _change(secrets, where, lambda keys: {**keys, stored.key_id: stored})
    return key, stored


def revoke_key(secrets: Any, where: KeySetSecret, key_id: str) -> StoredApiKey:
    keys = read_keys(secrets, where)
    if key_id not in keys:
        known = ", ".join(sorted(keys)) or "none"
        raise KeysError(f"no key {key_id!r} in {where.key_set} (its keys: {known}); `list` shows them")
    revoked = keys[key_id]
    _change(secrets, where, lambda current: {k: v for k, v in current.items() if k != key_id})
    return revoked


def ensure_smoke_key(secrets: Any, where: KeySetSecret) -> str:
    """The smoke test's key: kept while the set holds a key named `smoke`, else a new one, stored for the smoke step
    first and then swapped into the set in place of any older one (the set never holds a key nobody can use). The
    deploy step issues it without reading it back: only the smoke step may read the smoke key."""
    if any(entry.name == SMOKE_KEY_NAME for entry in read_keys(secrets, where).values()):
        return "kept"
    key = new_api_key()
    secrets.put_secret_value(SecretId=where.smoke_key, SecretString=json.dumps({"key": key}))
    stored = stored_api_key(key, name=SMOKE_KEY_NAME, created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _change(secrets, where, lambda current: {
        **{key_id: entry for key_id, entry in current.items() if entry.name != SMOKE_KEY_NAME}, stored.key_id: stored})
    return "issued"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.keys", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("create", "list", "revoke", "smoke-client"):
        sub = commands.add_parser(command)
        sub.add_argument("--env", required=True, help="environment, as in the configuration")
        sub.add_argument("--endpoint", required=True, help="endpoint, as in the configuration")
        if command == "create":
            sub.add_argument("--name", default="", help="who the key is for, shown by `list`")
        if command == "revoke":
            sub.add_argument("key_id", help="the key's id (`list` shows it; the 8 characters after `ek_`)")
        if command == "smoke-client":
            sub.add_argument("--token-url", required=True, help="the issuer's OAuth 2.0 token endpoint (https)")
            sub.add_argument("--client-id", required=True, help="an app client allowed the client-credentials flow")
            sub.add_argument("--scope", default="", help="the scope(s) the endpoint's claims require")
        sub.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def run(argv: list[str], secrets: Any = None, config: MlopsConfig | None = None) -> str:
    """What one command prints (text, or JSON with --format json)."""
    args = _parser().parse_args(argv)
    text, result = _run(args, secrets, config)
    return json.dumps(result, indent=2) if args.format == "json" else text


def _run(args: argparse.Namespace, secrets: Any, config: MlopsConfig | None) -> tuple[str, dict[str, Any]]:
    config = config or load_config()
    if args.command == "smoke-client":
        return _smoke_client(args, secrets, config)
    where = key_set_secret(config, args.env, args.endpoint)
    secrets = secrets or _secrets_of(config, args.env)
    if args.command == "create":
        key, stored = create_key(secrets, where, args.name)
        text = (f"{key}\n\nkey {stored.key_id} of endpoint {args.endpoint} in {args.env}: shown once, store it now. "
                "Running servers accept it within a minute.\nCall with: Authorization: Bearer <key>  (or x-api-key)")
        return text, {"key": key, **_listed(stored)}
    if args.command == "revoke":
        revoked = revoke_key(secrets, where, args.key_id)
        return (f"revoked key {revoked.key_id} (…{revoked.last4}); running servers refuse it within a minute",
                {"revoked": _listed(revoked)})
    keys = sorted(read_keys(secrets, where).values(), key=lambda entry: entry.created)
    lines = [f"{'id':<10}{'name':<20}{'ends with':<11}created"] + [
        f"{entry.key_id:<10}{entry.name or '-':<20}{'…' + entry.last4:<11}{entry.created or '-'}" for entry in keys]
    return "\n".join(lines) if keys else f"no keys in {where.key_set}", {"keys": [_listed(entry) for entry in keys]}


def _secrets_of(config: MlopsConfig, environment: str) -> Any:
    from pipeline import preflight
    from pipeline.aws import environment_session, pipeline_session

    preflight.check(config, pipeline_session(config), [environment])
    return environment_session(config, environment).client("secretsmanager")


def _smoke_client(args: argparse.Namespace, secrets: Any, config: MlopsConfig) -> tuple[str, dict[str, Any]]:
    """Store the OAuth client the smoke test of a JWT endpoint gets its tokens with (the secret read from stdin,
    never from the command line)."""
    from pipeline.smoke_credentials import CredentialsError, store_smoke_client

    if args.env not in config.environments or args.endpoint not in config.endpoints:
        raise KeysError(f"unknown environment or endpoint: {args.env}/{args.endpoint}")
    auth = config.endpoint_for(args.env, args.endpoint).auth.type
    if auth != "jwt":
        raise KeysError(f"endpoint {args.endpoint} in {args.env} has auth.type {auth}: smoke-client is for JWT "
                        "endpoints (the deploy step issues an api_key endpoint's smoke key)")
    name = resolve_endpoint(config, args.env, args.endpoint).smoke_key_secret_name
    client_secret = _read_client_secret()
    try:
        lasts = store_smoke_client(secrets or _secrets_of(config, args.env), name, args.token_url, args.client_id,
                                   client_secret, args.scope)
    except CredentialsError as exc:
        raise KeysError(str(exc)) from None
    return (f"stored the smoke test's OAuth client {args.client_id} in {name} (a token was obtained with it, valid "
            f"{lasts} s)", {"secret": name, "client_id": args.client_id, "token_seconds": lasts})


def _read_client_secret() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("client secret: ")
    return sys.stdin.readline().strip()


def _listed(entry: StoredApiKey) -> dict[str, str]:
    return {"id": entry.key_id, "name": entry.name, "last4": entry.last4, "created": entry.created}


def main(argv: list[str] | None = None) -> int:
    return run_operator_command(lambda: run(sys.argv[1:] if argv is None else argv), (KeysError,))


if __name__ == "__main__":
    sys.exit(main())
