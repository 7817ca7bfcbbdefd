"""One step of a CodePipeline: a CodeBuild project with its own role, its logs and the pipeline's artifacts.

The buildspec is a file of the source the pipeline checks out; what the step may do beyond logs, artifacts and the
pipeline's key is given as statements, so each step's role holds only what that step needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.codebuild_project import (
    CodebuildProject,
    CodebuildProjectArtifacts,
    CodebuildProjectCache,
    CodebuildProjectEnvironment,
    CodebuildProjectEnvironmentEnvironmentVariable,
    CodebuildProjectLogsConfig,
    CodebuildProjectLogsConfigCloudwatchLogs,
    CodebuildProjectSource,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from modules.iam import Statement, assume_role_policy, policy_document

BUILD_IMAGE = "aws/codebuild/standard:7.0"  # Ubuntu 22.04: Python 3.11, Node 22, Docker


@dataclass(frozen=True)
class BuildStepProps:
    name: str
    """Project name, e.g. `mlops-deploy-staging`."""
    description: str
    buildspec: str
    """Path of the buildspec in the checked-out source, e.g. `pipeline/buildspecs/deploy.yml`."""
    role_name: str
    """The step's own role (IAM: at most 64 characters)."""
    account_id: str
    artifact_bucket_name: str
    artifact_bucket_arn: str
    kms_key_arn: str
    log_group_name: str
    log_group_arn: str
    statements: tuple[Statement, ...] = ()
    """What this step needs beyond logs, artifacts and the pipeline's key."""
    managed_policy_arns: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    privileged: bool = False
    """Docker builds need it."""
    compute_type: str = "BUILD_GENERAL1_MEDIUM"
    timeout_minutes: int = 60
    role_path: str = "/"
    permissions_boundary_arn: str | None = None
    """Caps the step's role whatever its policies say (see modules/permission_boundaries.py)."""


class BuildStep(Construct):
    """Attributes: `project`, `role`, `name`."""

    def __init__(self, scope: Construct, construct_id: str, props: BuildStepProps):
        super().__init__(scope, construct_id)
        self.role = IamRole(self, "role", name=props.role_name, path=props.role_path,
                            permissions_boundary=props.permissions_boundary_arn,
                            assume_role_policy=assume_role_policy("codebuild.amazonaws.com", props.account_id),
                            description=f"CodeBuild: {props.description}")
        IamRolePolicy(self, "policy", role=self.role.id, policy=policy_document(
            {"Sid": "WriteBuildLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{props.log_group_arn}:*"},
            {"Sid": "ReadWriteArtifactsAndCache", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
             "Resource": f"{props.artifact_bucket_arn}/*"},
            {"Sid": "ListArtifacts", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
             "Resource": props.artifact_bucket_arn},
            {"Sid": "UsePipelineKey", "Effect": "Allow",
             "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"], "Resource": props.kms_key_arn},
            *props.statements,
        ))
        for arn in props.managed_policy_arns:
            IamRolePolicyAttachment(self, f"managed-policy-{arn.rsplit('/', 1)[-1].lower()}", role=self.role.name,
                                    policy_arn=arn)
        self.project = CodebuildProject(
            self, "project", name=props.name, description=props.description, service_role=self.role.arn,
            build_timeout=props.timeout_minutes, encryption_key=props.kms_key_arn,
            source=CodebuildProjectSource(type="CODEPIPELINE", buildspec=props.buildspec),
            artifacts=CodebuildProjectArtifacts(type="CODEPIPELINE"),
            cache=CodebuildProjectCache(type="S3", location=f"{props.artifact_bucket_name}/cache/{props.name}"),
            environment=CodebuildProjectEnvironment(
                compute_type=props.compute_type, image=BUILD_IMAGE, type="LINUX_CONTAINER",
                image_pull_credentials_type="CODEBUILD", privileged_mode=props.privileged,
                environment_variable=[CodebuildProjectEnvironmentEnvironmentVariable(name=key, value=value)
                                      for key, value in sorted(props.environment.items())]),
            logs_config=CodebuildProjectLogsConfig(cloudwatch_logs=CodebuildProjectLogsConfigCloudwatchLogs(
                group_name=props.log_group_name, stream_name=props.name, status="ENABLED")))
        self.name: str = self.project.name
