"""modules/model_sync.py: the sync task (the serving image, its own entry point, the models access point read-write),
started by a change of LIVE, on a schedule and once right after creation."""

from __future__ import annotations

import json

import pytest

from modules.model_sync import SYNC_CONTAINER, ModelSync, ModelSyncProps
from serving.contract import MODELS_MOUNT, SYNC_ENTRY_POINT
from tests.infra.synth import only, policy, ref, resources
from tests.support.construct_synth import synth_stack
from tests.support.endpoint_parts import CLUSTER, KEY, endpoint_parts

BASE = {"name_prefix": "p-dev-a", "endpoint": "a", "region": "eu-west-1", "account_id": "111111111111",
        "bucket_name": "p-models", "bucket_arn": "arn:aws:s3:::p-models", "kms_key_arn": KEY, "cluster_arn": CLUSTER,
        "subnet_ids": ["subnet-a"], "image": "repo:tag", "events_role_name": "p-dev-a-sync-events",
        "upload_rule_name": "p-dev-a-model-live", "schedule_rule_name": "p-dev-a-model-repair",
        "first_sync_schedule_name": "p-dev-a-model-first-sync"}


def sync_stack(**options) -> dict:
    def build(stack):
        parts = endpoint_parts(stack)
        ModelSync(stack, "model-sync", ModelSyncProps(**BASE, **options), parts.identity, parts.storage)
    return synth_stack(build)


def test_the_task_runs_the_sync_program_on_the_models_access_point():
    stack = sync_stack(keep_versions=3)
    task_id, task = next((i, t) for i, t in resources(stack, "aws_ecs_task_definition").items()
                         if t["family"] == "p-dev-a-model-sync")
    (container,) = json.loads(task["container_definitions"])
    assert container["name"] == SYNC_CONTAINER and container["entryPoint"] == list(SYNC_ENTRY_POINT)
    assert container["mountPoints"] == [{"sourceVolume": "models", "containerPath": MODELS_MOUNT, "readOnly": False}]
    environment = {item["name"]: item["value"] for item in container["environment"]}
    assert environment == {"SYNC_BUCKET": "p-models", "SYNC_PREFIX": "a/", "SYNC_MODELS_DIR": MODELS_MOUNT,
                           "SYNC_KEEP_VERSIONS": "3", "AWS_DEFAULT_REGION": "eu-west-1"}
    (volume,) = task["volume"]
    access_point = volume["efs_volume_configuration"]["authorization_config"]["access_point_id"]
    models_point = next(i for i, p in resources(stack, "aws_efs_access_point").items()
                        if p["root_directory"]["path"] == "/models")
    assert access_point == ref("aws_efs_access_point", models_point, "id")


def test_live_changes_the_schedule_and_creation_each_start_it():
    stack = sync_stack(schedule="rate(6 hours)")
    rules = {body["name"]: body for body in resources(stack, "aws_cloudwatch_event_rule").values()}
    pattern = json.loads(rules["p-dev-a-model-live"]["event_pattern"])
    assert pattern["detail"] == {"bucket": {"name": ["p-models"]}, "object": {"key": ["a/LIVE"]}}
    assert rules["p-dev-a-model-repair"]["schedule_expression"] == "rate(6 hours)"
    assert len(resources(stack, "aws_cloudwatch_event_target")) == 2
    _, first = only(stack, "aws_scheduler_schedule")
    assert first["name"] == "p-dev-a-model-first-sync" and first["schedule_expression"].startswith("at(")
    role = next(body for body in resources(stack, "aws_iam_role").values() if body["name"] == "p-dev-a-sync-events")
    trusted = policy(role, "assume_role_policy")["Statement"][0]["Principal"]["Service"]
    assert trusted == ["events.amazonaws.com", "scheduler.amazonaws.com"]


def test_keep_versions_is_validated():
    with pytest.raises(ValueError, match="keep_versions 1: keep at least 2"):
        ModelSyncProps(**BASE, keep_versions=1)
