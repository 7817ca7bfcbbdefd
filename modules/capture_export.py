"""Captured requests of one endpoint, EFS -> S3, without any host of ours running all the time.

A schedule starts a short-lived ECS task from the serving image running `python -m serving.capture_export` with the
endpoint's data access point mounted read-write: it uploads every sealed capture file to the environment's capture
bucket in SageMaker Data Capture's layout (`<prefix><endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`) and removes
it from the volume. Its role may write only under `<prefix><endpoint>/` and mount only the data access point.
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
from modules.model_storage import ModelStorage
from modules.task_identity import TaskIdentity, allow_task_egress
from serving.contract import DATA_MOUNT, EXPORT_CONTAINER, EXPORT_ENTRY_POINT, ExportVariable


@dataclass(frozen=True)
class CaptureExportProps:
    name_prefix: str
    endpoint: str
    region: str
    account_id: str
    bucket_name: str
    bucket_arn: str
    kms_key_arn: str
    """The capture bucket's key: the task encrypts what it writes with it."""
    cluster_arn: str
    subnet_ids: list[str]
    image: str
    events_role_name: str
    """The role EventBridge starts the task with (IAM: at most 64 characters)."""
    schedule_rule_name: str
    prefix: str = ""
    """Key prefix in the bucket, before `<endpoint>/` (empty or ending in `/`)."""
    schedule: str = "cron(5 * * * ? *)"
    """When the task runs; hourly, a few minutes after the hour, when the servers have sealed the last hour's files."""
    log_retention_days: int = 30
    permissions_boundary_arn: str | None = None

    def __post_init__(self) -> None:
        if self.prefix and not self.prefix.endswith("/"):
            raise ValueError(f"CaptureExportProps.prefix {self.prefix!r}: empty or ending in '/'")
        if not self.schedule.startswith(("rate(", "cron(")):
            raise ValueError(f"CaptureExportProps.schedule {self.schedule!r}: a rate(...) or cron(...) expression")


class CaptureExport(Construct):
    """Attributes: `task_definition`, `log_group`, `on_schedule`, `events_role`."""

    def __init__(self, scope: Construct, construct_id: str, props: CaptureExportProps, identity: TaskIdentity,
                 storage: ModelStorage):
        super().__init__(scope, construct_id)
        self.log_group = CloudwatchLogGroup(self, "log-group", name=f"/ecs/{props.name_prefix}/capture-export",
                                            retention_in_days=props.log_retention_days, kms_key_id=props.kms_key_arn)
        IamRolePolicy(self, "execution-policy", role=identity.execution_role.id, policy=policy_document(
            {"Sid": "WriteExportLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{self.log_group.arn}:*"}))
        IamRolePolicy(self, "task-policy", role=identity.export_role.id, policy=policy_document(
            {"Sid": "WriteEndpointCaptures", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": f"{props.bucket_arn}/{props.prefix}{props.endpoint}/*"},
            {"Sid": "EncryptCaptures", "Effect": "Allow", "Action": "kms:GenerateDataKey",
             "Resource": props.kms_key_arn},
            *storage.capture_exporter_statements(),
        ))
        allow_task_egress(self, "export", identity.export_security_group_id, storage.security_group_id)

        self.task_definition = EcsTaskDefinition(
            self, "task-definition", family=f"{props.name_prefix}-capture-export", network_mode="awsvpc",
            requires_compatibilities=["FARGATE"], cpu="256", memory="512",
            execution_role_arn=identity.execution_role.arn, task_role_arn=identity.export_role.arn,
            runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX",
                                                              cpu_architecture="X86_64"),
            container_definitions=json.dumps([self._container(props, self.log_group.name)]),
            volume=[EcsTaskDefinitionVolume(name="data", efs_volume_configuration=(
                EcsTaskDefinitionVolumeEfsVolumeConfiguration(
                    file_system_id=storage.file_system_id, transit_encryption="ENABLED",
                    authorization_config=EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig(
                        access_point_id=storage.data_access_point.id, iam="ENABLED"))))])

        self.events_role = IamRole(
            self, "events-role", name=props.events_role_name, permissions_boundary=props.permissions_boundary_arn,
            assume_role_policy=assume_role_policy("events.amazonaws.com", props.account_id),
            description="EventBridge starts the capture export task")
        IamRolePolicy(self, "events-policy", role=self.events_role.id, policy=policy_document(
            {"Sid": "RunExportTask", "Effect": "Allow", "Action": "ecs:RunTask",
             "Resource": f"{self.task_definition.arn_without_revision}:*",
             "Condition": {"ArnEquals": {"ecs:cluster": props.cluster_arn}}},
            {"Sid": "PassExportRoles", "Effect": "Allow", "Action": "iam:PassRole",
             "Resource": [identity.execution_role.arn, identity.export_role.arn],
             "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
        ))
        self.on_schedule = CloudwatchEventRule(
            self, "on-schedule", name=props.schedule_rule_name, schedule_expression=props.schedule,
            description=f"{props.endpoint}: export sealed capture files to s3://{props.bucket_name}/{props.prefix}")
        CloudwatchEventTarget(
            self, "run-on-schedule", rule=self.on_schedule.name, arn=props.cluster_arn, role_arn=self.events_role.arn,
            retry_policy=CloudwatchEventTargetRetryPolicy(maximum_retry_attempts=3, maximum_event_age_in_seconds=3600),
            ecs_target=CloudwatchEventTargetEcsTarget(
                task_definition_arn=self.task_definition.arn, task_count=1, launch_type="FARGATE",
                platform_version="LATEST",
                network_configuration=CloudwatchEventTargetEcsTargetNetworkConfiguration(
                    subnets=props.subnet_ids, security_groups=[identity.export_security_group_id],
                    assign_public_ip=False)),
            depends_on=[*storage.mountable])

    @staticmethod
    def _container(props: CaptureExportProps, log_group_name: str) -> dict[str, Any]:
        """Every field ECS fills in when it is left out is written here, so a plan after apply shows no diff."""
        return {
            "name": EXPORT_CONTAINER,
            "image": props.image,
            "entryPoint": list(EXPORT_ENTRY_POINT),
            "cpu": 0,
            "essential": True,
            "readonlyRootFilesystem": True,
            "portMappings": [],
            "environment": [{"name": name, "value": value} for name, value in sorted({
                ExportVariable.BUCKET: props.bucket_name, ExportVariable.PREFIX: props.prefix,
                ExportVariable.ENDPOINT: props.endpoint, ExportVariable.CAPTURE_DIR: DATA_MOUNT,
                "AWS_DEFAULT_REGION": props.region}.items())],
            "environmentFiles": [],
            "mountPoints": [{"sourceVolume": "data", "containerPath": DATA_MOUNT, "readOnly": False}],
            "volumesFrom": [],
            "systemControls": [],
            "ulimits": [],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group_name, "awslogs-region": props.region,
                "awslogs-stream-prefix": "capture-export"}, "secretOptions": []},
        }
