"""An endpoint's EFS file system: model weights (read-only to the service) and captured request data (read-write).

One file system per endpoint (EFS has no per-file-system fee): endpoints never share a security group rule, a
file system policy or a backup, and adding endpoint B changes nothing of endpoint A. Within it, each location is an
access point with its own POSIX owner and root directory, and IAM authorization decides who may mount which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cdktf_cdktf_provider_aws.efs_access_point import (
    EfsAccessPoint,
    EfsAccessPointPosixUser,
    EfsAccessPointRootDirectory,
    EfsAccessPointRootDirectoryCreationInfo,
)
from cdktf_cdktf_provider_aws.efs_backup_policy import EfsBackupPolicy, EfsBackupPolicyBackupPolicy
from cdktf_cdktf_provider_aws.efs_file_system import EfsFileSystem, EfsFileSystemLifecyclePolicy
from cdktf_cdktf_provider_aws.efs_file_system_policy import EfsFileSystemPolicy
from cdktf_cdktf_provider_aws.efs_mount_target import EfsMountTarget
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.iam import Statement, policy_document

NFS_PORT = 2049
MOUNT = "elasticfilesystem:ClientMount"
WRITE = "elasticfilesystem:ClientWrite"


@dataclass(frozen=True)
class ModelStorageProps:
    name_prefix: str
    vpc_id: str
    subnet_ids: list[str]
    """A mount target goes into each (the private subnets, one per AZ)."""
    kms_key_arn: str
    client_security_group_id: str
    """The service's security group, admitted on NFS."""
    reader_writer_role_arn: str
    """The service's task role: mounts models read-only and data read-write."""
    model_writer_role_arn: str
    """The model sync task's role: mounts models read-write, never data."""
    model_writer_security_group_id: str
    """The model sync task's security group, admitted on NFS."""
    capture_exporter_role_arn: str
    """The capture export task's role: mounts data read-write (it removes what it exported), never models."""
    capture_exporter_security_group_id: str
    posix_uid: int = 1000
    """Owner of both locations; the model server's container user."""
    throughput_mode: Literal["bursting", "elastic"] = "bursting"
    transition_to_ia_days: int = 30


