"""The pipeline stack: stage order, which project each action runs, the artifact flow, and the deploy and smoke
projects pointing at the bootstrap's state and the right environment."""

from __future__ import annotations

import json

from tests.infra.synth import by_path_suffix, only, policy, ref, resources

PIPELINE = "mlops-pipeline"


def stages(stack) -> list[dict]:
    return only(stack, "aws_codepipeline")[1]["stage"]


def project_of(stack, action) -> dict:
    name = action["configuration"]["ProjectName"]
    matches = [body for lid, body in resources(stack, "aws_codebuild_project").items()
               if name == ref("aws_codebuild_project", lid, "name")]
    assert len(matches) == 1, name
    return matches[0]


def env_of(project) -> dict[str, str]:
    return {v["name"]: v["value"] for v in project["environment"].get("environment_variable", [])}


def test_stages_run_in_order_with_approval_before_prod(default_synth):
    stack = default_synth.stack(PIPELINE)
    assert [stage["name"] for stage in stages(stack)] == [
        "Source", "Test", "Build", "Deploy-staging", "Smoke-staging", "Approve-prod", "Deploy-prod", "Smoke-prod"]
    _, pipeline = only(stack, "aws_codepipeline")
    assert pipeline["pipeline_type"] == "V2" and pipeline["execution_mode"] == "QUEUED"
    approval = stages(stack)[5]["action"][0]
    assert (approval["category"], approval["provider"]) == ("Approval", "Manual")


def test_each_action_runs_its_project_and_buildspec(default_synth):
    stack = default_synth.stack(PIPELINE)
    expected = {"Test": ("test.yml", None), "Build": ("build.yml", None), "Deploy-staging": ("deploy.yml", "staging"),
                "Smoke-staging": ("smoke.yml", "staging"), "Deploy-prod": ("deploy.yml", "prod"),
                "Smoke-prod": ("smoke.yml", "prod")}
    for stage in stages(stack):
        if stage["name"] not in expected:
            continue
        (action,) = stage["action"]
        project = project_of(stack, action)
        buildspec, environment = expected[stage["name"]]
        assert project["source"] == {"type": "CODEPIPELINE", "buildspec": f"pipeline/buildspecs/{buildspec}"}
        assert env_of(project).get("DEPLOY_ENV") == environment
        assert project["environment"]["privileged_mode"] is (stage["name"] == "Build")


def test_source_artifact_flows_to_every_step_and_the_commit_tags_the_image(default_synth):
    stack = default_synth.stack(PIPELINE)
    (source,) = stages(stack)[0]["action"]
    assert source["provider"] == "CodeStarSourceConnection" and source["output_artifacts"] == ["source"]
    assert source["configuration"]["FullRepositoryId"] == "example-org/ecs-mlops"
    assert source["configuration"]["BranchName"] == "main"
    connection_id, _ = only(stack, "aws_codestarconnections_connection")
    assert source["configuration"]["ConnectionArn"] == ref("aws_codestarconnections_connection", connection_id, "arn")
    for stage in stages(stack)[1:]:
        for action in stage["action"]:
            if action["category"] == "Build":
                assert action["input_artifacts"] == ["source"]
                variables = json.loads(action["configuration"]["EnvironmentVariables"])
                assert variables == [{"name": "IMAGE_TAG", "value": "#{SourceVariables.CommitId}",
                                      "type": "PLAINTEXT"}]


