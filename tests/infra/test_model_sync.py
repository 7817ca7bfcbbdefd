"""Model delivery wiring: bucket -> EventBridge rule -> ECS RunTask of the sync task, which alone writes models."""

from __future__ import annotations

import json

from tests.infra.synth import across, by_path_suffix, only, policy, ref, resources

PLATFORM = "mlops-staging-platform"
ENDPOINT = "mlops-staging-endpoint-a"


def stacks(default_synth):
    return default_synth.stack(PLATFORM), default_synth.stack(ENDPOINT)


def test_model_bucket_is_hardened_and_sends_events_to_eventbridge(default_synth):
    platform, _ = stacks(default_synth)
    bucket_id, bucket = by_path_suffix(platform, "aws_s3_bucket", "model-bucket/bucket")
    assert bucket["bucket"] == "mlops-staging-models-eu-west-1"
    bucket_ref = ref("aws_s3_bucket", bucket_id, "id")
    _, notification = only(platform, "aws_s3_bucket_notification")
    assert notification == {**notification, "bucket": bucket_ref, "eventbridge": True}
    versioning = [v for v in resources(platform, "aws_s3_bucket_versioning").values() if v["bucket"] == bucket_ref]
    assert versioning[0]["versioning_configuration"] == {"status": "Enabled"}
    encryption = [e for e in resources(platform, "aws_s3_bucket_server_side_encryption_configuration").values()
                  if e["bucket"] == bucket_ref]
    assert encryption[0]["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    _, bucket_policy = by_path_suffix(platform, "aws_s3_bucket_policy", "model-bucket/policy")
    assert policy(bucket_policy)["Statement"][0]["Sid"] == "DenyInsecureTransport"


def test_a_change_of_live_runs_the_sync_task(default_synth):
    platform, stack = stacks(default_synth)
    _, rule = by_path_suffix(stack, "aws_cloudwatch_event_rule", "model-sync/on-upload")
    pattern = json.loads(rule["event_pattern"])
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": ["a/LIVE"]}
    assert across(platform, pattern["detail"]["bucket"]["name"][0]) == ref(
        "aws_s3_bucket", by_path_suffix(platform, "aws_s3_bucket", "model-bucket/bucket")[0], "bucket")
    task_id, task = by_path_suffix(stack, "aws_ecs_task_definition", "model-sync/task-definition")
    targets = {lid: body for lid, body in resources(stack, "aws_cloudwatch_event_target").items()
               if "/model-sync/" in body["//"]["metadata"]["path"]}
    assert len(targets) == 2  # the upload event and the repair schedule
    rules = {ref("aws_cloudwatch_event_rule", lid, "name"): body
             for lid, body in resources(stack, "aws_cloudwatch_event_rule").items()}
    schedules = [rules[t["rule"]].get("schedule_expression") for t in targets.values()]
    assert sorted(schedules, key=str) == [None, "rate(1 hour)"]
    for target in targets.values():
        assert across(platform, target["arn"]) == ref("aws_ecs_cluster", only(platform, "aws_ecs_cluster")[0], "arn")
        ecs = target["ecs_target"]
        assert ecs["task_definition_arn"] == ref("aws_ecs_task_definition", task_id, "arn")
        assert ecs["launch_type"] == "FARGATE" and ecs["network_configuration"]["assign_public_ip"] is False
        assert ecs["network_configuration"]["security_groups"] == [ref("aws_security_group", by_path_suffix(
            stack, "aws_security_group", "identity/sync-security-group")[0], "id")]
    (definition,) = json.loads(task["container_definitions"])
    assert definition["entryPoint"] == ["python", "-m", "serving.sync"] and "command" not in definition
    environment = {e["name"]: e["value"] for e in definition["environment"]}
    assert environment["SYNC_PREFIX"] == "a/" and environment["SYNC_MODELS_DIR"] == "/mnt/models"


def test_events_may_run_only_the_sync_task_on_the_cluster(default_synth):
    platform, stack = stacks(default_synth)
    task_id, _ = by_path_suffix(stack, "aws_ecs_task_definition", "model-sync/task-definition")
    statements = {s["Sid"]: s for s in policy(by_path_suffix(stack, "aws_iam_role_policy",
                                                             "model-sync/events-policy")[1])["Statement"]}
    assert statements["RunSyncTask"]["Resource"] == ref("aws_ecs_task_definition", task_id, "arn_without_revision") \
        + ":*"
    assert statements["PassSyncRoles"]["Condition"] == {"StringEquals": {
        "iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_only_the_sync_task_writes_models_and_only_this_endpoints(default_synth):
    platform, stack = stacks(default_synth)
    models_ap = ref("aws_efs_access_point", by_path_suffix(stack, "aws_efs_access_point",
                                                           "storage/models-access-point")[0], "arn")
    _, task = by_path_suffix(stack, "aws_ecs_task_definition", "model-sync/task-definition")
    (volume,) = task["volume"]
    assert volume["efs_volume_configuration"]["authorization_config"]["iam"] == "ENABLED"
    (definition,) = json.loads(task["container_definitions"])
    assert definition["mountPoints"] == [{"sourceVolume": "models", "containerPath": "/mnt/models",
                                          "readOnly": False}]
    statements = {s["Sid"]: s for s in policy(by_path_suffix(stack, "aws_iam_role_policy",
                                                             "model-sync/task-policy")[1])["Statement"]}
    write = statements["MountModelsReadWrite"]
    assert "elasticfilesystem:ClientWrite" in write["Action"]
    assert write["Condition"]["StringEquals"] == {"elasticfilesystem:AccessPointArn": models_ap}
    assert statements["ReadEndpointModels"]["Resource"].endswith("/a/*")
    assert statements["ListEndpointModels"]["Condition"] == {"StringLike": {"s3:prefix": ["a/*"]}}
    # The service reads models only.
    service_statements = {s["Sid"]: s for s in policy(by_path_suffix(stack, "aws_iam_role_policy",
                                                                     "service/task-policy")[1])["Statement"]}
    assert service_statements["MountModelsReadOnly"]["Action"] == ["elasticfilesystem:ClientMount"]


def test_endpoint_b_syncs_its_own_prefix(default_synth):
    stack = default_synth.stack("mlops-staging-endpoint-b")
    _, rule = by_path_suffix(stack, "aws_cloudwatch_event_rule", "model-sync/on-upload")
    assert json.loads(rule["event_pattern"])["detail"]["object"] == {"key": ["b/LIVE"]}


def test_a_new_endpoint_syncs_once_right_after_creation_before_its_service_starts(default_synth):
    platform, stack = stacks(default_synth)
    schedule_id, schedule = only(stack, "aws_scheduler_schedule")
    assert schedule["schedule_expression"].startswith("at(${formatdate(")
    assert "timeadd(timestamp(), \"1m\")" in schedule["schedule_expression"]
    assert schedule["lifecycle"] == {"ignore_changes": ["schedule_expression"]}  # no change in later plans
    task_id, _ = by_path_suffix(stack, "aws_ecs_task_definition", "model-sync/task-definition")
    assert schedule["target"]["ecs_parameters"]["task_definition_arn"] == ref("aws_ecs_task_definition", task_id,
                                                                              "arn")
    role_id, role = by_path_suffix(stack, "aws_iam_role", "model-sync/events-role")
    assert schedule["target"]["role_arn"] == ref("aws_iam_role", role_id, "arn")
    trusted = policy(role, "assume_role_policy")["Statement"][0]["Principal"]["Service"]
    assert trusted == ["events.amazonaws.com", "scheduler.amazonaws.com"]
    _, service = only(stack, "aws_ecs_service")
    assert f"aws_scheduler_schedule.{schedule_id}" in service["depends_on"]
