"""`<project>-pipeline`: GitHub -> Test -> Build -> for each environment in order: [Approval] -> Deploy -> Smoke.

Build pushes the image to this stack's build repository, which exists before the pipeline first runs; each Deploy
copies it into its environment's repository (after that environment's approval).

A CodePipeline (V2, queued executions: a second run waits instead of fighting over the state lock) whose CodeBuild
steps each have their own role. The deploy steps run `cdktf deploy` against the same state bucket and lock table the
bootstrap stack creates; their breadth is documented in the README ("The pipeline's permissions").
"""

from __future__ import annotations

import json

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.codepipeline import (
    Codepipeline,
    CodepipelineArtifactStore,
    CodepipelineArtifactStoreEncryptionKey,
    CodepipelineStage,
    CodepipelineStageAction,
)
from cdktf_cdktf_provider_aws.codestarconnections_connection import CodestarconnectionsConnection
from cdktf_cdktf_provider_aws.codestarnotifications_notification_rule import (
    CodestarnotificationsNotificationRule,
    CodestarnotificationsNotificationRuleTarget,
)
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from constructs import Construct

from configuration import MlopsConfig
from configuration.naming import (
    aws_name,
    build_repository_name,
    build_role_name,
    delivery_boundary_name,
    delivery_role_path,
    pipeline_artifact_bucket_name,
    smoke_step_name,
    workload_boundary_name,
)
from configuration.resolved import ResolvedEndpoint, resolve_endpoint, resolve_environment
from modules.alarm_topic import AlarmTopic, AlarmTopicProps
from modules.build_step import BuildStep, BuildStepProps
from modules.encryption import EncryptionKey, EncryptionKeyProps
from modules.iam import Statement, assume_role_policy, policy_document
from modules.registry import ImageRepository, ImageRepositoryProps
from modules.secure_bucket import SecureBucket, SecureBucketProps
from serving.contract import async_prefixes
from stacks.common import add_aws_provider, use_remote_state
from stacks.delivery_roles import DeployScope, deploy_statements

SOURCE_ARTIFACT = "source"
SOURCE_NAMESPACE = "SourceVariables"
COMMIT = f"#{{{SOURCE_NAMESPACE}.CommitId}}"
BUILDSPEC_DIR = "pipeline/buildspecs"  # the buildspecs in the checked-out source: thin, their logic is pipeline/*.py


