"""What the deploy step concludes from ECS about each service's rollout: completed, rolled back, failed, stuck. moto
reports a completed and a never-completing deployment; ECS's answers for a rollback and a failure (which moto cannot
produce) are given as DescribeServices documents in ECS's own shape."""

from __future__ import annotations

import re

import boto3
import pytest
from moto import mock_aws

from pipeline.commands import StepFailed
from pipeline.rollouts import COMPLETED, FAILED, IN_PROGRESS, ROLLED_BACK, rollout_of, wait_for_rollouts
from serving.contract import SERVER_CONTAINER
from tests.support.ecs_services import REPOSITORY, create_services

NEW, OLD = "0a1b2c3", "9f9f9f9"


@pytest.fixture
def moto_ecs(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("ecs", region_name="eu-west-1")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_completed_deployment_of_the_commit_passes(moto_ecs, monkeypatch):
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    create_services(moto_ecs, "p-dev", ["a"], NEW)
    said = []
    (rollout,) = wait_for_rollouts(moto_ecs, "p-dev", ["a"], SERVER_CONTAINER, NEW, said.append)
    assert rollout.state == COMPLETED
    assert said == [f"service a: deployment of image {NEW} completed (1 task(s) of image {NEW} run)"]


def test_a_deployment_that_never_completes_fails_at_the_timeout_saying_where_it_stands(moto_ecs):
    create_services(moto_ecs, "p-dev", ["a"], NEW)  # no task ever runs: moto reports IN_PROGRESS
    clock = FakeClock()
    with pytest.raises(StepFailed, match=rf"the deployment of image {NEW} did not complete within 600 s in p-dev "
                                         rf"\(a: 0/1 tasks of image {NEW} run; ECS deployment .* in progress.\)"):
        wait_for_rollouts(moto_ecs, "p-dev", ["a"], SERVER_CONTAINER, NEW, print, timeout_seconds=600,
                          interval_seconds=15, clock=clock, sleep=clock.sleep)
    assert clock.now >= 600


class ScriptedEcs:
    """DescribeServices answers in ECS's shape, one per call (the last repeats), and the task definitions' images."""

    def __init__(self, *answers: list[dict], events: list[dict] | None = None):
        self.answers = list(answers)
        self.events = events or []
        self.images = {"td:new": f"{REPOSITORY}:{NEW}", "td:old": f"{REPOSITORY}:{OLD}"}

    def describe_services(self, cluster, services):
        deployments = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return {"services": [{"serviceName": services[0], "deployments": deployments, "events": self.events}],
                "failures": []}

    def describe_task_definition(self, taskDefinition):
        return {"taskDefinition": {"containerDefinitions": [{"name": SERVER_CONTAINER,
                                                             "image": self.images[taskDefinition]}]}}


def deployment(status, task_definition, state, reason="", running=1, desired=1):
    return {"status": status, "taskDefinition": task_definition, "rolloutState": state, "rolloutStateReason": reason,
            "runningCount": running, "desiredCount": desired}


CIRCUIT_BREAKER = "ECS deployment circuit breaker: tasks failed to start."
ALARM = "ECS deployment detected triggered alarm(s) p-dev-a-target-5xx."


@pytest.mark.parametrize("deployments, state, detail", [
    # The circuit breaker rolled back: the old revision is primary again, the new deployment FAILED.
    ([deployment("PRIMARY", "td:old", "COMPLETED"), deployment("ACTIVE", "td:new", "FAILED", CIRCUIT_BREAKER)],
     ROLLED_BACK, f"ECS runs image {OLD}, not {NEW}: {CIRCUIT_BREAKER}"),
    # An alarm rolled back after the apply had returned.
    ([deployment("PRIMARY", "td:old", "IN_PROGRESS"), deployment("ACTIVE", "td:new", "FAILED", ALARM)],
     ROLLED_BACK, f"ECS runs image {OLD}, not {NEW}: {ALARM}"),
    # No rollback configured: the new deployment itself failed.
    ([deployment("PRIMARY", "td:new", "FAILED", "tasks failed to start", running=0)], FAILED,
     "tasks failed to start"),
    # Still replacing tasks: old and new deployments side by side.
    ([deployment("PRIMARY", "td:new", "IN_PROGRESS", "in progress", running=1, desired=2),
      deployment("ACTIVE", "td:old", "COMPLETED")], IN_PROGRESS, f"1/2 tasks of image {NEW} run; in progress"),
    ([deployment("PRIMARY", "td:new", "COMPLETED", running=2, desired=2)], COMPLETED,
     f"2 task(s) of image {NEW} run"),
])
def test_what_ecs_reports_becomes_an_outcome(deployments, state, detail):
    rollout = rollout_of(ScriptedEcs(deployments), "p-dev", "a", SERVER_CONTAINER, NEW)
    assert (rollout.state, rollout.detail) == (state, detail)


def test_a_finished_rollback_still_says_why_from_the_service_s_events():
    """Once ECS has rolled back, the failed deployment is gone from the service; its reason stays in the events."""
    events = [{"message": "(service a) has reached a steady state."},
              {"message": f"(service a) (deployment ecs-svc/2) deployment failed: {CIRCUIT_BREAKER}"},
              {"message": "(service a) (deployment ecs-svc/1) deployment failed: an older failure"}]
    rollout = rollout_of(ScriptedEcs([deployment("PRIMARY", "td:old", "COMPLETED")], events=events), "p-dev", "a",
                         SERVER_CONTAINER, NEW)
    assert (rollout.state, rollout.detail) == (
        ROLLED_BACK, f"ECS runs image {OLD}, not {NEW}: (service a) (deployment ecs-svc/2) deployment failed: "
                     f"{CIRCUIT_BREAKER}")


def test_a_rollback_during_the_bake_fails_the_step_even_after_progress():
    ecs = ScriptedEcs(
        [deployment("PRIMARY", "td:new", "IN_PROGRESS", running=1, desired=2), deployment("ACTIVE", "td:old",
                                                                                           "COMPLETED")],
        [deployment("PRIMARY", "td:old", "IN_PROGRESS"), deployment("ACTIVE", "td:new", "FAILED", ALARM)])
    clock = FakeClock()
    with pytest.raises(StepFailed, match=re.escape(f"service a in p-dev: the deployment of image {NEW} was rolled "
                                                   f"back: ECS runs image {OLD}, not {NEW}: {ALARM}")):
        wait_for_rollouts(ecs, "p-dev", ["a"], SERVER_CONTAINER, NEW, print, clock=clock, sleep=clock.sleep)
    assert clock.now == 15  # one wait between the two answers


def test_a_missing_service_fails():
    class NoServices(ScriptedEcs):
        def describe_services(self, cluster, services):
            return {"services": [], "failures": [{"arn": services[0], "reason": "MISSING"}]}

    assert rollout_of(NoServices([]), "p-dev", "a", SERVER_CONTAINER, NEW).detail == (
        "ECS has no service a in cluster p-dev (MISSING)")
