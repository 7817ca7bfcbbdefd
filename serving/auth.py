"""API keys in the server: every route but the health checks needs a key of the endpoint's key set.

The key set (serving/contract.py: salted digests, never keys) comes from `SERVING_API_KEYS` at start (ECS `secrets`)
and, when `SERVING_API_KEYS_SECRET` names its secret, is read again every refresh interval and replaced whole: a new
or revoked key takes effect within the interval, with no restart and no request refused on the way. A failed read
keeps the set it has.

A key is accepted from `Authorization: Bearer <key>` or `x-api-key: <key>`. The first request with a key pays one
salted SHA-256; the set then remembers that key, in memory only and until the set is next replaced, and compares
later requests with it directly. Every comparison takes the same time however much of the secret matches; what
timing can tell is only whether a key id (not secret: it is listed and published in the metrics) was used since
the last refresh. Neither the key nor the header is logged, captured or passed on; a refusal is 401 with
`WWW-Authenticate` and the Open Inference Protocol's error body.

`python -m serving.auth new` prints a fresh key; `python -m serving.auth keyset KEY...` prints a key set holding
those keys (`make serve API_KEY=...` serves with one).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import sys
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.contract import (
    API_KEY_ID_LENGTH,
    API_KEY_PREFIX,
    LIVENESS_PATH,
    READINESS_PATH,
    StoredApiKey,
    key_set_document,
    new_api_key,
    read_key_set,
    stored_api_key,
)
from serving.http import error_payload
from serving.metrics import Metrics

log = logging.getLogger("serving.auth")
REALM = "ecs-mlops"
_KEY_START = f"{API_KEY_PREFIX}_".encode()
_ID_START, _ID_END = len(_KEY_START), len(_KEY_START) + API_KEY_ID_LENGTH
_UNKNOWN = StoredApiKey("", "00" * 16, "0" * 64, "")
"""Compared against when a key names no stored id, so that case costs what a wrong key costs."""


class _Verifier:
    """One stored key, ready to check: SHA-256 already fed its salt (copied per check), the digest as bytes, and
    the key itself once a request has proven it (`verified`)."""

    __slots__ = ("key_id", "salted", "digest", "verified")

    def __init__(self, stored: StoredApiKey):
        self.key_id = stored.key_id
        self.salted = hashlib.sha256(bytes.fromhex(stored.salt))
        self.digest = bytes.fromhex(stored.digest)
        self.verified: bytes | None = None

    def matches(self, presented: bytes) -> bool:
        # Measured in process between inferences (bench/serving/key_check.py): the check added 7.6 us a request
        # with a digest each time, 4.3 us once a proven key skips it (README, "What API keys cost").
        if self.verified is not None:
            return hmac.compare_digest(presented, self.verified)
        hashed = self.salted.copy()
        hashed.update(presented)
        if not hmac.compare_digest(hashed.digest(), self.digest):
            return False
        self.verified = presented
        return True


class ApiKeys:
    """The endpoint's current key set; `replace` swaps it whole (one reference assignment: readers never see half).
    Works on the header's bytes: no decoding on the way of every request."""

    def __init__(self, keys: dict[str, StoredApiKey]):
        self._unknown = _Verifier(_UNKNOWN)
        self._verifiers = self._prepare(keys)

    @staticmethod
    def _prepare(keys: dict[str, StoredApiKey]) -> dict[bytes, _Verifier]:
        return {key_id.encode(): _Verifier(stored) for key_id, stored in keys.items()}

    def replace(self, keys: dict[str, StoredApiKey]) -> None:
        self._verifiers = self._prepare(keys)

    def check(self, presented: bytes) -> str | None:
        """The id of the key `presented` is, or None. A key not yet proven costs one salted SHA-256 and one
        constant-time comparison whether its id is known or not (the work of `serving.contract.api_key_digest`,
        with the salt hashed once); a proven one, one constant-time comparison with itself."""
        # The id sits at a fixed place (`ek_<id>_...`); anything else finds no verifier, as in api_key_id.
        verifier = self._verifiers.get(presented[_ID_START:_ID_END] if presented.startswith(_KEY_START) else b"",
                                       self._unknown)
        if verifier is self._unknown:
            self._unknown.matches(presented)  # the work a known key not yet proven costs
            return None
        return verifier.key_id if verifier.matches(presented) else None


def presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries, from `Authorization: Bearer` or `x-api-key` (ASGI header names are lower case)."""
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() == b"bearer " and (credentials := value[7:].strip()):
                return credentials
        elif name == b"x-api-key" and (credentials := value.strip()):
            return credentials
    return None


class RequireApiKey:
    """ASGI middleware in front of the app: health paths pass, everything else needs a valid key."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, metrics: Metrics, open_paths: set[str]):
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
        elif (refusal := self.refusal(scope["headers"])) is not None:
            await refuse(send, refusal)
        else:
            await self.app(scope, receive, send)

    def refusal(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """None when the request carries a valid key (its use counted), else why not: "missing" or "invalid", for
        `refuse`. The inference fast path calls this itself (serving/app.py), so its requests pass no extra ASGI
        layer; a plain function, not a coroutine, since nothing here waits."""
        presented = presented_key(headers)
        key_id = self.keys.check(presented) if presented is not None else None
        if key_id is None:
            self.metrics.record_unauthorized()
            return "missing" if presented is None else "invalid"
        self.metrics.record_key_use(key_id)
        return None


async def refuse(send: Send, why: str) -> None:
    """Answers 401 for the `refusal` `why`."""
    if why == "missing":
        message = "an API key is required: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
        challenge = f'Bearer realm="{REALM}"'
    else:
        message = "the API key is not valid for this endpoint (unknown or revoked)"
        challenge = f'Bearer realm="{REALM}", error="invalid_token"'
    status, body = error_payload(401, message)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", challenge.encode())]})
    await send({"type": "http.response.body", "body": body})


def open_paths(health_path: str, prefix: str) -> set[str]:
    """The paths the load balancer and the container health check probe, as they look once the route prefix is
    stripped (a health path under the prefix arrives without it)."""
    paths = {LIVENESS_PATH, READINESS_PATH, health_path}
    if prefix and health_path.startswith(prefix + "/"):
        paths.add(health_path[len(prefix):])
    return paths


class KeySetRefresher:
    """Reads the key set from its Secrets Manager secret every `interval` seconds (with the task role), until the
    server is shutting down: a draining server serves its last requests with the set in hand, and makes no call that
    a stack being destroyed (its role's policy already gone) would refuse."""

    def __init__(self, keys: ApiKeys, secret_id: str, interval: float, client: Any = None,
                 stopping: Callable[[], bool] = lambda: False):
        self.keys = keys
        self.secret_id = secret_id
        self.interval = interval
        self.stopping = stopping
        self._client = client
        self._failing = False

    def refresh_once(self) -> bool:
        try:
            if self._client is None:
                import boto3

                self._client = boto3.client("secretsmanager")
            text = self._client.get_secret_value(SecretId=self.secret_id)["SecretString"]
            self.keys.replace(read_key_set(text))
        except Exception as exc:  # the set in hand stays; the next interval tries again
            if not self._failing:
                log.warning("API key set not refreshed; keeping the current one",
                            extra={"fields": {"secret": self.secret_id, "error": type(exc).__name__}})
            self._failing = True
            return False
        if self._failing:
            log.info("API key set refreshed again", extra={"fields": {"secret": self.secret_id}})
        self._failing = False
        return True

    async def run(self) -> None:
        while not self.stopping():
            await asyncio.to_thread(self.refresh_once)
            await asyncio.sleep(self.interval)


def main(argv: list[str]) -> int:
    if argv[:1] == ["new"] and len(argv) == 1:
        print(new_api_key())
        return 0
    if argv[:1] == ["keyset"] and len(argv) > 1:
        try:
            print(key_set_document(stored_api_key(key, name="local") for key in argv[1:]))
        except ValueError as exc:
            print(f"error: API_KEY: {exc}; make one with `python -m serving.auth new`", file=sys.stderr)
            return 2
        return 0
    print("usage: python -m serving.auth new | keyset KEY [KEY ...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
