"""modules/monitoring.py: an endpoint's alarms (to its topic, OK and ALARM) and its dashboard."""

from __future__ import annotations

import json

from modules.monitoring import ROLLBACK_ALARM, EndpointMonitoring, EndpointMonitoringProps
from tests.infra.synth import only, resources
from tests.support.construct_synth import arn, synth_stack

TOPIC = arn("sns", "p-dev-alarms")
BASE = {"name_prefix": "p-dev-a", "region": "eu-west-1", "topic_arn": TOPIC,
        "load_balancer_arn_suffix": "app/lb/1", "target_group_arn_suffix": "targetgroup/tg/2",
        "cluster_name": "p-dev", "service_name": "a", "file_system_id": "fs-1"}


def alarms(**options) -> tuple[dict, dict]:
    stack = synth_stack(lambda s: EndpointMonitoring(s, "monitoring", EndpointMonitoringProps(**{**BASE, **options})))
    return stack, {body["alarm_name"]: body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()}


def test_every_alarm_notifies_the_topic_both_ways():
    stack, found = alarms(min_tasks=2)
    assert set(found) == {f"p-dev-a-{name}" for name in (ROLLBACK_ALARM, "p99-latency", "unhealthy-hosts",
                                                         "running-tasks-low", "efs-burst-credits")}
    assert all(body["alarm_actions"] == [TOPIC] == body["ok_actions"] for body in found.values())
    target_5xx = found[f"p-dev-a-{ROLLBACK_ALARM}"]
    assert target_5xx["dimensions"] == {"LoadBalancer": "app/lb/1", "TargetGroup": "targetgroup/tg/2"}
    assert (target_5xx["threshold"], target_5xx["metric_name"]) == (5, "HTTPCode_Target_5XX_Count")
    low = found["p-dev-a-running-tasks-low"]
    assert low["threshold"] == 2 and low["treat_missing_data"] == "breaching"  # no task reporting is the worst case
    widgets = json.loads(only(stack, "aws_cloudwatch_dashboard")[1]["dashboard_body"])["widgets"]
    assert [widget["properties"]["title"] for widget in widgets][:3] == ["Requests", "Latency (s)", "Errors"]


def test_no_task_floor_and_no_burst_credits_alarm_when_they_do_not_apply():
    _, found = alarms(min_tasks=0, efs_burst_credit_alarm_bytes=None, alarm_5xx_count=10,
                      alarm_p99_latency_seconds=0.25)
    assert set(found) == {"p-dev-a-target-5xx", "p-dev-a-p99-latency", "p-dev-a-unhealthy-hosts"}
    assert found["p-dev-a-p99-latency"]["threshold"] == 0.25 and found["p-dev-a-target-5xx"]["threshold"] == 10


def test_a_gradual_rollout_rolls_back_on_5xx_and_p99_of_either_target_group():
    def build(stack):
        build.monitoring = EndpointMonitoring(stack, "monitoring", EndpointMonitoringProps(
            **BASE, min_tasks=1, alternate_target_group_arn_suffix="targetgroup/alt/3"))
    stack = synth_stack(build)
    found = {body["alarm_name"]: body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    alternate = {name: body["dimensions"]["TargetGroup"] for name, body in found.items() if name.endswith("-alternate")}
    assert alternate == {"p-dev-a-target-5xx-alternate": "targetgroup/alt/3",
                         "p-dev-a-p99-latency-alternate": "targetgroup/alt/3"}
    assert len(build.monitoring.rollback_alarm_names) == 4  # tokens: both alarms on both target groups


def test_a_service_without_a_target_group_gets_task_alarms_and_graphs_only():
    stack, found = alarms(min_tasks=1, target_group_arn_suffix=None, efs_burst_credit_alarm_bytes=None)
    assert set(found) == {"p-dev-a-running-tasks-low"}
    widgets = json.loads(only(stack, "aws_cloudwatch_dashboard")[1]["dashboard_body"])["widgets"]
    assert [widget["properties"]["title"] for widget in widgets] == ["Tasks", "CPU and memory (%)"]
