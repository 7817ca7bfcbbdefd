"""Autoscaling of an asynchronous endpoint's workers on their queue: the backlog per task, and from and to zero.

- Target tracking keeps (messages waiting + messages being worked on) / running tasks near `backlog_per_task`
  (metric math over SQS's and Container Insights' metrics, as AWS documents for queue workers).
- Target tracking multiplies the running tasks, so it never starts the first one: a step policy on the alarm
  "backlog without capacity" (messages, no running task) adds one task.
- With `min_tasks: 0`, a step policy on the alarm "idle" (nothing waiting or in progress for `idle_minutes`) sets
  the tasks to zero. Target tracking would take them to zero too, after its own fixed 15 minutes of low values, so
  its metric has a floor that keeps one task until `idle_minutes` decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyStepScalingPolicyConfiguration,
    AppautoscalingPolicyStepScalingPolicyConfigurationStepAdjustment,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecification,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetrics,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStat,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStatMetric,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import (
    CloudwatchMetricAlarm,
    CloudwatchMetricAlarmMetricQuery,
    CloudwatchMetricAlarmMetricQueryMetric,
)
from constructs import Construct

from modules.autoscaling import DIMENSION

PERIOD_SECONDS = 60
"""SQS publishes its queue metrics once a minute."""
TRACKING_FLOOR = 0.001
"""The least backlog per task target tracking sees: ceil(tasks x floor / target) is 1 for any sensible target, so
target tracking alone never goes below one task."""
BACKLOG = "FILL(visible, 0) + FILL(inflight, 0)"
TASKS = "FILL(tasks, 0)"

_TrackedMetric = AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetrics
_TrackedStat = (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStat)
_TrackedStatMetric = (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricsMetricStatMetric)


@dataclass(frozen=True)
class QueueScalingProps:
    name_prefix: str
    cluster_name: str
    service_name: str
    queue_name: str
    min_tasks: int
    max_tasks: int
    backlog_per_task: int = 10
    idle_minutes: int = 15
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 120

    def __post_init__(self) -> None:
        if not 0 <= self.min_tasks <= self.max_tasks or self.max_tasks < 1:
            raise ValueError(f"QueueScalingProps: min_tasks {self.min_tasks} and max_tasks {self.max_tasks} need "
                             "0 <= min_tasks <= max_tasks and max_tasks >= 1")
        if self.backlog_per_task < 1:
            raise ValueError(f"QueueScalingProps.backlog_per_task {self.backlog_per_task}: at least 1")
        if not 1 <= self.idle_minutes <= 1440:
            raise ValueError(f"QueueScalingProps.idle_minutes {self.idle_minutes}: 1 to 1440 (CloudWatch evaluates "
                             "at most a day of one-minute periods)")


class QueueScaling(Construct):
    """Attributes: `target`, `policies` (`backlog`, `start`, and `stop` with min_tasks 0), `alarms` (`start`, and
    `idle` with min_tasks 0)."""

    def __init__(self, scope: Construct, construct_id: str, props: QueueScalingProps):
        super().__init__(scope, construct_id)
        self.props = props
        self.target = AppautoscalingTarget(
            self, "target", service_namespace="ecs", scalable_dimension=DIMENSION,
            resource_id=f"service/{props.cluster_name}/{props.service_name}",
            min_capacity=props.min_tasks, max_capacity=props.max_tasks)
        self.policies: dict[str, AppautoscalingPolicy] = {}
        self.alarms: dict[str, CloudwatchMetricAlarm] = {}
        self.policies["backlog"] = AppautoscalingPolicy(
            self, "track-backlog", name=f"{props.name_prefix}-backlog", policy_type="TargetTrackingScaling",
            **self._on_target(),
            target_tracking_scaling_policy_configuration=AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                target_value=props.backlog_per_task, scale_out_cooldown=props.scale_out_cooldown_seconds,
                scale_in_cooldown=props.scale_in_cooldown_seconds,
                customized_metric_specification=(
                    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecification(
                        metrics=self._tracked_metrics()))))
        self._step("start", "ChangeInCapacity", 1, lower_bound="0", alarm_description=(
            f"{props.name_prefix}: requests wait and no worker runs; starts one"),
            comparison="GreaterThanOrEqualToThreshold", threshold=1, periods=1,
            expression=f"IF(({BACKLOG}) > 0 AND {TASKS} == 0, 1, 0)", label="backlog without capacity")
        if props.min_tasks == 0:
            self._step("stop", "ExactCapacity", 0, upper_bound="0", alarm_name_suffix="idle", alarm_description=(
                f"{props.name_prefix}: nothing waited or was worked on for {props.idle_minutes} minutes; stops the "
                "workers"), comparison="LessThanOrEqualToThreshold", threshold=0, periods=props.idle_minutes,
                expression=BACKLOG, label="requests waiting or in progress")

    def _on_target(self) -> dict[str, str]:
        return {"service_namespace": self.target.service_namespace, "resource_id": self.target.resource_id,
                "scalable_dimension": self.target.scalable_dimension}

    def _queue_metric(self, name: str) -> dict[str, object]:
        return {"namespace": "AWS/SQS", "metric_name": name, "dimensions": {"QueueName": self.props.queue_name}}

    def _tasks_metric(self) -> dict[str, object]:
        return {"namespace": "ECS/ContainerInsights", "metric_name": "RunningTaskCount",
                "dimensions": {"ClusterName": self.props.cluster_name, "ServiceName": self.props.service_name}}

    def _tracked_metrics(self) -> list[_TrackedMetric]:
        def stat(metric: dict[str, object]) -> _TrackedStat:
            dimensions = metric["dimensions"]
            assert isinstance(dimensions, dict)
            return _TrackedStat(stat="Average", metric=_TrackedStatMetric(
                namespace=str(metric["namespace"]), metric_name=str(metric["metric_name"]),
                dimensions=[{"name": key, "value": value} for key, value in dimensions.items()]))

        return [
            _TrackedMetric(id="visible", return_data=False,
                           metric_stat=stat(self._queue_metric("ApproximateNumberOfMessagesVisible"))),
            _TrackedMetric(id="inflight", return_data=False,
                           metric_stat=stat(self._queue_metric("ApproximateNumberOfMessagesNotVisible"))),
            _TrackedMetric(id="tasks", return_data=False, metric_stat=stat(self._tasks_metric())),
            _TrackedMetric(id="backlog_per_task", return_data=False,
                           expression=f"IF({TASKS} > 0, ({BACKLOG}) / {TASKS}, {BACKLOG})"),
            _TrackedMetric(id="tracked", return_data=True, label="backlog per task",
                           expression=f"IF(backlog_per_task > {TRACKING_FLOOR}, backlog_per_task, {TRACKING_FLOOR})"),
        ]

    def _step(self, name: str, adjustment_type: str, adjustment: int, *, alarm_description: str, comparison: str,
              threshold: float, periods: int, expression: str, label: str, lower_bound: str | None = None,
              upper_bound: str | None = None, alarm_name_suffix: str | None = None) -> None:
        props = self.props
        policy = AppautoscalingPolicy(
            self, f"step-{name}", name=f"{props.name_prefix}-{name}", policy_type="StepScaling", **self._on_target(),
            step_scaling_policy_configuration=AppautoscalingPolicyStepScalingPolicyConfiguration(
                adjustment_type=adjustment_type, cooldown=props.scale_out_cooldown_seconds,
                metric_aggregation_type="Maximum",
                step_adjustment=[AppautoscalingPolicyStepScalingPolicyConfigurationStepAdjustment(
                    scaling_adjustment=adjustment, metric_interval_lower_bound=lower_bound,
                    metric_interval_upper_bound=upper_bound)]))
        alarm_key = alarm_name_suffix or name
        self.alarms[alarm_key] = CloudwatchMetricAlarm(
            self, f"{alarm_key}-alarm", alarm_name=f"{props.name_prefix}-{alarm_key}",
            alarm_description=alarm_description, comparison_operator=comparison, threshold=threshold,
            evaluation_periods=periods, datapoints_to_alarm=periods, treat_missing_data="missing",
            alarm_actions=[policy.arn], metric_query=[
                *(CloudwatchMetricAlarmMetricQuery(id=query_id, return_data=False,
                                                   metric=CloudwatchMetricAlarmMetricQueryMetric(
                                                       **metric, period=PERIOD_SECONDS, stat="Maximum"))
                  for query_id, metric in (
                      ("visible", self._queue_metric("ApproximateNumberOfMessagesVisible")),
                      ("inflight", self._queue_metric("ApproximateNumberOfMessagesNotVisible")),
                      ("tasks", self._tasks_metric()))),
                CloudwatchMetricAlarmMetricQuery(id="signal", return_data=True, label=label, expression=expression),
            ])
        self.policies[name] = policy
