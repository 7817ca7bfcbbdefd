"""Autoscaling of an ECS service: target tracking on CPU, memory and load balancer requests per task (or the
server's requests in progress), plus optional scheduled changes of the bounds.

On concurrency: the server publishes each process's time-averaged requests in progress every 10 seconds at
one-second resolution (serving/concurrency.py). Application Auto Scaling's target tracking reads a custom metric
per minute: its TargetTrackingMetricStat has no Period (EC2 Auto Scaling's has 10/30/60 s; ECS's own 20-second
predefined metrics are CPU and memory only; the high-resolution predefined metrics are SageMaker's). So target
tracking keeps the per-minute average near the target, and a step policy on a high-resolution alarm (three 10-second
periods above twice the target) adds half again the tasks within about 30 seconds of a burst.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyStepScalingPolicyConfiguration,
    AppautoscalingPolicyStepScalingPolicyConfigurationStepAdjustment,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecification,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_scheduled_action import (
    AppautoscalingScheduledAction,
    AppautoscalingScheduledActionScalableTargetAction,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from constructs import Construct

DIMENSION = "ecs:service:DesiredCount"
BURST_PERIOD_SECONDS = 10
BURST_PERIODS = 3
BURST_FACTOR = 2.0
"""A burst: the average requests in progress per process above this many times the target for BURST_PERIODS."""
BURST_ADD_PERCENT = 50


@dataclass(frozen=True)
class ScheduledBounds:
    """New task bounds from a point in time on."""

    name: str
    """Unique per service; a construct ID and part of the action's name."""
    schedule: str
    """`cron(...)`, `rate(...)` or `at(...)` in Application Auto Scaling syntax."""
    min_tasks: int
    max_tasks: int
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not 0 <= self.min_tasks <= self.max_tasks:
            raise ValueError(f"ScheduledBounds {self.name!r}: min_tasks {self.min_tasks} must be between 0 and "
                             f"max_tasks {self.max_tasks}")


@dataclass(frozen=True)
class ConcurrencyMetric:
    """The server's requests-in-progress metric of one service (serving.contract.CONCURRENCY_METRIC)."""

    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    """Model, Environment and Variant: one service's processes."""
    target_per_process: float
    """The target per server process (a task runs `SERVING_WORKERS` processes, each publishing its own)."""

    def __post_init__(self) -> None:
        if self.target_per_process <= 0:
            raise ValueError(f"ConcurrencyMetric.target_per_process {self.target_per_process}: above 0")


