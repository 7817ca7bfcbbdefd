"""Where moto 5.2.5's server lacks an API the stacks use, or checks more strictly than AWS: each shim names the gap,
patches moto (never the product), and first checks that the gap is still there, so an upgrade that closes it fails
loudly instead of hiding behind a patch. Measured gaps: ../shared/REHEARSAL-FACTS.md.

Applied inside the emulated account's process (tests/rehearsal/emulated_aws.py) before it serves a request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MOTO_VERSION = "5.2.5"

# The emulated account is reached over plain HTTP on 127.0.0.1, where AWS is reached over TLS through a mount
# target or an endpoint: the request context the stacks' conditions are written for.
REQUEST_CONTEXT = {"aws:securetransport": "true", "elasticfilesystem:accessedviamounttarget": "true"}


class ShimNoLongerNeeded(RuntimeError):
    pass


@dataclass(frozen=True)
class Shim:
    name: str
    reason: str
    still_needed: Callable[[], bool]
    apply: Callable[[], None]


def _missing(cls: type, method: str) -> bool:
    return method not in cls.__dict__


def _raises_not_implemented(cls: type, method: str) -> bool:
    import inspect

    return "NotImplementedError" in inspect.getsource(getattr(cls, method))


# --- IAM/S3: `Bool` conditions -------------------------------------------------------------------------------
def _bool_conditions() -> None:
    from moto.iam import policy_conditions

    original = policy_conditions.TrustCondition.verify_condition

    def verify_condition(self: Any, actual_values: list[str]) -> bool:
        if self._condition != "Bool":
            return original(self, actual_values)
        for key, expected in zip(self._expected_value_source, self._expected_value, strict=True):
            actual = REQUEST_CONTEXT.get(key.lower())
            wanted = [expected] if isinstance(expected, str) else expected
            if actual is None or actual not in [str(value).lower() for value in wanted]:
                return False
        return True

    policy_conditions.TrustCondition.verify_condition = verify_condition

    # A statement whose condition does not hold does not apply (NEUTRAL); moto answers DENIED, so a deny with an
    # unmet condition (TLS-only policies) or an allow with an unmet one would refuse every call.
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    original_permitted = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self: Any, action: str, resource: str = "*", principal: str | None = None,
                            incoming_condition_values: dict[str, str] | None = None) -> Any:
        if self._statement.get("Condition") and not self._check_conditions(incoming_condition_values):
            return PermissionResult.NEUTRAL
        return original_permitted(self, action, resource, principal, incoming_condition_values)

    IAMPolicyStatement.is_action_permitted = is_action_permitted


def _bool_still_ignored() -> bool:
    from moto.iam.policy_conditions import CONDITION_OPERATIONS

    return "Bool" not in CONDITION_OPERATIONS


# --- S3: bucket logging ---------------------------------------------------------------------------------------
def _bucket_logging() -> None:
    from moto.s3.models import FakeBucket

    def set_logging(self: Any, logging_config: dict[str, Any] | None, bucket_backend: Any) -> None:
        # AWS checks the target exists in the region; the log-delivery grant is the log bucket's policy, which
        # Terraform may apply after this call (moto demands it first, then crashes on a `"*"` principal).
        if logging_config and logging_config["TargetBucket"] not in bucket_backend.buckets:
            from moto.s3.exceptions import InvalidTargetBucketForLogging

            raise InvalidTargetBucketForLogging("The target bucket for logging does not exist.")
        self.logging = logging_config or {}

    FakeBucket.set_logging = set_logging


def _logging_still_strict() -> bool:
    import inspect

    from moto.s3.models import FakeBucket

    return "_log_permissions_enabled_policy" in inspect.getsource(FakeBucket.set_logging)


# --- S3: NewerNoncurrentVersions of a noncurrent expiration -------------------------------------------------
_NEWER_VERSIONS: dict[tuple[str, str], int] = {}


def _newer_noncurrent_versions() -> None:
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    original_set = FakeBucket.set_lifecycle

    def set_lifecycle(self: Any, rules: list[dict[str, Any]]) -> None:
        original_set(self, rules)
        for rule in rules:
            expiration = rule.get("NoncurrentVersionExpiration") or {}
            if expiration.get("NewerNoncurrentVersions") is not None:
                _NEWER_VERSIONS[(self.name, rule.get("ID", ""))] = int(expiration["NewerNoncurrentVersions"])

    original_get = S3Response.get_bucket_lifecycle

    def get_bucket_lifecycle(self: Any) -> Any:
        serialized = self.serialized

        def with_newer_versions(action_result: Any) -> Any:
            for rule in getattr(action_result, "result", {}).get("Rules", []):
                newer = _NEWER_VERSIONS.get((self.bucket_name, rule.get("ID", "")))
                if newer is not None and "NoncurrentVersionExpiration" in rule:
                    rule["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] = newer
            return serialized(action_result)

        self.serialized = with_newer_versions
        try:
            return original_get(self)
        finally:
            del self.serialized

    FakeBucket.set_lifecycle = set_lifecycle
    S3Response.get_bucket_lifecycle = get_bucket_lifecycle


def _newer_versions_still_dropped() -> bool:
    import inspect

    from moto.s3.responses import S3Response

    return "NewerNoncurrentVersions\", rule" not in inspect.getsource(S3Response.get_bucket_lifecycle) and \
        "nve_newer" not in inspect.getsource(S3Response.get_bucket_lifecycle)


# --- Application Auto Scaling: tags ---------------------------------------------------------------------------
_TAGS: dict[str, dict[str, str]] = {}


def _autoscaling_tags() -> None:
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    def tag_resource(self: Any) -> str:
        _TAGS.setdefault(self._get_param("ResourceARN"), {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self: Any) -> str:
        for key in self._get_param("TagKeys") or []:
            _TAGS.get(self._get_param("ResourceARN"), {}).pop(key, None)
        return "{}"

    def list_tags_for_resource(self: Any) -> str:
        return json.dumps({"Tags": _TAGS.get(self._get_param("ResourceARN"), {})})

    ApplicationAutoScalingResponse.tag_resource = tag_resource
    ApplicationAutoScalingResponse.untag_resource = untag_resource
    ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource


# --- Application Auto Scaling: a policy's target-tracking alarms live and die with it ---------------------------
def _policy_alarms_still_leak() -> bool:
    import inspect

    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

    put = inspect.getsource(ApplicationAutoscalingBackend.put_scaling_policy)
    deregister = inspect.getsource(ApplicationAutoscalingBackend.deregister_scalable_target)
    return "delete_alarms" not in put and "policies" not in deregister


def _policy_alarm_lifecycle() -> None:
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend, FakeApplicationAutoscalingPolicy

    original_put = ApplicationAutoscalingBackend.put_scaling_policy
    original_deregister = ApplicationAutoscalingBackend.deregister_scalable_target

    def put_scaling_policy(self: Any, policy_name: str, service_namespace: str, resource_id: str,
                           scalable_dimension: str, *args: Any, **kwargs: Any) -> Any:
        # AWS updates a policy in place and keeps managing its alarms; moto makes a new policy with new alarms.
        key = FakeApplicationAutoscalingPolicy.formulate_key(service_namespace, resource_id, scalable_dimension,
                                                             policy_name)
        replaced = self.policies.get(key)
        policy = original_put(self, policy_name, service_namespace, resource_id, scalable_dimension, *args,
                              **kwargs)
        if replaced is not None and replaced is not policy:
            replaced.delete_alarms(self.account_id, self.region_name)
        return policy

    def deregister_scalable_target(self: Any, namespace: str, r_id: str, dimension: str) -> None:
        # AWS: "Deregistering a scalable target deletes the scaling policies and the scheduled actions that are
        # associated with it" (DeregisterScalableTarget).
        original_deregister(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (namespace, r_id,
                                                                                               dimension):
                policy.delete_alarms(self.account_id, self.region_name)
                del self.policies[key]
        self.scheduled_actions = [action for action in self.scheduled_actions
                                  if (action.service_namespace, action.resource_id, action.scalable_dimension)
                                  != (namespace, r_id, dimension)]

    ApplicationAutoscalingBackend.put_scaling_policy = put_scaling_policy
    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target


# --- Secrets Manager: moving AWSCURRENT moves what GetSecretValue returns -------------------------------------------
def _current_stage_ignored() -> bool:
    import inspect

    from moto.secretsmanager.models import SecretsManagerBackend

    return "default_version_id" not in inspect.getsource(SecretsManagerBackend.update_secret_version_stage)


def _current_stage_moves() -> None:
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self: Any, secret_id: str, version_stage: str, remove_from_version_id: str,
                                    move_to_version_id: str) -> tuple[str, str]:
        result = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            # AWS: GetSecretValue without a version returns the version labelled AWSCURRENT.
            self.secrets[secret_id].default_version_id = move_to_version_id
        return result

    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage


# --- EFS: backup policy, deleting a file system policy ----------------------------------------------------------
def _efs_policies() -> None:
    from moto.efs.responses import EFSResponse

    def put_backup_policy(self: Any) -> Any:
        file_system = self.efs_backend.file_systems_by_id[self._get_param("FileSystemId")]
        status = self._get_param("BackupPolicy")["Status"]
        file_system.rehearsal_backup_status = status
        return json.dumps({"BackupPolicy": {"Status": status}}), {"Content-Type": "application/json"}

    original_describe = EFSResponse.describe_backup_policy

    def describe_backup_policy(self: Any) -> Any:
        file_system = self.efs_backend.file_systems_by_id.get(self._get_param("FileSystemId"))
        status = getattr(file_system, "rehearsal_backup_status", None)
        if status is None:
            return original_describe(self)
        return json.dumps({"BackupPolicy": {"Status": status}}), {"Content-Type": "application/json"}

    def delete_file_system_policy(self: Any) -> Any:
        self.efs_backend.file_systems_by_id[self._get_param("FileSystemId")].file_system_policy = None
        return "{}", {"status": 200, "Content-Type": "application/json"}

    EFSResponse.put_backup_policy = put_backup_policy
    EFSResponse.describe_backup_policy = describe_backup_policy
    EFSResponse.delete_file_system_policy = delete_file_system_policy


# --- CodeBuild: CODEPIPELINE source and artifacts need no location -------------------------------------------------
def _codebuild_pipeline_source() -> None:
    from moto.codebuild import responses

    source_check, artifacts_check = (responses._validate_required_params_source,
                                     responses._validate_required_params_artifacts)

    def validate_source(source: dict[str, Any]) -> None:
        if source.get("type") != "CODEPIPELINE":
            source_check(source)

    def validate_artifacts(artifacts: dict[str, Any]) -> None:
        if artifacts.get("type") != "CODEPIPELINE":
            artifacts_check(artifacts)

    responses._validate_required_params_source = validate_source
    responses._validate_required_params_artifacts = validate_artifacts


def _codebuild_still_strict() -> bool:
    from moto.codebuild import responses

    try:
        responses._validate_required_params_source({"type": "CODEPIPELINE", "buildspec": "x.yml"})
    except responses.InvalidInputException:
        return True
    return False


# --- CodePipeline: metadata timestamps as epoch numbers -----------------------------------------------------------
def _codepipeline_timestamps() -> None:
    from moto.codepipeline.responses import CodePipelineResponse

    def get_pipeline(self: Any) -> str:
        pipeline, metadata = self.codepipeline_backend.get_pipeline(self._get_param("name"))
        metadata = {key: datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
                    if key in ("created", "updated") and isinstance(value, str) else value
                    for key, value in metadata.items()}
        return json.dumps({"pipeline": pipeline, "metadata": metadata})

    CodePipelineResponse.get_pipeline = get_pipeline


def _codepipeline_still_iso() -> bool:
    import inspect

    from moto.codepipeline import models

    return "iso_8601_datetime_with_milliseconds(self._created)" in inspect.getsource(models)


# --- ELBv2: CreateTargetGroup is idempotent on AWS ------------------------------------------------------------
def _target_groups_idempotent() -> None:
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.create_target_group

    def create_target_group(self: Any, name: str, **kwargs: Any) -> Any:
        # AWS answers a repeated CreateTargetGroup with the same settings with the existing group (a provider
        # retry of a slow call under the rehearsal's one-call-at-a-time lock then succeeds, as on AWS).
        for group in self.target_groups.values():
            if group.name == name and (group.vpc_id, group.port, group.protocol) == (
                    kwargs.get("vpc_id"), kwargs.get("port"), kwargs.get("protocol")):
                return group
        return original(self, name, **kwargs)

    ELBv2Backend.create_target_group = create_target_group


def _target_groups_still_not_idempotent() -> bool:
    import inspect

    from moto.elbv2.models import ELBv2Backend

    source = " ".join(inspect.getsource(ELBv2Backend.create_target_group).split())
    return "if target_group.name == name: raise DuplicateTargetGroupName()" in source


# --- ECS: a service's deployment settings ------------------------------------------------------------------
def _service_settings_still_dropped() -> bool:
    import inspect

    from moto.ecs.responses import EC2ContainerServiceResponse

    source = inspect.getsource(EC2ContainerServiceResponse.create_service)
    return "deploymentConfiguration" not in source and "healthCheckGracePeriodSeconds" not in source


def _service_settings() -> None:
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.create_service

    def create_service(self: Any) -> Any:
        # Kept as UpdateService already keeps them: the emulated ECS deploys by them (tests/rehearsal/ecs_agent.py).
        result = original(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"),
                                                self._get_param("serviceName"))
        for name, attribute in (("deploymentConfiguration", "deployment_configuration"),
                                ("healthCheckGracePeriodSeconds", "health_check_grace_period_seconds"),
                                ("capacityProviderStrategy", "capacity_provider_strategy"),
                                ("enableECSManagedTags", "enable_ecs_managed_tags")):
            value = self._get_param(name)
            if value is not None:
                setattr(service, attribute, value)
        if self._get_param("capacityProviderStrategy") and not self._get_param("launchType"):
            service.launch_type = None  # ECS reports no launch type for a service on capacity providers
        return result

    EC2ContainerServiceResponse.create_service = create_service


# --- ECS: UpdateService with a new task definition starts a deployment ---------------------------------------
def _update_starts_no_deployment() -> bool:
    import inspect

    from moto.ecs.models import EC2ContainerServiceBackend

    source = inspect.getsource(EC2ContainerServiceBackend.update_service)
    return '"status": "PRIMARY"' not in source and "ACTIVE" not in source


def _update_starts_deployment() -> None:
    import uuid

    from moto.core.utils import utcnow
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.update_service

    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        cluster = service_properties.get("cluster", "default")
        name = service_properties.get("service", "").split("/")[-1]
        before = self._get_service(cluster, name).task_definition
        service = original(self, service_properties)
        if service.task_definition != before and service.deployments:
            # As ECS answers UpdateService: the new deployment is PRIMARY at once, the previous one ACTIVE; the
            # rehearsal's ECS agent takes it from there.
            previous = [{**d, "status": "ACTIVE"} for d in service.deployments if d["status"] == "PRIMARY"]
            new = {**service.deployments[0], "id": f"ecs-svc/{uuid.uuid4().int % 10**19:019d}", "status": "PRIMARY",
                   "taskDefinition": service.task_definition, "rolloutState": "IN_PROGRESS", "runningCount": 0,
                   "pendingCount": service.desired_count, "failedTasks": 0, "createdAt": utcnow(),
                   "updatedAt": utcnow(), "rolloutStateReason": "ECS deployment in progress."}
            service.deployments = [new, *previous]
        return service

    EC2ContainerServiceBackend.update_service = update_service


# --- CodeBuild: DeleteProject by ARN -------------------------------------------------------------------------
def _delete_by_arn_ignored() -> bool:
    import inspect

    from moto.codebuild.models import CodeBuildBackend

    return "arn" not in inspect.getsource(CodeBuildBackend.delete_project)


def _delete_project_by_arn() -> None:
    from moto.codebuild.models import CodeBuildBackend

    original = CodeBuildBackend.delete_project

    def delete_project(self: Any, project_name: str) -> None:
        # The provider deletes a project by its ARN (its ID); AWS accepts that, moto only pops a name.
        return original(self, project_name.rsplit(":project/", 1)[-1])

    CodeBuildBackend.delete_project = delete_project


# --- ELBv2: the scheme of a load balancer created without one -----------------------------------------------
def _scheme_still_dropped() -> bool:
    import inspect

    from moto.elbv2.responses import ELBV2Response

    source = " ".join(inspect.getsource(ELBV2Response.create_load_balancer).split())
    return 'scheme = params.get("Scheme")' in source and "scheme=scheme" in source


def _default_scheme() -> None:
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.create_load_balancer

    def create_load_balancer(self: Any, *args: Any, **kwargs: Any) -> Any:
        # AWS: "The default is an Internet-facing load balancer" (CreateLoadBalancer, Scheme); the provider sends
        # Scheme only for internal ones.
        if kwargs.get("scheme") is None:
            kwargs["scheme"] = "internet-facing"
        return original(self, *args, **kwargs)

    ELBv2Backend.create_load_balancer = create_load_balancer


# --- ECR: layer bytes and their download URLs ---------------------------------------------------------------
BLOBS: dict[str, bytes] = {}
BLOB_PATH = "/_rehearsal/ecr-blobs/"
PUBLIC_URL: list[str] = []  # set by the server once it knows its address


def _ecr_layer_downloads() -> None:
    from moto.ecr.models import ECRBackend
    from moto.ecr.responses import ECRResponse

    original_complete = ECRBackend.complete_layer_upload

    def complete_layer_upload(self: Any, repository_name: str, upload_id: str, layer_digests: list[str],
                              registry_id: str | None = None) -> dict[str, Any]:
        upload = self._get_repository(repository_name, registry_id).uploads.get(upload_id)
        content = bytes(upload.layer_parts) if upload is not None else b""
        result = original_complete(self, repository_name, upload_id, layer_digests, registry_id)
        BLOBS[result["layerDigest"]] = content
        return result

    def get_download_url_for_layer(self: Any) -> str:
        digest = self._get_param("layerDigest")
        if digest not in BLOBS or hashlib.sha256(BLOBS[digest]).hexdigest() != digest.split(":")[-1]:
            from moto.ecr.exceptions import LayersNotFoundException

            raise LayersNotFoundException(self._get_param("repositoryName"), self._get_param("registryId") or "")
        return json.dumps({"downloadUrl": f"{PUBLIC_URL[0]}{BLOB_PATH}{digest}", "layerDigest": digest})

    ECRBackend.complete_layer_upload = complete_layer_upload
    ECRResponse.get_download_url_for_layer = get_download_url_for_layer


# --- ECS: RunTask of a Fargate task definition -----------------------------------------------------------------
def _run_task_needs_container_memory() -> bool:
    from moto.ecs.models import EC2ContainerServiceBackend

    class Definition:
        container_definitions = [{"name": "probe", "cpu": 0}]

    try:
        EC2ContainerServiceBackend._calculate_task_resource_requirements(Definition())
    except TypeError:
        return True
    return False


def _task_level_memory() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calculate(task_definition: Any) -> dict[str, Any]:
        # Fargate sizes a task by its task-level cpu and memory; a container's own memory is optional.
        containers = task_definition.container_definitions
        sized = [c if {"memory", "memoryReservation", "Memory", "MemoryReservation"} & set(c) else {**c, "memory": 0}
                 for c in containers]

        class Sized:
            container_definitions = sized

        return original(Sized())

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(calculate)


def _interface_has_no_dns_name() -> bool:
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    return not hasattr(NetworkInterface, "private_dns_name")


def _interface_dns_name() -> None:
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    def get(self: Any) -> str:
        # What moto sets in a VPC with DNS hostnames, else the name EC2 gives the address in any region but us-east-1.
        return self.__dict__.get("_private_dns_name") or (
            f"ip-{str(self.private_ip_address).replace('.', '-')}.{self.ec2_backend.region_name}.compute.internal")

    def set_(self: Any, value: str) -> None:
        self.__dict__["_private_dns_name"] = value

    NetworkInterface.private_dns_name = property(get, set_)  # type: ignore[attr-defined]


# --- ECS: a deleted service drains ------------------------------------------------------------------------------
def _deleted_service_inactive_at_once() -> bool:
    import inspect

    from moto.ecs.models import EC2ContainerServiceBackend

    return 'service.status = "INACTIVE"' in inspect.getsource(EC2ContainerServiceBackend.delete_service)


def _deleted_service_drains() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.delete_service

    def delete_service(self: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        # ECS (DeleteService): DRAINING while its tasks run; INACTIVE once they are all stopping or stopped, which
        # the rehearsal's ECS agent reports (emulated_aws.set_service_status).
        service = original(self, cluster_name, service_name, force)
        service.status = "DRAINING"
        return service

    EC2ContainerServiceBackend.delete_service = delete_service


SHIMS: tuple[Shim, ...] = (
    Shim("iam-bool-conditions", "moto ignores the `Bool` operator and denies when any condition is unmet, so "
         "TLS-only bucket policies deny every call",
         _bool_still_ignored, _bool_conditions),
    Shim("s3-bucket-logging", "moto demands the log bucket's policy first, then crashes on a `*` principal",
         _logging_still_strict, _bucket_logging),
    Shim("s3-newer-noncurrent-versions", "moto drops NewerNoncurrentVersions, so the provider never reads back "
         "what it wrote and times out", _newer_versions_still_dropped, _newer_noncurrent_versions),
    Shim("application-autoscaling-tags", "moto has no Application Auto Scaling tag APIs (500)",
         lambda: _missing(__import__("moto.applicationautoscaling.responses", fromlist=["x"])
                          .ApplicationAutoScalingResponse, "list_tags_for_resource"), _autoscaling_tags),
    Shim("application-autoscaling-policy-alarms", "moto leaves a target-tracking policy's alarms behind when "
         "PutScalingPolicy updates the policy, and keeps policies when their scalable target is deregistered: "
         "teardown found TargetTracking-* alarms", _policy_alarms_still_leak, _policy_alarm_lifecycle),
    Shim("secretsmanager-current-stage", "moto's UpdateSecretVersionStage moves the AWSCURRENT label but "
         "GetSecretValue keeps returning the old version", _current_stage_ignored, _current_stage_moves),
    Shim("efs-policies", "moto has no PutBackupPolicy and DeleteFileSystemPolicy (500)",
         lambda: _missing(__import__("moto.efs.responses", fromlist=["x"]).EFSResponse, "put_backup_policy"),
         _efs_policies),
    Shim("codebuild-pipeline-source", "moto demands a location for CODEPIPELINE source and artifacts, AWS does not",
         _codebuild_still_strict, _codebuild_pipeline_source),
    Shim("codepipeline-timestamps", "moto returns metadata.created/updated as ISO strings, not epoch numbers",
         _codepipeline_still_iso, _codepipeline_timestamps),
    Shim("elbv2-idempotent-target-groups", "moto refuses a repeated CreateTargetGroup with identical settings as "
         "a duplicate; AWS returns the existing group", _target_groups_still_not_idempotent,
         _target_groups_idempotent),
    Shim("ecs-service-settings", "moto's CreateService drops deploymentConfiguration, healthCheckGracePeriodSeconds, "
         "capacityProviderStrategy and enableECSManagedTags and reports launchType EC2, so the provider replaces the "
         "service on every later apply (UpdateService keeps them)", _service_settings_still_dropped,
         _service_settings),
    Shim("ecs-update-starts-deployment", "moto's UpdateService changes the task definition but starts no deployment "
         "(ECS makes a new PRIMARY deployment at once)", _update_starts_no_deployment, _update_starts_deployment),
    Shim("codebuild-delete-by-arn", "moto's DeleteProject ignores a project ARN (the provider's ID): the project "
         "stayed after teardown", _delete_by_arn_ignored, _delete_project_by_arn),
    Shim("elbv2-default-scheme", "moto stores no scheme for a load balancer created without `Scheme` (the provider "
         "sends it only for internal ones); AWS makes it internet-facing", _scheme_still_dropped, _default_scheme),
    Shim("ecs-run-task-task-level-memory", "moto's RunTask adds up each container's memory and fails (500) on a "
         "Fargate task definition that sizes only the task, as the smoke probe's does",
         _run_task_needs_container_memory, _task_level_memory),
    Shim("ecs-run-task-interface-name", "moto gives a network interface a private DNS name only in a VPC with DNS "
         "hostnames (EC2 gives every interface one), and its RunTask of an awsvpc task reads it (500)",
         _interface_has_no_dns_name, _interface_dns_name),
    Shim("ecs-delete-service-draining", "moto's DeleteService makes the service INACTIVE at once; ECS keeps it "
         "DRAINING until its tasks are stopping, and Terraform waits for INACTIVE before deleting the roles' policies",
         _deleted_service_inactive_at_once, _deleted_service_drains),
    Shim("ecr-layer-downloads", "moto keeps no layer bytes and has no GetDownloadUrlForLayer",
         lambda: _raises_not_implemented(__import__("moto.ecr.responses", fromlist=["x"]).ECRResponse,
                                         "get_download_url_for_layer"), _ecr_layer_downloads),
)


_APPLIED: set[str] = set()


def apply(*names: str) -> None:
    """Apply the named shims once in this process (tests with moto in process need a few of them)."""
    for shim in SHIMS:
        if shim.name in names and shim.name not in _APPLIED:
            if not shim.still_needed():
                raise ShimNoLongerNeeded(f"moto no longer has the gap of shim {shim.name}: remove the shim")
            shim.apply()
            _APPLIED.add(shim.name)


def apply_all() -> list[str]:
    """Apply every shim; raise if moto is another version or a gap has closed."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise ShimNoLongerNeeded(f"the rehearsal's shims were measured on moto {MOTO_VERSION}, this is "
                                 f"{moto.__version__}: re-measure each in tests/rehearsal/moto_shims.py")
    applied = []
    for shim in SHIMS:
        if shim.name in _APPLIED:
            applied.append(f"{shim.name}: {shim.reason}")
            continue
        if not shim.still_needed():
            raise ShimNoLongerNeeded(f"moto {moto.__version__} no longer has the gap of shim {shim.name} "
                                     f"({shim.reason}): remove the shim")
        shim.apply()
        _APPLIED.add(shim.name)
        applied.append(f"{shim.name}: {shim.reason}")
    return applied
