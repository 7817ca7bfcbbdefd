"""The rehearsal's checks, replayed offline on what one rehearsal of the shipped configuration recorded
(tests/rehearsal/recorded/, see its README): every role's policies and every resource policy as the emulated account
held them after the deploy, each distinct authorization the roles needed, the applied network and every flow the
rehearsal made. Replayed as recorded, everything passes; with one permission, rule or route taken away, the check
fails and names it. This is what proves the checks bite, without a full rehearsal each time."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.rehearsal.authorization import EXPECTED_DENIALS, SnapshotStore, caller_of_role, decide
from tests.rehearsal.iam_requests import Check
from tests.rehearsal.network import AppliedNetwork, replay

RECORDED = Path(__file__).parent / "recorded"


@pytest.fixture(scope="module")
def policies() -> dict[str, Any]:
    return json.loads((RECORDED / "policies.json").read_text())


@pytest.fixture(scope="module")
def decisions() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (RECORDED / "decisions.jsonl").read_text().splitlines()]


def replay_decisions(policies: dict[str, Any], decisions: list[dict[str, Any]]) -> list[str]:
    """Every recorded decision of a role, decided again on `policies`: the denials, described."""
    store = SnapshotStore(policies)
    denied = []
    for record in decisions:
        role = policies["roles"].get(record["principal"])
        if role is None or record["action"] in EXPECTED_DENIALS:
            continue
        caller = caller_of_role(policies["account"], role["arn"], "replay")
        decision = decide(store, caller, Check(record["action"], record["resource"], record["context"],
                                               record["implied"]))
        if not decision.allowed:
            denied.append(f"{record['principal']}: {record['action']} on {record['resource']}: {decision.reason}")
    return denied


def role_named(policies: dict[str, Any], suffix: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(name, role) for name, role in policies["roles"].items() if name.endswith(suffix)]
    return found


def without_action(role: dict[str, Any], action: str) -> None:
    """Takes `action` out of every Allow statement of the role's identity policies."""
    for document in role["identity"].values():
        for statement in document["Statement"]:
            actions = statement.get("Action")
            if statement["Effect"] == "Allow" and actions is not None:
                listed = [actions] if isinstance(actions, str) else actions
                statement["Action"] = [a for a in listed if a != action] or ["none:Nothing"]


def test_every_recorded_decision_of_a_role_is_allowed_on_the_recorded_policies(policies, decisions):
    roles = {record["principal"] for record in decisions if record["principal"] in policies["roles"]}
    assert len(roles) >= 10, roles  # build, deploy, smoke, tasks, execution, sync, export, events, scheduler ...
    assert replay_decisions(policies, decisions) == []


@pytest.mark.parametrize(("role_suffix", "action"), [
    ("staging-a-model-sync", "s3:GetObject"),          # the sync task reads the model bucket
    ("staging-a-execution", "logs:CreateLogStream"),   # an execution role writes the task's logs
    ("deploy-staging-build", "iam:PassRole"),          # the deploy step hands the task roles to ECS
    ("staging-c-task", "sqs:ReceiveMessage"),          # the async endpoint's worker takes requests from its queue
    ("staging-c-task", "sns:Publish"),                 # ... and tells its success topic
    ("smoke-staging-build", "s3:PutObject"),           # Smoke puts a request under the async endpoint's input
])
def test_a_role_missing_one_permission_is_denied_naming_the_role_and_the_action(policies, decisions, role_suffix,
                                                                               action):
    changed = copy.deepcopy(policies)
    name, role = role_named(changed, role_suffix)
    without_action(role, action)
    denied = replay_decisions(changed, decisions)
    assert denied, f"taking {action} from {name} changed nothing"
    assert all(line.startswith(f"{name}: {action} on ") for line in denied), denied
    assert "no identity policy statement allows it" in denied[0]


@pytest.fixture(scope="module")
def network() -> AppliedNetwork:
    return AppliedNetwork.from_json(RECORDED / "network.json")


@pytest.fixture(scope="module")
def flows() -> list[dict[str, Any]]:
    return json.loads((RECORDED / "flows.json").read_text())


def test_every_recorded_flow_is_delivered_on_the_recorded_network(network, flows):
    kinds = {flow["kind"] for flow in flows}
    assert {"client -> load balancer", "load balancer -> task", "task -> EFS mount target", "task -> ecr.api",
            "task -> s3", "task -> logs", "task -> sqs", "task -> sns"} <= kinds
    assert [problem for flow in flows for problem in replay(network, flow)] == []


def test_a_removed_security_group_rule_drops_the_flows_that_needed_it(network, flows):
    changed = copy.deepcopy(network)
    # Staging a's file system admits NFS from the endpoint's task groups only: take those rules away.
    (efs_group,) = [g for g in changed.security_groups if g.get("GroupName") == "mlops-staging-a-efs"]
    efs_group["IpPermissions"] = []
    refused = [problem for flow in flows for problem in replay(changed, flow)]
    assert refused and all(":2049: no ingress rule of" in problem for problem in refused), refused
    assert all(efs_group["GroupId"] in problem for problem in refused)


def test_a_removed_route_drops_the_flows_that_needed_it(network, flows):
    changed = copy.deepcopy(network)
    # Staging's private subnets reach AWS APIs and the registry through the NAT gateway: take that route away.
    private = [t for t in changed.route_tables if any(r.get("NatGatewayId") for r in t.get("Routes", []))]
    table = next(t for t in private if _vpc_name(changed, t["VpcId"]) == "mlops-staging")
    table["Routes"] = [r for r in table["Routes"] if not r.get("NatGatewayId")]
    refused = [problem for flow in flows for problem in replay(changed, flow)]
    assert refused and all(f"route table {table['RouteTableId']}" in problem and "no route to 0.0.0.0/0" in problem
                           for problem in refused), refused
    # The public subnets' route to the internet gateway carries the clients: take it away.
    public = [t for t in changed.route_tables if any(r.get("GatewayId", "").startswith("igw-")
                                                     for r in t.get("Routes", []))]
    for table in public:
        table["Routes"] = [r for r in table["Routes"] if not r.get("GatewayId", "").startswith("igw-")]
    refused = [problem for flow in flows if flow["kind"] == "client -> load balancer"
               for problem in replay(changed, flow)]
    assert refused and all("no route to 0.0.0.0/0" in problem for problem in refused)


def _vpc_name(network: AppliedNetwork, vpc_id: str) -> str:
    for subnet in network.subnets:
        if subnet["VpcId"] == vpc_id:
            return next((t["Value"] for t in subnet.get("Tags", []) if t["Key"] == "Name"), "").rsplit("-", 2)[0]
    return ""
