"""modules/build_step.py: one pipeline step: a CodeBuild project with its own role, logs and the pipeline's
artifacts, and only the extra permissions it is given."""

from __future__ import annotations

from modules.build_step import BUILD_IMAGE, BuildStep, BuildStepProps
from tests.infra.synth import only, policy, ref, resources
from tests.support.construct_synth import arn, synth_stack

BASE = {"name": "p-deploy-dev", "description": "deploy dev", "buildspec": "pipeline/buildspecs/deploy.yml",
        "role_name": "p-deploy-dev-build", "account_id": "111111111111", "artifact_bucket_name": "p-artifacts",
        "artifact_bucket_arn": "arn:aws:s3:::p-artifacts", "kms_key_arn": arn("kms", "key/k"),
        "log_group_name": "/codebuild/p", "log_group_arn": arn("logs", "log-group:/codebuild/p")}


def step(**options) -> dict:
    return synth_stack(lambda s: BuildStep(s, "step", BuildStepProps(**BASE, **options)))


def test_defaults_a_project_running_its_buildspec_under_its_own_role():
    stack = step()
    role_id, role = only(stack, "aws_iam_role")
    assert role["name"] == "p-deploy-dev-build"
    assert policy(role, "assume_role_policy")["Statement"][0]["Principal"] == {"Service": "codebuild.amazonaws.com"}
    _, project = only(stack, "aws_codebuild_project")
    assert project["service_role"] == ref("aws_iam_role", role_id, "arn")
    assert project["source"] == {"type": "CODEPIPELINE", "buildspec": "pipeline/buildspecs/deploy.yml"}
    assert project["environment"]["image"] == BUILD_IMAGE and project["environment"]["privileged_mode"] is False
    assert project["cache"] == {"type": "S3", "location": "p-artifacts/cache/p-deploy-dev"}
    sids = [s["Sid"] for s in policy(only(stack, "aws_iam_role_policy")[1])["Statement"]]
    assert sids == ["WriteBuildLogs", "ReadWriteArtifactsAndCache", "ListArtifacts", "UsePipelineKey"]
    assert resources(stack, "aws_iam_role_policy_attachment") == {}


def test_extra_statements_managed_policies_environment_and_docker():
    stack = step(statements=({"Sid": "Extra", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},),
                 managed_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",), environment={"B": "2", "A": "1"},
                 privileged=True, timeout_minutes=30)
    sids = [s["Sid"] for s in policy(only(stack, "aws_iam_role_policy")[1])["Statement"]]
    assert sids[-1] == "Extra"
    assert only(stack, "aws_iam_role_policy_attachment")[1]["policy_arn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    _, project = only(stack, "aws_codebuild_project")
    assert [v["name"] for v in project["environment"]["environment_variable"]] == ["A", "B"]
    assert project["environment"]["privileged_mode"] is True and project["build_timeout"] == 30
