"""An endpoint's alarms (to the environment's alarm topic) and its CloudWatch dashboard."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from constructs import Construct

ALB = "AWS/ApplicationELB"
ECS = "AWS/ECS"
INSIGHTS = "ECS/ContainerInsights"
EFS = "AWS/EFS"
SQS = "AWS/SQS"


@dataclass(frozen=True)
class EndpointMonitoringProps:
    name_prefix: str
    region: str
    topic_arn: str
    load_balancer_arn_suffix: str
    target_group_arn_suffix: str | None
    """None for a service the load balancer does not reach (a shadow variant): no load balancer alarms or graphs."""
    cluster_name: str
    service_name: str
    file_system_id: str
    min_tasks: int
    alarm_5xx_count: int = 5
    alarm_p99_latency_seconds: float = 1.0
    efs_burst_credit_alarm_bytes: int | None = 10**12
    """None: no burst-credit alarm (elastic throughput has no credits)."""
    alternate_target_group_arn_suffix: str | None = None
    """The second target group of a gradual rollout: its 5xx and p99 alarms too (a new version may run in either
    target group)."""
    queue_name: str | None = None
    """An asynchronous endpoint's request queue: an alarm when its oldest request waits too long, and graphs."""
    dead_letter_queue_name: str | None = None
    """Its dead-letter queue: an alarm as soon as a request lands there."""
    oldest_request_alarm_seconds: int = 3600


ROLLBACK_ALARM = "target-5xx"
ROLLBACK_ALARMS = (ROLLBACK_ALARM, "p99-latency")
"""The alarms a deployment rolls back on: the endpoint's own 5xx and p99, per target group."""
ALTERNATE = "-alternate"


