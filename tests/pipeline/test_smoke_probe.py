"""The Smoke step's check of an endpoint behind an internal load balancer, against moto: it runs the endpoint's probe
task in the subnets of the endpoint's service with the probe's security group, waits for it to stop, reads its log
and passes only on exit 0 with a passing result line. What ECS and the awslogs driver do after RunTask (the
container's exit code and log) is played by `Agent` below, through moto's backend."""

from __future__ import annotations

import io
import time

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from configuration.loader import parse_config
from pipeline.commands import Commands, StepFailed
from pipeline.smoke import smoke
from pipeline.smoke_probe import probe_in_vpc
from tests.rehearsal import moto_shims

REGION = "eu-west-1"


@pytest.fixture
def config():
    return parse_config({"project": "mlops", "region": REGION,
                         "environments": {"prod": {"vpc_cidr": "10.20.0.0/16", "load_balancers": ["internal"],
                                                   "production": True}},
                         "endpoints": {"a": {"path": "/a/*", "auth": {"type": "api_key"}}}}, "inline")


class Agent:
    """ECS and its log driver after RunTask: the probe's container exits with `exit_code` having written `lines`."""

    def __init__(self, exit_code: int | None, lines: list[str]):
        self.exit_code, self.lines, self.runs = exit_code, lines, []

    def session(self):
        agent = self

        class Session:
            def client(self, name):
                client = boto3.client(name, region_name=REGION)
                if name == "ecs":
                    real_run = client.run_task

                    def run_task(**kwargs):
                        answer = real_run(**kwargs)
                        agent.runs.append(kwargs)
                        agent.finish(answer["tasks"][0]["taskArn"])
                        return answer

                    client.run_task = run_task
                return client

        return Session()

    def finish(self, arn: str) -> None:
        from moto.ecs.models import ecs_backends

        task_id = arn.rsplit("/", 1)[-1]
        logs = boto3.client("logs", region_name=REGION)
        stream = f"mlops-prod-a-smoke-probe/probe/{task_id}"
        logs.create_log_stream(logGroupName="/ecs/mlops-prod-a/smoke-probe", logStreamName=stream)
        if self.lines:
            logs.put_log_events(logGroupName="/ecs/mlops-prod-a/smoke-probe", logStreamName=stream, logEvents=[
                {"timestamp": int(time.time() * 1000) + i, "message": line} for i, line in enumerate(self.lines)])
        if self.exit_code is None:
            return  # still running
        backend = ecs_backends[DEFAULT_ACCOUNT_ID][REGION]
        task = next(task for tasks in backend.tasks.values() for key, task in tasks.items() if key.endswith(task_id))
        task.status = "STOPPED"
        task.stopped_reason = "Essential container in task exited"
        task.containers[0].exitCode = self.exit_code


@pytest.fixture
def account(monkeypatch):
    moto_shims.apply("ecs-run-task-task-level-memory", "ecs-run-task-interface-name")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"] for i in (10, 11)]
        service_group = ec2.create_security_group(GroupName="mlops-prod-a-service", Description="s", VpcId=vpc)
        probe_group = ec2.create_security_group(GroupName="mlops-prod-a-smoke-probe", Description="p", VpcId=vpc)
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="mlops-prod")
        network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [service_group["GroupId"]]}}
        for family, container in (("mlops-prod-a", "server"), ("mlops-prod-a-smoke-probe", "probe"),
                                  ("mlops-prod-a-smoke-probe", "probe")):
            ecs.register_task_definition(family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                                         cpu="256", memory="512",
                                         containerDefinitions=[{"name": container, "image": "serving:0a1b2c3"}])
        ecs.create_service(cluster="mlops-prod", serviceName="a", taskDefinition="mlops-prod-a", desiredCount=1,
                           launchType="FARGATE", networkConfiguration=network)
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/ecs/mlops-prod-a/smoke-probe")
        yield {"subnets": subnets, "probe_group": probe_group["GroupId"]}


