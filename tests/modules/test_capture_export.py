"""modules/capture_export.py: the scheduled export task (its own role, group and data mount), the role EventBridge
starts it with, and what the export role may do."""

from __future__ import annotations

import json

import pytest

from modules.capture_export import CaptureExport, CaptureExportProps
from tests.infra.synth import only, policy, ref, resources
from tests.support.construct_synth import synth_stack
from tests.support.endpoint_parts import CLUSTER, KEY, endpoint_parts

BUCKET_ARN = "arn:aws:s3:::p-dev-captures"
BASE = {"name_prefix": "p-dev-a", "endpoint": "a", "region": "eu-west-1", "account_id": "111111111111",
        "bucket_name": "p-dev-captures", "bucket_arn": BUCKET_ARN, "kms_key_arn": KEY, "cluster_arn": CLUSTER,
        "subnet_ids": ["subnet-a"], "image": "repo:tag", "events_role_name": "p-dev-a-export-events",
        "schedule_rule_name": "p-dev-a-capture-export"}


def export_stack(**options) -> dict:
    def build(stack):
        parts = endpoint_parts(stack)
        CaptureExport(stack, "capture-export", CaptureExportProps(**BASE, **options), parts.identity, parts.storage)
    return synth_stack(build)


def test_an_hourly_schedule_starts_the_export_task_which_writes_under_its_prefix_only():
    stack = export_stack(prefix="captures/")
    _, rule = only(stack, "aws_cloudwatch_event_rule")
    assert rule["schedule_expression"] == "cron(5 * * * ? *)"
    task_id, task = only(stack, "aws_ecs_task_definition")
    (target,) = resources(stack, "aws_cloudwatch_event_target").values()
    assert target["ecs_target"]["task_definition_arn"] == ref("aws_ecs_task_definition", task_id, "arn")
    (container,) = json.loads(task["container_definitions"])
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment == {"EXPORT_BUCKET": "p-dev-captures", "EXPORT_PREFIX": "captures/", "EXPORT_ENDPOINT": "a",
                           "EXPORT_CAPTURE_DIR": "/mnt/data", "AWS_DEFAULT_REGION": "eu-west-1"}
    policies = {logical_id.split("_")[1]: policy(body)
                for logical_id, body in resources(stack, "aws_iam_role_policy").items()
                if logical_id.startswith("capture-export_")}
    write = {s["Sid"]: s for s in policies["task-policy"]["Statement"]}["WriteEndpointCaptures"]
    assert write["Resource"] == f"{BUCKET_ARN}/captures/a/*"
    run = {s["Sid"]: s for s in policies["events-policy"]["Statement"]}["RunExportTask"]
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": CLUSTER}}


@pytest.mark.parametrize("changes, message", [
    ({"prefix": "captures"}, "empty or ending in '/'"),
    ({"schedule": "every hour"}, "a rate"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        CaptureExportProps(**{**BASE, **changes})


