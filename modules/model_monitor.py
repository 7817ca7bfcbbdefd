"""The model monitor of one endpoint: a scheduled ECS task from the monitor's own image, and its alarms.

After the hourly capture export, a schedule starts `python -m pipeline.monitor run`: it reads the last window of the
endpoint's exported captures and the labels uploaded since, compares each variant with the baseline of every
version that answered (beside the version in the model bucket), writes `report.json` and `report.html` under
`monitoring/<endpoint>/<variant>/...` in the capture bucket and publishes metrics in its own namespace. Its role may
do exactly that: read the endpoint's captures and ground truth, read the endpoint's baselines, write its reports,
use the platform key for them, and put metrics in that namespace only. It mounts nothing and listens on nothing.

Alarms per variant, to the environment's alarm topic: a feature drifted in N consecutive windows; no captures in N
consecutive windows while the variant served requests (a monitor that did not run counts as no data; an idle
endpoint raises nothing); and, optionally, a quality metric past its floor (a ceiling for errors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionRuntimePlatform,
    EcsTaskDefinitionVolume,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from modules.iam import assume_role_policy, policy_document
from modules.scheduled_task import run_task_on_rule, task_log_group, task_starter_role
from serving.contract import (
    BASELINE_FILE,
    GROUND_TRUTH_PREFIX,
    MONITOR_CONTAINER,
    MONITOR_PROGRAM,
    MONITORING_PREFIX,
    SCRATCH_MOUNT,
    MonitorVariable,
)

LOWER_IS_WORSE = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1", "auc": "AUC"}
HIGHER_IS_WORSE = {"mae": "MAE", "rmse": "RMSE"}


@dataclass(frozen=True)
class QualityAlarm:
    metric: str
    """A key of LOWER_IS_WORSE (alarm below `value`) or HIGHER_IS_WORSE (alarm above)."""
    value: float


@dataclass(frozen=True)
class ServedRequests:
    """A metric whose sum is the requests a variant answered."""

    namespace: str
    metric_name: str
    dimensions: dict[str, str]

    @classmethod
    def through_target_group(cls, load_balancer_arn_suffix: str, target_group_arn_suffix: str) -> ServedRequests:
        return cls("AWS/ApplicationELB", "RequestCount",
                   {"LoadBalancer": load_balancer_arn_suffix, "TargetGroup": target_group_arn_suffix})

    @classmethod
    def through_queue(cls, queue_name: str) -> ServedRequests:
        """An asynchronous endpoint's: a message is deleted once its request has an outcome."""
        return cls("AWS/SQS", "NumberOfMessagesDeleted", {"QueueName": queue_name})


@dataclass(frozen=True)
class ModelMonitorProps:
    name_prefix: str
    endpoint: str
    environment: str
    region: str
    account_id: str
    vpc_id: str
    subnet_ids: list[str]
    cluster_arn: str
    image: str
    """The monitor's image (pipeline/monitor/Dockerfile), of the same commit as the server's."""
    execution_role_id: str
    execution_role_arn: str
    capture_bucket_name: str
    capture_bucket_arn: str
    capture_prefix: str
    """Before `<endpoint>/<variant>/...`, as the capture export writes (empty or ending in `/`)."""
    model_bucket_name: str
    model_bucket_arn: str
    kms_key_arn: str
    """The platform key: the captures, baselines and reports are encrypted with it."""
    topic_arn: str
    variants: tuple[str, ...]
    """The endpoint's variants (each gets its report and alarms)."""
    role_name: str
    events_role_name: str
    schedule_rule_name: str
    request_metrics: dict[str, ServedRequests] | None = None
    """Variant -> the metric that counts the requests it answered: its "no data" alarm fires only when it answered
    some in the window (captures were expected). A variant without one (a shadow) alarms on the monitor's NoData
    alone."""
    schedule: str = "cron(20 * * * ? *)"
    window_hours: int = 1
    drift_alarm_windows: int = 3
    no_data_alarm_windows: int = 2
    quality_alarm: QualityAlarm | None = None
    namespace: str = "EcsMlops/Monitor"
    cpu: str = "1024"
    memory: str = "2048"
    """One vCPU: bench/monitor measured 100k captured rows in 8 s with a 357 MiB peak on one core."""
    log_retention_days: int = 30
    permissions_boundary_arn: str | None = None

    def __post_init__(self) -> None:
        if not self.schedule.startswith(("rate(", "cron(")):
            raise ValueError(f"ModelMonitorProps.schedule {self.schedule!r}: a rate(...) or cron(...) expression")
        if self.capture_prefix and not self.capture_prefix.endswith("/"):
            raise ValueError(f"ModelMonitorProps.capture_prefix {self.capture_prefix!r}: empty or ending in '/'")
        if self.quality_alarm and self.quality_alarm.metric not in {**LOWER_IS_WORSE, **HIGHER_IS_WORSE}:
            raise ValueError(f"ModelMonitorProps.quality_alarm.metric {self.quality_alarm.metric!r}: one of "
                             f"{', '.join([*LOWER_IS_WORSE, *HIGHER_IS_WORSE])}")


