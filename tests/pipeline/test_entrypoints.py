"""The pipeline's entry points in --dry-run (printing every command that would touch AWS or docker), and the smoke
test for real against a local server and a moto load balancer."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from configuration import load_config
from pipeline.build import build
from pipeline.commands import Commands, StepFailed
from pipeline.smoke import load_balancer_url, smoke
from tests.conftest import DEFAULT_CONFIG, PROJECT_ROOT


@pytest.fixture(scope="module")
def config():
    return load_config(DEFAULT_CONFIG)


def dry(out=None) -> Commands:
    return Commands(dry_run=True, out=out or io.StringIO())


def test_build_dry_run_prints_build_login_tag_and_push_for_every_environment(config):
    commands = dry()
    pushed = build(config, commands, "0a1b2c3", "123456789012")
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert commands.printed == [
        "would run: docker build --pull -f serving/Dockerfile -t model-server:0a1b2c3 .",
        f"would run: docker login --username AWS --password-stdin {registry} <<< (secret)",
        f"would run: docker tag model-server:0a1b2c3 {registry}/mlops/staging/model-server:0a1b2c3",
        f"would run: docker push {registry}/mlops/staging/model-server:0a1b2c3",
        f"would run: docker tag model-server:0a1b2c3 {registry}/mlops/prod/model-server:0a1b2c3",
        f"would run: docker push {registry}/mlops/prod/model-server:0a1b2c3",
    ]
    assert pushed == [f"{registry}/mlops/staging/model-server:0a1b2c3", f"{registry}/mlops/prod/model-server:0a1b2c3"]


def test_build_skips_a_tag_that_exists(config, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ecr = boto3.client("ecr", region_name="eu-west-1")
        for environment in ("staging", "prod"):
            ecr.create_repository(repositoryName=f"mlops/{environment}/model-server")
        ecr.put_image(repositoryName="mlops/staging/model-server", imageTag="0a1b2c3",
                      imageManifest='{"schemaVersion": 2, "mediaType": '
                                    '"application/vnd.docker.distribution.manifest.v2+json", "config": {}, '
                                    '"layers": []}')
        commands = dry()
        pushed = build(config, commands, "0a1b2c3", "123456789012", ecr)
    assert any("exists already (tags are immutable)" in line for line in commands.printed)
    assert pushed == ["123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops/prod/model-server:0a1b2c3"]


def test_deploy_dry_run_synthesizes_for_real_and_prints_one_deploy(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline.deploy", "--env", "staging", "--dry-run"], cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "IMAGE_TAG": "0a1b2c3"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.startswith(("deploying", "+ ", "would run"))]
    assert lines[0] == ("deploying staging with image tag 0a1b2c3: mlops-staging-platform, mlops-staging-endpoint-a, "
                        "mlops-staging-endpoint-b")
    assert lines[1].startswith("+ ") and lines[1].endswith("/node_modules/.bin/cdktf synth")
    assert lines[2].startswith("would run: ") and " deploy mlops-staging-platform mlops-staging-endpoint-a " \
        "mlops-staging-endpoint-b --auto-approve --skip-synth" in lines[2]
    stack = (PROJECT_ROOT / "cdktf.out" / "stacks" / "mlops-staging-endpoint-a" / "cdk.tf.json").read_text()
    assert ":0a1b2c3" in stack  # the synth really ran, with the image tag


def test_deploy_refuses_an_unknown_environment(config):
    from pipeline.deploy import deploy

    with pytest.raises(StepFailed, match="unknown environment 'qa'"):
        deploy(config, "qa", dry(), "0a1b2c3")


def test_smoke_dry_run_prints_the_calls(config):
    commands = dry()
    smoke(config, "staging", "http://alb.example", commands)
    assert commands.printed == [
        "would call: GET http://alb.example/a/v2/health/ready",
        "would call: GET http://alb.example/a/v2/models/a",
        "would call: POST http://alb.example/a/v2/models/a/infer",
        "would call: GET http://alb.example/b/v2/health/ready",
        "would call: GET http://alb.example/b/v2/models/b",
        "would call: POST http://alb.example/b/v2/models/b/infer",
    ]


def test_smoke_passes_against_a_running_server_and_fails_against_none(tmp_path):
    import shutil

    from configuration.loader import parse_config
    from tests.serving.conftest import EXAMPLE_MODELS
    from tests.serving.test_process import Server

    models_dir = tmp_path / "models"
    shutil.copytree(EXAMPLE_MODELS, models_dir)
    config = parse_config({"project": "mlops", "region": "eu-west-1",
                           "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
                           "endpoints": {"a": {"path": "/a/*"}}}, "inline")
    server = Server(models_dir, tmp_path / "capture", SERVING_MODEL_NAME="a", SERVING_ROUTE_PREFIX="/a")
    try:
        server.wait_ready()
        commands = Commands(dry_run=False, out=io.StringIO())
        smoke(config, "staging", f"http://127.0.0.1:{server.port}", commands, attempts=3, wait_seconds=0.1)
        assert commands.printed == ["a: ready, model version 1 answers"]
    finally:
        server.stop()
    with pytest.raises(StepFailed, match="endpoint a did not answer a prediction"):
        smoke(config, "staging", f"http://127.0.0.1:{server.port}", Commands(False, io.StringIO()), attempts=2,
              wait_seconds=0.05)


def test_load_balancer_is_found_by_its_configured_name(config, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.10.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")
                   ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        elbv2 = boto3.client("elbv2", region_name="eu-west-1")
        with pytest.raises(StepFailed, match="no load balancer named mlops-staging"):
            load_balancer_url(config, "staging", elbv2)
        dns = elbv2.create_load_balancer(Name="mlops-staging", Subnets=subnets)["LoadBalancers"][0]["DNSName"]
        assert load_balancer_url(config, "staging", elbv2) == f"http://{dns}"


class RecordingCommands(Commands):
    """Records instead of running: the deploy's decisions without a synth or AWS."""

    def __init__(self):
        super().__init__(dry_run=False, out=io.StringIO())
        self.ran: list[list[str]] = []

    def run(self, command, **options):  # noqa: ARG002 - same signature as Commands.run
        self.ran.append(list(command))


