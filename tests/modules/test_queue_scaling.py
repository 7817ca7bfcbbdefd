"""modules/queue_scaling.py: target tracking on the backlog per task (metric math over the queue's and the service's
metrics), one task started when requests wait and none runs, and with min_tasks 0 the workers stopped after the
quiet period."""

from __future__ import annotations

import pytest

from modules.queue_scaling import TRACKING_FLOOR, QueueScaling, QueueScalingProps
from tests.infra.synth import ref, resources
from tests.support.construct_synth import synth_stack

BASE = {"name_prefix": "p-dev-s", "cluster_name": "p-dev", "service_name": "s", "queue_name": "p-dev-s-requests"}


def scaling_stack(**options) -> dict:
    return synth_stack(lambda stack: QueueScaling(stack, "autoscaling", QueueScalingProps(**BASE, **options)))


@pytest.fixture(scope="module")
def from_zero() -> dict:
    return scaling_stack(min_tasks=0, max_tasks=5, backlog_per_task=20, idle_minutes=30)


def _policies(stack: dict) -> dict[str, tuple[str, dict]]:
    return {body["name"]: (logical_id, body)
            for logical_id, body in resources(stack, "aws_appautoscaling_policy").items()}


def _alarms(stack: dict) -> dict[str, dict]:
    return {body["alarm_name"]: body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()}


def test_the_service_may_scale_between_zero_and_its_maximum(from_zero):
    (scalable,) = resources(from_zero, "aws_appautoscaling_target").values()
    assert scalable["resource_id"] == "service/p-dev/s" and scalable["scalable_dimension"] == "ecs:service:DesiredCount"
    assert (scalable["min_capacity"], scalable["max_capacity"]) == (0, 5)


