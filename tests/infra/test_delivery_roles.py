"""No delivery role can grant itself more rights or reach a later environment: the deploy roles' policies and the
permissions boundaries, as synthesized, evaluated for the requests each escalation would need
(tests/support/iam_evaluation.py). Before the boundaries, each `cannot` below was a `can`: the deploy roles held
iam:PutRolePolicy/AttachRolePolicy/UpdateAssumeRolePolicy/PassRole on `role/<project>-*`, which matched their own
roles and the pipeline's, and staging's could write prod's state, resources and roles."""

from __future__ import annotations

import pytest

from tests.infra.synth import by_path_suffix, resources
from tests.support.iam_evaluation import POWER_USER_ACCESS, Principal, statements_of

ACCOUNT = "123456789012"
ARN = f"arn:aws:iam::{ACCOUNT}"
WORKLOAD_BOUNDARY = f"{ARN}:policy/mlops-workload-boundary"
DELIVERY_BOUNDARY = f"{ARN}:policy/mlops-delivery-boundary"
STATE = "arn:aws:s3:::mlops-tfstate-eu-west-1"
ARTIFACTS = "arn:aws:s3:::mlops-pipeline-artifacts-eu-west-1"
VALUES = {"data.aws_caller_identity.*.account_id": ACCOUNT, "data.aws_partition.*.partition": "aws",
          "aws_s3_bucket.artifacts_bucket_*.arn": ARTIFACTS,
          "aws_cloudwatch_log_group.build-logs.arn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/codebuild/mlops",
          "aws_kms_key.key*.arn": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/pipeline"}


def boundary_named(synth, name: str) -> list[dict]:
    (body,) = [b for b in resources(synth.stack("mlops-bootstrap"), "aws_iam_policy").values() if b["name"] == name]
    return statements_of(body["policy"], VALUES)


@pytest.fixture(scope="module")
def deploy_role(default_synth):
    """Environment -> the deploy step's role as IAM sees it: PowerUserAccess, its own policy, the delivery boundary."""
    pipeline = default_synth.stack("mlops-pipeline")
    boundary = boundary_named(default_synth, "mlops-delivery-boundary")
    return {environment: Principal(POWER_USER_ACCESS + statements_of(by_path_suffix(
        pipeline, "aws_iam_role_policy", f"deploy-{environment}/policy")[1]["policy"], VALUES), boundary)
        for environment in ("staging", "prod")}


def own_role_of(environment: str) -> str:
    return f"{ARN}:role/mlops-delivery/mlops-deploy-{environment}-build"


# --- roles it makes -----------------------------------------------------------------------------------------------

def test_it_makes_its_environment_s_workload_roles_only_with_the_workload_boundary(deploy_role):
    staging = deploy_role["staging"]
    task_role = f"{ARN}:role/mlops-staging-a-task"
    assert staging.can("iam:CreateRole", task_role, **{"iam:PermissionsBoundary": WORKLOAD_BOUNDARY})
    assert staging.can("iam:PutRolePolicy", task_role, **{"iam:PermissionsBoundary": WORKLOAD_BOUNDARY})
    assert not staging.can("iam:CreateRole", task_role)  # without a boundary
    assert not staging.can("iam:CreateRole", task_role, **{"iam:PermissionsBoundary": DELIVERY_BOUNDARY})
    assert not staging.can("iam:PutRolePolicy", task_role)  # a role without the workload boundary
    assert not staging.can("iam:DeleteRolePermissionsBoundary", task_role)
    assert not staging.can("iam:PutRolePermissionsBoundary", task_role,
                           **{"iam:PermissionsBoundary": DELIVERY_BOUNDARY})


@pytest.mark.parametrize("action", ["iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy",
                                    "iam:DeleteRolePermissionsBoundary", "iam:DeleteRole", "iam:PassRole"])
@pytest.mark.parametrize("role", [own_role_of("staging"), own_role_of("prod"),
                                  f"{ARN}:role/mlops-delivery/mlops-pipeline"])
def test_it_cannot_change_or_pass_a_delivery_role_its_own_included(deploy_role, action, role):
    for principal in deploy_role.values():
        assert not principal.can(action, role, **{"iam:PermissionsBoundary": DELIVERY_BOUNDARY,
                                                  "iam:PassedToService": "codebuild.amazonaws.com"})


@pytest.mark.parametrize("action", ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy",
                                    "iam:DeletePolicyVersion", "iam:TagPolicy"])
