"""modules/model_storage.py: the endpoint's encrypted EFS, two access points, NFS only from its own tasks, and a file
system policy that admits the three roles (service, sync, capture export) through their own access points only."""

from __future__ import annotations

from tests.infra.synth import only, policy, ref, resources
from tests.support.construct_synth import synth_stack
from tests.support.endpoint_parts import KEY, endpoint_parts


def test_encrypted_file_system_reachable_on_nfs_from_the_service_the_sync_and_the_export_only():
    stack = synth_stack(endpoint_parts)
    fs_id, file_system = only(stack, "aws_efs_file_system")
    assert file_system["encrypted"] is True and file_system["kms_key_id"] == KEY
    assert file_system["throughput_mode"] == "bursting"
    assert only(stack, "aws_efs_backup_policy")[1]["backup_policy"] == {"status": "ENABLED"}
    groups = {logical_id: body["name"] for logical_id, body in resources(stack, "aws_security_group").items()}
    efs_group = next(logical_id for logical_id, name in groups.items() if name.endswith("-efs"))
    ingress = [rule for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values()
               if rule["security_group_id"] == ref("aws_security_group", efs_group, "id")]
    sources = sorted(groups[rule["referenced_security_group_id"].split(".")[1]] for rule in ingress)
    assert sources == ["p-dev-a-capture-export", "p-dev-a-model-sync", "p-dev-a-service"]
    assert {rule["from_port"] for rule in ingress} == {2049}
    assert len(resources(stack, "aws_efs_mount_target")) == 2  # one per subnet


def test_access_points_and_the_file_system_policy():
    stack = synth_stack(endpoint_parts)
    points = {body["root_directory"]["path"]: body for body in resources(stack, "aws_efs_access_point").values()}
    assert set(points) == {"/models", "/data"}
    assert points["/models"]["posix_user"] == {"uid": 1000, "gid": 1000}
    assert points["/data"]["root_directory"]["creation_info"]["permissions"] == "0750"
    statements = {s["Sid"]: s for s in policy(only(stack, "aws_efs_file_system_policy")[1])["Statement"]}
    assert set(statements) == {"ServiceMountsModelsReadOnly", "ServiceMountsDataReadWrite", "SyncWritesModels",
                               "ExportReadsAndRemovesCaptures", "DenyOtherPrincipals", "DenyWithoutTls",
                               "DenyOutsideMountTargets"}
    data_point = next(ref("aws_efs_access_point", lid, "arn") for lid, body in
                      resources(stack, "aws_efs_access_point").items() if body["root_directory"]["path"] == "/data")
    assert statements["ExportReadsAndRemovesCaptures"]["Condition"]["StringEquals"] == {
        "elasticfilesystem:AccessPointArn": data_point}
    assert statements["ServiceMountsModelsReadOnly"]["Action"] == ["elasticfilesystem:ClientMount"]
    assert "elasticfilesystem:ClientWrite" in statements["SyncWritesModels"]["Action"]
