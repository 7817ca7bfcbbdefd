"""Smoke of an endpoint behind an internal load balancer: the Smoke step cannot reach it from where it runs, so it
starts the endpoint's probe task (`<project>-<env>-<endpoint>-smoke-probe`, defined by the endpoint stack with the
image deployed; `python -m serving.probe`) in the endpoint's private subnets, waits for it to stop, prints its log
and passes only when it exited 0 and its last line says it passed.

Everything is found by names derived from the configuration, in the environment's own account: the cluster, the
subnets of the endpoint's service, the probe's security group, task definition and log group.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from configuration import MlopsConfig
from configuration.resolved import resolve_endpoint, resolve_environment
from pipeline.commands import Commands, StepFailed
from serving.contract import PROBE_CONTAINER, PROBE_RESULT_PREFIX

STARTED_BY = "pipeline.smoke"


@dataclass(frozen=True)
class ProbeTask:
    cluster: str
    family: str
    security_group_name: str
    log_group: str
    service: str

    @classmethod
    def of(cls, config: MlopsConfig, environment: str, endpoint: str) -> ProbeTask:
        resolved = resolve_endpoint(config, environment, endpoint)
        return cls(resolve_environment(config, environment).cluster_name, resolved.smoke_probe_name,
                   resolved.smoke_probe_name, resolved.smoke_probe_log_group, resolved.service_names[0])

    def log_stream(self, task_arn: str) -> str:
        """awslogs' stream name: `<prefix>/<container>/<task id>`."""
        return f"{self.family}/{PROBE_CONTAINER}/{task_arn.rsplit('/', 1)[-1]}"


def probe_in_vpc(session: Any, config: MlopsConfig, environment: str, commands: Commands,
                 timeout_seconds: float = 900, poll_seconds: float = 5,
                 clock: Callable[[], float] = time.monotonic) -> Callable[[str], None]:
    """The Smoke step's check of one internal endpoint (see pipeline.smoke.Probe)."""

    def probe(endpoint: str) -> None:
        task = ProbeTask.of(config, environment, endpoint)
        if commands.dry_run:
            commands.say(f"would run task {task.family} in cluster {task.cluster} (the subnets of service "
                         f"{task.service}, security group {task.security_group_name}) and read its log "
                         f"{task.log_group}: endpoint {endpoint} is behind the internal load balancer")
            return
        ecs, ec2, logs = session.client("ecs"), session.client("ec2"), session.client("logs")
        arn = _start(ecs, ec2, task)
        commands.say(f"{endpoint}: probe task {arn.rsplit('/', 1)[-1]} started in the VPC ({task.family})")
        stopped = _wait_stopped(ecs, task.cluster, arn, timeout_seconds, poll_seconds, clock)
        lines = _log_lines(logs, task, arn)
        for _ in range(3):  # the log driver's last batch can land just after the task stopped
            if _result(lines):
                break
            time.sleep(poll_seconds)
            lines = _log_lines(logs, task, arn)
        for line in lines:
            commands.say(f"{endpoint}: probe: {line}")
        (container,) = [c for c in stopped.get("containers", []) if c.get("name") == PROBE_CONTAINER] or [{}]
        code = container.get("exitCode")
        result = _result(lines)
        if code == 0 and result.get("passed") is True:
            return
        why = result.get("error") or "; ".join(filter(None, (stopped.get("stoppedReason"), container.get("reason"),
                                                             "no result line in its log")))
        raise StepFailed(f"endpoint {endpoint}: the probe task in the VPC exited with {code}: {why}")

    return probe


def _start(ecs: Any, ec2: Any, task: ProbeTask) -> str:
    services = ecs.describe_services(cluster=task.cluster, services=[task.service])["services"]
    if not services:
        raise StepFailed(f"no service {task.service} in cluster {task.cluster}: is the endpoint deployed?")
    subnets = services[0]["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [task.security_group_name]}])[
        "SecurityGroups"]
    if len(groups) != 1:
        raise StepFailed(f"{len(groups)} security groups named {task.security_group_name} (expected 1): is the "
                         "endpoint stack deployed with its probe?")
    # The revision deployed last, by its full ARN: what the smoke role may run is `<family>:<revision>`.
    try:
        definition = ecs.describe_task_definition(taskDefinition=task.family)["taskDefinition"]["taskDefinitionArn"]
    except ecs.exceptions.ClientException:
        raise StepFailed(f"no task definition {task.family}: is the endpoint stack deployed with its probe?") from None
    answer = ecs.run_task(cluster=task.cluster, taskDefinition=definition, count=1, launchType="FARGATE",
                          startedBy=STARTED_BY, networkConfiguration={"awsvpcConfiguration": {
                              "subnets": subnets, "securityGroups": [groups[0]["GroupId"]],
                              "assignPublicIp": "DISABLED"}})
    if answer.get("failures") or not answer.get("tasks"):
        reasons = "; ".join(f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in answer.get("failures", []))
        raise StepFailed(f"ECS did not start {task.family}: {reasons or 'no task in its answer'}")
    return str(answer["tasks"][0]["taskArn"])


def _wait_stopped(ecs: Any, cluster: str, arn: str, timeout_seconds: float, poll_seconds: float,
                  clock: Callable[[], float]) -> dict[str, Any]:
    deadline = clock() + timeout_seconds
    while True:
        (described,) = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"] or [{}]
        if described.get("lastStatus") == "STOPPED":
            return described
        if clock() >= deadline:
            ecs.stop_task(cluster=cluster, task=arn, reason="the smoke test's probe ran out of time")
            raise StepFailed(f"probe task {arn.rsplit('/', 1)[-1]} had not stopped after {timeout_seconds:.0f} s "
                             f"(last status {described.get('lastStatus')}); stopped it")
        time.sleep(poll_seconds)


def _log_lines(logs: Any, task: ProbeTask, arn: str) -> list[str]:
    try:
        events = logs.get_log_events(logGroupName=task.log_group, logStreamName=task.log_stream(arn),
                                     startFromHead=True)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"] for event in events]


def _result(lines: list[str]) -> dict[str, Any]:
    for line in reversed(lines):
        if line.startswith(PROBE_RESULT_PREFIX):
            try:
                value = json.loads(line[len(PROBE_RESULT_PREFIX):])
            except json.JSONDecodeError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}
