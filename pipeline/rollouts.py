"""After `cdktf deploy`: did each endpoint's service really move to the commit's image?

Terraform's `wait_for_steady_state` returns success when ECS's circuit breaker or an alarm has rolled the deployment
back (the service is steady again, on the old revision: terraform-provider-aws #19519, #20858), and an alarm can
roll a deployment back after the apply returned. So the deploy step asks ECS itself, until every service's primary
deployment runs the commit's image and has completed:
- completed: the primary deployment runs an image of this tag and ECS says COMPLETED, with no other deployment left;
- rolled back: the primary deployment runs another image (ECS went back to the previous revision); the reason is the
  failed deployment's, or, once ECS has finished rolling back and dropped the failed deployment from the service,
  the newest "deployment failed" message among the service's events (where ECS keeps it);
- failed: ECS marked the new deployment FAILED;
- stuck: neither within the timeout.
Anything but completed fails the step with what ECS said.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.commands import StepFailed

COMPLETED, ROLLED_BACK, FAILED, IN_PROGRESS = "completed", "rolled back", "failed", "in progress"


@dataclass(frozen=True)
class Rollout:
    service: str
    state: str
    detail: str


def _image_tag(ecs: Any, task_definition_arn: str, container: str, cache: dict[str, str]) -> str:
    if task_definition_arn not in cache:
        definition = ecs.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
        images = {c["name"]: c["image"] for c in definition["containerDefinitions"]}
        cache[task_definition_arn] = images.get(container, "").rsplit(":", 1)[-1]
    return cache[task_definition_arn]


def failure_event(events: list[dict[str, Any]]) -> str:
    """The newest event saying a deployment failed (ECS lists a service's events newest first)."""
    return next((e.get("message", "") for e in events if "deployment failed" in e.get("message", "")), "")


def rollout_of(ecs: Any, cluster: str, service: str, container: str, image_tag: str,
               cache: dict[str, str] | None = None) -> Rollout:
    """Where one service's rollout to `image_tag` stands, from DescribeServices."""
    cache = {} if cache is None else cache
    described = ecs.describe_services(cluster=cluster, services=[service])
    if not described.get("services"):
        reasons = "; ".join(f.get("reason", "") for f in described.get("failures", []))
        return Rollout(service, FAILED, f"ECS has no service {service} in cluster {cluster} ({reasons or 'missing'})")
    deployments = described["services"][0].get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return Rollout(service, IN_PROGRESS, "no primary deployment yet")
    failed = [d for d in deployments if d.get("rolloutState") == "FAILED"]
    why = ("; ".join(d.get("rolloutStateReason", "") for d in failed)
           or failure_event(described["services"][0].get("events", [])) or "no reason given")
    running_tag = _image_tag(ecs, primary["taskDefinition"], container, cache)
    if running_tag != image_tag:
        return Rollout(service, ROLLED_BACK, f"ECS runs image {running_tag}, not {image_tag}: {why}")
    if primary.get("rolloutState") == "FAILED":
        return Rollout(service, FAILED, primary.get("rolloutStateReason", "no reason given"))
    if primary.get("rolloutState") == "COMPLETED" and len(deployments) == 1:
        return Rollout(service, COMPLETED, f"{primary.get('runningCount', 0)} task(s) of image {image_tag} run")
    return Rollout(service, IN_PROGRESS, f"{primary.get('runningCount', 0)}/{primary.get('desiredCount', 0)} tasks "
                                         f"of image {image_tag} run; {primary.get('rolloutStateReason', '')}".strip())


def wait_for_rollouts(ecs: Any, cluster: str, services: list[str], container: str, image_tag: str,
                      say: Callable[[str], None], timeout_seconds: float = 1800, interval_seconds: float = 15,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> list[Rollout]:
    """Poll until every service completed; raise StepFailed at the first rollback or failure, or at the timeout."""
    deadline = clock() + timeout_seconds
    cache: dict[str, str] = {}
    pending = list(services)
    done: list[Rollout] = []
    while True:
        for service in list(pending):
            rollout = rollout_of(ecs, cluster, service, container, image_tag, cache)
            if rollout.state in (ROLLED_BACK, FAILED):
                raise StepFailed(f"service {service} in {cluster}: the deployment of image {image_tag} was "
                                 f"{rollout.state}: {rollout.detail}")
            if rollout.state == COMPLETED:
                say(f"service {service}: deployment of image {image_tag} completed ({rollout.detail})")
                pending.remove(service)
                done.append(rollout)
        if not pending:
            return done
        if clock() >= deadline:
            states = "; ".join(f"{r.service}: {r.detail}" for r in (rollout_of(ecs, cluster, s, container, image_tag,
                                                                               cache) for s in pending))
            raise StepFailed(f"the deployment of image {image_tag} did not complete within {timeout_seconds:.0f} s "
                             f"in {cluster} ({states})")
        sleep(interval_seconds)
