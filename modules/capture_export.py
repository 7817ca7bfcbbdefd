"""Captured requests of one endpoint, EFS -> S3, without any host of ours running all the time.

A schedule starts a short-lived ECS task from the serving image running `python -m serving.capture_export` with the
endpoint's data access point mounted read-write: it uploads every sealed capture file to the environment's capture
bucket in SageMaker Data Capture's layout (`<prefix><endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`) and removes
it from the volume. Its role may write only under `<prefix><endpoint>/` and mount only the data access point.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from modules.iam import policy_document
from modules.model_storage import ModelStorage
from modules.scheduled_task import (
    TaskMount,
    efs_task_definition,
    run_task_on_rule,
    task_container,
    task_log_group,
    task_starter_role,
)
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
        self.log_group, _ = task_log_group(self, f"/ecs/{props.name_prefix}/capture-export", props.log_retention_days,
                                           props.kms_key_arn, identity.execution_role.id, "WriteExportLogs")
        IamRolePolicy(self, "task-policy", role=identity.export_role.id, policy=policy_document(
            {"Sid": "WriteEndpointCaptures", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": f"{props.bucket_arn}/{props.prefix}{props.endpoint}/*"},
            {"Sid": "EncryptCaptures", "Effect": "Allow", "Action": "kms:GenerateDataKey",
             "Resource": props.kms_key_arn},
            *storage.capture_exporter_statements(),
        ))
        allow_task_egress(self, "export", identity.export_security_group_id, storage.security_group_id)

        mount = TaskMount("data", DATA_MOUNT, storage.file_system_id, storage.data_access_point.id)
        self.task_definition = efs_task_definition(
            self, f"{props.name_prefix}-capture-export", identity.execution_role.arn, identity.export_role.arn,
            task_container(EXPORT_CONTAINER, props.image, EXPORT_ENTRY_POINT, {
                ExportVariable.BUCKET: props.bucket_name, ExportVariable.PREFIX: props.prefix,
                ExportVariable.ENDPOINT: props.endpoint, ExportVariable.CAPTURE_DIR: DATA_MOUNT,
                "AWS_DEFAULT_REGION": props.region}, mount, props.region, self.log_group.name, EXPORT_CONTAINER),
            mount)
        self.events_role = task_starter_role(
            self, props.events_role_name, "events.amazonaws.com", props.account_id, props.permissions_boundary_arn,
            "EventBridge starts the capture export task", self.task_definition, props.cluster_arn,
            [identity.execution_role.arn, identity.export_role.arn], "Export")
        self.on_schedule = CloudwatchEventRule(
            self, "on-schedule", name=props.schedule_rule_name, schedule_expression=props.schedule,
            description=f"{props.endpoint}: export sealed capture files to s3://{props.bucket_name}/{props.prefix}")
        run_task_on_rule(self, "run-on-schedule", self.on_schedule, props.cluster_arn, self.events_role.arn,
                         self.task_definition.arn, props.subnet_ids, identity.export_security_group_id,
                         depends_on=[*storage.mountable])
