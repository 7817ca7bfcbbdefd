"""What an environment's deploy step may do, beyond PowerUserAccess (which has no IAM), and what it may never do.

It may manage its own environment's workload roles, and only with the workload boundary attached; pass them only to
the services that run them; read and write the remote state. It may never change a delivery role (its own
included), a boundary or the pipeline, and never touch a later environment: the code it runs comes from any commit
on the branch before that environment's approval, so approval only gates production if this holds. The delivery
boundary (modules/permission_boundaries.py) holds the same lines again, so a policy someone adds to the role later
cannot open them.
"""

from __future__ import annotations

from dataclasses import dataclass

from modules.iam import Statement
from modules.permission_boundaries import IAM_WRITES, ROLE_POLICY_CHANGES

WORKLOAD_SERVICES = ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com", "events.amazonaws.com",
                     "scheduler.amazonaws.com", "vpc-flow-logs.amazonaws.com"]
"""The services the workload roles are passed to: ECS tasks, ECS itself (moving traffic in a canary), EventBridge and
its scheduler (the model sync), VPC flow logs."""
ROLE_READS = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
              "iam:ListInstanceProfilesForRole", "iam:ListRoleTags", "iam:GetPolicy", "iam:GetPolicyVersion"]
ROLE_LIFECYCLE = ["iam:DeleteRole", "iam:UpdateRole", "iam:TagRole", "iam:UntagRole", "iam:UpdateAssumeRolePolicy"]
PIPELINE_CHANGES = ["codepipeline:Create*", "codepipeline:Delete*", "codepipeline:Update*", "codepipeline:Put*",
                    "codepipeline:Disable*", "codepipeline:Enable*", "codepipeline:Override*",
                    "codepipeline:Retry*", "codepipeline:Rollback*", "codepipeline:Start*", "codepipeline:Stop*",
                    "codebuild:Create*", "codebuild:Delete*", "codebuild:Update*", "codebuild:Start*",
                    "codebuild:Retry*", "codebuild:Import*", "codebuild:Invalidate*", "codebuild:Put*",
                    "codestar-connections:*", "codeconnections:*"]


@dataclass(frozen=True)
class DeployScope:
    """Everything the deploy role of one environment is scoped by, as plain values."""

    project: str
    environment: str
    later_environments: tuple[str, ...]
    """Environments the pipeline deploys after this one (each behind its approval)."""
    account_arn: str
    """`arn:<partition>:iam::<account>`."""
    partition_arn: str
    """`arn:<partition>`."""
    region: str
    account: str
    state_bucket: str
    lock_table: str
    workload_boundary_arn: str
    delivery_boundary_arn: str
    delivery_role_path: str
    pipeline_arn: str
    build_projects_arn: str
    """All the project's CodeBuild projects (`...:project/<project>-*`)."""
    artifact_objects_arn: str
    """The pipeline's artifacts (the source every later stage runs)."""
    model_bucket_of: dict[str, str]
    capture_bucket_of: dict[str, str]
    deploy_role_of: dict[str, str]
    """Environment -> its deploy role, for environments that have one."""


