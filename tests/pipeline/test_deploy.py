"""The deploy step's order against moto: an orphaned endpoint is refused, the platform goes first, the approved
image is copied into the environment's repository, missing models are promoted from `initial_model`, then the
endpoints. cdktf itself is recorded, not run (the rehearsal runs it)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from configuration import load_config
from configuration.loader import parse_config
from pipeline.commands import StepFailed
from pipeline.deploy import DeployClients, deploy, endpoints_without_a_model
from pipeline.images import copy_image
from tests.support.commands import RecordingCommands
from tests.support.ecs_services import create_services, register
from tests.support.paths import DEFAULT_CONFIG
from tests.support.registry import BlobStore, layer_of
from tests.support.secrets import current_stage_moves, endpoint_secrets

TAG = "0a1b2c3"


@pytest.fixture
def aws(monkeypatch):
    current_stage_moves(monkeypatch)
    """One account: the state bucket, the build repository holding the commit's image (pushed as docker would),
    and what staging's platform stack creates (its repository and model bucket)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        ecr = boto3.client("ecr", region_name="eu-west-1")
        for bucket in ("mlops-tfstate-eu-west-1", "mlops-staging-models-eu-west-1"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for repository in ("mlops/model-server", "mlops/staging/model-server"):
            ecr.create_repository(repositoryName=repository)
        store = BlobStore()
        store.push(ecr, "mlops/model-server", TAG, {"config": {"Entrypoint": ["python", "-m", "serving"]}},
                   [layer_of({"app/serving/__init__.py": b""}), layer_of({"venv/bin/python": b"#"})])
        # ... and the model monitor's (the shipped configuration monitors its endpoints).
        store.push(ecr, "mlops/model-server", f"{TAG}-monitor",
                   {"config": {"Entrypoint": ["python", "-m", "pipeline.monitor"]}},
                   [layer_of({"app/pipeline/monitor/__init__.py": b""}), layer_of({"venv/bin/python": b"#"})])
        # What `cdktf deploy` of the endpoints leaves: the services run the commit's image, all tasks healthy.
        monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
        ecs = boto3.client("ecs", region_name="eu-west-1")
        create_services(ecs, "mlops-staging", ["a", "b"], TAG)
        secrets = boto3.client("secretsmanager", region_name="eu-west-1")
        for endpoint in ("a", "b"):
            endpoint_secrets(secrets, "mlops", "staging", endpoint)
        yield s3, ecr, store, ecs, secrets


def clients(aws) -> DeployClients:
    s3, ecr, store, ecs, secrets = aws
    return DeployClients(pipeline_s3=s3, pipeline_ecr=store.with_downloads(ecr), environment_s3=s3,
                         environment_ecr=ecr, environment_ecs=ecs, fetch_layer=store.fetch,
                         environment_secrets=secrets)


@pytest.fixture(scope="module")
def config():
    return load_config(DEFAULT_CONFIG)


def test_a_first_deploy_runs_platform_image_models_then_endpoints(config, aws):
    commands = RecordingCommands()
    deploy(config, "staging", commands, TAG, clients(aws))
    steps = [line for line in commands.printed if not line.startswith("deploying")]
    assert steps[0] == "+ synth"
    assert steps[1] == "+ deploy mlops-staging-platform --auto-approve"
    assert steps[2] == "copied mlops/model-server:0a1b2c3 to mlops/staging/model-server (3 of 3 blobs uploaded)"
    # The monitor's image shares the venv layer's bytes: one blob less to upload.
    assert steps[3] == ("copied mlops/model-server:0a1b2c3-monitor to mlops/staging/model-server "
                        "(2 of 3 blobs uploaded)")
    assert steps[4].startswith("a: no live model in staging: promoted initial_model "
                               "serving/example/models/1/model.onnx as version 1")
    assert steps[5].startswith("b: no live model in staging: promoted initial_model")
    assert steps[6] == "+ deploy mlops-staging-endpoint-a mlops-staging-endpoint-b"
    assert steps[7:9] == [f"service {name}: deployment of image {TAG} completed (1 task(s) of image {TAG} run)"
                          for name in ("a", "b")]
    assert steps[9:] == [f"{name}: smoke test key issued (mlops/staging/{name}/smoke-key)" for name in ("a", "b")]
    s3, ecr, _, _, _ = aws
    image = ecr.batch_get_image(repositoryName="mlops/staging/model-server", imageIds=[{"imageTag": TAG}])
    source = ecr.batch_get_image(repositoryName="mlops/model-server", imageIds=[{"imageTag": TAG}])
    assert image["images"][0]["imageManifest"] == source["images"][0]["imageManifest"]
    assert endpoints_without_a_model(config, "staging", s3) == []
    assert s3.get_object(Bucket="mlops-staging-models-eu-west-1", Key="a/LIVE")["Body"].read() == b"1\n"

    # A second deploy of the same commit copies and promotes nothing.
    commands = RecordingCommands()
    deploy(config, "staging", commands, TAG, clients(aws))
    assert "mlops/staging/model-server:0a1b2c3 is there already (tags are immutable): not copied again" in \
        commands.printed
    assert not any("promoted" in line for line in commands.printed)
    assert "a: smoke test key kept (mlops/staging/a/smoke-key)" in commands.printed


def test_a_service_ecs_rolled_back_to_the_previous_image_fails_the_deploy(config, aws):
    """Terraform's steady-state wait returns success after a rollback: the step must not."""
    ecs = aws[3]  # moto keeps a service's first deployment: the rolled-back service is made anew on the old image
    ecs.delete_service(cluster="mlops-staging", service="b", force=True)
    ecs.create_service(cluster="mlops-staging", serviceName="b", desiredCount=1,
                       taskDefinition=register(ecs, "mlops-staging-b", "9f9f9f9"))
    with pytest.raises(StepFailed, match="service b in mlops-staging: the deployment of image 0a1b2c3 was rolled "
                                         "back: ECS runs image 9f9f9f9, not 0a1b2c3"):
        deploy(config, "staging", RecordingCommands(), TAG, clients(aws))


def test_an_image_the_build_never_pushed_stops_the_deploy_before_the_endpoints(config, aws):
    commands = RecordingCommands()
    with pytest.raises(StepFailed, match="no image mlops/model-server:fffffff in the build repository"):
        deploy(config, "staging", commands, "fffffff", clients(aws))
    assert commands.ran[-1][1:3] == ["deploy", "mlops-staging-platform"]


def test_without_initial_model_the_deploy_stops_naming_the_promote_command(aws):
    config = parse_config({"project": "mlops", "region": "eu-west-1",
                           "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
                           "endpoints": {"a": {"initial_model": "serving/example/models/1/model.onnx"}, "b": {}}},
                          "inline")
    commands = RecordingCommands()
    with pytest.raises(StepFailed, match=r"endpoint\(s\) b have no live model .* and no `initial_model`.*"
                                         r"python -m pipeline.models promote --env staging --endpoint b"):
        deploy(config, "staging", commands, TAG, clients(aws))
    assert all("mlops-staging-endpoint" not in " ".join(command) for command in commands.ran)


def variants_config() -> object:
    return parse_config({"project": "mlops", "region": "eu-west-1",
                         "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
                         "endpoints": {"a": {"initial_model": "serving/example/models/1/model.onnx", "variants": {
                             "current": {"weight": 90}, "candidate": {"weight": 10, "model_version": "2"}}}}},
                        "inline")


def test_a_variant_pinned_to_a_version_the_bucket_lacks_stops_the_deploy_before_the_endpoints(aws):
    commands = RecordingCommands()
    with pytest.raises(StepFailed, match=r"variant\(s\) pinned to a version s3://mlops-staging-models-eu-west-1/ "
                                         r"does not hold: a/candidate -> 2; their services could never become "
                                         r"healthy"):
        deploy(variants_config(), "staging", commands, TAG, clients(aws))
    assert all("mlops-staging-endpoint" not in " ".join(command) for command in commands.ran)


def test_with_variants_the_deploy_waits_for_every_variants_service(aws):
    from pipeline.models import promote, resolve
    from tests.support.delivery import EXAMPLE_MODEL

    config = variants_config()
    s3, _, _, ecs, _ = aws
    promote(s3, resolve(config, "staging", "a"), EXAMPLE_MODEL)  # version 1, live
    promote(s3, resolve(config, "staging", "a"), EXAMPLE_MODEL, version="2")
    create_services(ecs, "mlops-staging", ["a-current", "a-candidate"], TAG)
    commands = RecordingCommands()
    deploy(config, "staging", commands, TAG, clients(aws))
    assert commands.printed[-2:] == [f"service {name}: deployment of image {TAG} completed (1 task(s) of image "
                                     f"{TAG} run)" for name in ("a-current", "a-candidate")]


def test_an_endpoint_removed_from_the_configuration_is_refused_with_the_command_that_removes_it(config, aws):
    s3 = aws[0]
    state = {"version": 4, "resources": [{"mode": "managed", "type": "aws_ecs_service", "name": "x"}]}
    s3.put_object(Bucket="mlops-tfstate-eu-west-1", Key="mlops-staging-endpoint-old/terraform.tfstate",
                  Body=json.dumps(state).encode())
    # A destroyed stack keeps an empty state object: not an orphan.
    s3.put_object(Bucket="mlops-tfstate-eu-west-1", Key="mlops-staging-endpoint-gone/terraform.tfstate",
                  Body=json.dumps({"version": 4, "resources": []}).encode())
    commands = RecordingCommands()
    with pytest.raises(StepFailed, match=r"staging runs endpoint\(s\) old, which the configuration no longer "
                                         r"declares. Remove each with `make destroy ENV=staging ENDPOINT=old`"):
        deploy(config, "staging", commands, TAG, clients(aws))
    assert commands.ran == []


def test_no_model_bucket_yet_means_every_endpoint_lacks_a_model(config, aws):
    s3 = aws[0]
    s3.delete_bucket(Bucket=config.model_bucket_name("staging"))
    assert endpoints_without_a_model(config, "staging", s3) == ["a", "b"]


def test_copy_image_uploads_only_missing_blobs_and_checks_their_digests(aws):
    s3, ecr, store, _, _ = aws
    ecr.create_repository(repositoryName="mlops/prod/model-server")
    source = store.with_downloads(ecr)
    said = []
    assert copy_image(source, "mlops/model-server", ecr, "mlops/prod/model-server", TAG, fetch=store.fetch,
                      say=said.append)
    assert said == ["copied mlops/model-server:0a1b2c3 to mlops/prod/model-server (3 of 3 blobs uploaded)"]

    def corrupt(url):
        yield b"not the layer"

    ecr.create_repository(repositoryName="mlops/qa/model-server")
    with pytest.raises(StepFailed, match="arrived as sha256:"):
        copy_image(source, "mlops/model-server", ecr, "mlops/qa/model-server", TAG, fetch=corrupt, say=said.append)


def test_with_a_deploy_role_the_environments_clients_use_its_credentials(monkeypatch):
    from pipeline.aws import environment_session, pipeline_session
    from pipeline.deploy import deploy_clients

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = parse_config({"project": "mlops", "region": "eu-west-1", "environments": {
        "staging": {"vpc_cidr": "10.10.0.0/16"},
        "prod": {"vpc_cidr": "10.20.0.0/16", "deploy_role_arn": "arn:aws:iam::222222222222:role/deployer"}}},
        "inline")
    with mock_aws():
        caller = pipeline_session(config).get_credentials().access_key
        assert environment_session(config, "staging").get_credentials().access_key == caller
        prod = environment_session(config, "prod").get_credentials()
        assert prod.access_key != caller and prod.token  # the assumed role's temporary credentials
        clients = deploy_clients(config, "prod")
        assert clients.environment_ecr._request_signer._credentials.access_key not in (caller, None)
        assert clients.pipeline_ecr._request_signer._credentials.access_key == caller