def test_deploy_stops_after_the_platform_while_an_endpoint_has_no_model(config, s3):
    from pipeline.deploy import deploy
    from pipeline.models import run as models
    from tests.delivery_helpers import EXAMPLE_MODEL

    commands = RecordingCommands()  # the staging model bucket holds no model yet
    with pytest.raises(StepFailed, match=r"endpoint\(s\) a, b have no live model in s3://mlops-staging-models"):
        deploy(config, "staging", commands, "0a1b2c3", s3)
    assert commands.ran[-1][1:3] == ["deploy", "mlops-staging-platform"] and "mlops-staging-endpoint-a" not in \
        commands.ran[-1]
    # The delivery helpers' configuration shares the bucket name: promote both endpoints there, then retry.
    from tests.delivery_helpers import CONFIG
    for endpoint in ("a", "b"):
        models(["promote", "--env", "staging", "--endpoint", endpoint, "--model-file", str(EXAMPLE_MODEL)], s3=s3,
               config=CONFIG)
    commands = RecordingCommands()
    deploy(config, "staging", commands, "0a1b2c3", s3)
    assert commands.ran[-1][2:5] == ["mlops-staging-platform", "mlops-staging-endpoint-a", "mlops-staging-endpoint-b"]


def test_no_model_bucket_yet_means_every_endpoint_lacks_a_model(config, s3):
    from pipeline.deploy import endpoints_without_a_model

    s3.delete_bucket(Bucket=config.model_bucket_name("staging"))
    assert endpoints_without_a_model(config, "staging", s3) == ["a", "b"]
