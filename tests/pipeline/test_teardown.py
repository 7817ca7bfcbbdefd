"""Teardown against moto: what Terraform cannot delete while it has content is emptied first, production's
deletion protection is lifted, an endpoint no longer configured is destroyed from its state alone, and the order
is endpoints, then platform, then (for everything) the pipeline; the bootstrap's state stays."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from configuration import load_config
from pipeline.teardown import Teardown, state_only_configuration
from tests.support.commands import RecordingCommands
from tests.support.paths import DEFAULT_CONFIG


@pytest.fixture(scope="module")
def config():
    return load_config(DEFAULT_CONFIG)


@pytest.fixture
def session(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name="eu-west-1")


def test_state_only_configuration_has_the_platforms_provider_and_the_stacks_own_state_key(default_synth, config):
    folder = state_only_configuration(config, "prod", "mlops-prod-endpoint-old", default_synth.outdir)
    module = json.loads((folder / "main.tf.json").read_text())
    platform = default_synth.stack("mlops-prod-platform")
    assert module["provider"] == platform["provider"]
    assert module["terraform"]["required_providers"] == platform["terraform"]["required_providers"]
    assert module["terraform"]["backend"]["s3"] == {**platform["terraform"]["backend"]["s3"],
                                                    "key": "mlops-prod-endpoint-old/terraform.tfstate"}
    assert "resource" not in module and "data" not in module


def test_an_environment_is_emptied_and_destroyed_endpoints_first(config, session, default_synth):
    s3, ecr, ec2, elbv2 = (session.client(name) for name in ("s3", "ecr", "ec2", "elbv2"))
    for bucket in ("mlops-tfstate-eu-west-1", "mlops-prod-models-eu-west-1", "mlops-prod-captures-eu-west-1"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="mlops-prod-captures-eu-west-1", Key="a/main/2026/11/29/07/t-1-a-1.jsonl", Body=b"{}\n")
    s3.put_bucket_versioning(Bucket="mlops-prod-models-eu-west-1", VersioningConfiguration={"Status": "Enabled"})
    for version in ("1", "2"):
        s3.put_object(Bucket="mlops-prod-models-eu-west-1", Key="a/LIVE", Body=version.encode())
    s3.put_object(Bucket="mlops-tfstate-eu-west-1", Key="mlops-prod-endpoint-old/terraform.tfstate",
                  Body=json.dumps({"resources": [{"mode": "managed", "type": "aws_ecs_service"}]}).encode())
    ecr.create_repository(repositoryName="mlops/prod/model-server")
    ecr.put_image(repositoryName="mlops/prod/model-server", imageTag="0a1b2c3", imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": {},
         "layers": []}))
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    balancer = elbv2.create_load_balancer(Name="mlops-prod", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=balancer, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}])

    commands = RecordingCommands()
    Teardown(config, commands, lambda environment: session, default_synth.outdir).environment("prod")

    assert [command[1:3] for command in commands.ran] == [
        ["synth"], [f"-chdir={default_synth.outdir}/state-only/mlops-prod-endpoint-old", "init"],
        [f"-chdir={default_synth.outdir}/state-only/mlops-prod-endpoint-old", "apply"],
        ["destroy", "mlops-prod-endpoint-a"]]
    assert commands.ran[3][2:5] == ["mlops-prod-endpoint-a", "mlops-prod-endpoint-b", "mlops-prod-platform"]
    assert "--ignore-missing-stack-dependencies" not in commands.ran[3]  # the whole environment goes at once
    assert "deleted 1 image(s) from mlops/prod/model-server" in commands.printed
    assert "deleted 2 object version(s) from s3://mlops-prod-models-eu-west-1" in commands.printed
    assert "deleted 1 object version(s) from s3://mlops-prod-captures-eu-west-1" in commands.printed
    assert ecr.list_images(repositoryName="mlops/prod/model-server")["imageIds"] == []
    attributes = {a["Key"]: a["Value"] for a in
                  elbv2.describe_load_balancer_attributes(LoadBalancerArn=balancer)["Attributes"]}
    assert attributes["deletion_protection.enabled"] == "false"


def test_everything_goes_last_environment_first_then_the_pipeline_and_the_state_stays(config, default_synth):
    commands = RecordingCommands()
    commands.dry_run = True  # no sessions: nothing read or emptied, only printed
    Teardown(config, commands, None, default_synth.outdir).everything()
    destroyed = [command[2:] for command in commands.ran if command[1] == "destroy"]
    assert [stacks[:3] for stacks in destroyed[:2]] == [
        ["mlops-prod-endpoint-a", "mlops-prod-endpoint-b", "mlops-prod-platform"],
        ["mlops-staging-endpoint-a", "mlops-staging-endpoint-b", "mlops-staging-platform"]]
    assert destroyed[2][0] == "mlops-pipeline"
    assert commands.printed[-1] == ("kept on purpose: state bucket mlops-tfstate-eu-west-1 and lock table "
                                    "mlops-tfstate-locks (stack mlops-bootstrap)")


def test_an_environment_with_nothing_deployed_is_skipped_without_a_synth(config, session, default_synth):
    s3 = session.client("s3")
    s3.create_bucket(Bucket="mlops-tfstate-eu-west-1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    # What a destroyed environment leaves: empty state objects.
    for stack in ("mlops-staging-platform", "mlops-staging-endpoint-a"):
        s3.put_object(Bucket="mlops-tfstate-eu-west-1", Key=f"{stack}/terraform.tfstate",
                      Body=json.dumps({"version": 4, "resources": []}).encode())
    commands = RecordingCommands()
    Teardown(config, commands, lambda environment: session, default_synth.outdir).environment("staging")
    assert commands.ran == []
    assert commands.printed == ["staging: no stack holds resources, nothing to destroy"]


def test_an_asynchronous_endpoint_s_bucket_is_emptied_before_its_stack_goes(session, default_synth):
    from configuration.loader import parse_config

    config = parse_config({"project": "mlops", "region": "eu-west-1",
                           "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
                           "endpoints": {"a": {"path": "/a/*"}, "s": {"mode": "async", "min_tasks": 0}}}, "t.yaml")
    s3 = session.client("s3")
    bucket = config.async_bucket_name("staging", "s")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in ("async/s/input/r1.json", "async/s/output/r1.json"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    commands = RecordingCommands()
    Teardown(config, commands, lambda environment: session, default_synth.outdir).endpoint("staging", "s")
    assert f"deleted 2 object version(s) from s3://{bucket}" in commands.printed
    assert [command[1:3] for command in commands.ran] == [["synth"], ["destroy", "mlops-staging-endpoint-s"]]
    assert commands.printed.index(f"deleted 2 object version(s) from s3://{bucket}") < commands.printed.index(
        "+ destroy mlops-staging-endpoint-s --auto-approve")
    dry = RecordingCommands()
    Teardown(config, dry, None, default_synth.outdir).endpoint("staging", "a")  # a real-time one: nothing to empty
    assert not any(line.startswith("would empty") for line in dry.printed)
