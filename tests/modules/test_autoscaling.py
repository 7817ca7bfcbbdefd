"""modules/autoscaling.py: target tracking on CPU, memory and (with a target group) requests per task, and scheduled
changes of the bounds."""

from __future__ import annotations

import pytest

from modules.autoscaling import ScheduledBounds, ServiceAutoscaling, ServiceAutoscalingProps
from tests.infra.synth import only, resources
from tests.support.construct_synth import synth_stack

BASE = {"name_prefix": "p-dev-a", "cluster_name": "p-dev", "service_name": "a", "min_tasks": 1, "max_tasks": 4}


def scaling(**options) -> dict:
    return synth_stack(lambda s: ServiceAutoscaling(s, "autoscaling", ServiceAutoscalingProps(**BASE, **options)))


def tracked(stack) -> dict[str, tuple]:
    return {body["name"]: (body["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"]
                           ["predefined_metric_type"], body["target_tracking_scaling_policy_configuration"]
                           ["target_value"]) for body in resources(stack, "aws_appautoscaling_policy").values()}


def test_defaults_track_cpu_and_memory_within_the_bounds():
    stack = scaling()
    _, target = only(stack, "aws_appautoscaling_target")
    assert (target["resource_id"], target["min_capacity"], target["max_capacity"]) == ("service/p-dev/a", 1, 4)
    assert tracked(stack) == {"p-dev-a-cpu": ("ECSServiceAverageCPUUtilization", 60),
                              "p-dev-a-memory": ("ECSServiceAverageMemoryUtilization", 75)}
    assert resources(stack, "aws_appautoscaling_scheduled_action") == {}


def test_requests_per_task_and_schedules_when_given():
    stack = scaling(request_count_resource_label="app/lb/1/targetgroup/tg/2", requests_per_target=500,
                    scheduled=(ScheduledBounds("night", "cron(0 20 * * ? *)", 0, 1, "Europe/Berlin"),))
    assert tracked(stack)["p-dev-a-requests"] == ("ALBRequestCountPerTarget", 500)
    _, action = only(stack, "aws_appautoscaling_scheduled_action")
    assert (action["name"], action["schedule"], action["timezone"]) == ("p-dev-a-night", "cron(0 20 * * ? *)",
                                                                        "Europe/Berlin")
    assert action["scalable_target_action"] == {"min_capacity": "0", "max_capacity": "1"}


@pytest.mark.parametrize("changes, message", [
    ({"min_tasks": 5}, "min_tasks 5 and max_tasks 4 need 0 <= min_tasks <= max_tasks"),
    ({"cpu_target_percent": 0}, "cpu_target_percent 0: a percentage"),
    ({"scheduled": (ScheduledBounds("x", "rate(1 day)", 0, 1), ScheduledBounds("x", "rate(2 days)", 0, 1))},
     "names must be unique"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        ServiceAutoscalingProps(**{**BASE, **changes})


def test_scheduled_bounds_are_validated():
    with pytest.raises(ValueError, match="min_tasks 3 must be between 0 and max_tasks 2"):
        ScheduledBounds("x", "rate(1 day)", 3, 2)


def test_concurrency_replaces_requests_with_tracking_and_a_high_resolution_burst_step():
    from modules.autoscaling import BURST_PERIOD_SECONDS, ConcurrencyMetric

    metric = ConcurrencyMetric("EcsMlops/Serving", "ConcurrentRequests",
                               {"Model": "a", "Environment": "dev", "Variant": "main"}, 3.0)
    stack = scaling(request_count_resource_label="app/lb/1/targetgroup/tg/2", concurrency=metric)
    policies = {body["name"]: (logical_id, body)
                for logical_id, body in resources(stack, "aws_appautoscaling_policy").items()}
    assert set(policies) == {"p-dev-a-cpu", "p-dev-a-memory", "p-dev-a-concurrency", "p-dev-a-concurrency-burst"}
    tracking = policies["p-dev-a-concurrency"][1]["target_tracking_scaling_policy_configuration"]
    assert tracking["target_value"] == 3.0
    assert tracking["customized_metric_specification"] == {
        "namespace": "EcsMlops/Serving", "metric_name": "ConcurrentRequests", "statistic": "Average",
        "dimensions": [{"name": "Model", "value": "a"}, {"name": "Environment", "value": "dev"},
                       {"name": "Variant", "value": "main"}]}
    burst_id, burst = policies["p-dev-a-concurrency-burst"]
    step = burst["step_scaling_policy_configuration"]
    assert (step["adjustment_type"], step["min_adjustment_magnitude"]) == ("PercentChangeInCapacity", 1)
    assert step["step_adjustment"] == [{"scaling_adjustment": 50, "metric_interval_lower_bound": "0"}]
    _, alarm = only(stack, "aws_cloudwatch_metric_alarm")
    assert alarm["alarm_actions"] == [f"${{aws_appautoscaling_policy.{burst_id}.arn}}"]
    assert (alarm["period"], alarm["evaluation_periods"], alarm["threshold"]) == (BURST_PERIOD_SECONDS, 3, 6.0)
    assert alarm["dimensions"] == {"Model": "a", "Environment": "dev", "Variant": "main"}
    with pytest.raises(ValueError, match="target_per_process 0"):
        ConcurrencyMetric("n", "m", {}, 0)
