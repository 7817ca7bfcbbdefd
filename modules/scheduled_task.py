"""The pieces of a short-lived ECS task that EventBridge starts, shared by the model sync and the capture export: its
log group and the execution role's permission to write it, a Fargate task definition with one EFS access point
mounted, its container definition, the role EventBridge starts it with, and a rule's target.

Functions, not a construct: each creates its resources in the caller's scope under fixed IDs, so the constructs
that use them keep the logical IDs (and so the deployed resources) they had before these were shared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetEcsTarget,
    CloudwatchEventTargetEcsTargetNetworkConfiguration,
    CloudwatchEventTargetRetryPolicy,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionRuntimePlatform,
    EcsTaskDefinitionVolume,
    EcsTaskDefinitionVolumeEfsVolumeConfiguration,
    EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from modules.iam import assume_role_policy, policy_document


@dataclass(frozen=True)
class TaskMount:
    """The one EFS location a task mounts (read-write), through its access point."""

    volume: str
    container_path: str
    file_system_id: str
    access_point_id: str


def task_log_group(scope: Construct, name: str, retention_days: int, kms_key_arn: str, execution_role_id: str,
                   sid: str) -> tuple[CloudwatchLogGroup, IamRolePolicy]:
    """`log-group`, and `execution-policy`: the execution role may write to it."""
    log_group = CloudwatchLogGroup(scope, "log-group", name=name, retention_in_days=retention_days,
                                   kms_key_id=kms_key_arn)
    policy = IamRolePolicy(scope, "execution-policy", role=execution_role_id, policy=policy_document(
        {"Sid": sid, "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"{log_group.arn}:*"}))
    return log_group, policy


def task_container(name: str, image: str, entry_point: tuple[str, ...], environment: dict[str, str],
                   mount: TaskMount, region: str, log_group_name: str, stream_prefix: str) -> dict[str, Any]:
    """Every field ECS fills in when it is left out is written here, so a plan after apply shows no diff."""
    return {
        "name": name,
        "image": image,
        "entryPoint": list(entry_point),
        "cpu": 0,
        "essential": True,
        "readonlyRootFilesystem": True,
        "portMappings": [],
        "environment": [{"name": key, "value": value} for key, value in sorted(environment.items())],
        "environmentFiles": [],
        "mountPoints": [{"sourceVolume": mount.volume, "containerPath": mount.container_path, "readOnly": False}],
        "volumesFrom": [],
        "systemControls": [],
        "ulimits": [],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group_name, "awslogs-region": region, "awslogs-stream-prefix": stream_prefix},
            "secretOptions": []},
    }


def efs_task_definition(scope: Construct, family: str, execution_role_arn: str, task_role_arn: str,
                        container: dict[str, Any], mount: TaskMount) -> EcsTaskDefinition:
    """`task-definition`: the smallest Fargate size, the container, its one EFS mount (TLS, IAM authorization)."""
    return EcsTaskDefinition(
        scope, "task-definition", family=family, network_mode="awsvpc", requires_compatibilities=["FARGATE"],
        cpu="256", memory="512", execution_role_arn=execution_role_arn, task_role_arn=task_role_arn,
        runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX", cpu_architecture="X86_64"),
        container_definitions=json.dumps([container]),
        volume=[EcsTaskDefinitionVolume(name=mount.volume, efs_volume_configuration=(
            EcsTaskDefinitionVolumeEfsVolumeConfiguration(
                file_system_id=mount.file_system_id, transit_encryption="ENABLED",
                authorization_config=EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig(
                    access_point_id=mount.access_point_id, iam="ENABLED"))))])


def task_starter_role(scope: Construct, name: str, principals: str | list[str], account_id: str,
                      permissions_boundary_arn: str | None, description: str, task_definition: EcsTaskDefinition,
                      cluster_arn: str, passed_role_arns: list[str], task_kind: str) -> IamRole:
    """`events-role` and `events-policy`: run this task definition's revisions on this cluster only, and pass its
    two roles to ECS tasks only. `task_kind` names the statements (`RunSyncTask`, `PassSyncRoles`)."""
    role = IamRole(scope, "events-role", name=name, permissions_boundary=permissions_boundary_arn,
                   assume_role_policy=assume_role_policy(principals, account_id), description=description)
    IamRolePolicy(scope, "events-policy", role=role.id, policy=policy_document(
        {"Sid": f"Run{task_kind}Task", "Effect": "Allow", "Action": "ecs:RunTask",
         "Resource": f"{task_definition.arn_without_revision}:*",
         "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}}},
        {"Sid": f"Pass{task_kind}Roles", "Effect": "Allow", "Action": "iam:PassRole", "Resource": passed_role_arns,
         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    ))
    return role


def run_task_on_rule(scope: Construct, construct_id: str, rule: CloudwatchEventRule, cluster_arn: str, role_arn: str,
                     task_definition_arn: str, subnet_ids: list[str], security_group_id: str,
                     depends_on: list[Any] | None = None) -> CloudwatchEventTarget:
    """The rule starts one task on Fargate in the private subnets, retried for up to an hour."""
    return CloudwatchEventTarget(
        scope, construct_id, rule=rule.name, arn=cluster_arn, role_arn=role_arn,
        retry_policy=CloudwatchEventTargetRetryPolicy(maximum_retry_attempts=3, maximum_event_age_in_seconds=3600),
        ecs_target=CloudwatchEventTargetEcsTarget(
            task_definition_arn=task_definition_arn, task_count=1, launch_type="FARGATE", platform_version="LATEST",
            network_configuration=CloudwatchEventTargetEcsTargetNetworkConfiguration(
                subnets=subnet_ids, security_groups=[security_group_id], assign_public_ip=False)),
        depends_on=depends_on)
