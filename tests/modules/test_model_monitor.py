"""modules/model_monitor.py: the scheduled monitor task (its own image, role and security group, no mount), what its
role may do (evaluated request by request), and the alarms per variant on the topic."""

from __future__ import annotations

import json

import pytest

from modules.model_monitor import ModelMonitor, ModelMonitorProps, QualityAlarm, ServedRequests
from serving.contract import MONITOR_PROGRAM
from tests.infra.synth import only, policy, ref, resources
from tests.support.construct_synth import arn, synth_stack
from tests.support.endpoint_parts import CLUSTER, KEY
from tests.support.iam_evaluation import Caller, Policy, Request, evaluate

CAPTURES = "arn:aws:s3:::p-dev-captures"
MODELS = "arn:aws:s3:::p-dev-models"
TOPIC = arn("sns", "p-dev-alarms")
BASE = {"name_prefix": "p-dev-a", "endpoint": "a", "environment": "dev", "region": "eu-west-1",
        "account_id": "111111111111", "vpc_id": "vpc-1", "subnet_ids": ["subnet-a"], "cluster_arn": CLUSTER,
        "image": "repo:0a1b2c3-monitor", "execution_role_id": "p-dev-a-execution",
        "execution_role_arn": arn("iam", "role/p-dev-a-execution"), "capture_bucket_name": "p-dev-captures",
        "capture_bucket_arn": CAPTURES, "capture_prefix": "", "model_bucket_name": "p-dev-models",
        "model_bucket_arn": MODELS, "kms_key_arn": KEY, "topic_arn": TOPIC, "variants": ("main", "challenger"),
        "role_name": "p-dev-a-monitor", "events_role_name": "p-dev-a-monitor-events",
        "schedule_rule_name": "p-dev-a-monitor"}


def monitor_stack(**options) -> dict:
    return synth_stack(lambda stack: ModelMonitor(stack, "model-monitor", ModelMonitorProps(**BASE, **options)))


@pytest.fixture(scope="module")
def stack() -> dict:
    return monitor_stack(window_hours=2, drift_alarm_windows=4, quality_alarm=QualityAlarm("accuracy", 0.9),
                         request_metrics={"main": ServedRequests.through_target_group("app/lb/1",
                                                                                      "targetgroup/p-dev-a/2")})


