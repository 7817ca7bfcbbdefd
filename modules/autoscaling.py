"""Autoscaling of an ECS service: target tracking on CPU, memory and load balancer requests per task, plus optional
scheduled changes of the bounds."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_scheduled_action import (
    AppautoscalingScheduledAction,
    AppautoscalingScheduledActionScalableTargetAction,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from constructs import Construct

DIMENSION = "ecs:service:DesiredCount"


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
        if props.request_count_resource_label:
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
        for action in props.scheduled:
            AppautoscalingScheduledAction(
                self, f"schedule-{action.name}", name=f"{props.name_prefix}-{action.name}",
                service_namespace=self.target.service_namespace, resource_id=self.target.resource_id,
                scalable_dimension=self.target.scalable_dimension, schedule=action.schedule,
                timezone=action.timezone,
                scalable_target_action=AppautoscalingScheduledActionScalableTargetAction(
                    min_capacity=str(action.min_tasks), max_capacity=str(action.max_tasks)))