def test_deploy_projects_use_the_bootstraps_state_bucket_and_lock_table(default_synth):
    bootstrap = default_synth.stack("mlops-bootstrap")
    _, bucket = by_path_suffix(bootstrap, "aws_s3_bucket", "state/bucket/bucket")
    (table,) = resources(bootstrap, "aws_dynamodb_table").values()
    stack = default_synth.stack(PIPELINE)
    for environment in ("staging", "prod"):
        _, project = by_path_suffix(stack, "aws_codebuild_project", f"deploy-{environment}/project")
        variables = env_of(project)
        assert (variables["STATE_BUCKET"], variables["LOCK_TABLE"]) == (bucket["bucket"], table["name"])
        assert variables["TERRAFORM_VERSION"] == "1.11.4" and len(variables["TERRAFORM_SHA256"]) == 64
        statements = {s["Sid"]: s for s in policy(by_path_suffix(
            stack, "aws_iam_role_policy", f"deploy-{environment}/policy")[1])["Statement"]}
        assert statements["StateBucket"]["Resource"].endswith(f":s3:::{bucket['bucket']}")
        assert statements["StateObjectsAndLockFiles"]["Resource"].endswith(f":s3:::{bucket['bucket']}/*")
        assert statements["StateLockTable"]["Resource"].endswith(f":table/{table['name']}")
        # Roles only of its own environment (the rest of the role rules: tests/infra/test_delivery_roles.py).
        assert statements["WorkloadRolesLifecycle"]["Resource"].endswith(f":role/mlops-{environment}-*")


def test_smoke_projects_target_their_environment_and_may_only_look_up_load_balancers(default_synth):
    stack = default_synth.stack(PIPELINE)
    _, project = by_path_suffix(stack, "aws_codebuild_project", "smoke-staging/project")
    assert env_of(project) == {"DEPLOY_ENV": "staging"}
    statements = {s["Sid"]: s for s in policy(by_path_suffix(stack, "aws_iam_role_policy",
                                                             "smoke-staging/policy")[1])["Statement"]}
    assert statements["FindLoadBalancer"]["Action"] == "elasticloadbalancing:DescribeLoadBalancers"
    assert "EnvironmentDeployRole" not in statements  # staging has no deploy role of its own


def test_smoke_looks_up_the_load_balancer_through_the_environments_deploy_role(options_synth, options_config):
    stack = options_synth.stack("acme-ml-pipeline")
    for environment, settings in options_config.environments.items():
        statements = {s["Sid"]: s for s in policy(by_path_suffix(
            stack, "aws_iam_role_policy", f"smoke-{environment}/policy")[1])["Statement"]}
        if settings.deploy_role_arn:
            assert statements["EnvironmentDeployRole"] == {"Sid": "EnvironmentDeployRole", "Effect": "Allow",
                                                           "Action": "sts:AssumeRole",
                                                           "Resource": settings.deploy_role_arn}
        else:
            assert "EnvironmentDeployRole" not in statements




def test_only_deploy_roles_are_broad(default_synth):
    stack = default_synth.stack(PIPELINE)
    attachments = resources(stack, "aws_iam_role_policy_attachment").values()
    attached = {body["role"]: body["policy_arn"] for body in attachments}
    roles = {ref("aws_iam_role", lid, "name"): body["name"] for lid, body in resources(stack, "aws_iam_role").items()}
    assert sorted(roles[role] for role in attached) == ["mlops-deploy-prod-build", "mlops-deploy-staging-build"]
    assert all(arn.endswith(":iam::aws:policy/PowerUserAccess") for arn in attached.values())
    build = {s["Sid"]: s for s in policy(by_path_suffix(stack, "aws_iam_role_policy", "build/policy")[1])["Statement"]}
    assert build["PushServingImages"]["Resource"] == ref(
        "aws_ecr_repository", by_path_suffix(stack, "aws_ecr_repository", "build-image/repository")[0], "arn")


def test_build_pushes_to_the_pipelines_own_repository_and_each_deploy_copies_into_its_platforms(default_synth,
                                                                                                  default_config):
    """Where the stages meet the stacks: the repository Build pushes to exists before the pipeline's first run (it is
    the pipeline stack's), and each Deploy copies into the repository of the platform stack it applies first."""
    from configuration.naming import build_repository_name, serving_repository_name

    _, build_repository = only(default_synth.stack(PIPELINE), "aws_ecr_repository")
    assert build_repository["name"] == build_repository_name("mlops") == "mlops/model-server"
    for environment in default_config.environments:
        _, repository = only(default_synth.stack(f"mlops-{environment}-platform"), "aws_ecr_repository")
        assert repository["name"] == serving_repository_name("mlops", environment)