class ModelStorage(Construct):
    """Attributes: `file_system`, `file_system_id`, `file_system_arn`, `models_access_point`,
    `data_access_point`, `security_group_id`, `mountable` (what must exist before a task can mount: the mount
    targets and the file system policy)."""

    def __init__(self, scope: Construct, construct_id: str, props: ModelStorageProps):
        super().__init__(scope, construct_id)
        self.file_system = EfsFileSystem(
            self, "file-system", encrypted=True, kms_key_id=props.kms_key_arn, performance_mode="generalPurpose",
            throughput_mode=props.throughput_mode, tags={"Name": props.name_prefix},
            lifecycle_policy=[
                EfsFileSystemLifecyclePolicy(transition_to_ia=f"AFTER_{props.transition_to_ia_days}_DAYS"),
                EfsFileSystemLifecyclePolicy(transition_to_primary_storage_class="AFTER_1_ACCESS"),
            ])
        self.file_system_id: str = self.file_system.id
        self.file_system_arn: str = self.file_system.arn
        EfsBackupPolicy(self, "backup", file_system_id=self.file_system.id,
                        backup_policy=EfsBackupPolicyBackupPolicy(status="ENABLED"))

        group = SecurityGroup(self, "security-group", name=f"{props.name_prefix}-efs", vpc_id=props.vpc_id,
                              description=f"{props.name_prefix} EFS: NFS from the service only",
                              tags={"Name": f"{props.name_prefix}-efs"})
        self.security_group_id: str = group.id
        VpcSecurityGroupIngressRule(self, "nfs-from-service", security_group_id=group.id, ip_protocol="tcp",
                                    from_port=NFS_PORT, to_port=NFS_PORT,
                                    referenced_security_group_id=props.client_security_group_id,
                                    description="NFS from the endpoint service")
        VpcSecurityGroupIngressRule(self, "nfs-from-model-sync", security_group_id=group.id, ip_protocol="tcp",
                                    from_port=NFS_PORT, to_port=NFS_PORT,
                                    referenced_security_group_id=props.model_writer_security_group_id,
                                    description="NFS from the model sync task")
        VpcSecurityGroupIngressRule(self, "nfs-from-capture-export", security_group_id=group.id, ip_protocol="tcp",
                                    from_port=NFS_PORT, to_port=NFS_PORT,
                                    referenced_security_group_id=props.capture_exporter_security_group_id,
                                    description="NFS from the capture export task")
        mount_targets = [EfsMountTarget(self, f"mount-target-az{index + 1}", file_system_id=self.file_system.id,
                                        subnet_id=subnet_id, security_groups=[group.id])
                         for index, subnet_id in enumerate(props.subnet_ids)]

        self.models_access_point = self._access_point("models", props, permissions="0755")
        self.data_access_point = self._access_point("data", props, permissions="0750")

        file_system_policy = EfsFileSystemPolicy(
            self, "policy", file_system_id=self.file_system.id, policy=_policy_document(
                self.file_system.arn, props.reader_writer_role_arn, props.model_writer_role_arn,
                props.capture_exporter_role_arn, self.models_access_point.arn, self.data_access_point.arn))
        # A task that starts before these exist fails to mount (no mount target in its AZ, or IAM denies it).
        self.mountable: tuple[EfsMountTarget | EfsFileSystemPolicy, ...] = (*mount_targets, file_system_policy)

    def _access_point(self, location: str, props: ModelStorageProps, permissions: str) -> EfsAccessPoint:
        uid = props.posix_uid
        return EfsAccessPoint(
            self, f"{location}-access-point", file_system_id=self.file_system.id,
            posix_user=EfsAccessPointPosixUser(uid=uid, gid=uid),
            root_directory=EfsAccessPointRootDirectory(
                path=f"/{location}",
                creation_info=EfsAccessPointRootDirectoryCreationInfo(owner_uid=uid, owner_gid=uid,
                                                                      permissions=permissions)),
            tags={"Name": f"{props.name_prefix}-{location}"})

    def model_writer_statements(self) -> list[Statement]:
        """Identity policy for the model sync task's role: mount and write models, through its access point only."""
        return [_mount_statement("MountModelsReadWrite", [MOUNT, WRITE], self.file_system.arn,
                                 self.models_access_point.arn)]

    def capture_exporter_statements(self) -> list[Statement]:
        """Identity policy for the capture export task's role: mount and write data, through its access point."""
        return [_mount_statement("MountDataReadWrite", [MOUNT, WRITE], self.file_system.arn,
                                 self.data_access_point.arn)]

    def reader_writer_statements(self) -> list[Statement]:
        """Identity policy for the service's task role: mount models (no write) and data (write), each only
        through its own access point, only over TLS."""
        return [
            _mount_statement("MountModelsReadOnly", [MOUNT], self.file_system.arn, self.models_access_point.arn),
            _mount_statement("MountDataReadWrite", [MOUNT, WRITE], self.file_system.arn,
                             self.data_access_point.arn),
        ]


def _mount_statement(sid: str, actions: list[str], file_system_arn: str, access_point_arn: str) -> Statement:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": file_system_arn,
        "Condition": {
            "StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn},
            "Bool": {"aws:SecureTransport": "true"},
        },
    }


def _policy_document(file_system_arn: str, role_arn: str, writer_role_arn: str, exporter_role_arn: str,
                     models_ap: str, data_ap: str) -> str:
    """File system policy: the three roles' grants, and denies of any other principal (even one whose identity
    policy allows EFS broadly), of access without TLS and of access from outside a mount target."""
    grants = [_mount_statement("ServiceMountsModelsReadOnly", [MOUNT], file_system_arn, models_ap),
              _mount_statement("ServiceMountsDataReadWrite", [MOUNT, WRITE], file_system_arn, data_ap),
              _mount_statement("SyncWritesModels", [MOUNT, WRITE], file_system_arn, models_ap),
              _mount_statement("ExportReadsAndRemovesCaptures", [MOUNT, WRITE], file_system_arn, data_ap)]
    for grant in grants[:2]:
        grant["Principal"] = {"AWS": role_arn}
    grants[2]["Principal"] = {"AWS": writer_role_arn}
    grants[3]["Principal"] = {"AWS": exporter_role_arn}
    return policy_document(
        *grants,
        {"Sid": "DenyOtherPrincipals", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": [MOUNT, WRITE, "elasticfilesystem:ClientRootAccess"], "Resource": file_system_arn,
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [role_arn, writer_role_arn, exporter_role_arn]}}},
        {"Sid": "DenyWithoutTls", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*",
         "Resource": file_system_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyOutsideMountTargets", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": [MOUNT, WRITE, "elasticfilesystem:ClientRootAccess"], "Resource": file_system_arn,
         "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "false"}}},
    )
