"""Model delivery for one endpoint: S3 -> EFS without any host of ours running all the time.

A change of `<endpoint>/LIVE` in the environment's model bucket (S3 -> EventBridge), a schedule (repairing
anything a missed event left behind) and a one-time schedule right after the stack is created (so a new endpoint's
empty file system gets the model promoted before it existed) all start a short-lived ECS task from the serving image
running `python -m serving.sync`, with the endpoint's models access point mounted read-write for that task only.
The serving tasks keep their read-only mount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import Fn, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.scheduler_schedule import (
    SchedulerSchedule,
    SchedulerScheduleFlexibleTimeWindow,
    SchedulerScheduleTarget,
    SchedulerScheduleTargetEcsParameters,
    SchedulerScheduleTargetEcsParametersNetworkConfiguration,
    SchedulerScheduleTargetRetryPolicy,
)
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
from serving.contract import LIVE_POINTER, MODELS_MOUNT, SYNC_CONTAINER, SYNC_ENTRY_POINT, SyncVariable


@dataclass(frozen=True)
class ModelSyncProps:
    name_prefix: str
    endpoint: str
    """The S3 prefix (`<endpoint>/`) the task copies from."""
    region: str
    account_id: str
    bucket_name: str
    bucket_arn: str
    kms_key_arn: str
    """Decrypts the model bucket's objects."""
    cluster_arn: str
    subnet_ids: list[str]
    image: str
    events_role_name: str
    """The role EventBridge and its scheduler start the task with (IAM: at most 64 characters)."""
    upload_rule_name: str
    schedule_rule_name: str
    first_sync_schedule_name: str
    permissions_boundary_arn: str | None = None
    """Caps the events role whatever its policies say (see modules/permission_boundaries.py)."""
    log_retention_days: int = 30
    keep_versions: int = 5
    schedule: str = "rate(1 hour)"
    pinned_versions: tuple[str, ...] = ()
    """Versions the endpoint's variants are pinned to: the sync copies them and never prunes them."""

    def __post_init__(self) -> None:
        if self.keep_versions < 2:
            raise ValueError(f"ModelSyncProps.keep_versions {self.keep_versions}: keep at least 2, the live version "
                             "and the one before it")


class ModelSync(Construct):
    """Attributes: `task_definition`, `log_group`, `on_upload` (the S3 event rule), `on_schedule`, `initial_sync`
    (the one-time schedule), `events_role`."""

    def __init__(self, scope: Construct, construct_id: str, props: ModelSyncProps, identity: TaskIdentity,
                 storage: ModelStorage):
        super().__init__(scope, construct_id)
        prefix = f"{props.endpoint}/"
        self.log_group, execution_policy = task_log_group(
            self, f"/ecs/{props.name_prefix}/model-sync", props.log_retention_days, props.kms_key_arn,
            identity.execution_role.id, "WriteSyncLogs")
        task_policy = IamRolePolicy(self, "task-policy", role=identity.sync_role.id, policy=policy_document(
            {"Sid": "ListEndpointModels", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": props.bucket_arn,
             "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}},
            {"Sid": "ReadEndpointModels", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"{props.bucket_arn}/{prefix}*"},
            {"Sid": "DecryptModels", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": props.kms_key_arn},
            *storage.model_writer_statements(),
        ))
        allow_task_egress(self, "sync", identity.sync_security_group_id, storage.security_group_id)

        mount = TaskMount("models", MODELS_MOUNT, storage.file_system_id, storage.models_access_point.id)
        self.task_definition = efs_task_definition(
            self, f"{props.name_prefix}-model-sync", identity.execution_role.arn, identity.sync_role.arn,
            task_container(SYNC_CONTAINER, props.image, SYNC_ENTRY_POINT, {
                SyncVariable.BUCKET: props.bucket_name, SyncVariable.PREFIX: prefix,
                SyncVariable.MODELS_DIR: MODELS_MOUNT, SyncVariable.KEEP_VERSIONS: str(props.keep_versions),
                "AWS_DEFAULT_REGION": props.region,
                **({SyncVariable.PINNED_VERSIONS: ",".join(props.pinned_versions)} if props.pinned_versions
                   else {})}, mount, props.region, self.log_group.name, SYNC_CONTAINER),
            mount)
        self.events_role = task_starter_role(
            self, props.events_role_name, ["events.amazonaws.com", "scheduler.amazonaws.com"], props.account_id,
            props.permissions_boundary_arn, "EventBridge and its scheduler start the model sync task",
            self.task_definition, props.cluster_arn, [identity.execution_role.arn, identity.sync_role.arn], "Sync")

        self.on_upload = CloudwatchEventRule(
            self, "on-upload", name=props.upload_rule_name,
            description=f"{props.endpoint}: a model version was made live in s3://{props.bucket_name}/{prefix}",
            event_pattern=json.dumps({
                "source": ["aws.s3"], "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [props.bucket_name]}, "object": {"key": [f"{prefix}{LIVE_POINTER}"]}}}))
        self.on_schedule = CloudwatchEventRule(
            self, "on-schedule", name=props.schedule_rule_name,
            description=f"{props.endpoint}: sync models even without an event", schedule_expression=props.schedule)
        for rule_id, rule in (("upload", self.on_upload), ("schedule", self.on_schedule)):
            run_task_on_rule(self, f"run-on-{rule_id}", rule, props.cluster_arn, self.events_role.arn,
                             self.task_definition.arn, props.subnet_ids, identity.sync_security_group_id)

        # One sync a minute after creation, once the task can mount and read (depends_on). `at()` needs a time;
        # the time of the first apply is kept for good (ignore_changes), so later plans show no change. The service
        # waits for this schedule to exist, and its health check grace period covers the sync.
        first_run = Fn.formatdate("YYYY-MM-DD'T'hh:mm:ss", Fn.timeadd(Fn.timestamp(), "1m"))
        self.initial_sync = SchedulerSchedule(
            self, "initial-sync", name=props.first_sync_schedule_name,
            description=f"{props.endpoint}: copy the live model once, right after the endpoint is created",
            schedule_expression=f"at({first_run})", schedule_expression_timezone="UTC",
            flexible_time_window=SchedulerScheduleFlexibleTimeWindow(mode="OFF"),
            action_after_completion="NONE",
            target=SchedulerScheduleTarget(
                arn=props.cluster_arn, role_arn=self.events_role.arn,
                retry_policy=SchedulerScheduleTargetRetryPolicy(maximum_retry_attempts=3,
                                                                maximum_event_age_in_seconds=3600),
                ecs_parameters=SchedulerScheduleTargetEcsParameters(
                    task_definition_arn=self.task_definition.arn, task_count=1, launch_type="FARGATE",
                    platform_version="LATEST",
                    network_configuration=SchedulerScheduleTargetEcsParametersNetworkConfiguration(
                        subnets=props.subnet_ids, security_groups=[identity.sync_security_group_id],
                        assign_public_ip=False))),
            lifecycle=TerraformResourceLifecycle(ignore_changes=["schedule_expression"]),
            depends_on=[*storage.mountable, execution_policy, task_policy])
