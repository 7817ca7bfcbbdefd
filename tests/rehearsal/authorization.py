"""Every call the emulated account receives, authorized as AWS would before it is served.

Who calls: the access key of the request. `administrator` is the key the README's operator uses (bootstrap, model
promotion, teardown: AdministratorAccess); `control-plane` is the rehearsal's own stand-ins reading what AWS's
services read about themselves (the ECS scheduler, EventBridge, the load balancer) and its observer; both are allowed
and counted. Every other key belongs to a role session made by STS: a service assumes its role first
(`assume_as_service`: the role's trust policy must allow that service), as CodeBuild does for a project, ECS for a
task or its agent, EventBridge and Scheduler for their targets.

What is evaluated: the call's checks (tests/rehearsal/iam_requests.py) against the role's identity policies (inline,
customer managed and AWS managed, as moto holds them), its permissions boundary, and the resource's own policy
(S3 bucket, KMS key, SNS topic, SQS queue, ECR repository, EFS file system, Secrets Manager secret; a role's trust
policy for sts:AssumeRole), with tests/support/iam_evaluation.py. Each decision is written to a JSON-lines log; a
denied call is answered as AWS answers it (AccessDenied, naming the role, the action, the resource and why).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.rehearsal.iam_requests import Account, Check
from tests.support.iam_evaluation import Caller, Decision, Policy, Request, evaluate

ADMINISTRATOR_KEY = "testing"
CONTROL_PLANE_KEY = "rehearsal-control-plane"
FREE_ACTIONS = {"sts:GetCallerIdentity"}
"""Actions AWS answers for any authenticated caller, whatever its policies say."""
EXPECTED_DENIALS = {
    "iam:GetUser": "Terraform's AWS provider and S3 backend (aws-sdk-go-base) ask iam:GetUser for the account ID "
                   "first and use sts:GetCallerIdentity when it is refused; AWS refuses it to a role without IAM reads "
                   "(PowerUserAccess has none), as here",
}
"""Denials AWS makes too and the caller recovers from by design: reported apart, they do not fail the rehearsal."""
SECURE_TRANSPORT = {"aws:SecureTransport": "true"}
"""The rehearsal talks plain HTTP to 127.0.0.1; every SDK and the provider use TLS against AWS."""


class PolicyStore(Protocol):
    """The policies in force for a decision: the emulated account's, or a snapshot of them (tests)."""

    account: str

    def identity(self, role_arn: str) -> list[Policy]: ...
    def boundary(self, role_arn: str) -> Policy | None: ...
    def resource_policy(self, resource: str, action: str) -> Policy | None: ...


@dataclass(frozen=True)
class Record:
    principal: str
    """The role's name, `service:<principal>`, `administrator` or `control-plane`."""
    action: str
    resource: str
    context: dict[str, Any]
    allowed: bool
    reason: str
    implied: str = ""
    resource_known: bool = True

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        why = f" ({self.implied})" if self.implied else ""
        return f"{self.principal}: {self.action} on {self.resource}{why}: {self.reason}"


def caller_of_role(account: str, role_arn: str, session: str) -> Caller:
    name = role_arn.rsplit("/", 1)[-1]
    return Caller(account, role_arn=role_arn, session_arn=f"arn:aws:sts::{account}:assumed-role/{name}/{session}")


def decide(store: PolicyStore, caller: Caller, check: Check) -> Decision:
    """One check of one caller, as AWS evaluates it."""
    if check.action in FREE_ACTIONS:
        return Decision(True, f"{check.action} needs no permission")
    context = {**SECURE_TRANSPORT, "aws:PrincipalAccount": store.account, **check.context}
    if caller.role_arn:
        context.setdefault("aws:PrincipalArn", caller.role_arn)
    request = Request(check.action, check.resource, context)
    resource_policy = store.resource_policy(check.resource, check.action)
    kms = check.resource.startswith("arn:aws:kms:")
    if caller.service or caller.anonymous:
        return evaluate(request, caller, resource_policy=resource_policy, kms_key_policy=kms)
    return evaluate(request, caller, store.identity(caller.role_arn), store.boundary(caller.role_arn),
                    resource_policy, kms_key_policy=kms)