PASSED = ["a: ready, image 0a1b2c3 and model version 3 answer", "a: a call without credentials is refused (401)",
          'probe result: {"image_tag": "0a1b2c3", "model_version": "3", "passed": true}']


def test_the_probe_runs_in_the_service_s_subnets_with_its_own_group_and_its_log_is_printed(config, account):
    agent = Agent(0, PASSED)
    commands = Commands(False, io.StringIO())
    smoke(config, "prod", {}, commands, probe=probe_in_vpc(agent.session(), config, "prod", commands,
                                                           poll_seconds=0))
    (run,) = agent.runs
    # the latest revision (a deploy registered a second), by its full ARN: what the smoke role may run (`<family>:*`)
    assert run["cluster"] == "mlops-prod"
    assert run["taskDefinition"].endswith(":task-definition/mlops-prod-a-smoke-probe:2")
    assert run["launchType"] == "FARGATE" and run["startedBy"] == "pipeline.smoke"
    assert run["networkConfiguration"] == {"awsvpcConfiguration": {
        "subnets": account["subnets"], "securityGroups": [account["probe_group"]], "assignPublicIp": "DISABLED"}}
    assert commands.printed[0].startswith("a: probe task ") and commands.printed[0].endswith(
        " started in the VPC (mlops-prod-a-smoke-probe)")
    assert commands.printed[1:] == [f"a: probe: {line}" for line in PASSED]


@pytest.mark.parametrize(("exit_code", "lines", "why"), [
    (1, ["a: attempt 1: status 502",
         'probe result: {"error": "endpoint a did not answer a prediction at http://x/a", "passed": false}'],
     "exited with 1: endpoint a did not answer a prediction at http://x/a"),
    (0, [], "exited with 0: Essential container in task exited; no result line in its log"),  # 0 is not enough
    (137, [], "exited with 137: Essential container in task exited; no result line in its log"),
])
def test_the_probe_fails_the_step_unless_it_exited_0_and_said_it_passed(config, account, exit_code, lines, why):
    agent = Agent(exit_code, lines)
    with pytest.raises(StepFailed, match=f"endpoint a: the probe task in the VPC {why}"):
        smoke(config, "prod", {}, Commands(False, io.StringIO()),
              probe=probe_in_vpc(agent.session(), config, "prod", Commands(False, io.StringIO()), poll_seconds=0))


def test_a_probe_that_does_not_stop_in_time_is_stopped_and_fails_the_step(config, account):
    agent = Agent(None, ["a: attempt 1: status 502"])
    ticks = iter(range(0, 10_000, 100))
    with pytest.raises(StepFailed, match="had not stopped after 300 s .*; stopped it"):
        probe_in_vpc(agent.session(), config, "prod", Commands(False, io.StringIO()), timeout_seconds=300,
                     poll_seconds=0, clock=lambda: next(ticks))("a")
    ecs = boto3.client("ecs", region_name=REGION)
    (task,) = ecs.describe_tasks(cluster="mlops-prod", tasks=ecs.list_tasks(cluster="mlops-prod")["taskArns"])[
        "tasks"]
    assert task["desiredStatus"] == "STOPPED"


def test_a_missing_probe_says_what_to_deploy(config, account):
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.delete_security_group(GroupId=account["probe_group"])
    with pytest.raises(StepFailed, match="0 security groups named mlops-prod-a-smoke-probe \\(expected 1\\): is the "
                                         "endpoint stack deployed with its probe"):
        probe_in_vpc(Agent(0, PASSED).session(), config, "prod", Commands(False, io.StringIO()))("a")


def test_dry_run_says_which_task_it_would_run(config):
    commands = Commands(True, io.StringIO())
    smoke(config, "prod", {}, commands, probe=probe_in_vpc(None, config, "prod", commands))
    assert commands.printed == [
        "would run task mlops-prod-a-smoke-probe in cluster mlops-prod (the subnets of service a, security group "
        "mlops-prod-a-smoke-probe) and read its log /ecs/mlops-prod-a/smoke-probe: endpoint a is behind the "
        "internal load balancer"]
