"""Who an endpoint's tasks are: the execution role (ECS pulls the image, writes logs), the task role (the server
mounts EFS), the model sync task's role (writes model versions to EFS) and a security group for each kind of task.
Created first, so storage can trust them before the service exists; their permissions are attached by the
constructs that know what to grant."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from modules.iam import assume_role_policy
from modules.model_storage import NFS_PORT

ECS_TASKS = "ecs-tasks.amazonaws.com"


def allow_task_egress(scope: Construct, id_prefix: str, security_group_id: str, efs_security_group_id: str) -> None:
    """What a task of an endpoint may reach: NFS on its endpoint's file system, and HTTPS for image pulls, logs and
    AWS APIs (through NAT or VPC endpoints). Nothing else."""
    VpcSecurityGroupEgressRule(scope, f"{id_prefix}-to-efs", security_group_id=security_group_id,
                               referenced_security_group_id=efs_security_group_id, ip_protocol="tcp",
                               from_port=NFS_PORT, to_port=NFS_PORT, description="NFS to the endpoint's EFS")
    VpcSecurityGroupEgressRule(scope, f"{id_prefix}-https-out", security_group_id=security_group_id,
                               cidr_ipv4="0.0.0.0/0", ip_protocol="tcp", from_port=443, to_port=443,
                               description="HTTPS to AWS APIs")


@dataclass(frozen=True)
class TaskIdentityProps:
    name_prefix: str
    """`<project>-<env>-<endpoint>`: security group names."""
    vpc_id: str
    account_id: str
    execution_role_name: str
    task_role_name: str
    sync_role_name: str
    export_role_name: str
    """Role names (IAM: at most 64 characters)."""
    permissions_boundary_arn: str | None = None
    """Caps the three roles whatever their policies say (see modules/permission_boundaries.py)."""


class TaskIdentity(Construct):
    """Attributes: `execution_role`, `task_role`, `security_group_id` (the service's), `sync_role`,
    `sync_security_group_id`, `export_role`, `export_security_group_id` (the capture export task's)."""

    def __init__(self, scope: Construct, construct_id: str, props: TaskIdentityProps):
        super().__init__(scope, construct_id)
        trust = assume_role_policy(ECS_TASKS, props.account_id)
        self.execution_role = IamRole(self, "execution-role", name=props.execution_role_name,
                                      permissions_boundary=props.permissions_boundary_arn,
                                      assume_role_policy=trust, description="ECS pulls the image and writes logs")
        self.task_role = IamRole(self, "task-role", name=props.task_role_name,
                                 permissions_boundary=props.permissions_boundary_arn,
                                 assume_role_policy=trust, description="The model server at run time")
        group = SecurityGroup(self, "security-group", name=f"{props.name_prefix}-service", vpc_id=props.vpc_id,
                              description=f"{props.name_prefix} tasks: load balancer in, EFS and HTTPS out",
                              tags={"Name": f"{props.name_prefix}-service"})
        self.security_group_id: str = group.id
        self.sync_role = IamRole(self, "sync-role", name=props.sync_role_name,
                                 permissions_boundary=props.permissions_boundary_arn,
                                 assume_role_policy=trust, description="The model sync task: S3 to EFS")
        sync_group = SecurityGroup(self, "sync-security-group", name=f"{props.name_prefix}-model-sync",
                                   vpc_id=props.vpc_id,
                                   description=f"{props.name_prefix} model sync task: EFS and HTTPS out, nothing in",
                                   tags={"Name": f"{props.name_prefix}-model-sync"})
        self.sync_security_group_id: str = sync_group.id
        self.export_role = IamRole(self, "export-role", name=props.export_role_name,
                                   permissions_boundary=props.permissions_boundary_arn,
                                   assume_role_policy=trust, description="The capture export task: EFS to S3")
        export_group = SecurityGroup(
            self, "export-security-group", name=f"{props.name_prefix}-capture-export", vpc_id=props.vpc_id,
            description=f"{props.name_prefix} capture export task: EFS and HTTPS out, nothing in",
            tags={"Name": f"{props.name_prefix}-capture-export"})
        self.export_security_group_id: str = export_group.id