class DecisionLog:
    """Every decision, one JSON line each, and the counts the rehearsal reports per principal."""

    def __init__(self, path: Path | None):
        self.path = path
        self.lock = threading.Lock()
        self.checked: Counter[str] = Counter()
        self.denied: list[Record] = []
        self.unscoped: Counter[str] = Counter()

    def add(self, record: Record) -> None:
        with self.lock:
            self.checked[record.principal] += 1
            if not record.allowed:
                self.denied.append(record)
            if not record.resource_known and record.principal not in ("administrator", "control-plane"):
                self.unscoped[record.action] += 1
            if self.path is not None:
                with open(self.path, "a") as log:
                    log.write(record.line() + "\n")

    def report(self) -> dict[str, Any]:
        with self.lock:
            denied = Counter(record.principal for record in self.denied)
            unexpected = [r for r in self.denied if r.action not in EXPECTED_DENIALS]
            expected = Counter(r.action for r in self.denied if r.action in EXPECTED_DENIALS)
            return {"principals": {name: {"checked": count, "denied": denied[name]}
                                   for name, count in sorted(self.checked.items())},
                    "denied": [record.describe() for record in unexpected],
                    "expected_denials": {action: {"count": count, "why": EXPECTED_DENIALS[action]}
                                         for action, count in sorted(expected.items())},
                    "unscoped_actions": dict(sorted(self.unscoped.items()))}


def principal_name(caller: Caller) -> str:
    if caller.service:
        return f"service:{caller.service}"
    return caller.role_arn.rsplit("/", 1)[-1] if caller.role_arn else "anonymous"


def authorize_checks(store: PolicyStore, caller: Caller, checks: list[Check], log: DecisionLog) -> Record | None:
    """Every check of one call; returns the first denial (after recording all of them), None when all pass."""
    first_denial = None
    for check in checks:
        decision = decide(store, caller, check)
        record = Record(principal_name(caller), check.action, check.resource, check.context, decision.allowed,
                        decision.reason, check.implied, check.resource_known)
        log.add(record)
        if not decision.allowed and first_denial is None:
            first_denial = record
    return first_denial


