"""One ECS service's rolling deployments, as the ECS Developer Guide documents them; the rehearsal's ECS agent asks it
what to run and tells it what happened, and the emulated account shows its deployments in DescribeServices.

- A new task definition on the service starts a new PRIMARY deployment (IN_PROGRESS); the previous one becomes ACTIVE
  and keeps its tasks until they are replaced.
- Rolling update: at most `maximumPercent` of the desired count runs at once, and old tasks are stopped only while the
  healthy tasks left stay at or above `minimumHealthyPercent`. A task counts as healthy once its target group's health
  check passed `HealthyThresholdCount` times in a row at `HealthCheckIntervalSeconds` (and its container health check
  reports HEALTHY, where it has one).
- The deployment is COMPLETED when the desired count of its tasks is healthy and no older task runs.
- Deployment circuit breaker: a task that fails to start, exits, or is stopped for failing health checks counts as
  failed; at `0.5 x desired count` failures (at least 3, at most 200) the deployment is FAILED. With rollback, ECS
  starts a deployment of the last COMPLETED task definition (the service's task definition goes back to it). An alarm
  of the deployment configuration in ALARM does the same.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
_ids = itertools.count(1)


def breaker_threshold(desired: int) -> int:
    """Failed tasks that trip the circuit breaker: half the desired count, clamped to 3..200 (ECS Developer Guide,
    "How the Amazon ECS deployment circuit breaker detects failures")."""
    return min(200, max(3, math.ceil(0.5 * desired)))


@dataclass
class Deployment:
    task_definition: str
    desired: int
    status: str = "PRIMARY"
    rollout_state: str = "IN_PROGRESS"
    reason: str = ""
    failed_tasks: int = 0
    running: int = 0
    healthy: int = 0
    id: str = field(default_factory=lambda: f"ecs-svc/{next(_ids):019d}")

    def shape(self) -> dict[str, Any]:
        """As DescribeServices shows a deployment."""
        return {"id": self.id, "status": self.status, "taskDefinition": self.task_definition,
                "desiredCount": self.desired, "runningCount": self.running,
                "pendingCount": max(self.desired - self.running, 0) if self.status == "PRIMARY" else 0,
                "failedTasks": self.failed_tasks, "rolloutState": self.rollout_state,
                "rolloutStateReason": self.reason or f"ECS deployment {self.id} {self.rollout_state.lower()}."}


@dataclass
class Plan:
    """What the agent should do now: start this many tasks of the primary task definition, stop these old ones."""

    start: int = 0
    stop: list[str] = field(default_factory=list)
    """Task ids, oldest deployments first."""


@dataclass
class ServiceDeployments:
    task_definition: str
    desired: int
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    circuit_breaker: bool = False
    rollback: bool = False
    deployments: list[Deployment] = field(default_factory=list)
    completed_task_definition: str | None = None
    """The last task definition whose deployment completed: where a rollback goes."""
    events: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.deployments:
            self.deployments.append(Deployment(self.task_definition, self.desired))

    @property
    def primary(self) -> Deployment:
        return next(d for d in self.deployments if d.status == "PRIMARY")

    def update(self, task_definition: str, desired: int) -> None:
        """The service as UpdateService (or Terraform) left it."""
        self.desired = desired
        self.primary.desired = desired
        if task_definition != self.primary.task_definition:
            self._new_primary(task_definition, f"a deployment of {task_definition.rsplit('/', 1)[-1]} started")

    def _new_primary(self, task_definition: str, event: str) -> None:
        for deployment in self.deployments:
            if deployment.status == "PRIMARY":
                deployment.status = "ACTIVE"
        self.task_definition = task_definition
        self.deployments.insert(0, Deployment(task_definition, self.desired))
        self.events.append(event)

    def plan(self, tasks: dict[str, list[tuple[str, bool]]]) -> Plan:
        """`tasks`: task definition -> [(task id, healthy)] of the tasks running now."""
        primary = self.primary
        if primary.rollout_state == "FAILED":  # tripped with nothing to roll back to: ECS starts no more
            return Plan()
        running = sum(len(v) for v in tasks.values())
        mine = tasks.get(primary.task_definition, [])
        healthy_mine = sum(1 for _, healthy in mine if healthy)
        maximum = math.floor(self.desired * self.maximum_percent / 100)
        minimum = math.ceil(self.desired * self.minimum_healthy_percent / 100)
        # With no room left (maximumPercent), nothing starts: old tasks go once new ones are healthy.
        plan = Plan(start=max(0, min(self.desired - len(mine), maximum - running)))
        old = [(task_id, healthy) for definition, items in tasks.items() if definition != primary.task_definition
               for task_id, healthy in items]
        healthy_total = healthy_mine + sum(1 for _, healthy in old if healthy)
        for task_id, healthy in sorted(old, key=lambda item: item[1]):  # unhealthy old tasks first
            if not healthy or healthy_total - 1 >= minimum:
                plan.stop.append(task_id)
                healthy_total -= 1 if healthy else 0
        if len(mine) > self.desired:
            plan.stop.extend(task_id for task_id, _ in sorted(mine, key=lambda item: item[1])[self.desired:])
        return plan

    def observe(self, tasks: dict[str, list[tuple[str, bool]]]) -> None:
        """Counts per deployment, and completion."""
        for deployment in self.deployments:
            items = tasks.get(deployment.task_definition, [])
            deployment.running = len(items)
            deployment.healthy = sum(1 for _, healthy in items if healthy)
        primary = self.primary
        # Tasks of the primary's task definition count for it (a rollback finds the old tasks still running).
        others_running = sum(len(items) for definition, items in tasks.items()
                             if definition != primary.task_definition)
        if primary.rollout_state == "IN_PROGRESS" and primary.healthy >= self.desired and others_running == 0:
            primary.rollout_state = "COMPLETED"
            primary.reason = f"ECS deployment {primary.id} completed."
            self.completed_task_definition = primary.task_definition
            self.deployments = [primary]
            self.events.append(f"deployment of {primary.task_definition.rsplit('/', 1)[-1]} completed")

    def task_failed(self, task_definition: str, why: str) -> None:
        """A task of `task_definition` failed to start, exited, or was stopped for failing its health checks."""
        deployment = next((d for d in self.deployments if d.task_definition == task_definition), None)
        if deployment is None or deployment.rollout_state != "IN_PROGRESS":
            return
        deployment.failed_tasks += 1
        self.events.append(f"task of {task_definition.rsplit('/', 1)[-1]} failed: {why}")
        if (self.circuit_breaker and deployment.status == "PRIMARY"
                and deployment.failed_tasks >= breaker_threshold(self.desired)):
            self._fail(deployment, BREAKER_REASON)

    def alarm(self, names: list[str]) -> None:
        """Deployment alarms in ALARM during the deployment fail it (and roll it back, with rollback)."""
        primary = self.primary
        if primary.rollout_state == "IN_PROGRESS" and names:
            self._fail(primary, f"ECS deployment {primary.id} failed: alarm(s) {', '.join(names)} in ALARM state.")

    def _fail(self, deployment: Deployment, reason: str) -> None:
        deployment.rollout_state = "FAILED"
        deployment.reason = reason
        self.events.append(f"(deployment {deployment.id}) deployment failed: {reason}")
        target = self.completed_task_definition
        if self.rollback and target and target != deployment.task_definition:
            self._new_primary(target, f"rolling back to {target.rsplit('/', 1)[-1]}: {reason}")
            self.primary.reason = f"ECS deployment {self.primary.id} in progress: rolling back. {reason}"

    def shape(self) -> list[dict[str, Any]]:
        return [d.shape() for d in self.deployments]