class PipelineStack(TerraformStack):
    """Attributes: `pipeline`, `steps` (name -> BuildStep), `artifact_bucket`, `build_repository`,
    `connection_arn`, `topic`."""

    def __init__(self, scope: Construct, stack_name: str, config: MlopsConfig):
        super().__init__(scope, stack_name)
        settings = config.pipeline
        assert settings is not None, "the pipeline stack needs a `pipeline` section"
        add_aws_provider(self, config)
        use_remote_state(self, config, stack_name)
        project = config.project
        account = DataAwsCallerIdentity(self, "account").account_id
        partition = DataAwsPartition(self, "partition").partition
        arn = f"arn:{partition}"

        self.key = EncryptionKey(self, "key", EncryptionKeyProps(
            alias=f"{project}-pipeline", description=f"{project} pipeline: artifacts, logs, notifications",
            region=config.region, allow_cloudwatch_logs=True,
            allow_service_publishers=("codestar-notifications.amazonaws.com",)))
        self.artifact_bucket = SecureBucket(self, "artifacts", SecureBucketProps(
            bucket_name=pipeline_artifact_bucket_name(project, config.region),
            kms_key_arn=self.key.arn, noncurrent_version_days=30))
        logs = CloudwatchLogGroup(self, "build-logs", name=f"/codebuild/{project}-pipeline", retention_in_days=365,
                                  kms_key_id=self.key.arn)
        if settings.connection_arn:
            self.connection_arn = settings.connection_arn
        else:
            self.connection_arn = CodestarconnectionsConnection(
                self, "github", name=aws_name(project, "github", max_length=32), provider_type="GitHub").arn

        delivery_boundary = f"{arn}:iam::{account}:policy/{delivery_boundary_name(project)}"
        role_path = delivery_role_path(project)

        def step(step_id: str, name: str, description: str, buildspec: str, **options) -> BuildStep:
            return BuildStep(self, step_id, BuildStepProps(
                name=name, description=description, buildspec=f"{BUILDSPEC_DIR}/{buildspec}",
                role_name=build_role_name(name), role_path=role_path,
                permissions_boundary_arn=delivery_boundary, account_id=account,
                artifact_bucket_name=self.artifact_bucket.name, artifact_bucket_arn=self.artifact_bucket.arn,
                kms_key_arn=self.key.arn, log_group_name=logs.name, log_group_arn=logs.arn, **options))

        # Environments run copies in their own repositories, so expiring an old build here never stops a task.
        self.build_repository = ImageRepository(self, "build-image", ImageRepositoryProps(
            name=build_repository_name(project), kms_key_arn=self.key.arn))

        self.steps: dict[str, BuildStep] = {}
        self.steps["test"] = step("test", f"{project}-test", "make lint, make test", "test.yml")
        self.steps["build"] = step(
            "build", f"{project}-build", "build the serving image and push it to the pipeline's build repository",
            "build.yml", privileged=True, statements=(
                {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {"Sid": "PushServingImages", "Effect": "Allow", "Action": [
                    "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
                    "ecr:GetDownloadUrlForLayer"],
                 "Resource": self.build_repository.arn},
                {"Sid": "EncryptServingImages", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                 "Resource": self.key.arn},
                {"Sid": "StsIdentity", "Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
            ))
        pipeline_name = f"{project}-delivery"
        environments = list(config.environments)
        for index, environment in enumerate(environments):
            permissions = deploy_statements(DeployScope(
                project=project, environment=environment, later_environments=tuple(environments[index + 1:]),
                account_arn=f"{arn}:iam::{account}", partition_arn=arn, region=config.region, account=account,
                state_bucket=config.state_bucket_name, lock_table=config.lock_table_name,
                workload_boundary_arn=f"{arn}:iam::{account}:policy/{workload_boundary_name(project)}",
                delivery_boundary_arn=delivery_boundary, delivery_role_path=role_path,
                pipeline_arn=f"{arn}:codepipeline:{config.region}:{account}:{pipeline_name}",
                build_projects_arn=f"{arn}:codebuild:{config.region}:{account}:project/{project}-*",
                # CodePipeline keeps a pipeline's artifacts under the first 20 characters of its name.
                artifact_objects_arn=f"{self.artifact_bucket.arn}/{pipeline_name[:20]}/*",
                model_bucket_of={name: config.model_bucket_name(name) for name in environments},
                capture_bucket_of={name: config.capture_bucket_name(name) for name in environments},
                deploy_role_of={name: env.deploy_role_arn for name, env in config.environments.items()
                                if env.deploy_role_arn}))
            self.steps[f"deploy-{environment}"] = step(
                f"deploy-{environment}", f"{project}-deploy-{environment}",
                f"cdktf deploy of {environment}'s platform and endpoint stacks", "deploy.yml",
                statements=permissions, managed_policy_arns=(f"{arn}:iam::aws:policy/PowerUserAccess",),
                compute_type="BUILD_GENERAL1_LARGE", timeout_minutes=120,
                environment={"DEPLOY_ENV": environment, "TERRAFORM_VERSION": settings.terraform_version,
                             "TERRAFORM_SHA256": settings.terraform_sha256,
                             "STATE_BUCKET": config.state_bucket_name, "LOCK_TABLE": config.lock_table_name})
            self.steps[f"smoke-{environment}"] = step(
                f"smoke-{environment}", smoke_step_name(project, environment),
                f"health and one prediction per endpoint through {environment}'s load balancer", "smoke.yml",
                environment={"DEPLOY_ENV": environment}, compute_type="BUILD_GENERAL1_SMALL",
                statements=smoke_statements(config, environment, arn, account))

        self.topic = AlarmTopic(self, "notifications", AlarmTopicProps(
            name=f"{project}-pipeline-notifications", kms_key_arn=self.key.arn,
            emails=tuple(settings.notification_emails)))
        SnsTopicPolicy(self, "notifications-policy", arn=self.topic.arn, policy=policy_document({
            "Sid": "CodeStarNotificationsPublish", "Effect": "Allow",
            "Principal": {"Service": "codestar-notifications.amazonaws.com"}, "Action": "sns:Publish",
            "Resource": self.topic.arn, "Condition": {"StringEquals": {"aws:SourceAccount": account}}}))

        role = IamRole(self, "pipeline-role", name=aws_name(project, "pipeline", max_length=64), path=role_path,
                       permissions_boundary=delivery_boundary,
                       assume_role_policy=assume_role_policy("codepipeline.amazonaws.com", account))
        IamRolePolicy(self, "pipeline-policy", role=role.id, policy=policy_document(
            {"Sid": "Artifacts", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetBucketVersioning"],
             "Resource": [self.artifact_bucket.arn, f"{self.artifact_bucket.arn}/*"]},
            {"Sid": "PipelineKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"],
             "Resource": self.key.arn},
            {"Sid": "RunBuilds", "Effect": "Allow", "Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
             "Resource": [s.project.arn for s in self.steps.values()]},
            {"Sid": "UseGitHubConnection", "Effect": "Allow",
             "Action": ["codestar-connections:UseConnection", "codeconnections:UseConnection"],
             "Resource": self.connection_arn},
        ))
        self.pipeline = Codepipeline(
            self, "pipeline", name=pipeline_name, role_arn=role.arn, pipeline_type="V2",
            execution_mode="QUEUED",
            artifact_store=[CodepipelineArtifactStore(
                location=self.artifact_bucket.name, type="S3",
                encryption_key=CodepipelineArtifactStoreEncryptionKey(id=self.key.arn, type="KMS"))],
            stage=self._stages(config))
        CodestarnotificationsNotificationRule(
            self, "failure-notifications", name=aws_name(project, "pipeline-events", max_length=64),
            detail_type="BASIC", resource=self.pipeline.arn,
            event_type_ids=["codepipeline-pipeline-pipeline-execution-failed",
                            "codepipeline-pipeline-manual-approval-needed"],
            target=[CodestarnotificationsNotificationRuleTarget(address=self.topic.arn, type="SNS")])

        TerraformOutput(self, "pipeline-name", value=self.pipeline.name)
        TerraformOutput(self, "build-repository-url", value=self.build_repository.url,
                        description="Build pushes each commit's serving image here")
        TerraformOutput(self, "github-connection-arn", value=self.connection_arn,
                        description="Authorize this connection once in the console (it starts PENDING)")
        TerraformOutput(self, "notification-topic-arn", value=self.topic.arn)

    def _stages(self, config: MlopsConfig) -> list[CodepipelineStage]:
        settings = config.pipeline
        assert settings is not None

        def build(name: str, step: str) -> CodepipelineStageAction:
            variables = [{"name": "IMAGE_TAG", "value": COMMIT, "type": "PLAINTEXT"}]
            return CodepipelineStageAction(
                name=name, category="Build", owner="AWS", provider="CodeBuild", version="1",
                input_artifacts=[SOURCE_ARTIFACT], configuration={
                    "ProjectName": self.steps[step].name, "EnvironmentVariables": json.dumps(variables)})

        stages = [
            CodepipelineStage(name="Source", action=[CodepipelineStageAction(
                name="GitHub", category="Source", owner="AWS", provider="CodeStarSourceConnection", version="1",
                output_artifacts=[SOURCE_ARTIFACT], namespace=SOURCE_NAMESPACE, configuration={
                    "ConnectionArn": self.connection_arn, "FullRepositoryId": settings.repository,
                    "BranchName": settings.branch, "OutputArtifactFormat": "CODE_ZIP",
                    "DetectChanges": "true"})]),
            CodepipelineStage(name="Test", action=[build("Test", "test")]),
            CodepipelineStage(name="Build", action=[build("Image", "build")]),
        ]
        for index, environment in enumerate(config.environments):
            if index > 0 and settings.manual_approval:
                stages.append(CodepipelineStage(name=f"Approve-{environment}", action=[CodepipelineStageAction(
                    name="Approve", category="Approval", owner="AWS", provider="Manual", version="1",
                    configuration={"CustomData": f"Deploy commit {COMMIT} to {environment}?"})]))
            stages.append(CodepipelineStage(name=f"Deploy-{environment}",
                                            action=[build("Deploy", f"deploy-{environment}")]))
            stages.append(CodepipelineStage(name=f"Smoke-{environment}",
                                            action=[build("Smoke", f"smoke-{environment}")]))
        return stages


def smoke_statements(config: MlopsConfig, environment: str, arn: str, account: str) -> tuple[Statement, ...]:
    """The load balancer is looked up in the environment's own account: through its deploy role if it has one."""
    statements: list[Statement] = [{"Sid": "FindLoadBalancer", "Effect": "Allow",
                                    "Action": "elasticloadbalancing:DescribeLoadBalancers", "Resource": "*"}]
    role = config.environments[environment].deploy_role_arn
    if role:
        statements.append({"Sid": "EnvironmentDeployRole", "Effect": "Allow", "Action": "sts:AssumeRole",
                           "Resource": role})
        return tuple(statements)  # the smoke keys are read through that role, in the environment's account
    keyed = [name for name in config.endpoints if config.endpoint_for(environment, name).auth.type != "none"]
    if keyed:
        # Secrets Manager appends a random suffix to a secret's ARN.
        names = [resolve_endpoint(config, environment, name).smoke_key_secret_name for name in keyed]
        secrets = [f"{arn}:secretsmanager:{config.region}:{account}:secret:{name}-*" for name in names]
        statements.append({"Sid": "ReadSmokeKeys", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": secrets})
        statements.append({"Sid": "DecryptSmokeKeys", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
                           "Condition": {"StringEquals": {
                               "kms:ViaService": f"secretsmanager.{config.region}.amazonaws.com"}}})
    asynchronous = [name for name in config.endpoints if config.endpoint_for(environment, name).mode == "async"]
    if asynchronous:
        statements.extend(_smoke_async_statements(config, environment, asynchronous, arn))
    internal = [resolve_endpoint(config, environment, name) for name in config.endpoints
                if config.endpoint_for(environment, name).exposure == "internal"]
    if internal:
        statements.extend(_smoke_probe_statements(config, environment, internal, arn, account))
    return tuple(statements)


def _smoke_async_statements(config: MlopsConfig, environment: str, endpoints: list[str], arn: str) -> list[Statement]:
    """Send each asynchronous endpoint one request built from its live version's signature (pipeline/smoke_async.py):
    find and read the live version's metadata, put the request under `<input prefix>smoke/`, find and read its
    answer (or failure); both buckets are encrypted with the platform key, used through S3 only."""
    models = f"{arn}:s3:::{config.model_bucket_name(environment)}"
    buckets = {name: f"{arn}:s3:::{config.async_bucket_name(environment, name)}" for name in endpoints}
    prefixes = {name: async_prefixes(name) for name in endpoints}
    return [
        {"Sid": "FindLiveModelVersions", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": models,
         "Condition": {"StringLike": {"s3:prefix": [f"{name}/*" for name in endpoints]}}},
        {"Sid": "ReadLiveModelVersions", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [f"{models}/{name}/*" for name in endpoints]},
        {"Sid": "SubmitSmokeRequests", "Effect": "Allow", "Action": "s3:PutObject",
         "Resource": [f"{buckets[name]}/{prefixes[name][0]}smoke/*" for name in endpoints]},
        {"Sid": "FindSmokeAnswers", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": list(buckets.values()),
         "Condition": {"StringLike": {"s3:prefix": [f"{prefix}smoke/*" for name in endpoints
                                                    for prefix in prefixes[name][1:]]}}},
        {"Sid": "ReadSmokeAnswers", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [f"{buckets[name]}/{prefix}smoke/*" for name in endpoints for prefix in prefixes[name][1:]]},
        {"Sid": "UseBucketKeysThroughS3", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}}},
    ]


def _smoke_probe_statements(config: MlopsConfig, environment: str, endpoints: list[ResolvedEndpoint], arn: str,
                            account: str) -> list[Statement]:
    """Run each internal endpoint's probe task (pipeline/smoke_probe.py) in the environment's cluster, in the subnets
    of the endpoint's service, and read its log."""
    cluster = resolve_environment(config, environment).cluster_name
    ecs = f"{arn}:ecs:{config.region}:{account}"
    return [
        # DescribeTaskDefinition has no resource scope: the probe's latest revision, which Smoke runs by its ARN.
        {"Sid": "FindSmokeProbeRevisions", "Effect": "Allow", "Action": "ecs:DescribeTaskDefinition", "Resource": "*"},
        {"Sid": "RunSmokeProbes", "Effect": "Allow", "Action": "ecs:RunTask",
         "Resource": [f"{ecs}:task-definition/{endpoint.smoke_probe_name}:*" for endpoint in endpoints],
         "Condition": {"ArnEquals": {"ecs:cluster": f"{ecs}:cluster/{cluster}"}}},
        {"Sid": "PassSmokeProbeRoles", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": [f"{arn}:iam::{account}:role/{endpoint.smoke_probe_role_name}" for endpoint in endpoints],
         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
        {"Sid": "WatchSmokeProbes", "Effect": "Allow", "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
         "Resource": f"{ecs}:task/{cluster}/*"},
        {"Sid": "FindProbedServices", "Effect": "Allow", "Action": "ecs:DescribeServices",
         "Resource": [f"{ecs}:service/{cluster}/{endpoint.service_names[0]}" for endpoint in endpoints]},
        # DescribeSecurityGroups has no resource scope.
        {"Sid": "FindSmokeProbeGroups", "Effect": "Allow", "Action": "ec2:DescribeSecurityGroups", "Resource": "*"},
        {"Sid": "ReadSmokeProbeLogs", "Effect": "Allow", "Action": "logs:GetLogEvents",
         "Resource": [f"{arn}:logs:{config.region}:{account}:log-group:{endpoint.smoke_probe_log_group}:log-stream:*"
                      for endpoint in endpoints]},
    ]