def test_it_cannot_change_a_boundary(deploy_role, action):
    for boundary in (WORKLOAD_BOUNDARY, DELIVERY_BOUNDARY):
        assert not deploy_role["staging"].can(action, boundary)


@pytest.mark.parametrize("action, resource", [
    ("iam:CreateUser", f"{ARN}:user/backdoor"), ("iam:CreateAccessKey", f"{ARN}:user/admin"),
    ("iam:CreatePolicy", f"{ARN}:policy/mlops-anything"), ("iam:AttachUserPolicy", f"{ARN}:user/admin"),
])
def test_it_makes_no_users_keys_or_policies(deploy_role, action, resource):
    assert not deploy_role["prod"].can(action, resource)


def test_it_passes_workload_roles_only_to_the_services_that_run_them(deploy_role):
    staging = deploy_role["staging"]
    role = f"{ARN}:role/mlops-staging-a-model-sync"
    for service in ("ecs-tasks.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com"):
        assert staging.can("iam:PassRole", role, **{"iam:PassedToService": service})
    assert not staging.can("iam:PassRole", role, **{"iam:PassedToService": "ec2.amazonaws.com"})
    assert not staging.can("iam:PassRole", role, **{"iam:PassedToService": "lambda.amazonaws.com"})


# --- the pipeline ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("action, resource", [
    ("codepipeline:UpdatePipeline", f"arn:aws:codepipeline:eu-west-1:{ACCOUNT}:mlops-delivery"),
    ("codepipeline:PutApprovalResult", f"arn:aws:codepipeline:eu-west-1:{ACCOUNT}:mlops-delivery"),
    ("codebuild:UpdateProject", f"arn:aws:codebuild:eu-west-1:{ACCOUNT}:project/mlops-deploy-prod"),
    ("codebuild:StartBuild", f"arn:aws:codebuild:eu-west-1:{ACCOUNT}:project/mlops-deploy-prod"),
    ("s3:PutObject", f"{ARTIFACTS}/mlops-delivery/source/abc.zip"),
])
def test_it_cannot_change_the_pipeline_or_what_its_later_stages_run(deploy_role, action, resource):
    assert not deploy_role["staging"].can(action, resource)


def test_it_keeps_its_build_cache(deploy_role):
    """The deny on the pipeline's artifacts leaves the step's own cache prefix writable."""
    assert deploy_role["staging"].can("s3:PutObject", f"{ARTIFACTS}/cache/mlops-deploy-staging/pip.tgz")


# --- later environments ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("action, resource, context", [
    ("ecs:UpdateService", f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/mlops-prod/a",
     {"aws:ResourceTag/environment": "prod"}),
    ("ec2:RunInstances", "*", {"aws:RequestTag/environment": "prod"}),
    ("s3:PutObject", f"{STATE}/mlops-prod-endpoint-a/terraform.tfstate", {}),
    ("s3:GetObject", f"{STATE}/mlops-prod-platform/terraform.tfstate", {}),
    ("dynamodb:PutItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/mlops-tfstate-locks",
     {"dynamodb:LeadingKeys": "mlops-tfstate-eu-west-1/mlops-prod-platform/terraform.tfstate"}),
    ("s3:PutObject", "arn:aws:s3:::mlops-prod-models-eu-west-1/a/LIVE", {}),
    ("s3:GetObject", "arn:aws:s3:::mlops-prod-captures-eu-west-1/a/main/2026/11/29/07/t-1-a-1.jsonl", {}),
    ("iam:PutRolePolicy", f"{ARN}:role/mlops-prod-a-task", {"iam:PermissionsBoundary": WORKLOAD_BOUNDARY}),
    ("iam:PassRole", f"{ARN}:role/mlops-prod-a-task", {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
])
def test_staging_cannot_reach_prod_and_prod_can(deploy_role, action, resource, context):
    assert not deploy_role["staging"].can(action, resource, **context)
    assert deploy_role["prod"].can(action, resource, **context)