@dataclass(frozen=True)
class ServiceAutoscalingProps:
    name_prefix: str
    """Prefix of the policy and scheduled action names."""
    cluster_name: str
    service_name: str
    min_tasks: int
    max_tasks: int
    cpu_target_percent: int = 60
    memory_target_percent: int = 75
    requests_per_target: int = 200
    request_count_resource_label: str = ""
    """`<load balancer arn suffix>/<target group arn suffix>`; request tracking is off when empty."""
    concurrency: ConcurrencyMetric | None = None
    """Track requests in progress instead of load balancer requests (with a burst step policy)."""
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 300
    scheduled: tuple[ScheduledBounds, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0 <= self.min_tasks <= self.max_tasks or self.max_tasks < 1:
            raise ValueError(f"ServiceAutoscalingProps: min_tasks {self.min_tasks} and max_tasks {self.max_tasks} "
                             "need 0 <= min_tasks <= max_tasks and max_tasks >= 1")
        for name, value in (("cpu_target_percent", self.cpu_target_percent),
                            ("memory_target_percent", self.memory_target_percent)):
            if not 1 <= value <= 100:
                raise ValueError(f"ServiceAutoscalingProps.{name} {value}: a percentage, 1 to 100")
        names = [action.name for action in self.scheduled]
        if len(set(names)) != len(names):
            raise ValueError(f"ServiceAutoscalingProps.scheduled: names must be unique (got {names})")


class ServiceAutoscaling(Construct):
    """Attributes: `target`, `policies` (metric name -> policy)."""

    def __init__(self, scope: Construct, construct_id: str, props: ServiceAutoscalingProps):
        super().__init__(scope, construct_id)
        self.target = AppautoscalingTarget(
            self, "target", service_namespace="ecs", scalable_dimension=DIMENSION,
            resource_id=f"service/{props.cluster_name}/{props.service_name}",
            min_capacity=props.min_tasks, max_capacity=props.max_tasks)
        metrics = [("cpu", "ECSServiceAverageCPUUtilization", props.cpu_target_percent, None),
                   ("memory", "ECSServiceAverageMemoryUtilization", props.memory_target_percent, None)]
        if props.request_count_resource_label and props.concurrency is None:
            metrics.append(("requests", "ALBRequestCountPerTarget", props.requests_per_target,
                            props.request_count_resource_label))
        self.policies: dict[str, AppautoscalingPolicy] = {}
        for name, metric, target_value, label in metrics:
            self.policies[name] = AppautoscalingPolicy(
                self, f"track-{name}", name=f"{props.name_prefix}-{name}", policy_type="TargetTrackingScaling",
                service_namespace=self.target.service_namespace, resource_id=self.target.resource_id,
                scalable_dimension=self.target.scalable_dimension,
                target_tracking_scaling_policy_configuration=(
                    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                        target_value=target_value,
                        scale_out_cooldown=props.scale_out_cooldown_seconds,
                        scale_in_cooldown=props.scale_in_cooldown_seconds,
                        predefined_metric_specification=(
                            AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                                predefined_metric_type=metric, resource_label=label)))))
        if props.concurrency is not None:
            self._track_concurrency(props, props.concurrency)
        for action in props.scheduled:
            AppautoscalingScheduledAction(
                self, f"schedule-{action.name}", name=f"{props.name_prefix}-{action.name}",
                service_namespace=self.target.service_namespace, resource_id=self.target.resource_id,
                scalable_dimension=self.target.scalable_dimension, schedule=action.schedule,
                timezone=action.timezone,
                scalable_target_action=AppautoscalingScheduledActionScalableTargetAction(
                    min_capacity=str(action.min_tasks), max_capacity=str(action.max_tasks)))

    def _track_concurrency(self, props: ServiceAutoscalingProps, metric: ConcurrencyMetric) -> None:
        on_target = {"service_namespace": self.target.service_namespace, "resource_id": self.target.resource_id,
                     "scalable_dimension": self.target.scalable_dimension}
        self.policies["concurrency"] = AppautoscalingPolicy(
            self, "track-concurrency", name=f"{props.name_prefix}-concurrency", policy_type="TargetTrackingScaling",
            **on_target, target_tracking_scaling_policy_configuration=(
                AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                    target_value=metric.target_per_process, scale_out_cooldown=props.scale_out_cooldown_seconds,
                    scale_in_cooldown=props.scale_in_cooldown_seconds,
                    customized_metric_specification=(
                        AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecification(
                            namespace=metric.namespace, metric_name=metric.metric_name, statistic="Average",
                            dimensions=[{"name": key, "value": value} for key, value in metric.dimensions.items()])))))
        self.policies["concurrency-burst"] = burst = AppautoscalingPolicy(
            self, "step-concurrency-burst", name=f"{props.name_prefix}-concurrency-burst", policy_type="StepScaling",
            **on_target, step_scaling_policy_configuration=AppautoscalingPolicyStepScalingPolicyConfiguration(
                adjustment_type="PercentChangeInCapacity", min_adjustment_magnitude=1,
                cooldown=props.scale_out_cooldown_seconds, metric_aggregation_type="Average",
                step_adjustment=[AppautoscalingPolicyStepScalingPolicyConfigurationStepAdjustment(
                    scaling_adjustment=BURST_ADD_PERCENT, metric_interval_lower_bound="0")]))
        threshold = BURST_FACTOR * metric.target_per_process
        self.burst_alarm = CloudwatchMetricAlarm(
            self, "concurrency-burst-alarm", alarm_name=f"{props.name_prefix}-concurrency-burst",
            alarm_description=f"{props.name_prefix}: over {threshold:g} requests in progress per server process for "
                              f"{BURST_PERIODS * BURST_PERIOD_SECONDS} s; adds {BURST_ADD_PERCENT}% tasks",
            namespace=metric.namespace, metric_name=metric.metric_name, dimensions=metric.dimensions,
            statistic="Average", period=BURST_PERIOD_SECONDS, evaluation_periods=BURST_PERIODS,
            datapoints_to_alarm=BURST_PERIODS, threshold=threshold, comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching", alarm_actions=[burst.arn])
