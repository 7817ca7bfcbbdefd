"""Can this role do that? IAM's evaluation of the policies the stacks synthesize, for the part of the policy language
they use, so tests can ask the question a reviewer would ask instead of reading statements.

A request is allowed when no statement of the identity policies or the permissions boundary denies it, and both an
identity statement and a boundary statement allow it (AWS's evaluation logic for a role with a boundary, without
resource policies, SCPs or sessions). Supported: Action/NotAction, Resource/NotResource with `*` and `?`, and the
condition operators StringEquals, StringNotEquals, StringLike, ArnEquals, ArnLike and their ForAnyValue: forms. A key
missing from the request fails a positive operator and satisfies a negated one, as in IAM. Anything else raises, so
a policy this cannot read fails the test instead of passing it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

Statement = dict[str, Any]

POWER_USER_ACCESS: list[Statement] = [
    # AWS managed policy PowerUserAccess (version 5): everything but IAM, Organizations and Account, plus these.
    {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
    {"Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                                   "organizations:DescribeOrganization", "account:ListRegions",
                                   "account:GetAccountInformation"], "Resource": "*"},
]

TOKEN = re.compile(r"\$\{([^}]+)\}")


def resolve(text: str, values: dict[str, str]) -> str:
    """Terraform references in a synthesized policy, replaced by the value of the first pattern that matches them
    (fnmatch on the reference, e.g. `data.aws_caller_identity.*.account_id`)."""
    def value_of(match: re.Match[str]) -> str:
        for pattern, value in values.items():
            if fnmatch.fnmatchcase(match.group(1), pattern):
                return value
        raise ValueError(f"no value for ${{{match.group(1)}}}")
    return TOKEN.sub(value_of, text)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(patterns: list[str], value: str, case_sensitive: bool) -> bool:
    if case_sensitive:
        return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)
    return any(fnmatch.fnmatchcase(value.lower(), pattern.lower()) for pattern in patterns)


def _condition_holds(operator: str, key: str, expected: list[str], context: dict[str, str | list[str]]) -> bool:
    any_value = operator.startswith("ForAnyValue:")
    base = operator.removeprefix("ForAnyValue:")
    negated = base in ("StringNotEquals",)
    if key not in context:
        return negated and not any_value
    actual = _listed(context[key])
    if base in ("StringEquals", "ArnEquals", "StringNotEquals"):
        found = [value in expected for value in actual]
    elif base in ("StringLike", "ArnLike"):
        found = [_matches(expected, value, case_sensitive=True) for value in actual]
    else:
        raise ValueError(f"condition operator {operator} is not supported here")
    if negated:
        return not any(found)
    return any(found) if any_value else all(found)


def _statement_applies(statement: Statement, action: str, resource: str, context: dict[str, Any]) -> bool:
    if "Action" in statement and not _matches(_listed(statement["Action"]), action, case_sensitive=False):
        return False
    if "NotAction" in statement and _matches(_listed(statement["NotAction"]), action, case_sensitive=False):
        return False
    if "Resource" in statement and not _matches(_listed(statement["Resource"]), resource, case_sensitive=True):
        return False
    if "NotResource" in statement and _matches(_listed(statement["NotResource"]), resource, case_sensitive=True):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, _listed(expected), context):
                return False
    return True


@dataclass(frozen=True)
class Principal:
    identity: list[Statement]
    boundary: list[Statement] | None = None

    def can(self, action: str, resource: str, **context: str | list[str]) -> bool:
        statements = self.identity + (self.boundary or [])
        if any(s["Effect"] == "Deny" and _statement_applies(s, action, resource, context) for s in statements):
            return False
        allowed = any(s["Effect"] == "Allow" and _statement_applies(s, action, resource, context)
                      for s in self.identity)
        if self.boundary is not None:
            allowed = allowed and any(s["Effect"] == "Allow" and _statement_applies(s, action, resource, context)
                                      for s in self.boundary)
        return allowed


def statements_of(policy_json: str, values: dict[str, str]) -> list[Statement]:
    return json.loads(resolve(policy_json, values))["Statement"]