class MotoAccount:
    """The emulated account's policies and state, read from moto's backends in this process (call under the
    emulator's backend lock)."""

    def __init__(self, account: str):
        self.account = account

    # --- IAM ----------------------------------------------------------------------------------------------------
    @property
    def _iam(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account]["aws"]

    def _role(self, role_arn: str) -> Any:
        name = role_arn.rsplit("/", 1)[-1]
        for role in self._iam.roles.values():
            if role.name == name:
                return role
        return None

    def _managed(self, arn: str) -> Policy | None:
        policy = self._iam.managed_policies.get(arn)
        if policy is None:
            return None
        (version,) = [v for v in policy.versions if v.is_default]
        return Policy.of(f"{arn.rsplit('/', 1)[-1]} (managed)", version.document)

    def identity(self, role_arn: str) -> list[Policy]:
        role = self._role(role_arn)
        if role is None:
            return []
        policies = [Policy.of(f"{role.name}/{name} (inline)", document) for name, document in role.policies.items()]
        policies += [p for p in (self._managed(arn) for arn in role.managed_policies) if p is not None]
        return policies

    def boundary(self, role_arn: str) -> Policy | None:
        role = self._role(role_arn)
        arn = role.permissions_boundary_arn if role is not None else None
        if not arn:
            return None
        policy = self._managed(arn)
        # A boundary that names a policy which does not exist allows nothing, as in IAM.
        return policy if policy is not None else Policy(f"{arn} (missing)", ())

    def trust_policy(self, role_arn: str) -> Policy | None:
        role = self._role(role_arn)
        return Policy.of(f"{role.name} trust policy", role.assume_role_policy_document) if role else None

    def role_arn(self, name: str) -> str:
        role = self._role(name)
        return role.arn if role is not None else f"arn:aws:iam::{self.account}:role/{name}"

    def role_boundary(self, name: str) -> str | None:
        role = self._role(name)
        return role.permissions_boundary_arn if role is not None else None

    def role_tags(self, name: str) -> dict[str, str]:
        role = self._role(name)
        tags = role.tags if role is not None else {}
        if isinstance(tags, dict):
            return {str(k): str(v.get("Value", v) if isinstance(v, dict) else v) for k, v in tags.items()}
        return {t["Key"]: t["Value"] for t in tags or []}

    # --- resources ----------------------------------------------------------------------------------------------
    def _region_backend(self, backends: Any, region: str) -> Any:
        return backends[self.account][region]

    def kms_key_arn(self, key_id: str, region: str) -> str:
        from moto.kms.models import kms_backends

        try:
            key = self._region_backend(kms_backends, region).describe_key(key_id)
            return key.arn
        except Exception:  # noqa: BLE001 - an unknown key: the request fails on its own, as it would on AWS
            return key_id if key_id.startswith("arn:") else f"arn:aws:kms:{region}:{self.account}:key/{key_id}"

    def _bucket(self, name: str) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"].buckets.get(name)

    def bucket_kms_key(self, bucket: str) -> str | None:
        found = self._bucket(bucket)
        encryption = getattr(found, "encryption", None) or {}
        for rule in _listed(encryption.get("Rule", [])):
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") == "aws:kms":
                return default.get("KMSMasterKeyID") or None
        return None

    def object_kms_key(self, bucket: str, key: str) -> str | None:
        found = self._bucket(bucket)
        if found is None:
            return None
        stored = found.keys.get(key)
        if stored is None or getattr(stored, "encryption", None) != "aws:kms":
            return None
        return stored.kms_key_id

    def table_hash_key(self, table: str, region: str) -> str | None:
        from moto.dynamodb.models import dynamodb_backends

        found = self._region_backend(dynamodb_backends, region).tables.get(table)
        return found.hash_key_attr if found is not None else None

    def _secret(self, secret_id: str, region: str) -> Any:
        from moto.secretsmanager.models import secretsmanager_backends

        store = self._region_backend(secretsmanager_backends, region).secrets
        return store[secret_id] if secret_id in store else None

    def secret_arn(self, secret_id: str, region: str) -> str:
        found = self._secret(secret_id, region)
        return found.arn if found is not None else secret_id

    def secret_kms_key(self, secret_id: str, region: str) -> str | None:
        """The customer managed key a secret is encrypted with (None: Secrets Manager's own key)."""
        found = self._secret(secret_id, region)
        return found.kms_key_id if found is not None and found.kms_key_id else None

    def resource_policy(self, resource: str, action: str) -> Policy | None:
        parts = resource.split(":", 5)
        if len(parts) != 6:
            return None
        service, region, name = parts[2], parts[3], parts[5]
        document: str | None = None
        if action in ("sts:AssumeRole", "sts:TagSession") and ":role/" in resource:
            return self.trust_policy(resource)
        if service == "s3":
            bucket = self._bucket(name.split("/", 1)[0])
            document = bucket.policy.decode() if bucket is not None and bucket.policy else None
        elif service == "kms":
            from moto.kms.models import kms_backends

            key = self._region_backend(kms_backends, region).keys.get(name.split("/", 1)[-1])
            document = key.policy if key is not None else None
        elif service == "sns":
            from moto.sns.models import sns_backends

            topic = self._region_backend(sns_backends, region).topics.get(resource)
            document = topic._policy_json and json.dumps(topic._policy_json) if topic is not None else None
        elif service == "sqs":
            from moto.sqs.models import sqs_backends

            queue = self._region_backend(sqs_backends, region).queues.get(name)
            document = queue.policy if queue is not None else None
        elif service == "ecr":
            from moto.ecr.models import ecr_backends

            repository = self._region_backend(ecr_backends, region).repositories.get(name.split("/", 1)[-1])
            document = repository.policy if repository is not None else None
        elif service == "secretsmanager" and name.startswith("secret:"):
            found = self._secret(resource, region)
            document = found.policy if found is not None else None
        elif service == "elasticfilesystem" and name.startswith("file-system/"):
            from moto.efs.models import efs_backends

            file_system = self._region_backend(efs_backends, region).file_systems_by_id.get(name.split("/", 1)[1])
            document = file_system.file_system_policy if file_system is not None else None
        return Policy.of(f"{service} resource policy of {name}", document) if document else None

    def snapshot(self) -> dict[str, Any]:
        """Every role's policies, for tests that replay recorded decisions (tests/rehearsal/recorded)."""
        out: dict[str, Any] = {"account": self.account, "roles": {}}
        for role in self._iam.roles.values():
            boundary = self.boundary(role.arn)
            out["roles"][role.name] = {
                "arn": role.arn,
                "identity": {p.name: {"Statement": list(p.statements)} for p in self.identity(role.arn)},
                "boundary": {"name": boundary.name, "Statement": list(boundary.statements)} if boundary else None}
        out["resource_policies"] = self._resource_policies()
        return out

    def _resource_policies(self) -> dict[str, Any]:
        """Resource ARN (a bucket, key, topic, queue, repository, file system or secret) -> its policy document."""
        from moto.ecr.models import ecr_backends
        from moto.efs.models import efs_backends
        from moto.kms.models import kms_backends
        from moto.secretsmanager.models import secretsmanager_backends
        from moto.sns.models import sns_backends
        from moto.sqs.models import sqs_backends

        found: dict[str, Any] = {}
        for name, bucket in self._buckets():
            if bucket.policy:
                found[f"arn:aws:s3:::{name}"] = json.loads(bucket.policy)
        for backends, each in ((kms_backends, lambda b: [(k.arn, k.policy) for k in b.keys.values()]),
                               (sns_backends, lambda b: [(t.arn, json.dumps(t._policy_json))
                                                         for t in b.topics.values()]),
                               (sqs_backends, lambda b: [(q.queue_arn, q.policy) for q in b.queues.values()]),
                               (ecr_backends, lambda b: [(r.arn, r.policy) for r in b.repositories.values()]),
                               (efs_backends, lambda b: [(f.file_system_arn, f.file_system_policy)
                                                         for f in b.file_systems_by_id.values()]),
                               (secretsmanager_backends, lambda b: [(x.arn, x.policy) for x in b.secrets.values()])):
            for backend in backends[self.account].values():
                for arn, document in each(backend):
                    if document:
                        found[arn] = json.loads(document)
        return found

    def _buckets(self) -> list[tuple[str, Any]]:
        from moto.s3.models import s3_backends

        return list(s3_backends[self.account]["aws"].buckets.items())


