"""Can this principal do that? IAM's evaluation of a request within one account, as AWS documents it ("Policy
evaluation logic" and "Policy evaluation for requests within a single account" in the IAM User Guide), for the part
of the policy language the stacks use. The delivery roles' tests ask it the question a reviewer would ask, and the
rehearsal's emulated account asks it before serving every call (tests/rehearsal/authorization.py).

The order, as documented (organizations' SCPs/RCPs and session policies are not used here):
1. an explicit Deny in any applicable policy (identity, boundary, resource) decides: denied;
2. a resource-based policy that allows the request for the caller's role *session* ARN decides: allowed, whatever the
   identity policies and the boundary say; one that allows it for the *role* ARN (or "*") allows it only within the
   boundary (implicit denies of a boundary limit grants to a role ARN, not to a session ARN);
3. otherwise an identity policy must allow it, and the permissions boundary (where the role has one) too;
4. KMS is the documented exception: a key policy must allow the request itself, or allow the account (its root
   principal) for it, before any identity policy counts.

Supported: Action/NotAction, Resource/NotResource (wildcards within each ARN component), Principal ("*", AWS and
Service), and the condition operators String*, Arn*, Bool, Null, Numeric*, with `IfExists` and the
ForAnyValue:/ForAllValues: set operators. A key missing from the request fails a positive operator and satisfies a
negated one; with `...IfExists` it satisfies both. Anything else raises, so a policy this cannot read fails loudly
instead of passing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
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
    (wildcards on the reference, e.g. `data.aws_caller_identity.*.account_id`)."""
    def value_of(match: re.Match[str]) -> str:
        for pattern, value in values.items():
            if _wildcard(pattern, case_sensitive=True).fullmatch(match.group(1)):
                return value
        raise ValueError(f"no value for ${{{match.group(1)}}}")
    return TOKEN.sub(value_of, text)


def statements_of(policy_json: str | dict[str, Any], values: dict[str, str] | None = None) -> list[Statement]:
    """The statements of a policy document (JSON text or parsed), Terraform references resolved where given."""
    document = policy_json if isinstance(policy_json, dict) else json.loads(
        resolve(policy_json, values) if values else policy_json)
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


# --- matching ---------------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` one character; nothing else is special (unlike fnmatch)."""
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(expression, 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, bool, int, float)) else list(value)


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(_wildcard(pattern, case_sensitive=False).fullmatch(action) for pattern in patterns)


def arn_matches(pattern: str, arn: str) -> bool:
    """ARN matching as IAM does it for Resource and the Arn condition operators: component by component (partition,
    service, region, account, resource), the resource part keeping its own colons; `*` alone matches everything."""
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return _wildcard(pattern, case_sensitive=True).fullmatch(arn) is not None
    return all(_wildcard(p, case_sensitive=True).fullmatch(a) for p, a in zip(pattern_parts, arn_parts, strict=True))


# --- conditions -------------------------------------------------------------------------------------------------

def _compare(base: str, expected: str, actual: str) -> bool:
    if base in ("StringEquals", "StringNotEquals"):
        return actual == expected
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() == expected.lower()
    if base in ("StringLike", "StringNotLike"):
        return _wildcard(expected, case_sensitive=True).fullmatch(actual) is not None
    if base in ("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"):
        return arn_matches(expected, actual)
    if base == "Bool":
        return str(actual).lower() == str(expected).lower()
    if base.startswith("Numeric"):
        a, e = float(actual), float(expected)
        return {"NumericEquals": a == e, "NumericNotEquals": a == e, "NumericLessThan": a < e,
                "NumericLessThanEquals": a <= e, "NumericGreaterThan": a > e,
                "NumericGreaterThanEquals": a >= e}[base]
    raise ValueError(f"condition operator {base} is not supported here")


NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
           "NumericNotEquals"}


def condition_holds(operator: str, key: str, expected: list[Any], context: dict[str, Any]) -> bool:
    """One condition key of one operator, as IAM evaluates it: values of one key are ORed (for a negated operator:
    the value matches none of them); a multivalued key needs a set operator."""
    set_operator, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present = key in context and context[key] is not None
    if base == "Null":
        wants_absent = str(expected[0]).lower() == "true"
        return wants_absent != present
    if not present:
        if if_exists:
            return True
        if set_operator == "ForAllValues":
            return True  # the empty set: every value matches
        return base in NEGATED and set_operator != "ForAnyValue"
    negated = base in NEGATED
    actual = _listed(context[key])

    def value_matches(value: Any) -> bool:
        hit = any(_compare(base, str(e), str(value)) for e in expected)
        return not hit if negated else hit

    if set_operator == "ForAnyValue":
        return any(value_matches(v) for v in actual)
    if set_operator == "ForAllValues":
        return all(value_matches(v) for v in actual)
    if set_operator:
        raise ValueError(f"set operator {set_operator} is not supported here")
    if len(actual) != 1:
        raise ValueError(f"condition key {key} has several values: use ForAnyValue: or ForAllValues:")
    return value_matches(actual[0])


# --- statements and requests ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Caller:
    """Who makes the request: a role's session (`role_arn` and `session_arn`), an AWS service principal
    (`service`), or anyone (`anonymous`)."""

    account: str
    role_arn: str = ""
    session_arn: str = ""
    service: str = ""

    @property
    def anonymous(self) -> bool:
        return not (self.role_arn or self.service)


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """A named policy document: `name` says where it comes from in a report (e.g. `inline mlops-a-sync/policy`)."""

    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def of(cls, name: str, document: str | dict[str, Any]) -> Policy:
        return cls(name, tuple(statements_of(document)))


