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
from configuration.model import MonitoringConfig
from pipeline.build import build
from pipeline.commands import Commands, StepFailed
from pipeline.smoke import load_balancer_url, smoke
from tests.support.paths import DEFAULT_CONFIG
from tests.support.repository_copy import copy_repository


@pytest.fixture(scope="module")
def config():
    return load_config(DEFAULT_CONFIG)


def dry(out=None) -> Commands:
    return Commands(dry_run=True, out=out or io.StringIO())


def monitoring(config, enabled: bool):
    """The configuration with every endpoint's monitoring on or off."""
    endpoints = {name: endpoint.model_copy(update={"monitoring": MonitoringConfig(enabled=enabled)})
                 for name, endpoint in config.endpoints.items()}
    return config.model_copy(update={"endpoints": endpoints})


def test_build_pushes_only_to_the_pipelines_build_repository(config):
    commands = dry()
    pushed = build(monitoring(config, False), commands, "0a1b2c3", "123456789012")
    reference = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops/model-server:0a1b2c3"
    assert commands.printed == [
        "would run: docker build --pull -f serving/Dockerfile -t model-server:0a1b2c3 .",
        "would run: docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com "
        "<<< (secret)",
        f"would run: docker tag model-server:0a1b2c3 {reference}",
        f"would run: docker push {reference}",
    ]
    assert pushed == [reference]
    # No environment's repository is touched before that environment's deploy (and approval).
    assert not any("/staging/" in line or "/prod/" in line for line in commands.printed)


def test_build_makes_the_monitor_image_too_where_an_endpoint_is_monitored(config):
    commands = dry()
    pushed = build(monitoring(config, True), commands, "0a1b2c3", "123456789012")
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops/model-server"
    assert pushed == [f"{registry}:0a1b2c3", f"{registry}:0a1b2c3-monitor"]
    assert "would run: docker build --pull -f pipeline/monitor/Dockerfile -t model-monitor:0a1b2c3-monitor ." in \
        commands.printed
    assert commands.printed[-2:] == [f"would run: docker tag model-monitor:0a1b2c3-monitor {registry}:0a1b2c3-monitor",
                                     f"would run: docker push {registry}:0a1b2c3-monitor"]


def test_build_skips_a_tag_that_exists(config, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ecr = boto3.client("ecr", region_name="eu-west-1")
        ecr.create_repository(repositoryName="mlops/model-server")
        for tag in ("0a1b2c3", "0a1b2c3-monitor"):
            ecr.put_image(repositoryName="mlops/model-server", imageTag=tag,
                          imageManifest='{"schemaVersion": 2, "mediaType": '
                                        '"application/vnd.docker.distribution.manifest.v2+json", "config": {}, '
                                        f'"layers": [], "annotations": {{"tag": "{tag}"}}}}')
        commands = dry()
        pushed = build(monitoring(config, True), commands, "0a1b2c3", "123456789012", ecr)
    assert pushed == []
    assert commands.printed == [f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops/model-server:{tag} exists "
                                "already (tags are immutable): not built again"
                                for tag in ("0a1b2c3", "0a1b2c3-monitor")]


def test_deploy_dry_run_synthesizes_for_real_and_prints_each_step_in_order(tmp_path):
    repo = tmp_path / "repo"  # the synth writes cdktf.out/ in the copy, never in the checkout
    copy_repository(repo)
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline.deploy", "--env", "staging", "--dry-run"], cwd=repo,
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "IMAGE_TAG": "0a1b2c3"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stdout.splitlines() if line.startswith(("deploying", "+ ", "would"))]
    assert lines[0] == ("deploying staging with image tag 0a1b2c3: mlops-staging-platform, mlops-staging-endpoint-a, "
                        "mlops-staging-endpoint-b")
    assert lines[1].startswith("+ ") and lines[1].endswith("/node_modules/.bin/cdktf synth")
    assert " deploy mlops-staging-platform --auto-approve --skip-synth" in lines[2]
    assert lines[3:5] == [f"would copy image mlops/model-server:{tag} to mlops/staging/model-server"
                          for tag in ("0a1b2c3", "0a1b2c3-monitor")]  # the server's and the monitor's
    assert lines[5].startswith("would promote each endpoint's initial_model")
    assert " deploy mlops-staging-endpoint-a mlops-staging-endpoint-b --auto-approve --skip-synth" in lines[6]
    stack = (repo / "cdktf.out" / "stacks" / "mlops-staging-endpoint-a" / "cdk.tf.json").read_text()
    assert ":0a1b2c3" in stack  # the synth really ran, with the image tag