def test_failures_and_approvals_notify_the_topic(default_synth):
    stack = default_synth.stack(PIPELINE)
    _, rule = only(stack, "aws_codestarnotifications_notification_rule")
    topic_id, _ = only(stack, "aws_sns_topic")
    assert rule["target"] == [{"address": ref("aws_sns_topic", topic_id, "arn"), "type": "SNS"}]
    assert "codepipeline-pipeline-pipeline-execution-failed" in rule["event_type_ids"]
    assert rule["resource"] == ref("aws_codepipeline", only(stack, "aws_codepipeline")[0], "arn")


def test_existing_connection_and_no_approval(options_synth):
    stack = options_synth.stack("acme-ml-pipeline")
    assert resources(stack, "aws_codestarconnections_connection") == {}
    (source,) = stages(stack)[0]["action"]
    assert source["configuration"]["ConnectionArn"].startswith("arn:aws:codeconnections:")
    assert source["configuration"]["BranchName"] == "release"
    assert [stage["name"] for stage in stages(stack)] == ["Source", "Test", "Build", "Deploy-qa", "Smoke-qa"]
    statements = {s["Sid"]: s for s in policy(by_path_suffix(stack, "aws_iam_role_policy",
                                                             "deploy-qa/policy")[1])["Statement"]}
    assert statements["EnvironmentDeployRole"]["Resource"] == "arn:aws:iam::111111111111:role/acme-deploy"



def test_smoke_may_send_an_async_endpoint_its_request_and_read_the_answer_and_nothing_more(options_config, tmp_path):
    from configuration import load_config
    from stacks.pipeline import smoke_statements
    from tests.support.iam_evaluation import Caller, Policy, Request, evaluate
    from tests.support.paths import FIXTURES

    # The fixture's one environment deploys through its own account's role (the smoke step then reads there as that
    # role); without it, the smoke role itself needs these.
    fixture = (FIXTURES / "all-options.yaml").read_text()
    line = f"    deploy_role_arn: {options_config.environments['qa'].deploy_role_arn}\n"
    assert line in fixture
    variant = tmp_path / "mlops.yaml"
    variant.write_text(fixture.replace(line, ""))
    config, environment = load_config(variant), "qa"
    statements = list(smoke_statements(config, environment, "arn:aws", "111111111111"))
    models = f"arn:aws:s3:::{config.model_bucket_name(environment)}"
    bucket = f"arn:aws:s3:::{config.async_bucket_name(environment, 'scoring')}"
    via_s3 = {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}
    key = f"arn:aws:kms:{config.region}:111111111111:key/k"
    # What pipeline/smoke_async.py does, in order, and what it must not be able to do.
    cases = [
        ("s3:ListBucket", models, {"s3:prefix": "scoring/"}, True),
        ("s3:GetObject", f"{models}/scoring/LIVE", {}, True),
        ("kms:Decrypt", key, via_s3, True),
        ("s3:ListBucket", bucket, {"s3:prefix": "async/scoring/output/smoke/abc-1."}, True),
        ("s3:ListBucket", bucket, {"s3:prefix": "async/scoring/failure/smoke/abc-1."}, True),
        ("s3:PutObject", f"{bucket}/async/scoring/input/smoke/abc-1.json", {}, True),
        ("kms:GenerateDataKey", key, via_s3, True),
        ("s3:GetObject", f"{bucket}/async/scoring/output/smoke/abc-1.json", {}, True),
        ("s3:ListBucket", models, {"s3:prefix": "churn/"}, False),
        ("s3:PutObject", f"{models}/scoring/LIVE", {}, False),
        ("s3:PutObject", f"{bucket}/async/scoring/input/client-request.json", {}, False),
        ("s3:GetObject", f"{bucket}/async/scoring/output/client-request.json", {}, False),
        ("s3:ListBucket", bucket, {"s3:prefix": "async/scoring/output/"}, False),
        ("kms:Decrypt", key, {}, False),
    ]
    for action, resource, context, expected in cases:
        decision = evaluate(Request(action, resource, context), Caller("111111111111", role_arn=(
            f"arn:aws:iam::111111111111:role/smoke-{environment}")), [Policy("smoke", tuple(statements))])
        assert decision.allowed is expected, (action, resource, context, decision.reason)
