"""Each environment's monthly cost, and the pipeline's, from the synthesized stacks and a price snapshot.

What runs around the clock is arithmetic of the stacks: every Fargate service at its desired count (its capacity
provider strategy splitting regular Fargate and Spot, the `base` tasks on regular Fargate), load balancers,
NAT gateways, public IPv4 addresses (NAT gateways' and an internet-facing load balancer's, one per zone), KMS keys,
alarms (a target-tracking policy's two included), dashboards, secrets, VPC endpoints, scheduled tasks by their
schedules. What traffic drives uses the stated assumptions (preview/cost_assumptions.py): load balancer capacity
units, NAT data, logs, captured data, data out. A dimension the snapshot lacks for the region is a line marked not
priced, never a zero and never another region's price.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from preview.cost_assumptions import Assumptions
from preview.prices import PriceBook
from preview.synthesized import Resource, Synthesized

HOURS_PER_MONTH = 730
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
FREE_RULE_EVALUATIONS = 10
"""A load balancer's listener evaluates this many rules per request free of LCUs."""


@dataclass(frozen=True)
class Line:
    key: str
    """Stable identity across estimates (`<dimension>: <what>`), for comparing two of them."""
    what: str
    dimension: str
    quantity: float
    """Per month, in `unit`."""
    unit: str
    unit_usd: float | None
    """None: the snapshot has no price for this dimension in this region."""
    driven_by: str = "stacks"
    """`stacks` (always on, exact) or `assumptions` (traffic-driven)."""
    note: str = ""

    @property
    def monthly_usd(self) -> float | None:
        return None if self.unit_usd is None else self.quantity * self.unit_usd

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "dimension": self.dimension, "quantity": round(self.quantity, 6),
                "unit": self.unit, "unit_usd": self.unit_usd,
                "monthly_usd": None if self.monthly_usd is None else round(self.monthly_usd, 2),
                "driven_by": self.driven_by, **({"note": self.note} if self.note else {})}


@dataclass
class Bill:
    name: str
    lines: list[Line] = field(default_factory=list)

    @property
    def monthly_usd(self) -> float:
        return sum(line.monthly_usd or 0.0 for line in self.lines)

    @property
    def not_priced(self) -> list[Line]:
        return [line for line in self.lines if line.unit_usd is None]


class Pricer:
    """Lines priced from the book for one region."""

    def __init__(self, book: PriceBook, region: str):
        book.check_region(region)
        self.book, self.region = book, region

    def line(self, dimension: str, what: str, quantity: float, unit: str, driven_by: str = "stacks",
             note: str = "", subject: str | None = None) -> Line:
        """`subject`: what the line is about without its counts (`what` says them), so that two estimates' lines
        about the same thing are compared."""
        key = f"{dimension}: {subject or what}"
        price = self.book.price(self.region, dimension)
        if price is None:
            return Line(key, what, dimension, quantity, unit, None, driven_by,
                        f"not priced (no price for {dimension} in {self.region} in the snapshot of "
                        f"{self.book.snapshot_date})")
        return Line(key, what, dimension, quantity, unit, price.usd_per_unit, driven_by, note)


# --- reading the stacks ------------------------------------------------------------------------------------------
def _one_of(synth: Synthesized, resource: Resource, value: Any, resource_type: str) -> Resource | None:
    for address in synth.refs(resource, value):
        if address.type == resource_type:
            return synth.resource(address)
    return None


def _environment(task: Resource) -> dict[str, str]:
    container = json.loads(task.get("container_definitions", "[{}]"))[0]
    return {item["name"]: item["value"] for item in container.get("environment", [])}


def _task_size(task: Resource) -> tuple[float, float, bool]:
    """(vCPU, GB, ARM) of a Fargate task definition."""
    arm = (task.get("runtime_platform") or {}).get("cpu_architecture") == "ARM64"
    return int(task.get("cpu", 256)) / 1024, int(task.get("memory", 512)) / 1024, arm