def test_target_tracking_keeps_the_backlog_per_running_task_near_its_target(from_zero):
    _, policy = _policies(from_zero)["p-dev-s-backlog"]
    configuration = policy["target_tracking_scaling_policy_configuration"]
    assert configuration["target_value"] == 20 and not configuration.get("disable_scale_in")
    metrics = {metric["id"]: metric for metric in configuration["customized_metric_specification"]["metrics"]}
    assert [metric_id for metric_id, metric in metrics.items() if metric["return_data"]] == ["tracked"]
    stats = {metric_id: metric["metric_stat"]["metric"] for metric_id, metric in metrics.items()
             if "metric_stat" in metric}
    assert stats["visible"]["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert stats["inflight"]["metric_name"] == "ApproximateNumberOfMessagesNotVisible"
    assert all(stats[m]["dimensions"] == [{"name": "QueueName", "value": "p-dev-s-requests"}]
               for m in ("visible", "inflight"))
    assert stats["tasks"]["namespace"] == "ECS/ContainerInsights" and stats["tasks"]["dimensions"] == [
        {"name": "ClusterName", "value": "p-dev"}, {"name": "ServiceName", "value": "s"}]
    assert metrics["backlog_per_task"]["expression"] == (
        "IF(FILL(tasks, 0) > 0, (FILL(visible, 0) + FILL(inflight, 0)) / FILL(tasks, 0), "
        "FILL(visible, 0) + FILL(inflight, 0))")
    assert metrics["tracked"]["expression"] == (
        f"IF(backlog_per_task > {TRACKING_FLOOR}, backlog_per_task, {TRACKING_FLOOR})")


def test_requests_waiting_without_a_worker_start_one(from_zero):
    policy_id, policy = _policies(from_zero)["p-dev-s-start"]
    step = policy["step_scaling_policy_configuration"]
    assert step["adjustment_type"] == "ChangeInCapacity"
    assert step["step_adjustment"] == [{"scaling_adjustment": 1, "metric_interval_lower_bound": "0"}]
    alarm = _alarms(from_zero)["p-dev-s-start"]
    assert alarm["alarm_actions"] == [ref("aws_appautoscaling_policy", policy_id, "arn")]
    assert (alarm["evaluation_periods"], alarm["threshold"], alarm["comparison_operator"]) == (
        1, 1, "GreaterThanOrEqualToThreshold")
    queries = {query["id"]: query for query in alarm["metric_query"]}
    assert queries["signal"]["expression"] == (
        "IF((FILL(visible, 0) + FILL(inflight, 0)) > 0 AND FILL(tasks, 0) == 0, 1, 0)")
    assert all(queries[m]["metric"]["period"] == 60 for m in ("visible", "inflight", "tasks"))


def test_an_idle_queue_stops_the_workers_after_the_quiet_period(from_zero):
    policy_id, policy = _policies(from_zero)["p-dev-s-stop"]
    step = policy["step_scaling_policy_configuration"]
    assert step["adjustment_type"] == "ExactCapacity"
    assert step["step_adjustment"] == [{"scaling_adjustment": 0, "metric_interval_upper_bound": "0"}]
    alarm = _alarms(from_zero)["p-dev-s-idle"]
    assert alarm["alarm_actions"] == [ref("aws_appautoscaling_policy", policy_id, "arn")]
    assert (alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (30, 30)
    assert (alarm["threshold"], alarm["comparison_operator"]) == (0, "LessThanOrEqualToThreshold")
    queries = {query["id"]: query for query in alarm["metric_query"]}
    assert queries["signal"]["expression"] == "FILL(visible, 0) + FILL(inflight, 0)"


def test_with_a_minimum_above_zero_nothing_stops_the_workers():
    stack = scaling_stack(min_tasks=1, max_tasks=3)
    assert set(_policies(stack)) == {"p-dev-s-backlog", "p-dev-s-start"}
    assert set(_alarms(stack)) == {"p-dev-s-start"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"min_tasks": 2, "max_tasks": 1}, "min_tasks 2 and max_tasks 1"),
    ({"min_tasks": 0, "max_tasks": 0}, "max_tasks >= 1"),
    ({"min_tasks": 0, "max_tasks": 1, "idle_minutes": 0}, "1 to 1440"),
    ({"min_tasks": 0, "max_tasks": 1, "backlog_per_task": 0}, "at least 1"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        QueueScalingProps(**{**BASE, **changes})


# --- what the expressions are worth, period by period (tests/support/metric_math.py) ----------------------------


@pytest.mark.parametrize(("visible", "inflight", "tasks", "starts"), [
    (3, 0, None, True),     # requests wait and Container Insights reports no task at all
    (3, 0, 0, True),
    (0, 1, 0, True),        # one in flight with no task: a worker died holding it
    (3, 0, 1, False),       # a worker runs: target tracking's business
    (0, 0, None, False),    # nothing waits
    (None, None, None, False),  # an idle queue SQS reports nothing for
])
def test_the_start_alarm_fires_exactly_when_requests_wait_without_a_worker(from_zero, visible, inflight, tasks,
                                                                           starts):
    from tests.support.metric_math import evaluate_queries

    alarm = _alarms(from_zero)["p-dev-s-start"]
    signal = evaluate_queries(alarm["metric_query"], {"visible": visible, "inflight": inflight, "tasks": tasks})
    assert (signal is not None and signal >= alarm["threshold"]) is starts


@pytest.mark.parametrize(("visible", "inflight", "idle"), [(0, 0, True), (None, None, True), (1, 0, False),
                                                            (0, 2, False)])
def test_the_idle_alarm_counts_waiting_and_in_flight_requests(from_zero, visible, inflight, idle):
    from tests.support.metric_math import evaluate_queries

    alarm = _alarms(from_zero)["p-dev-s-idle"]
    signal = evaluate_queries(alarm["metric_query"], {"visible": visible, "inflight": inflight, "tasks": 1})
    assert (signal is not None and signal <= alarm["threshold"]) is idle


@pytest.mark.parametrize(("visible", "inflight", "tasks", "tracked"), [
    (30, 10, 2, 20.0),        # (waiting + in flight) per running task
    (0, 0, 3, TRACKING_FLOOR),  # idle: the floor keeps one task until the idle alarm decides
    (5, 0, 0, 5.0),           # no task: the backlog itself (target tracking cannot start the first task anyway)
    (None, None, None, TRACKING_FLOOR),
])
def test_target_tracking_sees_the_backlog_per_running_task_with_a_floor(from_zero, visible, inflight, tasks,
                                                                         tracked):
    from tests.support.metric_math import evaluate_queries

    _, policy = _policies(from_zero)["p-dev-s-backlog"]
    metrics = policy["target_tracking_scaling_policy_configuration"]["customized_metric_specification"]["metrics"]
    value = evaluate_queries(metrics, {"visible": visible, "inflight": inflight, "tasks": tasks})
    assert value == pytest.approx(tracked)