class EndpointMonitoring(Construct):
    """Attributes: `alarms` (short name -> alarm; `ROLLBACK_ALARM` is the one deployments roll back on),
    `dashboard`."""

    def __init__(self, scope: Construct, construct_id: str, props: EndpointMonitoringProps):
        super().__init__(scope, construct_id)
        self._props = props
        target = {"LoadBalancer": props.load_balancer_arn_suffix, "TargetGroup": props.target_group_arn_suffix}
        service = {"ClusterName": props.cluster_name, "ServiceName": props.service_name}
        self.alarms: dict[str, CloudwatchMetricAlarm] = {}
        if props.target_group_arn_suffix is not None:
            self._target_alarms(target)
        if props.min_tasks > 0:
            # Missing data means no task reports at all: that is the worst case, not an all-clear.
            self._alarm("running-tasks-low", f"fewer than {props.min_tasks} tasks run", INSIGHTS, "RunningTaskCount",
                        service, statistic="Minimum", threshold=props.min_tasks, comparison="LessThanThreshold",
                        missing="breaching")
        if props.queue_name is not None:
            self._alarm("request-age", f"a request waited over {props.oldest_request_alarm_seconds} s for a worker",
                        SQS, "ApproximateAgeOfOldestMessage", {"QueueName": props.queue_name}, statistic="Maximum",
                        threshold=props.oldest_request_alarm_seconds, comparison="GreaterThanThreshold")
        if props.dead_letter_queue_name is not None:
            self._alarm("dead-letters", "requests could not be answered (see the dead-letter queue's error attribute)",
                        SQS, "ApproximateNumberOfMessagesVisible", {"QueueName": props.dead_letter_queue_name},
                        statistic="Maximum", threshold=1, comparison="GreaterThanOrEqualToThreshold", periods=1)
        if props.efs_burst_credit_alarm_bytes is not None:
            self._alarm("efs-burst-credits", "EFS burst credits run low", EFS, "BurstCreditBalance",
                        {"FileSystemId": props.file_system_id}, statistic="Minimum",
                        threshold=props.efs_burst_credit_alarm_bytes, comparison="LessThanThreshold", periods=5,
                        period=300)
        self.dashboard = CloudwatchDashboard(self, "dashboard", dashboard_name=props.name_prefix,
                                             dashboard_body=json.dumps(self._dashboard(target, service)))

    def _target_alarms(self, target: dict[str, str | None]) -> None:
        props = self._props
        self._alarm(ROLLBACK_ALARM, "targets answer with 5xx", ALB, "HTTPCode_Target_5XX_Count", target,
                    statistic="Sum", threshold=props.alarm_5xx_count, comparison="GreaterThanOrEqualToThreshold")
        self._alarm("p99-latency", "p99 response time is high", ALB, "TargetResponseTime", target,
                    extended_statistic="p99", threshold=props.alarm_p99_latency_seconds,
                    comparison="GreaterThanThreshold")
        if props.alternate_target_group_arn_suffix is not None:
            alternate = {**target, "TargetGroup": props.alternate_target_group_arn_suffix}
            self._alarm(ROLLBACK_ALARM + ALTERNATE, "targets of the alternate target group answer with 5xx", ALB,
                        "HTTPCode_Target_5XX_Count", alternate, statistic="Sum", threshold=props.alarm_5xx_count,
                        comparison="GreaterThanOrEqualToThreshold")
            self._alarm("p99-latency" + ALTERNATE, "p99 response time of the alternate target group is high", ALB,
                        "TargetResponseTime", alternate, extended_statistic="p99",
                        threshold=props.alarm_p99_latency_seconds, comparison="GreaterThanThreshold")
        self._alarm("unhealthy-hosts", "targets fail the health check", ALB, "UnHealthyHostCount", target,
                    statistic="Maximum", threshold=1, comparison="GreaterThanOrEqualToThreshold")

    @property
    def rollback_alarm_names(self) -> list[str]:
        """A deployment rolls back when one of these goes off (ECS watches them during and after the rollout)."""
        return [alarm.alarm_name for short_name, alarm in self.alarms.items()
                if short_name.removesuffix(ALTERNATE) in ROLLBACK_ALARMS]

    def _alarm(self, short_name: str, summary: str, namespace: str, metric: str, dimensions: dict[str, str], *,
               threshold: float, comparison: str, statistic: str | None = None,
               extended_statistic: str | None = None, missing: str = "notBreaching", periods: int = 3,
               period: int = 60) -> None:
        self.alarms[short_name] = CloudwatchMetricAlarm(
            self, short_name, alarm_name=f"{self._props.name_prefix}-{short_name}",
            alarm_description=f"{self._props.name_prefix}: {summary}", namespace=namespace, metric_name=metric,
            dimensions=dimensions, statistic=statistic, extended_statistic=extended_statistic, period=period,
            evaluation_periods=periods, datapoints_to_alarm=periods, threshold=threshold,
            comparison_operator=comparison, treat_missing_data=missing,
            alarm_actions=[self._props.topic_arn], ok_actions=[self._props.topic_arn])

    def _dashboard(self, target: dict[str, str], service: dict[str, str]) -> dict[str, Any]:
        def metric(namespace: str, name: str, dims: dict[str, str], **options: Any) -> list[Any]:
            flat: list[Any] = [namespace, name]
            for key, value in dims.items():
                flat += [key, value]
            return flat + ([options] if options else [])

        def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Sum") -> dict[str, Any]:
            return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
                "title": title, "region": self._props.region, "stat": stat, "period": 60, "view": "timeSeries",
                "metrics": metrics}}

        service_widgets = [
            widget("Tasks", [metric(INSIGHTS, "RunningTaskCount", service),
                             metric(INSIGHTS, "DesiredTaskCount", service)], 12, 6, stat="Average"),
            widget("CPU and memory (%)", [metric(ECS, "CPUUtilization", service),
                                          metric(ECS, "MemoryUtilization", service)], 0, 12, stat="Average")]
        if self._props.queue_name is not None:
            queue = {"QueueName": self._props.queue_name}
            service_widgets.insert(0, widget("Requests waiting and in progress", [
                metric(SQS, "ApproximateNumberOfMessagesVisible", queue),
                metric(SQS, "ApproximateNumberOfMessagesNotVisible", queue)], 0, 6, stat="Maximum"))
        if self._props.target_group_arn_suffix is None:
            return {"widgets": service_widgets}
        return {"widgets": [
            widget("Requests", [metric(ALB, "RequestCountPerTarget", target), metric(ALB, "RequestCount", target)],
                   0, 0),
            widget("Latency (s)", [metric(ALB, "TargetResponseTime", target, stat="p50"),
                                   metric(ALB, "TargetResponseTime", target, stat="p99")], 12, 0, stat="p99"),
            widget("Errors", [metric(ALB, "HTTPCode_Target_5XX_Count", target),
                              metric(ALB, "HTTPCode_Target_4XX_Count", target)], 0, 6),
            *service_widgets,
            widget("Healthy targets", [metric(ALB, "HealthyHostCount", target),
                                       metric(ALB, "UnHealthyHostCount", target)], 12, 12, stat="Minimum"),
        ]}