def statement_applies(statement: Statement, request: Request) -> bool:
    if "Action" in statement and not _action_matches(_listed(statement["Action"]), request.action):
        return False
    if "NotAction" in statement and _action_matches(_listed(statement["NotAction"]), request.action):
        return False
    if "Resource" in statement and not any(arn_matches(p, request.resource) for p in _listed(statement["Resource"])):
        return False
    if "NotResource" in statement and any(arn_matches(p, request.resource)
                                          for p in _listed(statement["NotResource"])):
        return False
    for operator, keys in statement.get("Condition", {}).items():
        for key, expected in keys.items():
            if not condition_holds(operator, key, _listed(expected), request.context):
                return False
    return True


def _principal_names(caller: Caller) -> list[tuple[str, str]]:
    """(principal kind, value) pairs a resource policy's Principal may name to mean this caller."""
    if caller.service:
        return [("Service", caller.service)]
    if caller.anonymous:
        return []
    return [("AWS", caller.role_arn), ("AWS", caller.session_arn)]


def principal_grant(statement: Statement, caller: Caller) -> str:
    """How a resource policy statement names the caller: `session`, `role`, `account` (the account's root or ID:
    delegates to the account's identity policies), `any` ("*") or "" (not at all)."""
    principal = statement.get("Principal")
    if principal is None:
        raise ValueError(f"a resource policy statement without Principal: {statement}")
    if principal == "*":
        return "any"
    for kind, values in principal.items():
        for value in _listed(values):
            if value == "*" and (kind == "AWS" or caller.service):
                return "any"
            if kind == "Service" and value == caller.service:
                return "session"  # a service principal has no boundary
            if kind == "AWS" and not caller.service and not caller.anonymous:
                if value == caller.session_arn:
                    return "session"
                if value == caller.role_arn:
                    return "role"
                if value in (caller.account, f"arn:aws:iam::{caller.account}:root"):
                    return "account"
    return ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """Why: the statement that denies (`explicit deny: <policy> <Sid>`), the one that allows, or what is missing."""


def _sid(policy: Policy, statement: Statement) -> str:
    return f"{policy.name} {statement.get('Sid') or '(statement ' + str(policy.statements.index(statement)) + ')'}"


def evaluate(request: Request, caller: Caller, identity: Iterable[Policy] = (), boundary: Policy | None = None,
             resource_policy: Policy | None = None, kms_key_policy: bool = False) -> Decision:
    """The decision for one request within one account (see the module's docstring for the order)."""
    identity = list(identity)
    resource_statements = [s for s in (resource_policy.statements if resource_policy else ())
                           if principal_grant(s, caller) and statement_applies(s, request)]
    for policy in [*identity, *([boundary] if boundary else [])]:
        for statement in policy.statements:
            if statement["Effect"] == "Deny" and statement_applies(statement, request):
                return Decision(False, f"explicit deny: {_sid(policy, statement)}")
    for statement in resource_statements:
        if statement["Effect"] == "Deny":
            return Decision(False, f"explicit deny: {_sid(resource_policy, statement)}")  # type: ignore[arg-type]
    grants = {principal_grant(s, caller): s for s in resource_statements if s["Effect"] == "Allow"}
    if "session" in grants:
        return Decision(True, f"allowed by {_sid(resource_policy, grants['session'])}")  # type: ignore[arg-type]
    if caller.service or caller.anonymous:
        allowing = grants.get("any")
        return Decision(bool(allowing), f"allowed by {_sid(resource_policy, allowing)}" if allowing  # type: ignore
                        else f"no statement of {resource_policy.name if resource_policy else 'a resource policy'} "
                             "allows it for this principal")
    if kms_key_policy and not grants:
        return Decision(False, f"the key policy ({resource_policy.name if resource_policy else 'none'}) allows "
                               "neither this role nor the account (which would let identity policies grant it)")
    identity_allow = next(((p, s) for p in identity for s in p.statements
                           if s["Effect"] == "Allow" and statement_applies(s, request)), None)
    direct = grants.get("role") or grants.get("any")
    if identity_allow is None and direct is None:
        return Decision(False, "no identity policy statement allows it"
                        + (f" ({', '.join(p.name for p in identity)})" if identity else " (the role has no policy)"))
    if boundary is not None and not any(s["Effect"] == "Allow" and statement_applies(s, request)
                                        for s in boundary.statements):
        return Decision(False, f"the permissions boundary {boundary.name} does not allow it")
    if identity_allow is not None:
        return Decision(True, f"allowed by {_sid(*identity_allow)}")
    return Decision(True, f"allowed by {_sid(resource_policy, direct)}")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Principal:
    """A role as the delivery roles' tests use it: identity statements and an optional boundary."""

    identity: list[Statement]
    boundary: list[Statement] | None = None

    def can(self, action: str, resource: str, **context: str | list[str]) -> bool:
        caller = Caller("123456789012", role_arn="arn:aws:iam::123456789012:role/tested",
                        session_arn="arn:aws:sts::123456789012:assumed-role/tested/test")
        return evaluate(Request(action, resource, dict(context)), caller,
                        [Policy("identity", tuple(self.identity))],
                        Policy("boundary", tuple(self.boundary)) if self.boundary is not None else None).allowed