def test_deploy_refuses_an_unknown_environment(config):
    from pipeline.deploy import deploy

    with pytest.raises(StepFailed, match="unknown environment 'qa'"):
        deploy(config, "qa", dry(), "0a1b2c3")


def test_smoke_dry_run_prints_the_calls(config, capsys):
    commands = dry()
    smoke(config, "staging", "http://alb.example", commands)
    assert commands.printed == [line for name in ("a", "b") for line in (
        f"would call: GET http://alb.example/{name}/v2/health/ready with the smoke test's credentials",
        f"would call: GET http://alb.example/{name}/v2/models/{name} with the smoke test's credentials",
        f"would call: POST http://alb.example/{name}/v2/models/{name}/infer with the smoke test's credentials",
        f"would call: GET http://alb.example/{name}/status with the smoke test's credentials",
        f"would check that POST http://alb.example/{name}/v2/models/{name}/infer without credentials is refused (401)")]
    # prod's endpoints are internal: the dry run of the step itself says which probe task it would run.
    from pipeline.smoke import main as smoke_main

    assert smoke_main(["--env", "prod", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"would run task mlops-prod-{name}-smoke-probe in cluster mlops-prod (the subnets of service {name}, security "
        f"group mlops-prod-{name}-smoke-probe) and read its log /ecs/mlops-prod-{name}/smoke-probe: endpoint {name} "
        "is behind the internal load balancer" for name in ("a", "b")]


def test_smoke_passes_against_a_running_server_and_fails_against_none(tmp_path):
    import shutil

    from configuration.loader import parse_config
    from tests.support.serving_data import EXAMPLE_MODELS
    from tests.support.serving_process import Server

    models_dir = tmp_path / "models"
    shutil.copytree(EXAMPLE_MODELS, models_dir)
    config = parse_config({"project": "mlops", "region": "eu-west-1",
                           "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
                           "endpoints": {"a": {"path": "/a/*"}}}, "inline")
    server = Server(models_dir, tmp_path / "capture", SERVING_MODEL_NAME="a", SERVING_ROUTE_PREFIX="/a",
                    SERVING_IMAGE_TAG="0a1b2c3")
    try:
        server.wait_ready()
        commands = Commands(dry_run=False, out=io.StringIO())
        smoke(config, "staging", f"http://127.0.0.1:{server.port}", commands, attempts=3, wait_seconds=0.1,
              expected_image_tag="0a1b2c3")
        assert commands.printed == ["a: ready, image 0a1b2c3 and model version 1 answer"]
        # A rolled-back deployment answers from the previous image: Smoke of the new commit fails, naming both.
        commands = Commands(dry_run=False, out=io.StringIO())
        with pytest.raises(StepFailed, match="endpoint a answers from image 0a1b2c3, not from 9f9f9f9 \\(the commit "
                                             "deployed\\): its deployment was rolled back or has not finished"):
            smoke(config, "staging", f"http://127.0.0.1:{server.port}", commands, attempts=2, wait_seconds=0.05,
                  expected_image_tag="9f9f9f9")
        assert commands.printed[0] == "a: attempt 1: status image 0a1b2c3 answers, not 9f9f9f9"
    finally:
        server.stop()
    with pytest.raises(StepFailed, match="endpoint a did not answer a prediction"):
        smoke(config, "staging", f"http://127.0.0.1:{server.port}", Commands(False, io.StringIO()), attempts=2,
              wait_seconds=0.05)


def test_smoke_calls_an_api_key_endpoint_with_its_key_and_checks_that_no_key_is_refused(tmp_path):
    import shutil

    from configuration.loader import parse_config
    from serving.contract import key_set_document, new_api_key, stored_api_key
    from tests.support.serving_data import EXAMPLE_MODELS
    from tests.support.serving_process import Server

    shutil.copytree(EXAMPLE_MODELS, tmp_path / "models")
    config = parse_config({"project": "mlops", "region": "eu-west-1",
                           "environments": {"staging": {"vpc_cidr": "10.10.0.0/16", "load_balancers": ["internal"]}},
                           "endpoints": {"a": {"path": "/a/*", "auth": {"type": "api_key"}}}}, "inline")
    key = new_api_key()
    keyed = Server(tmp_path / "models", tmp_path / "capture", SERVING_MODEL_NAME="a", SERVING_ROUTE_PREFIX="/a",
                   SERVING_API_KEYS=key_set_document([stored_api_key(key)]))
    open_server = Server(tmp_path / "models", tmp_path / "capture2", SERVING_MODEL_NAME="a",
                         SERVING_ROUTE_PREFIX="/a")
    try:
        keyed.wait_ready()
        open_server.wait_ready()
        commands = Commands(dry_run=False, out=io.StringIO())
        urls = {"internal": f"http://127.0.0.1:{keyed.port}"}
        smoke(config, "staging", urls, commands, attempts=2, wait_seconds=0.05,
              credentials=lambda endpoint: {"Authorization": f"Bearer {key}"})
        assert commands.printed == ["a: ready, image local and model version 1 answer",
                                    "a: a call without credentials is refused (401)"]
        with pytest.raises(StepFailed, match="endpoint a did not answer a prediction"):  # a wrong key: 401s
            smoke(config, "staging", urls, Commands(False, io.StringIO()), attempts=2, wait_seconds=0.05,
                  credentials=lambda endpoint: {"Authorization": f"Bearer {new_api_key()}"})
        with pytest.raises(StepFailed, match="endpoint a answered a call without credentials with 200, not 401"):
            smoke(config, "staging", {"internal": f"http://127.0.0.1:{open_server.port}"},
                  Commands(False, io.StringIO()), attempts=1, credentials=lambda endpoint: {})
    finally:
        keyed.stop()
        open_server.stop()


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


def test_with_a_domain_smoke_calls_each_endpoints_own_https_name_with_no_host_override():
    from configuration.loader import parse_config
    from pipeline.smoke import endpoint_address

    config = parse_config({
        "project": "mlops", "region": "eu-west-1",
        "environments": {"prod": {"vpc_cidr": "10.20.0.0/16", "domain": {"name": "ml.acme.example"}},
                         "staging": {"vpc_cidr": "10.10.0.0/16"}},
        "endpoints": {"a": {"host": "a.ml.acme.example"}, "b": {"path": "/b/*"}}}, "inline")
    # The certificate names the domain, not the load balancer: call the name itself (urllib verifies it).
    assert endpoint_address(config, "prod", "a", None) == ("https://a.ml.acme.example", None)
    assert endpoint_address(config, "prod", "b", None) == ("https://ml.acme.example", None)
    # Without a domain: the load balancer's address, routed by the endpoint's host header.
    assert endpoint_address(config, "staging", "a", "http://lb") == ("http://lb", "a.ml.acme.example")
    commands = dry()
    smoke(config, "prod", None, commands)
    assert commands.printed[0] == "would call: GET https://a.ml.acme.example/v2/health/ready"
    assert commands.printed[4] == "would call: GET https://ml.acme.example/b/v2/health/ready"


def test_smoke_verifies_the_certificate(tmp_path):
    """An HTTPS endpoint whose certificate does not match its name fails Smoke: verification is on."""
    import http.server
    import ssl
    import threading

    from configuration.loader import parse_config

    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=not-the-endpoint.example", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = parse_config({"project": "mlops", "region": "eu-west-1",
                           "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
                           "endpoints": {"a": {"path": "/a/*"}}}, "inline")
    commands = Commands(dry_run=False, out=io.StringIO())
    try:
        with pytest.raises(StepFailed, match="endpoint a did not answer"):
            smoke(config, "staging", f"https://127.0.0.1:{server.server_address[1]}", commands, attempts=1)
    finally:
        server.shutdown()
    assert "CERTIFICATE_VERIFY_FAILED" in commands.printed[0]