def split_by_strategy(tasks: int, strategy: list[dict[str, Any]]) -> tuple[float, float]:
    """(regular, Spot) tasks: each provider's `base` first, the rest by weight (ECS's capacity provider strategy)."""
    if not strategy:
        return float(tasks), 0.0
    regular = spot = 0.0
    remaining = float(tasks)
    for entry in strategy:
        base = min(float(entry.get("base") or 0), remaining)
        remaining -= base
        if entry.get("capacity_provider") == "FARGATE_SPOT":
            spot += base
        else:
            regular += base
    total_weight = sum(float(entry.get("weight") or 0) for entry in strategy)
    if remaining and total_weight:
        for entry in strategy:
            share = remaining * float(entry.get("weight") or 0) / total_weight
            if entry.get("capacity_provider") == "FARGATE_SPOT":
                spot += share
            else:
                regular += share
    elif remaining:
        regular += remaining
    return regular, spot


def runs_per_month(expression: str | None) -> float | None:
    """Runs a month of `rate(...)` or a `cron(...)` whose day fields are `*`/`?`; None when it cannot tell."""
    if not expression:
        return None
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if rate:
        minutes = int(rate.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[rate.group(2).rstrip("s")]
        return HOURS_PER_MONTH * 60 / minutes
    cron = re.fullmatch(r"cron\((.+)\)", expression.strip())
    if cron is None:
        return None
    parts = cron.group(1).split()
    if len(parts) != 6 or any(part not in ("*", "?") for part in (parts[2], parts[3], parts[4])):
        return None
    per_day = 1.0
    for part, size in ((parts[0], 60), (parts[1], 24)):
        count = _cron_values(part, size)
        if count is None:
            return None
        per_day *= count
    return per_day * DAYS_PER_MONTH


def _cron_values(part: str, size: int) -> int | None:
    if part == "*":
        return size
    step = re.fullmatch(r"(?:\*|0)/(\d+)", part)
    if step:
        return -(-size // int(step.group(1)))
    if re.fullmatch(r"\d+(,\d+)*", part):
        return len(part.split(","))
    return None


# --- the estimate ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    environments: dict[str, Bill]
    pipeline: Bill
    region: str
    book: PriceBook
    assumptions: Assumptions

    def as_dict(self) -> dict[str, Any]:
        def bill(item: Bill) -> dict[str, Any]:
            return {"monthly_usd": round(item.monthly_usd, 2), "lines": [line.as_dict() for line in item.lines],
                    "not_priced": len(item.not_priced)}

        return {"environments": {name: bill(item) for name, item in self.environments.items()},
                "pipeline": bill(self.pipeline),
                "prices": {"source": f"preview/data/{self.book.path.name}: AWS list prices, each row citing "
                                     "the offer file or page it traces to", "as_of": self.book.snapshot_date,
                           "region": self.region},
                "assumptions": self.assumptions.as_dict()}


def estimate(synth: Synthesized, project: str, environments: Iterable[str], book: PriceBook,
             assumptions: Assumptions) -> Estimate:
    region = region_of(synth)
    pricer = Pricer(book, region)
    bills = {name: _environment_bill(synth, project, name, pricer, assumptions) for name in environments}
    return Estimate(bills, _pipeline_bill(synth, project, pricer, assumptions), region, book, assumptions)


def region_of(synth: Synthesized) -> str:
    regions = {provider.get("region") for document in synth.stacks.values()
               for provider in document.get("provider", {}).get("aws", [])
               if not provider.get("alias") and provider.get("region")}
    if len(regions) != 1:
        raise ValueError(f"the synthesized stacks name {len(regions)} regions ({sorted(map(str, regions))}); the "
                         "estimate prices one")
    return str(regions.pop())


def _environment_bill(synth: Synthesized, project: str, environment: str, pricer: Pricer,
                      assumptions: Assumptions) -> Bill:
    prefix = f"{project}-{environment}-"
    stacks = [name for name in synth.stacks if name == f"{prefix}platform" or name.startswith(f"{prefix}endpoint-")]
    bill = Bill(environment)
    endpoints = [name for name in stacks if name.startswith(f"{prefix}endpoint-")]
    for stack in stacks:
        bill.lines += _services(synth, stack, pricer)
        bill.lines += _scheduled_tasks(synth, stack, pricer, assumptions)
        bill.lines += _fixed_items(synth, stack, pricer)
    bill.lines += _load_balancers(synth, stacks, pricer, assumptions)
    bill.lines += _network(synth, stacks, pricer, assumptions, len(endpoints))
    bill.lines += _storage_and_logs(synth, stacks, endpoints, pricer, assumptions)
    return bill


def _services(synth: Synthesized, stack: str, pricer: Pricer) -> list[Line]:
    lines = []
    for service in synth.resources("aws_ecs_service", stack):
        task = _one_of(synth, service, service.get("task_definition"), "aws_ecs_task_definition")
        if task is None:
            continue
        count = int(service.get("desired_count") or 0)
        vcpu, gb, arm = _task_size(task)
        regular, spot = split_by_strategy(count, service.get("capacity_provider_strategy") or [])
        arch = "_arm" if arm else ""
        name = f"service {service.get('name')} of endpoint {stack.rsplit('-endpoint-', 1)[-1]}"
        for share, kind, label in ((regular, "", "on-demand"), (spot, "_spot", "Spot")):
            if share <= 0:
                continue
            what = f"{name}: {share:g} x {vcpu:g} vCPU, {label}"
            lines.append(pricer.line(f"fargate{kind}{arch}_vcpu_hour", what, share * vcpu * HOURS_PER_MONTH,
                                     "vCPU-hour", subject=f"{name}, {label}"))
            what = f"{name}: {share:g} x {gb:g} GB, {label}"
            lines.append(pricer.line(f"fargate{kind}{arch}_gb_hour", what, share * gb * HOURS_PER_MONTH, "GB-hour",
                                     subject=f"{name}, {label}"))
    return lines


def _scheduled_tasks(synth: Synthesized, stack: str, pricer: Pricer, assumptions: Assumptions) -> list[Line]:
    lines = []
    for target in synth.resources("aws_cloudwatch_event_target", stack):
        ecs = target.get("ecs_target") or {}
        task = _one_of(synth, target, ecs.get("task_definition_arn"), "aws_ecs_task_definition")
        rule = _one_of(synth, target, target.get("rule"), "aws_cloudwatch_event_rule")
        if task is None or rule is None or not rule.get("schedule_expression"):
            continue  # an event-driven run (a model promoted): counted with deploys, not here
        runs = runs_per_month(rule.get("schedule_expression"))
        vcpu, gb, arm = _task_size(task)
        what = f"task {task.get('family')} {rule.get('schedule_expression')}"
        if runs is None:
            expression = rule.get("schedule_expression")
            lines.append(Line(f"fargate_vcpu_hour: {what}", what, "fargate_vcpu_hour", 0, "vCPU-hour", None,
                              "assumptions", f"not priced (cannot count the runs of {expression})"))
            continue
        hours = runs * max(assumptions.task_run_minutes, 1) / 60 * int(ecs.get("task_count") or 1)
        arch = "_arm" if arm else ""
        lines.append(pricer.line(f"fargate{arch}_vcpu_hour", f"{what}, {runs:.0f} runs", hours * vcpu, "vCPU-hour",
                                 "assumptions", subject=what))
        lines.append(pricer.line(f"fargate{arch}_gb_hour", f"{what}, {runs:.0f} runs", hours * gb, "GB-hour",
                                 "assumptions", subject=what))
    return lines


def _count(synth: Synthesized, stacks: Iterable[str], resource_type: str) -> int:
    return sum(1 for stack in stacks for _ in synth.resources(resource_type, stack))


def _fixed_items(synth: Synthesized, stack: str, pricer: Pricer) -> list[Line]:
    """Per-stack items billed by the month whatever the traffic."""
    short = stack.rsplit("-endpoint-", 1)[-1] if "-endpoint-" in stack else stack.rsplit("-", 1)[-1]
    short = f"endpoint {short}" if "-endpoint-" in stack else short
    lines = []
    keys = _count(synth, [stack], "aws_kms_key")
    if keys:
        lines.append(pricer.line("kms_key_month", f"KMS keys ({short})", keys, "key-month"))
    # CloudWatch bills an alarm per metric it reads: a metric-math alarm's metrics count, its expressions do not.
    # A high-resolution alarm (a period under a minute) has its own, higher price.
    every_alarm = list(synth.resources("aws_cloudwatch_metric_alarm", stack))
    fast = [alarm for alarm in every_alarm if int(alarm.get("period") or 60) < 60]
    alarms = sum(max(sum(1 for query in alarm.get("metric_query") or [] if query.get("metric")), 1)
                 for alarm in every_alarm if alarm not in fast)
    if fast:
        lines.append(pricer.line("cw_alarm_high_resolution_month", f"high-resolution alarms ({short}): {len(fast)}",
                                 len(fast), "alarm-metric-month", subject=f"high-resolution alarms ({short})"))
    publishing = sum(1 for task in synth.resources("aws_ecs_task_definition", stack)
                     if "SERVING_CONCURRENCY_METRIC_SECONDS" in _environment(task))
    if publishing:
        # ConcurrentRequests and PeakConcurrentRequests, per service (Model, Environment and Variant)
        lines.append(pricer.line("cw_custom_metric_month", f"concurrency metrics ({short}): {2 * publishing}",
                                 2 * publishing, "metric-month", subject=f"concurrency metrics ({short})",
                                 note="published every 10 s at one-second resolution"))
    # Target tracking makes two alarms per policy, each reading the policy's metrics (metric math: each of them).
    policies = [policy for policy in synth.resources("aws_appautoscaling_policy", stack)
                if policy.get("policy_type") == "TargetTrackingScaling"]
    tracking = len(policies)
    tracking_metrics = sum(2 * max(1, sum(1 for query in ((policy.get("target_tracking_scaling_policy_configuration")
                                                            or {}).get("customized_metric_specification") or {})
                                          .get("metrics") or [] if query.get("metric_stat")))
                           for policy in policies)
    if alarms or tracking:
        what = f"alarms ({short}): {alarms}" + (f" + {tracking_metrics} of {tracking} target-tracking policies"
                                               if tracking else "")
        lines.append(pricer.line("cw_alarm_standard_month", what, alarms + tracking_metrics, "alarm-metric-month",
                                 subject=f"alarms ({short})"))
    dashboards = _count(synth, [stack], "aws_cloudwatch_dashboard")
    if dashboards:
        lines.append(pricer.line("cw_dashboard_month", f"dashboards ({short})", dashboards, "dashboard-month",
                                 note="the first 3 per account are free: not subtracted"))
    secrets = _count(synth, [stack], "aws_secretsmanager_secret")
    if secrets:
        lines.append(pricer.line("secretsmanager_secret_month", f"Secrets Manager secrets ({short})", secrets,
                                 "secret-month"))
    return lines


def _load_balancers(synth: Synthesized, stacks: list[str], pricer: Pricer, assumptions: Assumptions) -> list[Line]:
    lines = []
    rules_by_balancer: dict[str, int] = {}
    for stack in stacks:
        for rule in synth.resources("aws_lb_listener_rule", stack):
            listener = _one_of(synth, rule, rule.get("listener_arn"), "aws_lb_listener")
            balancer = _one_of(synth, listener, listener.get("load_balancer_arn"), "aws_lb") if listener else None
            if balancer is not None:
                rules_by_balancer[str(balancer.address)] = rules_by_balancer.get(str(balancer.address), 0) + 1
    for stack in stacks:
        for balancer in synth.resources("aws_lb", stack):
            kind = balancer.get("load_balancer_type") or "application"
            name = balancer.get("name") or balancer.address.logical_id
            if kind == "network":
                lines.append(pricer.line("nlb_hour", f"network load balancer {name}", HOURS_PER_MONTH, "NLB-hour"))
                continue
            lines.append(pricer.line("alb_hour", f"load balancer {name}", HOURS_PER_MONTH, "ALB-hour"))
            rules = rules_by_balancer.get(str(balancer.address), 0)
            if not rules:
                continue
            requests = assumptions.requests_per_month * rules  # one rule per endpoint routed here
            per_second = requests / (HOURS_PER_MONTH * 3600)
            gb_per_hour = requests * (assumptions.request_kb + assumptions.response_kb) / 1e6 / HOURS_PER_MONTH
            lcu = max(per_second * assumptions.new_connection_share / 25, gb_per_hour / 1.0,
                      per_second * max(rules - FREE_RULE_EVALUATIONS, 0) / 1000)
            lines.append(pricer.line(
                "alb_lcu_hour", f"load balancer {name}: {requests:,.0f} requests to {rules} endpoint(s)",
                lcu * HOURS_PER_MONTH, "LCU-hour", "assumptions", subject=f"load balancer {name}",
                note=f"{lcu:.4f} LCU on average (the largest of new connections, processed bytes, rule evaluations)"))
    return lines


def _network(synth: Synthesized, stacks: list[str], pricer: Pricer, assumptions: Assumptions,
             endpoints: int) -> list[Line]:
    lines = []
    nats = _count(synth, stacks, "aws_nat_gateway")
    if nats:
        lines.append(pricer.line("nat_hour", f"{nats} NAT gateway(s)", nats * HOURS_PER_MONTH, "NAT gateway-hour",
                                 subject="NAT gateways"))
    addresses = _count(synth, stacks, "aws_eip")
    for stack in stacks:
        for balancer in synth.resources("aws_lb", stack):
            if not balancer.get("internal") and (balancer.get("load_balancer_type") or "application") == "application":
                addresses += len(balancer.get("subnets") or [])
    if addresses:
        lines.append(pricer.line("public_ipv4_hour", f"{addresses} public IPv4 addresses (NAT, load balancer nodes)",
                                 addresses * HOURS_PER_MONTH, "address-hour", subject="public IPv4 addresses"))
    endpoints_by_type: dict[str, int] = {}
    for stack in stacks:
        for endpoint in synth.resources("aws_vpc_endpoint", stack):
            kind = endpoint.get("vpc_endpoint_type") or "Gateway"
            zones = len(endpoint.get("subnet_ids") or []) if kind == "Interface" else 0
            endpoints_by_type[kind] = endpoints_by_type.get(kind, 0) + (zones or 1)
    if endpoints_by_type.get("Interface"):
        count = endpoints_by_type["Interface"]
        lines.append(pricer.line("vpce_interface_hour", f"VPC interface endpoints: {count} zone attachment(s)",
                                 count * HOURS_PER_MONTH, "endpoint-zone-hour", subject="VPC interface endpoints"))
    gateway_s3 = "Gateway" in endpoints_by_type
    interface_ecr = endpoints_by_type.get("Interface", 0) > 0
    tasks = sum(int(service.get("desired_count") or 0) for stack in stacks
                for service in synth.resources("aws_ecs_service", stack))
    pulls = 0.0 if interface_ecr and gateway_s3 else assumptions.deploys_per_month * tasks * assumptions.image_gb
    captured = 0.0 if gateway_s3 else _captured_gb(synth, stacks, assumptions)
    if nats and (pulls or captured):
        lines.append(pricer.line(
            "nat_gb", f"NAT data: image pulls ({assumptions.deploys_per_month:g} deploys x {tasks} tasks x "
            f"{assumptions.image_gb:g} GB)" + (", captures" if captured else ""), pulls + captured,
            "GB processed", "assumptions", subject="NAT data"))
    return lines


def _capture_share(synth: Synthesized, stack: str) -> float:
    for service in synth.resources("aws_ecs_service", stack):
        task = _one_of(synth, service, service.get("task_definition"), "aws_ecs_task_definition")
        if task is not None:
            return float(_environment(task).get("SERVING_CAPTURE_SAMPLE_PERCENT", "0")) / 100
    return 0.0


def _captured_gb(synth: Synthesized, stacks: list[str], assumptions: Assumptions) -> float:
    per_request_gb = (assumptions.request_kb + assumptions.response_kb) / 1e6
    return sum(assumptions.requests_per_month * _capture_share(synth, stack) * per_request_gb
               for stack in stacks if "-endpoint-" in stack)


def _storage_and_logs(synth: Synthesized, stacks: list[str], endpoints: list[str], pricer: Pricer,
                      assumptions: Assumptions) -> list[Line]:
    lines = []
    for stack in endpoints:
        endpoint = f"endpoint {stack.rsplit('-endpoint-', 1)[-1]}"
        kept = 1
        for task in synth.resources("aws_ecs_task_definition", stack):
            kept = max(kept, int(_environment(task).get("SYNC_KEEP_VERSIONS", "0") or 0))
        systems = _count(synth, [stack], "aws_efs_file_system")
        if systems:
            gb = systems * kept * assumptions.model_mb / 1000
            lines.append(pricer.line("efs_standard_gb_month", f"EFS of {endpoint}: {kept} model version(s) of "
                                     f"{assumptions.model_mb:g} MB", gb, "GB-month", "assumptions",
                                     subject=f"EFS of {endpoint}"))
            if _count(synth, [stack], "aws_efs_backup_policy"):
                lines.append(pricer.line("backup_efs_warm_gb_month", f"EFS backups of {endpoint}", gb, "GB-month",
                                         "assumptions"))
    logged_gb = len(endpoints) * assumptions.requests_per_month * assumptions.log_bytes_per_request / 1e9
    if endpoints:
        lines.append(pricer.line("logs_ingest_gb", f"container logs of {len(endpoints)} endpoint(s)", logged_gb,
                                 "GB ingested", "assumptions", subject="container logs"))
        retention = max((int(group.get("retention_in_days") or 0) for stack in endpoints
                         for group in synth.resources("aws_cloudwatch_log_group", stack)), default=30)
        lines.append(pricer.line("logs_storage_gb_month", f"container logs kept {retention} days",
                                 logged_gb * min(retention, 3650) / DAYS_PER_MONTH, "GB-month", "assumptions",
                                 note="once the retention period has filled", subject="container logs kept"))
    if _count(synth, stacks, "aws_flow_log"):
        lines.append(pricer.line("logs_vended_gb", "VPC flow logs", assumptions.flow_log_gb_per_month,
                                 "GB ingested", "assumptions"))
    captured = _captured_gb(synth, stacks, assumptions)
    if captured:
        lines.append(pricer.line("s3_standard_gb_month", "captured requests and answers, one month's", captured,
                                 "GB-month", "assumptions", note="grows by this much each month it is kept"))
    exports = sum(runs_per_month(rule.get("schedule_expression")) or 0 for stack in endpoints
                  for rule in synth.resources("aws_cloudwatch_event_rule", stack)
                  if "capture-export" in str(rule.get("name")))
    if exports:
        lines.append(pricer.line("s3_put_request", "capture files exported (one per export run)", exports,
                                 "request", "assumptions"))
    if endpoints:
        lines.append(pricer.line("s3_standard_gb_month", "model bucket: one version per endpoint",
                                 len(endpoints) * assumptions.model_mb / 1000, "GB-month", "assumptions"))
    repositories = _count(synth, stacks, "aws_ecr_repository")
    if repositories:
        lines.append(pricer.line("ecr_gb_month", f"serving images kept ({_images_kept(synth, stacks)} per "
                                 "repository)", repositories * _images_kept(synth, stacks) * assumptions.image_gb,
                                 "GB-month", "assumptions", subject="serving images kept"))
    public = [balancer for stack in stacks for balancer in synth.resources("aws_lb", stack)
              if not balancer.get("internal")]
    if public and endpoints:
        out_gb = assumptions.requests_per_month * len(endpoints) * assumptions.response_kb / 1e6
        lines.append(pricer.line("data_transfer_out_gb_first_tier", "answers to internet clients", out_gb, "GB",
                                 "assumptions", note="all endpoints counted as public where the environment has an "
                                                     "internet-facing load balancer"))
    return lines


def _images_kept(synth: Synthesized, stacks: list[str]) -> int:
    kept = 0
    for stack in stacks:
        for policy in synth.resources("aws_ecr_lifecycle_policy", stack):
            for rule in json.loads(policy.get("policy") or "{}").get("rules", []):
                selection = rule.get("selection", {})
                if selection.get("countType") == "imageCountMoreThan":
                    kept = max(kept, int(selection.get("countNumber", 0)))
    return kept or 1


def _pipeline_bill(synth: Synthesized, project: str, pricer: Pricer, assumptions: Assumptions) -> Bill:
    bill = Bill("pipeline")
    stacks = [name for name in (f"{project}-pipeline", f"{project}-bootstrap") if name in synth.stacks]
    minutes_by_kind = {"test": assumptions.test_minutes, "build": assumptions.build_minutes,
                       "deploy": assumptions.deploy_minutes, "smoke": assumptions.smoke_minutes}
    action_minutes = 0.0
    for project_resource in synth.resources("aws_codebuild_project", f"{project}-pipeline"):
        name = str(project_resource.get("name"))
        kind = next((kind for kind in minutes_by_kind if f"-{kind}" in name), None)
        if kind is None:
            continue
        minutes = minutes_by_kind[kind] * assumptions.deploys_per_month
        action_minutes += minutes
        compute = str((project_resource.get("environment") or {}).get("compute_type", "")).lower()
        size = compute.removeprefix("build_general1_")
        bill.lines.append(pricer.line(f"codebuild_general1_{size}_min", f"CodeBuild {name} ({compute})", minutes,
                                      "build-minute", "assumptions"))
    for pipeline in synth.resources("aws_codepipeline", f"{project}-pipeline"):
        if pipeline.get("pipeline_type") == "V2":
            bill.lines.append(pricer.line("codepipeline_v2_action_minute", f"CodePipeline {pipeline.get('name')}: "
                                          "action minutes", action_minutes, "action-minute", "assumptions"))
        else:
            bill.lines.append(pricer.line("codepipeline_v1_pipeline_month", f"CodePipeline {pipeline.get('name')}",
                                          1, "pipeline-month"))
    for stack in stacks:
        bill.lines += _fixed_items(synth, stack, pricer)
    repositories = _count(synth, stacks, "aws_ecr_repository")
    if repositories:
        bill.lines.append(pricer.line("ecr_gb_month", "build images kept", repositories * _images_kept(
            synth, stacks) * assumptions.image_gb, "GB-month", "assumptions"))
    if _count(synth, stacks, "aws_s3_bucket"):
        bill.lines.append(pricer.line("s3_standard_gb_month", "Terraform state and pipeline artifacts",
                                      assumptions.state_gb, "GB-month", "assumptions"))
    tables = _count(synth, stacks, "aws_dynamodb_table")
    if tables:
        stacks_deployed = sum(1 for name in synth.stacks if name not in stacks)
        writes = assumptions.deploys_per_month * stacks_deployed * 2  # take and release the lock
        bill.lines.append(pricer.line("dynamodb_wru", "state lock writes", writes, "write request unit",
                                      "assumptions"))
    return bill
