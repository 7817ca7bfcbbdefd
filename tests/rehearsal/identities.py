"""The rehearsal's side of the emulated account's gate (tests/rehearsal/authorization.py): services assuming their
roles, the checks a service makes inside AWS on a role's behalf, and the decisions so far."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class AccessDenied(RuntimeError):
    """A check the emulated account refused: the message names the role, the action, the resource and why."""


class Identities:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the emulator, 127.0.0.1
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
            raise AccessDenied(answer.get("denied") or f"{path}: HTTP {error.code}") from None

    def assume(self, role_arn: str, service: str, source_arn: str = "") -> dict[str, str]:
        """`service` assumes `role_arn` (its trust policy must allow it): AccessKeyId, SecretAccessKey,
        SessionToken."""
        return self._post("/_rehearsal/assume", {"role_arn": role_arn, "service": service, "source_arn": source_arn})

    def authorize(self, credentials: dict[str, str], checks: list[dict[str, Any]]) -> None:
        """Checks AWS makes inside a service for the role of `credentials` (each: action, resource, context,
        implied); raises AccessDenied naming the first refused."""
        answer = self._post("/_rehearsal/authorize", {"access_key": credentials["AccessKeyId"], "checks": checks})
        if answer.get("denied"):
            raise AccessDenied(answer["denied"])

    def authorize_service(self, service: str, checks: list[dict[str, Any]]) -> None:
        """Checks of a service principal acting on its own (e.g. `s3.amazonaws.com` sending an event to a queue),
        decided by the resource's policy alone; raises AccessDenied naming the first refused."""
        answer = self._post("/_rehearsal/authorize", {"service": service, "checks": checks})
        if answer.get("denied"):
            raise AccessDenied(answer["denied"])

    def policies(self) -> dict[str, Any]:
        """Every role's identity policies and boundary as the account holds them now."""
        with urllib.request.urlopen(f"{self.endpoint}/_rehearsal/policies", timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def report(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_rehearsal/authorization", timeout=30) as response:  # noqa: S310
            return json.loads(response.read())
