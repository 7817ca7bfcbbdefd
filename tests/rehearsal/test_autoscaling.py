"""The stand-in for CloudWatch alarms and Application Auto Scaling held to their documentation, case by case, and
then where it meets the stacks: the queue scaling construct's synthesized policies and alarms, applied to moto's
server as Terraform would apply them, start a worker for a waiting request and stop it once the queue is idle."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.rehearsal.autoscaling import (
    PERIOD_SECONDS,
    ApplicationAutoScaling,
    Periods,
    ScalableTarget,
    adjusted,
    alarm_state,
    metric_key,
    query_value,
    scaled,
    step_adjustment,
    tracked_capacity,
)


@pytest.mark.parametrize(("datapoints", "to_alarm", "state"), [
    ([1, 1, 1], 3, "ALARM"),
    ([1, 0, 1], 3, "OK"),
    ([1, 0, 1], 2, "ALARM"),             # M out of N: any 2 of the 3
    ([None, None, None], 3, "INSUFFICIENT_DATA"),
    ([None, 1, 1], 2, "ALARM"),          # missing: neither breaching nor not
    ([None, 0, 1], 2, "OK"),
])
def test_an_alarm_needs_datapoints_to_alarm_breaching_in_its_evaluation_range(datapoints, to_alarm, state):
    assert alarm_state(datapoints, "GreaterThanOrEqualToThreshold", 1, to_alarm) == state


# The User Guide's example: threshold 50, add nothing from 50 to 60, 10% from 60 to 70, 30% from 70; remove 10% from
# 40 to 50 and 30% below 40 (bounds relative to the threshold).
STEPS = [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 0},
         {"MetricIntervalLowerBound": 10, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 10},
         {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 30},
         {"MetricIntervalLowerBound": -10, "MetricIntervalUpperBound": 0, "ScalingAdjustment": -10},
         {"MetricIntervalUpperBound": -10, "ScalingAdjustment": -30}]


@pytest.mark.parametrize(("metric", "adjustment"), [
    (55, 0), (60, 10), (69.9, 10), (70, 30), (95, 30),  # above: lower bound inclusive, upper exclusive
    (45, -10), (40.1, -10), (40, -30), (39.9, -30),       # below: lower exclusive, upper inclusive
])
def test_the_step_whose_bounds_hold_the_difference_from_the_threshold_applies(metric, adjustment):
    assert step_adjustment(STEPS, metric - 50) == adjustment


def test_at_the_threshold_a_step_reaching_zero_from_either_side_applies():
    assert step_adjustment([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], 0) == 1
    assert step_adjustment([{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}], 0) == 0
    assert step_adjustment([{"MetricIntervalLowerBound": 1, "ScalingAdjustment": 1}], 0) is None


@pytest.mark.parametrize(("kind", "adjustment", "capacity", "magnitude", "result"), [
    ("ChangeInCapacity", 1, 0, None, 1),
    ("ChangeInCapacity", -2, 5, None, 3),
    ("ExactCapacity", 0, 4, None, 0),
    ("PercentChangeInCapacity", 10, 25, None, 27),   # 2.5 rounded down
    ("PercentChangeInCapacity", 10, 5, None, 6),     # 0.5 rounded to 1
    ("PercentChangeInCapacity", -10, 5, None, 4),    # -0.5 rounded to -1
    ("PercentChangeInCapacity", -10, 25, None, 23),  # -2.5 rounded up
    ("PercentChangeInCapacity", 10, 25, 4, 29),      # at least MinAdjustmentMagnitude
])
def test_adjustment_types_as_documented(kind, adjustment, capacity, magnitude, result):
    assert adjusted(kind, adjustment, capacity, magnitude) == result


def test_the_result_is_clamped_to_the_scalable_targets_capacity():
    target = ScalableTarget("service/c/s", 1, 3)
    assert scaled(target, 2, 7, 60, now=0) == 3
    assert scaled(ScalableTarget("service/c/s", 1, 3), 2, 0, 60, now=0) == 1
    assert scaled(ScalableTarget("service/c/s", 1, 3), 3, 9, 60, now=0) is None  # already at the maximum


def test_a_scale_out_during_a_scale_outs_cooldown_counts_what_the_first_one_added():
    # The User Guide's example: +2, then within the cooldown a step of +3 adds only 1.
    target = ScalableTarget("service/c/s", 0, 20)
    assert scaled(target, 10, 12, 300, now=0) == 12
    assert scaled(target, 12, 15, 300, now=60) == 13
    assert scaled(target, 13, 16, 300, now=400) == 16  # after the cooldown: the whole step


def test_no_scale_in_during_a_cooldown():
    target = ScalableTarget("service/c/s", 0, 5)
    assert scaled(target, 0, 1, 60, now=0) == 1
    assert scaled(target, 1, 0, 120, now=30) is None
    assert scaled(target, 1, 0, 120, now=61) == 0


def test_target_tracking_is_proportional_and_never_starts_from_zero():
    assert tracked_capacity(2, 30, 10) == 6
    assert tracked_capacity(3, 0.001, 10) == 1
    assert tracked_capacity(0, 50, 10) == 0


def test_a_periods_datapoint_is_the_statistic_over_its_samples():
    key = metric_key({"Namespace": "AWS/SQS", "MetricName": "M", "Dimensions": [{"Name": "QueueName",
                                                                                   "Value": "q"}]})
    periods = Periods()
    for offset, value in ((1, 2.0), (20, 6.0), (59, 1.0), (61, 9.0)):
        periods.add(600 + offset, {key: value})
    stat = {"Metric": {"Namespace": "AWS/SQS", "MetricName": "M", "Dimensions": [{"Name": "QueueName",
                                                                                    "Value": "q"}]}}
    maximum = [{"Id": "m", "MetricStat": {**stat, "Stat": "Maximum"}, "ReturnData": True}]
    average = [{"Id": "m", "MetricStat": {**stat, "Stat": "Average"}, "ReturnData": False},
               {"Id": "e", "Expression": "m * 2", "ReturnData": True}]
    assert query_value(maximum, periods, 600) == 6.0
    assert query_value(average, periods, 600) == 6.0
    assert query_value(maximum, periods, 660) == 9.0
    assert query_value(maximum, periods, 540) is None
    # Terraform holds an alarm's queries as a set: an expression may come before what it names.
    unordered = [{"Id": "e", "Expression": "f * 2", "ReturnData": True},
                 {"Id": "f", "Expression": "m + 1", "ReturnData": False}, average[0]]
    assert query_value(unordered, periods, 600) == 8.0  # (average 3 + 1) * 2
    with pytest.raises(ValueError, match="cycle"):
        query_value([{"Id": "e", "Expression": "f", "ReturnData": True},
                     {"Id": "f", "Expression": "e", "ReturnData": False}], periods, 600)


# --- where it meets the stacks ------------------------------------------------------------------------------------
REFERENCE = re.compile(r"\$\{(\w+)\.([\w-]+)\.(\w+)\}")


def _metric(metric: dict[str, Any]) -> dict[str, Any]:
    dimensions = metric.get("dimensions") or {}
    if isinstance(dimensions, dict):
        dimensions = [{"name": key, "value": value} for key, value in dimensions.items()]
    return {"Namespace": metric["namespace"], "MetricName": metric["metric_name"],
            "Dimensions": [{"Name": d["name"], "Value": d["value"]} for d in dimensions]}


def _queries(queries: list[dict[str, Any]], alarm: bool) -> list[dict[str, Any]]:
    converted = []
    for query in queries:
        item: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("return_data", True))}
        if query.get("expression"):
            item["Expression"] = query["expression"]
        elif alarm:
            metric = query["metric"]
            item["MetricStat"] = {"Metric": _metric(metric), "Period": metric["period"], "Stat": metric["stat"]}
        else:
            item["MetricStat"] = {"Metric": _metric(query["metric_stat"]["metric"]),
                                  "Stat": query["metric_stat"]["stat"]}
        converted.append(item)
    return converted


def apply_like_terraform(synthesized: dict[str, Any], aas: Any, cloudwatch: Any) -> None:
    """The construct's scalable target, policies and alarms as the provider sends them (references resolved)."""
    resources = synthesized["resource"]
    arns: dict[str, str] = {}

    def resolve(value: str) -> str:
        def one(match: re.Match[str]) -> str:
            kind, name, attribute = match.groups()
            return arns[name] if attribute == "arn" else str(resources[kind][name][attribute])
        return REFERENCE.sub(one, value)

    for target in resources["aws_appautoscaling_target"].values():
        aas.register_scalable_target(ServiceNamespace=target["service_namespace"], ResourceId=target["resource_id"],
                                     ScalableDimension=target["scalable_dimension"],
                                     MinCapacity=target["min_capacity"], MaxCapacity=target["max_capacity"])
    for name, policy in resources["aws_appautoscaling_policy"].items():
        on = {"ServiceNamespace": resolve(policy["service_namespace"]), "ResourceId": resolve(policy["resource_id"]),
              "ScalableDimension": resolve(policy["scalable_dimension"])}
        if policy["policy_type"] == "StepScaling":
            step = policy["step_scaling_policy_configuration"]
            adjustments = [{"ScalingAdjustment": s["scaling_adjustment"],
                            **({"MetricIntervalLowerBound": float(s["metric_interval_lower_bound"])}
                               if s.get("metric_interval_lower_bound") is not None else {}),
                            **({"MetricIntervalUpperBound": float(s["metric_interval_upper_bound"])}
                               if s.get("metric_interval_upper_bound") is not None else {})}
                           for s in step["step_adjustment"]]
            configuration = {"StepScalingPolicyConfiguration": {
                "AdjustmentType": step["adjustment_type"], "Cooldown": step["cooldown"],
                "MetricAggregationType": step["metric_aggregation_type"], "StepAdjustments": adjustments}}
        else:
            tracking = policy["target_tracking_scaling_policy_configuration"]
            configuration = {"TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": tracking["target_value"], "ScaleOutCooldown": tracking["scale_out_cooldown"],
                "ScaleInCooldown": tracking["scale_in_cooldown"], "CustomizedMetricSpecification": {
                    "Metrics": _queries(tracking["customized_metric_specification"]["metrics"], alarm=False)}}}
        arns[name] = aas.put_scaling_policy(PolicyName=policy["name"], PolicyType=policy["policy_type"], **on,
                                            **configuration)["PolicyARN"]
    for alarm in resources["aws_cloudwatch_metric_alarm"].values():
        cloudwatch.put_metric_alarm(
            AlarmName=alarm["alarm_name"], ComparisonOperator=alarm["comparison_operator"],
            Threshold=alarm["threshold"], EvaluationPeriods=alarm["evaluation_periods"],
            DatapointsToAlarm=alarm["datapoints_to_alarm"], TreatMissingData=alarm["treat_missing_data"],
            AlarmActions=[resolve(action) for action in alarm["alarm_actions"]],
            # The provider holds `metric_query` as a set: its order is not the configuration's (here: reversed).
            Metrics=list(reversed(_queries(alarm["metric_query"], alarm=True))))