class ModelMonitor(Construct):
    """Attributes: `role`, `task_definition`, `log_group`, `on_schedule`, `events_role`, `security_group`,
    `alarms` (short name -> alarm)."""

    def __init__(self, scope: Construct, construct_id: str, props: ModelMonitorProps):
        super().__init__(scope, construct_id)
        self._props = props
        self.log_group, _ = task_log_group(self, f"/ecs/{props.name_prefix}/monitor", props.log_retention_days,
                                           props.kms_key_arn, props.execution_role_id, "WriteMonitorLogs")
        self.role = IamRole(self, "role", name=props.role_name, permissions_boundary=props.permissions_boundary_arn,
                            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com", props.account_id),
                            description=f"{props.endpoint}: the model monitor task")
        IamRolePolicy(self, "policy", role=self.role.id, policy=policy_document(*self._statements()))
        self.security_group = SecurityGroup(
            self, "security-group", name=f"{props.name_prefix}-monitor", vpc_id=props.vpc_id,
            description=f"{props.name_prefix} model monitor task: HTTPS out, nothing in",
            tags={"Name": f"{props.name_prefix}-monitor"})
        VpcSecurityGroupEgressRule(self, "https-out", security_group_id=self.security_group.id,
                                   cidr_ipv4="0.0.0.0/0", ip_protocol="tcp", from_port=443, to_port=443,
                                   description="HTTPS to AWS APIs")
        self.task_definition = EcsTaskDefinition(
            self, "task-definition", family=f"{props.name_prefix}-monitor", network_mode="awsvpc",
            requires_compatibilities=["FARGATE"], cpu=props.cpu, memory=props.memory,
            execution_role_arn=props.execution_role_arn, task_role_arn=self.role.arn,
            runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX",
                                                              cpu_architecture="X86_64"),
            container_definitions=json.dumps([self._container()]),
            # The root file system is read-only; matplotlib keeps its cache in the task's scratch space.
            volume=[EcsTaskDefinitionVolume(name="scratch")])
        self.events_role = task_starter_role(
            self, props.events_role_name, "events.amazonaws.com", props.account_id, props.permissions_boundary_arn,
            "EventBridge starts the model monitor task", self.task_definition, props.cluster_arn,
            [props.execution_role_arn, self.role.arn], "Monitor")
        self.on_schedule = CloudwatchEventRule(
            self, "on-schedule", name=props.schedule_rule_name, schedule_expression=props.schedule,
            description=f"{props.endpoint}: monitor the last {props.window_hours} h of captures")
        run_task_on_rule(self, "run-on-schedule", self.on_schedule, props.cluster_arn, self.events_role.arn,
                         self.task_definition.arn, props.subnet_ids, self.security_group.id)
        self.alarms: dict[str, CloudwatchMetricAlarm] = {}
        for variant in props.variants:
            self._alarms(variant)

    def _statements(self) -> list[dict]:
        props = self._props
        captures = f"{props.capture_prefix}{props.endpoint}/"
        ground_truth = f"{GROUND_TRUTH_PREFIX}{props.endpoint}/"
        reports = f"{MONITORING_PREFIX}{props.endpoint}/"
        return [
            {"Sid": "ListCapturesAndGroundTruth", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": props.capture_bucket_arn,
             "Condition": {"StringLike": {"s3:prefix": [f"{captures}*", f"{ground_truth}*"]}}},
            {"Sid": "ReadCapturesAndGroundTruth", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": [f"{props.capture_bucket_arn}/{captures}*", f"{props.capture_bucket_arn}/{ground_truth}*"]},
            {"Sid": "WriteReports", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": f"{props.capture_bucket_arn}/{reports}*"},
            # The task lists a version's baseline before reading it: a version without one reads as absent.
            {"Sid": "ListBaselines", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": props.model_bucket_arn,
             "Condition": {"StringLike": {"s3:prefix": f"{props.endpoint}/*/{BASELINE_FILE}"}}},
            {"Sid": "ReadBaselines", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"{props.model_bucket_arn}/{props.endpoint}/*/{BASELINE_FILE}"},
            {"Sid": "UsePlatformKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
             "Resource": props.kms_key_arn},
            {"Sid": "PutMonitorMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
             "Condition": {"StringEquals": {"cloudwatch:namespace": props.namespace}}},
        ]

    def _container(self) -> dict:
        props = self._props
        environment = {
            MonitorVariable.ENDPOINT: props.endpoint, MonitorVariable.ENVIRONMENT: props.environment,
            MonitorVariable.CAPTURE_BUCKET: props.capture_bucket_name,
            MonitorVariable.CAPTURE_PREFIX: props.capture_prefix,
            MonitorVariable.MODEL_BUCKET: props.model_bucket_name, MonitorVariable.MODEL_PREFIX: f"{props.endpoint}/",
            MonitorVariable.VARIANTS: ",".join(props.variants),
            MonitorVariable.WINDOW_HOURS: str(props.window_hours), MonitorVariable.NAMESPACE: props.namespace,
            "AWS_DEFAULT_REGION": props.region}
        # Every field ECS fills in when it is left out is written here, so a plan after apply shows no diff.
        return {
            "name": MONITOR_CONTAINER, "image": props.image, "entryPoint": list(MONITOR_PROGRAM), "cpu": 0,
            "essential": True, "readonlyRootFilesystem": True, "portMappings": [],
            "environment": [{"name": key, "value": value} for key, value in sorted(environment.items())],
            "environmentFiles": [],
            "mountPoints": [{"sourceVolume": "scratch", "containerPath": SCRATCH_MOUNT, "readOnly": False}],
            "volumesFrom": [], "systemControls": [], "ulimits": [],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": self.log_group.name, "awslogs-region": props.region,
                "awslogs-stream-prefix": MONITOR_CONTAINER}, "secretOptions": []},
        }

    def _no_data_while_serving(self, variant: str, dimensions: dict[str, str], served: ServedRequests) -> None:
        """Captures were expected (the variant answered requests) but the monitor found none, or did not run at all
        (its NoData is missing: filled with 1). An idle endpoint raises nothing."""
        props = self._props
        period = props.window_hours * 3600
        self.alarms[f"{variant}-no-data"] = CloudwatchMetricAlarm(
            self, f"{variant}-no-data", alarm_name=f"{props.name_prefix}-{variant}-no-data",
            alarm_description=f"{props.name_prefix} variant {variant}: requests were served but the monitor found no "
                              f"captures (or did not run) in {props.no_data_alarm_windows} consecutive windows",
            evaluation_periods=props.no_data_alarm_windows, datapoints_to_alarm=props.no_data_alarm_windows,
            threshold=1, comparison_operator="GreaterThanOrEqualToThreshold", treat_missing_data="notBreaching",
            alarm_actions=[props.topic_arn], ok_actions=[props.topic_arn],
            metric_query=[
                CloudwatchMetricAlarmMetricQuery(
                    id="nodata", return_data=False, metric=CloudwatchMetricAlarmMetricQueryMetric(
                        namespace=props.namespace, metric_name="NoData", dimensions=dimensions, period=period,
                        stat="Maximum")),
                CloudwatchMetricAlarmMetricQuery(
                    id="requests", return_data=False, metric=CloudwatchMetricAlarmMetricQueryMetric(
                        namespace=served.namespace, metric_name=served.metric_name, dimensions=served.dimensions,
                        period=period, stat="Sum")),
                CloudwatchMetricAlarmMetricQuery(
                    id="expected", return_data=True, label="requests served, no captures found",
                    expression="IF(FILL(nodata, 1) > 0 AND FILL(requests, 0) > 0, 1, 0)"),
            ])

    def _alarms(self, variant: str) -> None:
        props = self._props
        period = props.window_hours * 3600
        dimensions = {"Environment": props.environment, "Endpoint": props.endpoint, "Variant": variant}

        def alarm(short_name: str, summary: str, metric: str, comparison: str, threshold: float, windows: int,
                  missing: str) -> None:
            self.alarms[f"{variant}-{short_name}"] = CloudwatchMetricAlarm(
                self, f"{variant}-{short_name}", alarm_name=f"{props.name_prefix}-{variant}-{short_name}",
                alarm_description=f"{props.name_prefix} variant {variant}: {summary}", namespace=props.namespace,
                metric_name=metric, dimensions=dimensions, statistic="Maximum", period=period,
                evaluation_periods=windows, datapoints_to_alarm=windows, threshold=threshold,
                comparison_operator=comparison, treat_missing_data=missing, alarm_actions=[props.topic_arn],
                ok_actions=[props.topic_arn])

        alarm("drift", f"a feature drifted in {props.drift_alarm_windows} consecutive monitor windows (report: "
              f"s3://{props.capture_bucket_name}/{MONITORING_PREFIX}{props.endpoint}/{variant}/)", "FeaturesDrifted",
              "GreaterThanOrEqualToThreshold", 1, props.drift_alarm_windows, "notBreaching")
        served = (props.request_metrics or {}).get(variant)
        if served is None:
            alarm("no-data", f"no captures in {props.no_data_alarm_windows} consecutive monitor windows", "NoData",
                  "GreaterThanOrEqualToThreshold", 1, props.no_data_alarm_windows, "notBreaching")
        else:
            self._no_data_while_serving(variant, dimensions, served)
        quality = props.quality_alarm
        if quality is not None:
            lower_is_worse = quality.metric in LOWER_IS_WORSE
            metric = {**LOWER_IS_WORSE, **HIGHER_IS_WORSE}[quality.metric]
            alarm("quality", f"{quality.metric} {'below' if lower_is_worse else 'above'} {quality.value} against "
                  "the uploaded ground truth", metric,
                  "LessThanThreshold" if lower_is_worse else "GreaterThanThreshold", quality.value, 1,
                  "notBreaching")  # no labels yet is not a quality problem
