"""Capture export wiring: the platform's capture bucket (hardened, expiring), and per endpoint a schedule that runs
the export task, which may mount only the data access point and write only under its endpoint's prefix of that
bucket."""

from __future__ import annotations

import json

from tests.infra.synth import across, by_path_suffix, only, policy, ref, resources

PLATFORM = "mlops-staging-platform"
ENDPOINT = "mlops-staging-endpoint-a"


def test_the_capture_bucket_is_encrypted_private_and_expires_captures(default_synth):
    platform = default_synth.stack(PLATFORM)
    bucket_id, bucket = by_path_suffix(platform, "aws_s3_bucket", "capture-bucket/bucket")
    assert bucket["bucket"] == "mlops-staging-captures-eu-west-1"
    bucket_ref = ref("aws_s3_bucket", bucket_id, "id")
    (encryption,) = [e for e in resources(platform, "aws_s3_bucket_server_side_encryption_configuration").values()
                     if e["bucket"] == bucket_ref]
    assert encryption["rule"][0]["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms", "kms_master_key_id": ref("aws_kms_key", only(platform, "aws_kms_key")[0], "arn")}
    (lifecycle,) = [c for c in resources(platform, "aws_s3_bucket_lifecycle_configuration").values()
                    if c["bucket"] == bucket_ref]
    expiry = {rule["id"]: rule for rule in lifecycle["rule"]}["expire-objects"]
    assert expiry["expiration"] == [{"days": 365}] and expiry["status"] == "Enabled"
    (access,) = [a for a in resources(platform, "aws_s3_bucket_public_access_block").values()
                 if a["bucket"] == bucket_ref]
    assert access["block_public_policy"] is True and access["restrict_public_buckets"] is True


def test_a_schedule_runs_the_export_task_with_its_own_role_and_group(default_synth):
    platform, stack = default_synth.stack(PLATFORM), default_synth.stack(ENDPOINT)
    _, rule = by_path_suffix(stack, "aws_cloudwatch_event_rule", "capture-export/on-schedule")
    assert rule["name"] == "mlops-staging-a-capture-export" and rule["schedule_expression"] == "cron(5 * * * ? *)"
    _, event_target = by_path_suffix(stack, "aws_cloudwatch_event_target", "capture-export/run-on-schedule")
    task_id, task = by_path_suffix(stack, "aws_ecs_task_definition", "capture-export/task-definition")
    assert event_target["ecs_target"]["task_definition_arn"] == ref("aws_ecs_task_definition", task_id, "arn")
    assert event_target["ecs_target"]["network_configuration"]["security_groups"] == [ref(
        "aws_security_group", by_path_suffix(stack, "aws_security_group", "identity/export-security-group")[0], "id")]
    assert task["task_role_arn"] == ref("aws_iam_role", by_path_suffix(stack, "aws_iam_role",
                                                                       "identity/export-role")[0], "arn")
    (volume,) = task["volume"]
    assert volume["efs_volume_configuration"]["authorization_config"]["access_point_id"] == ref(
        "aws_efs_access_point", by_path_suffix(stack, "aws_efs_access_point", "storage/data-access-point")[0], "id")
    (container,) = json.loads(task["container_definitions"])
    assert container["entryPoint"] == ["python", "-m", "serving.capture_export"]
    assert container["mountPoints"] == [{"sourceVolume": "data", "containerPath": "/mnt/data", "readOnly": False}]
    environment = {entry["name"]: entry["value"] for entry in container["environment"]}
    assert across(platform, environment["EXPORT_BUCKET"]) == ref(
        "aws_s3_bucket", by_path_suffix(platform, "aws_s3_bucket", "capture-bucket/bucket")[0], "bucket")
    assert (environment["EXPORT_ENDPOINT"], environment["EXPORT_PREFIX"]) == ("a", "")


def test_the_export_role_writes_only_its_endpoints_captures(default_synth):
    platform, stack = default_synth.stack(PLATFORM), default_synth.stack(ENDPOINT)
    _, task_policy = by_path_suffix(stack, "aws_iam_role_policy", "capture-export/task-policy")
    statements = {s["Sid"]: s for s in policy(task_policy)["Statement"]}
    assert set(statements) == {"WriteEndpointCaptures", "EncryptCaptures", "MountDataReadWrite"}
    write = statements["WriteEndpointCaptures"]
    assert write["Action"] == "s3:PutObject"
    bucket_arn, suffix = write["Resource"].rsplit("}", 1)
    assert suffix == "/a/*" and across(platform, bucket_arn + "}") == ref(
        "aws_s3_bucket", by_path_suffix(platform, "aws_s3_bucket", "capture-bucket/bucket")[0], "arn")
    assert statements["EncryptCaptures"]["Action"] == "kms:GenerateDataKey"