@pytest.mark.parametrize("action, resource, context", [
    ("ecs:UpdateService", f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/mlops-staging/a",
     {"aws:ResourceTag/environment": "staging"}),
    ("s3:PutObject", f"{STATE}/mlops-staging-endpoint-a/terraform.tfstate", {}),
    ("dynamodb:PutItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/mlops-tfstate-locks",
     {"dynamodb:LeadingKeys": "mlops-tfstate-eu-west-1/mlops-staging-platform/terraform.tfstate"}),
    ("s3:PutObject", "arn:aws:s3:::mlops-staging-models-eu-west-1/a/LIVE", {}),
    ("s3:GetObject", "arn:aws:s3:::mlops-staging-captures-eu-west-1/a/main/2026/11/29/07/t-1-a-1.jsonl", {}),
])
def test_staging_deploys_staging(deploy_role, action, resource, context):
    assert deploy_role["staging"].can(action, resource, **context)


# --- every role carries a boundary -----------------------------------------------------------------------------------

@pytest.mark.parametrize("synth_fixture", ["default_synth", "options_synth"])
def test_every_role_the_stacks_create_carries_a_boundary(synth_fixture, request):
    synth = request.getfixturevalue(synth_fixture)
    for stack_name, stack in synth.stacks.items():
        for logical_id, role in resources(stack, "aws_iam_role").items():
            boundary = role.get("permissions_boundary", "")
            expected = "delivery-boundary" if stack_name.endswith("-pipeline") else "workload-boundary"
            own = resources(stack, "aws_iam_policy")  # an environment's own boundary (next test)
            assert boundary.endswith(f"-{expected}") or any(
                boundary == f"${{aws_iam_policy.{policy_id}.arn}}" and body["name"].endswith(f"-{expected}")
                for policy_id, body in own.items()), f"{stack_name}/{logical_id}: {boundary or 'no boundary'}"
            if stack_name.endswith("-pipeline"):
                assert role["path"].endswith("-delivery/"), f"{stack_name}/{logical_id} is not on the delivery path"


def test_the_delivery_boundary_holds_whatever_a_delivery_role_is_given(default_synth):
    """Someone attaches AdministratorAccess to a deploy role later: the boundary still keeps every line above."""
    boundary = boundary_named(default_synth, "mlops-delivery-boundary")
    admin = Principal([{"Effect": "Allow", "Action": "*", "Resource": "*"}], boundary)
    task_role = f"{ARN}:role/mlops-staging-a-task"
    assert admin.can("iam:CreateRole", task_role, **{"iam:PermissionsBoundary": WORKLOAD_BOUNDARY})
    assert not admin.can("iam:CreateRole", task_role)
    assert not admin.can("iam:AttachRolePolicy", own_role_of("staging"), **{
        "iam:PermissionsBoundary": DELIVERY_BOUNDARY})
    assert not admin.can("iam:PassRole", own_role_of("prod"))
    assert not admin.can("iam:CreatePolicyVersion", DELIVERY_BOUNDARY)
    assert not admin.can("iam:DeleteRolePermissionsBoundary", task_role)
    assert not admin.can("iam:CreateUser", f"{ARN}:user/backdoor")


def test_a_workload_role_can_change_nothing_in_iam_whatever_it_is_given(default_synth):
    boundary = boundary_named(default_synth, "mlops-workload-boundary")
    overgranted = Principal([{"Effect": "Allow", "Action": "*", "Resource": "*"}], boundary)
    assert overgranted.can("s3:GetObject", "arn:aws:s3:::mlops-staging-models-eu-west-1/a/1/model.onnx")
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:CreateAccessKey",
                   "iam:UpdateAssumeRolePolicy", "iam:CreatePolicyVersion"):
        assert not overgranted.can(action, f"{ARN}:role/anything")


def test_an_environment_with_its_own_deploy_role_brings_its_own_workload_boundary(default_synth, options_synth):
    """Its account has no bootstrap stack: the platform stack creates the boundary the environment's roles carry."""
    platform = options_synth.stack("acme-ml-qa-platform")
    (own,) = [body for body in resources(platform, "aws_iam_policy").values()]
    assert own["name"] == "acme-ml-qa-workload-boundary"
    assert statements_of(own["policy"], VALUES) == boundary_named(default_synth, "mlops-workload-boundary")
    (flow_log_role,) = resources(platform, "aws_iam_role").values()
    assert flow_log_role["permissions_boundary"].startswith("${aws_iam_policy.")
    for role in resources(options_synth.stack("acme-ml-qa-endpoint-churn"), "aws_iam_role").values():
        assert role["permissions_boundary"].endswith(":policy/acme-ml-qa-workload-boundary")
    # An environment deployed with the pipeline's own rights uses the bootstrap stack's.
    assert resources(default_synth.stack("mlops-staging-platform"), "aws_iam_policy") == {}