class SnapshotStore:
    """A PolicyStore read from a snapshot (MotoAccount.snapshot): decisions replayed offline, on policies a test may
    change first."""

    def __init__(self, snapshot: dict[str, Any]):
        self.account = snapshot["account"]
        self.roles = snapshot["roles"]
        self.resource_policies = snapshot.get("resource_policies", {})

    def _role(self, role_arn: str) -> dict[str, Any] | None:
        return self.roles.get(role_arn.rsplit("/", 1)[-1])

    def identity(self, role_arn: str) -> list[Policy]:
        role = self._role(role_arn)
        return [Policy.of(name, document) for name, document in (role or {}).get("identity", {}).items()]

    def boundary(self, role_arn: str) -> Policy | None:
        role = self._role(role_arn)
        boundary = (role or {}).get("boundary")
        return Policy.of(boundary["name"], boundary) if boundary else None

    def resource_policy(self, resource: str, action: str) -> Policy | None:
        if action in ("sts:AssumeRole", "sts:TagSession"):
            return None
        for arn, document in self.resource_policies.items():
            if resource == arn or resource.startswith(arn + "/"):
                return Policy.of(f"resource policy of {arn.rsplit(':', 1)[-1]}", document)
        return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Authorizer:
    """The emulated account's gate: a principal for each access key, a decision for each call."""

    def __init__(self, account: str, log_path: Path | None, enforce: bool):
        self.store = MotoAccount(account)
        self.log = DecisionLog(log_path)
        self.enforce = enforce

    @property
    def requests_account(self) -> Account:
        return self.store  # type: ignore[return-value]

    def caller(self, access_key: str) -> Caller | str | None:
        """The role session behind a key; `administrator`/`control-plane` for the rehearsal's own keys; None for
        a key the account never issued."""
        if access_key == ADMINISTRATOR_KEY:
            return "administrator"
        if access_key == CONTROL_PLANE_KEY:
            return "control-plane"
        from moto.sts.models import sts_backends

        for role in sts_backends[self.store.account]["aws"].assumed_roles:
            if role.access_key_id == access_key:
                return caller_of_role(self.store.account, role.role_arn, role.session_name)
        return None

    def authorize(self, caller: Caller | str, checks: list[Check]) -> Record | None:
        if isinstance(caller, str):  # the administrator or the control plane: allowed, counted
            for check in checks:
                self.log.add(Record(caller, check.action, check.resource, check.context, True, "not evaluated",
                                    check.implied, check.resource_known))
            return None
        return authorize_checks(self.store, caller, checks, self.log)

    def assume_as_service(self, role_arn: str, service: str, source_arn: str) -> dict[str, str] | Record:
        """A service assuming a role (its trust policy must allow the service): new session credentials."""
        caller = Caller(self.store.account, service=service)
        context = {"aws:SourceAccount": self.store.account, **({"aws:SourceArn": source_arn} if source_arn else {})}
        denial = authorize_checks(self.store, caller, [Check("sts:AssumeRole", role_arn, context,
                                                             implied=f"{service} assumes the role")], self.log)
        if denial is not None:
            return denial
        from moto.sts.models import sts_backends

        session = service.split(".", 1)[0]
        role = sts_backends[self.store.account]["aws"].assume_role(
            region_name="us-east-1", role_session_name=session, role_arn=role_arn, policy="", duration=3600,
            external_id="")
        return {"AccessKeyId": role.access_key_id, "SecretAccessKey": role.secret_access_key,
                "SessionToken": role.session_token}