@pytest.fixture
def account(moto_url):
    import boto3

    options = {"endpoint_url": moto_url, "region_name": "eu-west-1", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
    made: dict[str, Any] = {}
    return lambda service: made.setdefault(service, boto3.client(service, **options))


def _service(client: Any, insights: bool) -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    cluster, service, queue = f"scaling-{suffix}", f"worker-{suffix}", f"requests-{suffix}"
    ecs = client("ecs")
    ecs.create_cluster(clusterName=cluster, settings=[
        {"name": "containerInsights", "value": "enhanced" if insights else "disabled"}])
    ecs.register_task_definition(family=service, containerDefinitions=[{"name": "w", "image": "i", "memory": 512}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=service, desiredCount=0)
    client("sqs").create_queue(QueueName=queue)
    return cluster, service, queue


def test_the_stacks_queue_scaling_starts_a_worker_for_a_waiting_request_and_stops_it_when_idle(account):
    from modules.queue_scaling import QueueScaling, QueueScalingProps
    from tests.support.construct_synth import synth_stack

    cluster, service, queue = _service(account, insights=True)
    synthesized = synth_stack(lambda stack: QueueScaling(stack, "scaling", QueueScalingProps(
        name_prefix=service, cluster_name=cluster, service_name=service, queue_name=queue, min_tasks=0,
        max_tasks=3, idle_minutes=2)))
    apply_like_terraform(synthesized, account("application-autoscaling"), account("cloudwatch"))
    ecs, sqs = account("ecs"), account("sqs")

    def desired() -> int:
        return ecs.describe_services(cluster=cluster, services=[service])["services"][0]["desiredCount"]

    # ECS runs what is desired at once here; the rehearsal's ECS stand-in starts real tasks.
    said: list[str] = []
    scaler = ApplicationAutoScaling(account, lambda c, s: desired() if (c, s) == (cluster, service) else 0,
                                    said.append)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    start = 1_000_000 * PERIOD_SECONDS
    scaler.tick(start + 5)
    sqs.send_message(QueueUrl=url, MessageBody="request")
    scaler.tick(start + 30)
    assert desired() == 0  # the minute is not over: CloudWatch evaluates complete periods
    scaler.tick(start + PERIOD_SECONDS + 1)
    assert desired() == 1, said
    assert scaler.alarm_states[f"{service}-start"] == "ALARM"
    assert scaler.alarm_states[f"{service}-idle"] == "OK"
    received = sqs.receive_message(QueueUrl=url)["Messages"][0]  # the worker works on it for two minutes
    for minute in (1, 2):
        scaler.tick(start + minute * PERIOD_SECONDS + 30)
        scaler.tick(start + (minute + 1) * PERIOD_SECONDS + 1)
        assert desired() == 1, said
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])  # answered within minute 3
    for minute in (3, 4):  # minute 3 had the request in flight; 4 is the first idle one
        scaler.tick(start + minute * PERIOD_SECONDS + 30)
        scaler.tick(start + (minute + 1) * PERIOD_SECONDS + 1)
        assert desired() == 1, said
    scaler.tick(start + 5 * PERIOD_SECONDS + 30)
    scaler.tick(start + 6 * PERIOD_SECONDS + 1)  # minutes 4 and 5 idle: idle_minutes 2
    assert desired() == 0, said
    assert [line.split(" (")[0] for line in scaler.activities] == [
        f"service/{cluster}/{service}: desired count 0 -> 1", f"service/{cluster}/{service}: desired count 1 -> 0"]


def test_without_container_insights_the_running_task_metric_is_missing(account):
    cluster, service, _ = _service(account, insights=False)
    scaler = ApplicationAutoScaling(account, lambda c, s: 1, lambda line: None)
    key = metric_key({"Namespace": "ECS/ContainerInsights", "MetricName": "RunningTaskCount",
                      "Dimensions": [{"Name": "ClusterName", "Value": cluster},
                                     {"Name": "ServiceName", "Value": service}]})
    assert scaler.sample({key}) == {}
