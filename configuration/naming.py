"""Names of stacks, state keys and AWS resources, derived in one place so they stay consistent and valid."""

from __future__ import annotations

import hashlib

# AWS limits that fail only at apply time if ignored.
ALB_NAME_MAX = 32
TARGET_GROUP_NAME_MAX = 32
IAM_NAME_MAX = 64
EVENT_RULE_NAME_MAX = 64
SCHEDULE_NAME_MAX = 64
S3_BUCKET_NAME_MAX = 63
KMS_ALIAS_MAX = 200
# Listener rule priorities derived from names land in this range, leaving 1-999 for hand-set priorities.
DERIVED_PRIORITY_MIN = 1000
DERIVED_PRIORITY_MAX = 49999


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def aws_name(*parts: str, max_length: int) -> str:
    """Join parts with hyphens; when too long, keep a prefix and add a short hash of the full name, so the result
    is deterministic, unique per full name and within the limit."""
    full = "-".join(parts)
    if len(full) <= max_length:
        return full
    suffix = _digest(full)[:7]
    return f"{full[: max_length - len(suffix) - 1].rstrip('-')}-{suffix}"


def workload_boundary_name(project: str, environment: str | None = None) -> str:
    """The permissions boundary of every role the platform and endpoint stacks create: the bootstrap stack's, or
    (`environment` given) one environment's own, for an environment deployed through its own role and account."""
    return f"{project}-{environment}-workload-boundary" if environment else f"{project}-workload-boundary"


def delivery_boundary_name(project: str) -> str:
    """The permissions boundary of the pipeline's roles."""
    return f"{project}-delivery-boundary"


def build_role_name(step_name: str) -> str:
    """The role of a pipeline step's CodeBuild project (`<project>-smoke-<env>` -> its role)."""
    return aws_name(step_name, "build", max_length=IAM_NAME_MAX)


def smoke_step_name(project: str, environment: str) -> str:
    return f"{project}-smoke-{environment}"


def delivery_role_path(project: str) -> str:
    """The IAM path of the pipeline's roles, which no deploy step may change."""
    return f"/{project}-delivery/"


def bootstrap_stack(project: str) -> str:
    return f"{project}-bootstrap"


def platform_stack(project: str, environment: str) -> str:
    return f"{project}-{environment}-platform"


def endpoint_stack(project: str, environment: str, endpoint: str) -> str:
    return f"{project}-{environment}-endpoint-{endpoint}"


def pipeline_stack(project: str) -> str:
    return f"{project}-pipeline"


def state_key(stack_name: str) -> str:
    """Each remote-state stack keeps its own state object."""
    return f"{stack_name}/terraform.tfstate"


def derived_listener_priority(endpoint: str) -> int:
    """A priority that depends on the endpoint's name only: adding or removing another endpoint never moves it."""
    span = DERIVED_PRIORITY_MAX - DERIVED_PRIORITY_MIN + 1
    return DERIVED_PRIORITY_MIN + int(_digest(endpoint), 16) % span


SERVING_IMAGE = "model-server"


def serving_repository_name(project: str, environment: str) -> str:
    """The environment's ECR repository for the model server image: only images deployed there."""
    return f"{project}/{environment}/{SERVING_IMAGE}"


def pipeline_artifact_bucket_name(project: str, region: str) -> str:
    return aws_name(project, "pipeline-artifacts", region, max_length=63)


def build_repository_name(project: str) -> str:
    """The pipeline's ECR repository, where Build pushes each commit's image; the deploy step copies it into an
    environment's repository once that environment's approval is given."""
    return f"{project}/{SERVING_IMAGE}"
