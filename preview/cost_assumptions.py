"""What the cost estimate assumes where the stacks cannot say: traffic, payloads, sizes, how often the pipeline runs.

Each has a documented default and is overridden by name, e.g. `make cost REQUESTS_PER_MONTH=5000000`; an unknown
name or a value that is not a non-negative number is an error naming the field, the value and the names known.
Everything else in the estimate (task counts and sizes, the Spot split, load balancers, NAT gateways, addresses,
keys, alarms, log retention, schedules) is read from the synthesized stacks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


class AssumptionError(Exception):
    pass


@dataclass(frozen=True)
class Assumptions:
    requests_per_month: float = 1_000_000
    """Predictions per endpoint per environment per month (through its load balancer)."""
    request_kb: float = 2.0
    """Average request body."""
    response_kb: float = 1.0
    """Average answer body."""
    new_connection_share: float = 1.0
    """New TCP connections per request at the load balancer (1: no reuse, the most LCUs)."""
    log_bytes_per_request: float = 400
    """Container log per request (access log line and metrics in embedded metric format)."""
    model_mb: float = 50
    """One model version's size: on EFS (each version kept) and in the model bucket."""
    image_gb: float = 0.6
    """The serving image, compressed: ECR storage and each pull through NAT."""
    deploys_per_month: float = 20
    """Pipeline runs (one push each): CodeBuild and CodePipeline minutes, image pulls by new tasks."""
    test_minutes: float = 6
    """CodeBuild minutes of the Test step per run."""
    build_minutes: float = 8
    """CodeBuild minutes of the Build step (the serving image) per run."""
    deploy_minutes: float = 12
    """CodeBuild minutes of one environment's Deploy step per run."""
    smoke_minutes: float = 3
    """CodeBuild minutes of one environment's Smoke step per run."""
    task_run_minutes: float = 1
    """One run of a scheduled task (model sync, capture export); Fargate bills at least one minute."""
    flow_log_gb_per_month: float = 1
    """VPC flow logs per environment."""
    state_gb: float = 0.1
    """Terraform state and pipeline artifacts kept in S3."""

    @classmethod
    def names(cls) -> list[str]:
        return [field.name.upper() for field in fields(cls)]

    def with_overrides(self, overrides: dict[str, str]) -> Assumptions:
        changes: dict[str, float] = {}
        for name, value in overrides.items():
            field_name = name.lower()
            if field_name not in {field.name for field in fields(self)}:
                raise AssumptionError(f"unknown cost assumption {name}={value}; known: {', '.join(self.names())}")
            try:
                number = float(value)
            except ValueError:
                raise AssumptionError(f"{name}={value!r} is not a number (e.g. {name}="
                                      f"{getattr(self, field_name):g})") from None
            if number < 0:
                raise AssumptionError(f"{name}={value} is negative; give a number of 0 or more")
            changes[field_name] = number
        return replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
