"""modules/task_identity.py: the roles and security groups of an endpoint's tasks (service, model sync, capture
export)."""

from __future__ import annotations

from modules.task_identity import TaskIdentity, TaskIdentityProps, allow_task_egress
from tests.infra.synth import policy, ref, resources
from tests.support.construct_synth import synth_stack

PROPS = TaskIdentityProps(name_prefix="p-dev-a", vpc_id="vpc-1", account_id="111111111111",
                          execution_role_name="p-dev-a-execution", task_role_name="p-dev-a-task",
                          sync_role_name="p-dev-a-model-sync", export_role_name="p-dev-a-capture-export")


def test_four_roles_trusted_by_ecs_tasks_of_this_account_and_three_groups_without_ingress():
    stack = synth_stack(lambda s: TaskIdentity(s, "identity", PROPS))
    roles = {body["name"]: policy(body, "assume_role_policy")["Statement"][0]
             for body in resources(stack, "aws_iam_role").values()}
    assert set(roles) == {"p-dev-a-execution", "p-dev-a-task", "p-dev-a-model-sync", "p-dev-a-capture-export"}
    for trust in roles.values():
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}
    groups = sorted(body["name"] for body in resources(stack, "aws_security_group").values())
    assert groups == ["p-dev-a-capture-export", "p-dev-a-model-sync", "p-dev-a-service"]
    assert resources(stack, "aws_vpc_security_group_ingress_rule") == {}


def test_task_egress_is_nfs_to_its_file_system_and_https_only():
    def build(stack):
        identity = TaskIdentity(stack, "identity", PROPS)
        allow_task_egress(stack, "service", identity.security_group_id, "sg-efs")

    stack = synth_stack(build)
    rules = sorted((rule.get("referenced_security_group_id") or rule.get("cidr_ipv4"), rule["from_port"])
                   for rule in resources(stack, "aws_vpc_security_group_egress_rule").values())
    assert rules == [("0.0.0.0/0", 443), ("sg-efs", 2049)]
    service_group = next(logical_id for logical_id, body in resources(stack, "aws_security_group").items()
                         if body["name"] == "p-dev-a-service")
    assert {rule["security_group_id"] for rule in resources(stack, "aws_vpc_security_group_egress_rule").values()} \
        == {ref("aws_security_group", service_group, "id")}