def deploy_statements(scope: DeployScope) -> tuple[Statement, ...]:
    state = f"{scope.partition_arn}:s3:::{scope.state_bucket}"
    own_roles = f"{scope.account_arn}:role/{scope.project}-{scope.environment}-*"
    statements: list[Statement] = [
        {"Sid": "StateBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": state},
        {"Sid": "StateObjectsAndLockFiles", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"{state}/*"},
        {"Sid": "StateLockTable", "Effect": "Allow",
         "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable"],
         "Resource": f"{scope.partition_arn}:dynamodb:{scope.region}:{scope.account}:table/{scope.lock_table}"},
        {"Sid": "ReadRolesAndBoundaries", "Effect": "Allow", "Action": ROLE_READS,
         "Resource": [f"{scope.account_arn}:role/{scope.project}-*", scope.workload_boundary_arn]},
        {"Sid": "WorkloadRolesOnlyWithTheWorkloadBoundary", "Effect": "Allow",
         "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary", *ROLE_POLICY_CHANGES], "Resource": own_roles,
         "Condition": {"StringEquals": {"iam:PermissionsBoundary": scope.workload_boundary_arn}}},
        {"Sid": "WorkloadRolesLifecycle", "Effect": "Allow", "Action": ROLE_LIFECYCLE, "Resource": own_roles},
        {"Sid": "PassWorkloadRolesToTheirServices", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": own_roles, "Condition": {"StringEquals": {"iam:PassedToService": WORKLOAD_SERVICES}}},
        {"Sid": "ServiceLinkedRoles", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
         "Resource": f"{scope.account_arn}:role/aws-service-role/*"},
        {"Sid": "NeverTheDeliveryRoles", "Effect": "Deny", "Action": [*IAM_WRITES, "iam:PassRole"],
         "Resource": f"{scope.account_arn}:role{scope.delivery_role_path}*"},
        {"Sid": "NeverTheBoundaries", "Effect": "Deny", "Action": IAM_WRITES,
         "Resource": [scope.workload_boundary_arn, scope.delivery_boundary_arn]},
        {"Sid": "NeverRemoveABoundary", "Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary",
         "Resource": "*"},
        {"Sid": "NeverThePipeline", "Effect": "Deny", "Action": PIPELINE_CHANGES,
         "Resource": [scope.pipeline_arn, scope.build_projects_arn]},
        {"Sid": "NeverThePipelinesArtifacts", "Effect": "Deny", "Action": ["s3:PutObject", "s3:DeleteObject*"],
         "Resource": scope.artifact_objects_arn},
    ]
    own_deploy_role = scope.deploy_role_of.get(scope.environment)
    if own_deploy_role:
        statements.append({"Sid": "EnvironmentDeployRole", "Effect": "Allow", "Action": "sts:AssumeRole",
                           "Resource": own_deploy_role})
    statements.extend(_later_environments(scope, state))
    return tuple(statements)


def _later_environments(scope: DeployScope, state: str) -> list[Statement]:
    later = list(scope.later_environments)
    if not later:
        return []
    prefixes = [f"{scope.project}-{environment}-" for environment in later]
    data_buckets = [f"{scope.partition_arn}:s3:::{bucket_of[environment]}" for environment in later
                    for bucket_of in (scope.model_bucket_of, scope.capture_bucket_of)]
    statements: list[Statement] = [
        {"Sid": "NeverResourcesOfALaterEnvironment", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/environment": later}}},
        {"Sid": "NeverTagForALaterEnvironment", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/environment": later}}},
        {"Sid": "NeverTheStateOfALaterEnvironment", "Effect": "Deny", "Action": "s3:*",
         "Resource": [f"{state}/{prefix}*" for prefix in prefixes]},
        {"Sid": "NeverTheLocksOfALaterEnvironment", "Effect": "Deny", "Action": "dynamodb:*", "Resource": "*",
         "Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": [
             f"{scope.state_bucket}/{prefix}*" for prefix in prefixes]}}},
        {"Sid": "NeverTheModelsOrCapturesOfALaterEnvironment", "Effect": "Deny", "Action": "s3:*",
         "Resource": [arn for bucket in data_buckets for arn in (bucket, f"{bucket}/*")]},
        {"Sid": "NeverTheRolesOfALaterEnvironment", "Effect": "Deny", "Action": [*IAM_WRITES, "iam:PassRole"],
         "Resource": [f"{scope.account_arn}:role/{prefix}*" for prefix in prefixes]},
    ]
    own = scope.deploy_role_of.get(scope.environment)
    later_roles = sorted({scope.deploy_role_of[environment] for environment in later
                          if environment in scope.deploy_role_of} - {own})
    if later_roles:
        statements.append({"Sid": "NeverTheDeployRoleOfALaterEnvironment", "Effect": "Deny",
                           "Action": "sts:AssumeRole", "Resource": later_roles})
    return statements