def test_a_schedule_starts_the_monitor_from_its_own_image_with_its_settings(stack):
    _, rule = only(stack, "aws_cloudwatch_event_rule")
    assert rule["schedule_expression"] == "cron(20 * * * ? *)"  # after the export at five past
    task_id, task = only(stack, "aws_ecs_task_definition")
    (target,) = resources(stack, "aws_cloudwatch_event_target").values()
    assert target["ecs_target"]["task_definition_arn"] == ref("aws_ecs_task_definition", task_id, "arn")
    role_id = next(logical_id for logical_id, body in resources(stack, "aws_iam_role").items()
                   if body["name"] == "p-dev-a-monitor")
    assert task["task_role_arn"] == ref("aws_iam_role", role_id, "arn")
    assert (task["cpu"], task["memory"]) == ("1024", "2048")
    (container,) = json.loads(task["container_definitions"])
    assert container["image"] == "repo:0a1b2c3-monitor" and container["entryPoint"] == list(MONITOR_PROGRAM)
    assert container["readonlyRootFilesystem"] and container["mountPoints"] == [
        {"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False}]
    assert "efs_volume_configuration" not in task["volume"][0]  # no model or data volume
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment == {
        "MONITOR_ENDPOINT": "a", "MONITOR_ENVIRONMENT": "dev", "MONITOR_CAPTURE_BUCKET": "p-dev-captures",
        "MONITOR_CAPTURE_PREFIX": "", "MONITOR_MODEL_BUCKET": "p-dev-models", "MONITOR_MODEL_PREFIX": "a/",
        "MONITOR_VARIANTS": "main,challenger", "MONITOR_WINDOW_HOURS": "2", "MONITOR_NAMESPACE": "EcsMlops/Monitor",
        "AWS_DEFAULT_REGION": "eu-west-1"}
    (group,) = resources(stack, "aws_security_group").values()
    (egress,) = resources(stack, "aws_vpc_security_group_egress_rule").values()
    assert group["name"] == "p-dev-a-monitor" and (egress["from_port"], egress["to_port"]) == (443, 443)
    assert not resources(stack, "aws_vpc_security_group_ingress_rule")


@pytest.mark.parametrize("action, resource, context, allowed", [
    ("s3:ListBucket", CAPTURES, {"s3:prefix": "a/main/2026/12/05/10/"}, True),
    ("s3:GetObject", f"{CAPTURES}/a/main/2026/12/05/10/x.jsonl", {}, True),
    ("s3:GetObject", f"{CAPTURES}/ground-truth/a/2026/12/05/11/labels.jsonl", {}, True),
    ("s3:PutObject", f"{CAPTURES}/monitoring/a/main/2026/12/05/10/report.json", {}, True),
    ("s3:GetObject", f"{MODELS}/a/7/baseline.json", {}, True),
    ("s3:ListBucket", MODELS, {"s3:prefix": "a/7/baseline.json"}, True),
    ("kms:Decrypt", KEY, {}, True),
    ("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "EcsMlops/Monitor"}, True),
    # ... and nothing more: another endpoint's captures, writing captures or models, the model itself, other metrics.
    ("s3:ListBucket", CAPTURES, {"s3:prefix": "b/main/"}, False),
    ("s3:GetObject", f"{CAPTURES}/b/main/2026/12/05/10/x.jsonl", {}, False),
    ("s3:PutObject", f"{CAPTURES}/a/main/2026/12/05/10/x.jsonl", {}, False),
    ("s3:PutObject", f"{CAPTURES}/monitoring/b/main/report.json", {}, False),
    ("s3:DeleteObject", f"{CAPTURES}/a/main/2026/12/05/10/x.jsonl", {}, False),
    ("s3:GetObject", f"{MODELS}/a/7/model.onnx", {}, False),
    ("s3:ListBucket", MODELS, {"s3:prefix": "a/"}, False),
    ("s3:PutObject", f"{MODELS}/a/7/baseline.json", {}, False),
    ("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/ECS"}, False),
    ("ecs:RunTask", "*", {}, False),
])
def test_the_monitor_role_may_read_its_endpoint_s_captures_and_baselines_and_write_its_reports_only(
        stack, action, resource, context, allowed):
    (body,) = [body for logical_id, body in resources(stack, "aws_iam_role_policy").items()
               if logical_id.startswith("model-monitor_policy")]
    decision = evaluate(Request(action, resource, context),
                        Caller("111111111111", role_arn=arn("iam", "role/p-dev-a-monitor")),
                        [Policy.of("monitor", policy(body))])
    assert decision.allowed is allowed, decision.reason


def test_each_variant_alarms_on_drift_no_data_and_quality_to_the_topic(stack):
    alarms = {body["alarm_name"]: body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    assert set(alarms) == {f"p-dev-a-{variant}-{kind}" for variant in ("main", "challenger")
                           for kind in ("drift", "no-data", "quality")}
    drift = alarms["p-dev-a-main-drift"]
    assert (drift["metric_name"], drift["namespace"], drift["period"]) == ("FeaturesDrifted", "EcsMlops/Monitor", 7200)
    assert (drift["evaluation_periods"], drift["datapoints_to_alarm"], drift["threshold"]) == (4, 4, 1)
    assert drift["dimensions"] == {"Environment": "dev", "Endpoint": "a", "Variant": "main"}
    assert drift["treat_missing_data"] == "notBreaching" and drift["alarm_actions"] == [TOPIC]
    # main serves through its target group: no captures while it served requests, or no monitor run at all.
    no_data = alarms["p-dev-a-main-no-data"]
    queries = {query["id"]: query for query in no_data["metric_query"]}
    assert queries["nodata"]["metric"]["metric_name"] == "NoData"
    assert queries["requests"]["metric"] == {"namespace": "AWS/ApplicationELB", "metric_name": "RequestCount",
                                             "dimensions": {"LoadBalancer": "app/lb/1",
                                                            "TargetGroup": "targetgroup/p-dev-a/2"},
                                             "period": 7200, "stat": "Sum"}
    assert queries["expected"]["expression"] == "IF(FILL(nodata, 1) > 0 AND FILL(requests, 0) > 0, 1, 0)"
    assert queries["expected"]["return_data"] and no_data["evaluation_periods"] == 2
    # challenger has no target group here (a shadow): its own NoData only.
    assert alarms["p-dev-a-challenger-no-data"]["metric_name"] == "NoData"
    quality = alarms["p-dev-a-main-quality"]
    assert (quality["metric_name"], quality["comparison_operator"], quality["threshold"]) == (
        "Accuracy", "LessThanThreshold", 0.9)


def test_an_error_metric_alarms_above_its_value():
    stack = monitor_stack(quality_alarm=QualityAlarm("rmse", 2.5))
    quality = next(body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()
                   if body["alarm_name"] == "p-dev-a-main-quality")
    assert (quality["metric_name"], quality["comparison_operator"]) == ("RMSE", "GreaterThanThreshold")


@pytest.mark.parametrize("changes, message", [
    ({"capture_prefix": "captures"}, "empty or ending in '/'"),
    ({"schedule": "hourly"}, "a rate"),
    ({"quality_alarm": QualityAlarm("logloss", 1.0)}, "one of accuracy"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        ModelMonitorProps(**{**BASE, **changes})


@pytest.mark.parametrize(("nodata", "requests", "alarms"), [
    (1, 40, True),       # requests served, the monitor found no captures
    (None, 40, True),    # requests served, the monitor did not run
    (0, 40, False),      # captures found
    (1, None, False),    # nothing served (an idle endpoint, an asynchronous one at zero tasks)
    (None, 0, False),
])
def test_the_no_data_alarm_is_worth_one_only_when_captures_were_expected(stack, nodata, requests, alarms):
    from tests.support.metric_math import evaluate_queries

    alarm = {body["alarm_name"]: body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()}[
        "p-dev-a-main-no-data"]
    value = evaluate_queries(alarm["metric_query"], {"nodata": nodata, "requests": requests})
    assert (value is not None and value >= alarm["threshold"]) is alarms
