"""The configuration schema: pydantic models whose fields document their defaults.

Single-field rules (syntax, ranges) live here as field validators so that pydantic reports them with the field's
path. Rules that relate several fields or several environments live in `configuration.rules`.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.fields import FieldInfo

from configuration.naming import aws_name
from configuration.zones import region_zones
from serving.contract import READINESS_PATH

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ACCOUNT_RE = re.compile(r"^\d{12}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
HOST_RE = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

# Log retention values that CloudWatch Logs accepts (days); anything else fails at apply time.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)


def _check_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return value


def _check_name(value: str, what: str, max_length: int) -> str:
    if not NAME_RE.match(value) or "--" in value:
        raise ValueError(f"{what} must be lower-case letters, digits and single hyphens, starting with a letter "
                         "and not ending with a hyphen")
    if len(value) > max_length:
        raise ValueError(f"{what} must be at most {max_length} characters (AWS name limits), it has {len(value)}")
    return value


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduledScaling(StrictModel):
    """A scheduled change of an endpoint's task bounds."""

    name: str
    """Short name, unique per endpoint."""
    schedule: str
    """`cron(...)`, `rate(...)` or `at(...)` in Application Auto Scaling syntax."""
    min_tasks: int = Field(ge=0, le=1000)
    max_tasks: int = Field(ge=0, le=1000)
    timezone: str = "UTC"

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not re.match(r"^(cron|rate|at)\(.+\)$", value):
            raise ValueError("must be cron(...), rate(...) or at(...), e.g. cron(0 20 * * ? *)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_name(value, "scheduled action name", 40)


VERSION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VARIANT_NAME_MAX = 12
"""Variant names become part of service, target group and log group names."""


class VariantConfig(StrictModel):
    """One variant of an endpoint: its own ECS service (and target group when it serves) on the endpoint's EFS, with
    the endpoint's image, sizes, autoscaling bounds and alarms."""

    weight: int = Field(ge=0, le=100)
    """Share of the endpoint's requests (percent) the load balancer sends here; the weights of the variants that
    serve add up to 100. 0: a shadow variant, which needs `shadow_percent`."""
    model_version: str | None = None
    """The model version this variant serves; when omitted, the endpoint's LIVE version (as promoted)."""
    shadow_percent: float = Field(default=0.0, ge=0, le=100)
    """For a variant with weight 0: the share of the serving variants' requests copied to it. Its answers are
    captured, never returned."""

    @field_validator("model_version")
    @classmethod
    def _version_name(cls, value: str | None) -> str | None:
        if value is not None and (not VERSION_NAME_RE.match(value) or value == "LIVE"):
            raise ValueError("must be a model version name: letters, digits, '.', '_' or '-', up to 64 characters, "
                             "e.g. \"7\" (the names `python -m pipeline.models promote` gives)")
        return value


EXPOSURE_OF_BALANCER = {"internet-facing": "public", "internal": "internal"}
"""`environments.<env>.load_balancers` entry -> the `exposure` of the endpoints it routes to."""
HTTPS_URL_RE = re.compile(r"^https://[a-z0-9.-]+(:\d+)?(/[^\s]*)?$")


class JwtClaim(StrictModel):
    """A claim the load balancer requires in every token, besides `exp`, `iss`, `nbf` and `iat` (always checked)."""

    name: str
    """The claim, e.g. `aud`, `scope`, `client_id`."""
    values: list[str] = Field(min_length=1, max_length=10)
    """Accepted values: the token's claim must hold one of them."""
    format: Literal["single-string", "string-array", "space-separated-values"] = "single-string"
    """How the token carries the claim: one string (`client_id`), a JSON array (`aud` of many providers), or values
    separated by spaces (OAuth's `scope`)."""


class AuthConfig(StrictModel):
    """Who may call the endpoint."""

    type: Literal["none", "api_key", "jwt"] = "none"
    """`jwt`: the load balancer verifies a bearer token (signature against `jwks_url`, issuer, expiry, `claims`)
    before a request reaches a task; needs the environment's `domain` (HTTPS). `api_key`: the server checks
    `Authorization: Bearer <key>` or `x-api-key` against the endpoint's keys (`python -m pipeline.keys`). `none`:
    anyone who reaches the load balancer may call."""
    issuer: str | None = None
    """`jwt`: the token issuer (`iss`), e.g. `https://cognito-idp.<region>.amazonaws.com/<user pool id>`."""
    jwks_url: str | None = None
    """`jwt`: the issuer's JSON Web Key Set, an https URL (for Cognito: `<issuer>/.well-known/jwks.json`)."""
    claims: list[JwtClaim] = Field(default_factory=list, max_length=10)
    """`jwt`: further claims every token must carry, e.g. a `scope` of `models/invoke` (at most 10)."""
    allow_anonymous: bool = False
    """Confirms that an endpoint with `type: none` in a production environment is meant to be open to everyone who
    can reach its load balancer (a deliberately public model)."""

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and (not HTTPS_URL_RE.match(value) or len(value) > 256):
            raise ValueError("must be an https:// URL of at most 256 characters (the load balancer's limit)")
        return value

    @model_validator(mode="after")
    def _type_settings(self) -> AuthConfig:
        if self.type == "jwt" and (self.issuer is None or self.jwks_url is None):
            raise ValueError("type jwt needs `issuer` and `jwks_url`")
        if self.type != "jwt" and (self.issuer or self.jwks_url or self.claims):
            raise ValueError(f"issuer, jwks_url and claims are for type jwt; this endpoint's type is {self.type}")
        if self.allow_anonymous and self.type != "none":
            raise ValueError(f"allow_anonymous confirms an endpoint without authentication; this one has type "
                             f"{self.type}")
        return self


class QualityAlarmConfig(StrictModel):
    """Alarm when a quality metric, scored against the uploaded ground truth, passes this value in a window."""

    metric: Literal["accuracy", "precision", "recall", "f1", "auc", "mae", "rmse"]
    """Classification metrics alarm below `value`; the regression errors `mae` and `rmse` above it."""
    value: float


class MonitoringConfig(StrictModel):
    """Data drift and model quality from the exported captures (python -m pipeline.monitor; docs/monitoring.md)."""

    enabled: bool = False
    """Run the monitor task on `schedule`, with its alarms. Store a baseline with each version (`promote
    --baseline`): a version without one is checked for completeness and value ranges only."""
    schedule: str = "cron(20 * * * ? *)"
    """When the monitor runs: after the capture export (`capture_export_schedule`, five past each hour)."""
    window_hours: int = Field(default=1, ge=1, le=24)
    """Each run reads the last this many full hours of captures; also the alarms' period."""
    drift_alarm_windows: int = Field(default=3, ge=1, le=24)
    """Alarm when a feature drifted in this many consecutive windows."""
    no_data_alarm_windows: int = Field(default=2, ge=1, le=24)
    """Alarm when this many consecutive windows held no captures (or the monitor did not run)."""
    quality_alarm: QualityAlarmConfig | None = None
    """Optional: alarm on a quality metric, e.g. `{metric: accuracy, value: 0.9}`."""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not re.match(r"^(cron|rate)\(.+\)$", value):
            raise ValueError("must be an EventBridge schedule: rate(1 hour) or cron(20 * * * ? *)")
        return value

    @model_validator(mode="after")
    def _alarm_span(self) -> MonitoringConfig:
        # CloudWatch evaluates at most 7 days of hourly-or-longer periods.
        for name in ("drift_alarm_windows", "no_data_alarm_windows"):
            if getattr(self, name) * self.window_hours > 168:
                raise ValueError(f"{name} x window_hours is {getattr(self, name) * self.window_hours} hours; "
                                 "CloudWatch alarms look back at most 168 hours (7 days)")
        return self


GIB = 1024 ** 3


class AsyncInferenceConfig(StrictModel):
    """An asynchronous endpoint's queue and workers (`mode: async`; docs/async.md)."""

    max_request_bytes: int = Field(default=GIB, ge=1024, le=5 * GIB)
    """Larger request objects are refused (recorded as failed). A worker holds one request in memory at a time per
    `concurrency`: size `memory_mib` for it."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Requests one task works on at once (small ones that arrive together share model calls)."""
    max_receives: int = Field(default=3, ge=1, le=1000)
    """Tries of a request that fails on the server's side; then it is recorded as failed and its message moved to
    the dead-letter queue with the error."""
    visibility_timeout_seconds: int = Field(default=120, ge=30, le=43_200)
    """How long a message taken stays hidden from other workers; a worker extends it while the inference runs, so
    this bounds how soon a crashed worker's requests are tried again, not how long an inference may take."""
    backlog_per_task: int = Field(default=10, ge=1, le=100_000)
    """Autoscaling keeps the requests waiting or in progress per running task near this."""
    idle_minutes: int = Field(default=15, ge=1, le=1440)
    """With `min_tasks: 0`: the workers stop after this many minutes without a request waiting or in progress."""
    retention_days: int = Field(default=7, ge=1, le=3650)
    """Requests, answers and failure records expire this many days after they were written."""
    message_retention_days: int = Field(default=4, ge=1, le=14)
    """How long a request waits in the queue (SQS: 1 to 14 days); the dead-letter queue keeps messages 14 days."""


class EndpointConfig(StrictModel):
    """One ML endpoint: an ECS service behind the shared load balancer."""

    cpu: int = 512
    """Fargate task CPU units (256 = 0.25 vCPU). Must pair with memory_mib as Fargate allows."""
    memory_mib: int = 1024
    """Fargate task memory in MiB."""
    container_port: int = 8080
    """Port the model server listens on; the target group and health check use the same port."""
    health_check_path: str = READINESS_PATH
    """HTTP path the load balancer and the container health check probe; must start with `/`."""
    mode: Literal["realtime", "async"] = "realtime"
    """`realtime`: an HTTP endpoint behind a load balancer. `async`: a request is an object put under the
    endpoint's input prefix and its answer an object under its output prefix; queue workers answer them, may scale
    to zero, and no load balancer is involved (docs/async.md)."""
    async_inference: AsyncInferenceConfig = Field(default_factory=AsyncInferenceConfig)
    """The queue and its workers, for `mode: async`."""
    min_tasks: int = 1
    """Lower bound for autoscaling; also the initial desired count. 0 (an asynchronous endpoint only): no task runs
    while no request waits, and the first request starts one."""
    max_tasks: int = 4
    """Upper bound for autoscaling."""
    host: str | None = None
    """Route requests for this host name (e.g. `a.models.example.com`). When omitted, routing is by path alone."""
    path: str | None = None
    """Route requests under this path pattern. When omitted and no host is set, `/<endpoint name>/*` is used."""
    listener_rule_priority: int | None = Field(default=None, ge=1, le=50000)
    """ALB listener rule priority. When omitted, derived from the endpoint name, so it never changes when other
    endpoints are added or removed."""
    fargate_spot_percent: int | None = Field(default=None, ge=0, le=100)
    """Share of tasks on Fargate Spot (the first task always runs on regular Fargate). When omitted, 0 in
    production environments and 50 elsewhere."""
    deregistration_delay_seconds: int = Field(default=30, ge=0, le=3600)
    """Time the load balancer drains a stopping task; keep it above the server's drain time."""
    health_check_grace_period_seconds: int = Field(default=300, ge=0, le=2147483647)
    """Seconds ECS ignores failing load balancer health checks after a task starts. The default covers a new
    endpoint's first model sync (scheduled a minute after the stack is created, then a Fargate task start and
    the copy): until then its tasks are alive but not ready. A crashing server is still replaced at once (the
    container health check probes liveness)."""
    stop_timeout_seconds: int = Field(default=30, ge=2, le=120)
    """Seconds between SIGTERM and SIGKILL for the container (Fargate allows up to 120)."""
    enable_execute_command: bool = False
    """Allow `aws ecs execute-command` into running tasks (ECS Exec)."""
    log_retention_days: int = 30
    """Retention of the endpoint's container log group, in days (a value CloudWatch Logs accepts)."""
    cpu_target_percent: int = Field(default=60, ge=10, le=95)
    """Autoscaling keeps average CPU near this."""
    memory_target_percent: int = Field(default=75, ge=10, le=95)
    """Autoscaling keeps average memory near this."""
    requests_per_target: int = Field(default=200, ge=1)
    """Autoscaling keeps load balancer requests per task per minute near this."""
    scale_on: Literal["requests", "concurrency"] = "requests"
    """A real-time endpoint's traffic signal besides CPU and memory: `requests` (load balancer requests per task per
    minute, `requests_per_target`) or `concurrency` (requests in progress per task, which the server publishes every
    10 seconds; `concurrency_per_task`). Bursts show in concurrency before they show in a minute's request count."""
    concurrency_per_task: float = Field(default=4.0, gt=0, le=10_000)
    """With `scale_on: concurrency`: autoscaling keeps the average requests in progress per task near this."""
    scheduled_scaling: list[ScheduledScaling] = Field(default_factory=list)
    """Scheduled changes of min/max tasks, e.g. scale down at night."""
    alarm_5xx_count: int = Field(default=5, ge=1)
    """Alarm when targets return at least this many 5xx responses per minute, 3 minutes in a row."""
    alarm_p99_latency_seconds: float = Field(default=1.0, gt=0)
    """Alarm when the p99 target response time exceeds this, 3 minutes in a row."""
    efs_throughput_mode: Literal["bursting", "elastic"] = "bursting"
    """EFS throughput mode of the endpoint's file system; `bursting` has a burst-credit alarm."""
    efs_burst_credit_alarm_bytes: int = Field(default=10**12, ge=0)
    """Alarm when the file system's burst credit balance falls below this (bursting mode)."""
    capture_sample_percent: float = Field(default=100.0, ge=0, le=100)
    """Share of requests whose input and output the server captures to the data volume."""
    model_versions_kept: int = Field(default=5, ge=2, le=100)
    """Model versions kept on EFS; older ones are pruned (never the live one or the one before it)."""
    initial_model: str | None = None
    """The ONNX model an endpoint starts with: a file in the repository (relative to its root) or an `s3://` URI.
    The deploy step promotes it in an environment where the endpoint has no live model yet, so a first deploy
    needs no person. When omitted, such a deploy stops and says which model to promote."""
    rollout: Literal["rolling", "canary", "linear"] | None = None
    """How a new version goes out. `rolling`: tasks are replaced behind the one target group (ECS's rolling update).
    `canary`: ECS starts the new version beside the old one, shifts `canary_percent` of the traffic to it, waits
    `canary_bake_minutes`, then shifts the rest. `linear`: shifts `linear_step_percent` every
    `linear_step_bake_minutes`. The gradual ones keep the old version until `rollout_bake_minutes` after the last
    shift; a 5xx or p99 alarm of the endpoint or the circuit breaker rolls back to it at any point. When omitted,
    `canary` in production environments and `rolling` elsewhere."""
    canary_percent: float = Field(default=5.0, ge=0.1, le=100)
    """Share of the traffic the new version gets first (ECS: multiples of 0.1 from 0.1 to 100)."""
    canary_bake_minutes: int = Field(default=5, ge=0, le=1440)
    """Minutes the canary share runs before the rest of the traffic moves (at least 3 in production)."""
    linear_step_percent: float = Field(default=10.0, ge=3, le=100)
    """Share of the traffic moved per step (ECS: multiples of 0.1 from 3 to 100; here also a divisor of 100)."""
    linear_step_bake_minutes: int = Field(default=6, ge=0, le=1440)
    """Minutes between steps."""
    rollout_bake_minutes: int = Field(default=10, ge=0, le=1440)
    """Minutes after the last shift during which an alarm still rolls back to the old version, which ECS keeps
    until then."""
    auth: AuthConfig = Field(default_factory=AuthConfig)
    """Who may call the endpoint: `auth.type` `none` (default), `api_key` or `jwt`; see AuthConfig."""
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    """Drift and quality monitoring of the captured traffic; off unless `enabled`."""
    exposure: Literal["public", "internal"] | None = None
    """Which of the environment's load balancers routes to the endpoint: `public` (the internet-facing one) or
    `internal` (in the private subnets: clients in the VPC, peered VPCs, VPN or Direct Connect). When omitted, the
    environment's only one (filled in per environment); required where an environment has both."""
    variants: dict[str, VariantConfig] | None = None
    """Weighted A/B variants and a shadow, e.g. `{current: {weight: 90}, candidate: {weight: 10, model_version:
    "7"}, shadowed: {weight: 0, shadow_percent: 25, model_version: "8"}}`. When omitted, one variant (`main`) that
    follows LIVE. With variants, new images go out as rolling updates per variant (the weights are the gradual
    part), so `rollout` must be `rolling` or left out."""

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantConfig] | None) -> dict[str, VariantConfig] | None:
        if value is None:
            return value
        for name in value:
            _check_name(name, f"variant name {name!r}", VARIANT_NAME_MAX)
        served = {name: variant.weight for name, variant in value.items() if variant.weight > 0}
        if not served:
            raise ValueError("at least one variant needs a weight above 0 (the variants that answer requests)")
        if sum(served.values()) != 100:
            raise ValueError(f"the weights of the serving variants must add up to 100, they add up to "
                             f"{sum(served.values())} ({', '.join(f'{n}: {w}' for n, w in served.items())})")
        for name, variant in value.items():
            if variant.weight == 0 and variant.shadow_percent <= 0:
                raise ValueError(f"variant {name!r} has weight 0, so it needs shadow_percent above 0 (a shadow), or "
                                 "a weight")
            if variant.weight > 0 and variant.shadow_percent > 0:
                raise ValueError(f"variant {name!r} serves (weight {variant.weight}); shadow_percent is for a "
                                 "variant with weight 0")
        shadows = [name for name, variant in value.items() if variant.weight == 0]
        if len(shadows) > 1:
            raise ValueError(f"at most one shadow variant per endpoint, got {', '.join(shadows)}")
        return value

    @field_validator("canary_percent", "linear_step_percent")
    @classmethod
    def _tenths(cls, value: float) -> float:
        if abs(value * 10 - round(value * 10)) > 1e-9:
            raise ValueError("must be a multiple of 0.1 (ECS's granularity), e.g. 5 or 12.5")
        return value

    @field_validator("linear_step_percent")
    @classmethod
    def _reaches_all_traffic(cls, value: float) -> float:
        steps = 100 / value
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError("must divide 100 into equal steps, so the last step is not a different share; e.g. "
                             "5, 10, 12.5, 20, 25 or 50")
        return value

    @field_validator("initial_model")
    @classmethod
    def _initial_model(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("s3://"):
            if not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.onnx$", value):
                raise ValueError("must be s3://<bucket>/<key>.onnx or a .onnx file in the repository")
            return value
        if not value.endswith(".onnx") or value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a .onnx file relative to the repository root (e.g. "
                             "serving/example/models/1/model.onnx) or s3://<bucket>/<key>.onnx")
        return value

    @field_validator("container_port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a TCP port between 1 and 65535")
        return value

    @field_validator("health_check_path")
    @classmethod
    def _health_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/', e.g. /v2/health/ready")
        if len(value) > 1024 or any(c.isspace() for c in value):
            raise ValueError("must be at most 1024 characters without spaces")
        return value

    @field_validator("path")
    @classmethod
    def _route_path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or len(value) > 128 or " " in value):
            raise ValueError("must start with '/' and be at most 128 characters without spaces, e.g. /a/*")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not HOST_RE.match(value):
            raise ValueError("must be a lower-case DNS name such as a.models.example.com")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _log_retention(cls, value: int) -> int:
        return _check_retention(value)

    @field_validator("min_tasks", "max_tasks")
    @classmethod
    def _task_count(cls, value: int) -> int:
        if value < 0 or value > 1000:
            raise ValueError("must be between 0 and 1000")
        return value


def _optional(field: FieldInfo) -> tuple[Any, FieldInfo]:
    """The same field with the same limits (ge, le, ...), not required: an override sets only what it names."""
    optional = copy.copy(field)
    optional.default, optional.default_factory = None, None
    return Optional[field.annotation], optional  # noqa: UP045 - a runtime type expression


# Every endpoint field, optional, with the same limits and validators (inherited from EndpointConfig): what an
# environment may override for one endpoint. A bad override fails where it is written, with its own field path.
class _OverrideBase(EndpointConfig):
    @field_validator("*", mode="before")
    @classmethod
    def _no_null_for_required_values(cls, value: Any, info: Any) -> Any:
        base = EndpointConfig.model_fields[info.field_name]
        if value is None and not (base.default is None and base.default_factory is None):
            raise ValueError("must not be null; leave the key out to keep the endpoint's own value")
        return value


EndpointOverride = create_model(
    "EndpointOverride",
    __base__=_OverrideBase,
    **{name: _optional(field) for name, field in EndpointConfig.model_fields.items()},
)


class DomainConfig(StrictModel):
    """Serve HTTPS on a domain. With `hosted_zone_id`, a certificate for the domain and its subdomains is
    requested and DNS-validated in that Route 53 zone, and endpoint hosts get alias records; with
    `certificate_arn`, that existing certificate is used instead."""

    name: str
    """Domain served, e.g. `models.example.com`; endpoint hosts live under it."""
    hosted_zone_id: str | None = None
    """Route 53 public hosted zone of `name`."""
    certificate_arn: str | None = None
    """An existing ACM certificate in the region (skips the DNS-validated certificate)."""

    @field_validator("name")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not HOST_RE.match(value) or value.startswith("*"):
            raise ValueError("must be a lower-case DNS name such as models.example.com")
        return value

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^Z[A-Z0-9]{1,31}$", value):
            raise ValueError("must be a Route 53 hosted zone ID such as Z0123456789ABCDEFGHIJ")
        return value

    @field_validator("certificate_arn")
    @classmethod
    def _certificate(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$", value):
            raise ValueError("must be an ACM certificate ARN")
        return value


class PrivateLinkConfig(StrictModel):
    """Publish the environment's internal load balancer to other accounts as a VPC endpoint service (PrivateLink):
    a Network Load Balancer in the private subnets forwards to the internal Application Load Balancer."""

    allowed_principals: list[str] = Field(min_length=1)
    """Who may create an endpoint to the service: account root ARNs (`arn:aws:iam::123456789012:root`), roles or
    users."""
    acceptance_required: bool = True
    """Each new endpoint connection waits for the service owner's acceptance."""

    @field_validator("allowed_principals")
    @classmethod
    def _principals(cls, value: list[str]) -> list[str]:
        for principal in value:
            if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)$", principal):
                raise ValueError(f"{principal!r} is not an IAM principal ARN such as arn:aws:iam::123456789012:root")
        return value


class EnvironmentConfig(StrictModel):
    """One deployment environment (e.g. staging, prod): its own VPC, load balancer and cluster."""

    vpc_cidr: str
    """IPv4 CIDR block of the environment's VPC, e.g. 10.10.0.0/16. Required: environments must not overlap."""
    az_count: int = 2
    """Availability zones to spread subnets (and NAT gateways) over; at least 2."""
    availability_zones: list[str] | None = None
    """AZ names to use, one per az_count. When omitted, the region's first zones in letter order (a dated table,
    configuration/zones.py). Pinned at synth, so AWS adding a zone never moves a subnet."""
    subnet_prefix_length: int | None = None
    """Prefix length of each subnet. When omitted, the VPC is split evenly into one public and one private subnet
    per AZ (rounded up to a power of two)."""
    nat_gateways: Literal["one_per_az", "single"] = "one_per_az"
    """`one_per_az` survives the loss of an AZ; `single` costs one NAT gateway instead of `az_count`."""
    enable_vpc_endpoints: bool = False
    """Add an S3 gateway endpoint and ECR/CloudWatch Logs interface endpoints, so tasks pull images without NAT."""
    flow_logs_retention_days: int = 365
    """Retention of the VPC flow log group, in days (a value CloudWatch Logs accepts)."""
    account_id: str | None = None
    """The AWS account this environment lives in. When omitted, the caller's account; when set, Terraform refuses
    to run against any other account."""
    deploy_role_arn: str | None = None
    """IAM role that Terraform assumes to deploy into this environment. When omitted, the caller's credentials."""
    production: bool = False
    """A production environment: load balancer deletion protection on, Fargate Spot off by default."""
    domain: DomainConfig | None = None
    """When omitted, the load balancer listens on plain HTTP only; see DomainConfig."""
    load_balancers: list[Literal["internet-facing", "internal"]] = Field(
        default_factory=lambda: ["internet-facing"], min_length=1, max_length=2)
    """The environment's Application Load Balancers: `internet-facing` (in the public subnets), `internal` (in the
    private subnets, reachable from the VPC and networks joined to it), or both. Endpoints choose one with
    `exposure`."""
    alb_ingress_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"])
    """Client networks admitted to the internet-facing load balancer (every one of them)."""
    internal_ingress_cidrs: list[str] | None = None
    """Client networks admitted to the internal load balancer. When omitted, the VPC's own CIDR block."""
    private_link: PrivateLinkConfig | None = None
    """Publish the internal load balancer to other accounts through PrivateLink; needs `internal` in
    `load_balancers`. When omitted, no endpoint service."""
    alb_idle_timeout_seconds: int = Field(default=60, ge=1, le=4000)
    """Load balancer idle timeout; the model server keeps connections alive longer than this."""
    waf_web_acl_arn: str | None = None
    """An existing WAFv2 web ACL (regional) to associate with the load balancer. When omitted, no WAF."""
    enable_alb_access_logs: bool = False
    """Write load balancer access logs to an S3 bucket of the platform stack."""
    alarm_emails: list[str] = Field(default_factory=list)
    """Email addresses subscribed to the alarm topic (each confirms by mail once)."""
    ecr_keep_images: int = Field(default=30, ge=2, le=1000)
    """Serving images kept in the environment's repository, newest first. Only deploys to this environment add
    images there, so the running image and the one before it (ECS rolls back to it) are always the newest two."""
    model_bucket_name: str | None = None
    """S3 bucket model versions are promoted to. When omitted, `<project>-<env>-models-<region>` (S3 names are
    global: set this if that one is taken)."""
    model_sync_schedule: str = "rate(1 hour)"
    """When the model sync also runs without an upload, repairing anything a missed event left behind."""
    capture_bucket_name: str | None = None
    """S3 bucket captured requests are exported to, as `<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`
    (SageMaker Data Capture's layout). When omitted, `<project>-<env>-captures-<region>`."""
    capture_retention_days: int = Field(default=365, ge=1, le=36500)
    """Exported captures expire this many days after the export (a lifecycle rule)."""
    capture_export_schedule: str = "cron(5 * * * ? *)"
    """When each endpoint's capture export task runs: hourly, five minutes past, after the servers sealed the last
    hour's files."""
    endpoints: dict[str, EndpointOverride] = Field(default_factory=dict)  # type: ignore[valid-type]
    """Per-endpoint overrides for this environment only: `endpoints.<name>.<field>`."""

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"must be an IPv4 CIDR block such as 10.10.0.0/16 ({exc})") from None
        if not 16 <= network.prefixlen <= 28:
            raise ValueError("must have a prefix length between /16 and /28, the VPC sizes AWS allows")
        return value

    @field_validator("load_balancers")
    @classmethod
    def _balancers(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists each kind once: internet-facing, internal or both")
        return value

    @field_validator("alb_ingress_cidrs", "internal_ingress_cidrs")
    @classmethod
    def _ingress(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must list at least one CIDR block, e.g. 0.0.0.0/0")
        for cidr in value:
            try:
                ipaddress.IPv4Network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4 CIDR block such as 203.0.113.0/24") from None
        return value

    @field_validator("model_bucket_name", "capture_bucket_name")
    @classmethod
    def _model_bucket(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", value):
            raise ValueError("must be a valid S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens")
        return value

    @field_validator("model_sync_schedule", "capture_export_schedule")
    @classmethod
    def _sync_schedule(cls, value: str) -> str:
        if not re.match(r"^(cron|rate)\(.+\)$", value):
            raise ValueError("must be an EventBridge schedule: rate(1 hour) or cron(0 * * * ? *)")
        return value

    @field_validator("waf_web_acl_arn")
    @classmethod
    def _web_acl(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/.+$", value):
            raise ValueError("must be a regional WAFv2 web ACL ARN, "
                             "arn:aws:wafv2:<region>:<account>:regional/webacl/...")
        return value

    @field_validator("alarm_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("az_count")
    @classmethod
    def _az_count(cls, value: int) -> int:
        if not 2 <= value <= 6:
            raise ValueError("must be between 2 and 6: a load balancer needs subnets in at least 2 AZs")
        return value

    @field_validator("subnet_prefix_length")
    @classmethod
    def _subnet_prefix(cls, value: int | None) -> int | None:
        if value is not None and not 16 <= value <= 28:
            raise ValueError("must be between 16 and 28 (AWS subnets are /16 to /28)")
        return value

    @field_validator("flow_logs_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_RE.match(value):
            raise ValueError("must be a 12-digit AWS account ID, quoted in YAML")
        return value

    @field_validator("deploy_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN_RE.match(value):
            raise ValueError("must be an IAM role ARN such as arn:aws:iam::123456789012:role/deploy")
        return value

    def zone_names(self, region: str) -> list[str]:
        """The configured zones, else the region's first `az_count` zones in letter order (see zones.py)."""
        if self.availability_zones is not None:
            return list(self.availability_zones)
        known = region_zones(region) or [f"{region}{letter}" for letter in "abcdef"]
        return known[: self.az_count]

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.vpc_cidr)

    @property
    def effective_subnet_prefix_length(self) -> int:
        """The configured prefix, or the even split of the VPC into 2 x az_count subnets."""
        if self.subnet_prefix_length is not None:
            return self.subnet_prefix_length
        subnets_needed = 2 * self.az_count
        return self.network.prefixlen + (subnets_needed - 1).bit_length()

    def subnet_cidrs(self) -> tuple[list[str], list[str]]:
        """(public, private) subnet CIDRs, one per AZ, carved in order from the VPC block."""
        blocks = self.network.subnets(new_prefix=self.effective_subnet_prefix_length)
        carved = [str(next(blocks)) for _ in range(2 * self.az_count)]
        return carved[: self.az_count], carved[self.az_count:]


class StateConfig(StrictModel):
    """Where Terraform keeps state for every stack but bootstrap."""

    bucket_name: str | None = None
    """S3 bucket for Terraform state. When omitted, `<project>-tfstate-<region>`. S3 bucket names are global:
    set this if that name is taken."""
    lock_table_name: str | None = None
    """DynamoDB table for state locks. When omitted, `<project>-tfstate-locks`."""
    locking: Literal["dynamodb", "s3", "s3_and_dynamodb"] = "dynamodb"
    """`dynamodb` (default): lock table. `s3`: S3-native lock files (`use_lockfile`, Terraform >= 1.10).
    `s3_and_dynamodb`: both, the safe step while migrating from one to the other."""

    @field_validator("bucket_name")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", value):
            raise ValueError("must be a valid S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens")
        return value

    @field_validator("lock_table_name")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9_.-]{3,255}$", value):
            raise ValueError("must be a valid DynamoDB table name: 3-255 letters, digits, '_', '-' and '.'")
        return value


class PipelineConfig(StrictModel):
    """The delivery pipeline (`<project>-pipeline` stack): GitHub -> test -> image -> each environment in order."""

    repository: str
    """GitHub repository the pipeline builds, `owner/name`."""
    branch: str = "main"
    """Pushes to this branch start the pipeline."""
    connection_arn: str | None = None
    """An existing CodeStar connection to GitHub. When omitted, the stack creates one (authorize it once in the
    console: it starts PENDING)."""
    manual_approval: bool = True
    """Wait for a person's approval before deploying each environment after the first."""
    terraform_version: str = "1.11.4"
    terraform_sha256: str = "268000fca5c61021c6396893d9483007ba589ad9d0aaccbd7dfa8c78bf7dbe23"
    """SHA-256 of the `terraform` executable in the official linux_amd64 release zip of terraform_version."""
    notification_emails: list[str] = Field(default_factory=list)
    """Addresses told when a pipeline run fails (the pipeline's notification topic)."""

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", value):
            raise ValueError("must be a GitHub repository as owner/name")
        return value

    @field_validator("connection_arn")
    @classmethod
    def _connection(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):", value):
            raise ValueError("must be a CodeStar / CodeConnections connection ARN")
        return value

    @field_validator("terraform_version")
    @classmethod
    def _terraform_version(cls, value: str) -> str:
        if not re.match(r"^\d+\.\d+\.\d+$", value):
            raise ValueError("must be a Terraform release such as 1.11.4")
        return value

    @field_validator("terraform_sha256")
    @classmethod
    def _terraform_sha(cls, value: str) -> str:
        if not re.match(r"^[0-9a-f]{64}$", value):
            raise ValueError("must be a SHA-256 in lower-case hex")
        return value


class MlopsConfig(StrictModel):
    """The whole configuration: one project, its environments (in deployment order) and its endpoints."""

    project: str
    """Short project name, the prefix of every stack and resource name."""
    region: str
    """AWS region of every stack, e.g. eu-west-1."""
    state: StateConfig = Field(default_factory=StateConfig)
    """Remote state settings; see StateConfig."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Extra tags on every resource, beside project, environment, endpoint and managed-by."""
    environments: dict[str, EnvironmentConfig]
    """Environments in deployment order (the pipeline deploys them in this order)."""
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    """ML endpoints, deployed to every environment."""
    pipeline: PipelineConfig | None = None
    """The delivery pipeline. When omitted, no pipeline stack is synthesized."""

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return _check_name(value, "project", 16)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION_RE.match(value):
            raise ValueError("must be an AWS region code such as eu-west-1")
        return value

    @field_validator("environments")
    @classmethod
    def _environments(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("must declare at least one environment, e.g. staging")
        for name in value:
            _check_name(name, f"environment name {name!r}", 10)
        return value

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _check_name(name, f"endpoint name {name!r}", 16)
        return value

    @property
    def state_bucket_name(self) -> str:
        return self.state.bucket_name or f"{self.project}-tfstate-{self.region}"

    @property
    def lock_table_name(self) -> str:
        return self.state.lock_table_name or f"{self.project}-tfstate-locks"

    def model_bucket_name(self, environment: str) -> str:
        configured = self.environments[environment].model_bucket_name
        return configured or aws_name(self.project, environment, "models", self.region, max_length=63)

    def capture_bucket_name(self, environment: str) -> str:
        configured = self.environments[environment].capture_bucket_name
        return configured or aws_name(self.project, environment, "captures", self.region, max_length=63)

    def async_bucket_name(self, environment: str, endpoint: str) -> str:
        """An asynchronous endpoint's own bucket (requests, answers, failures)."""
        return aws_name(self.project, environment, endpoint, "async", self.region, max_length=63)

    def endpoint_for(self, environment: str, endpoint: str) -> EndpointConfig:
        """The endpoint's settings in one environment: the base entry with that environment's overrides applied,
        and the defaults that depend on the name or the environment filled in (route `/<name>/*`, Spot share)."""
        base = self.endpoints[endpoint].model_dump()
        override = self.environments[environment].endpoints.get(endpoint)
        if override is not None:
            base.update(override.model_dump(exclude_unset=True))
        if base["mode"] == "async":  # no load balancer: no route or exposure to fill in, and nothing to shift
            if base["fargate_spot_percent"] is None:
                base["fargate_spot_percent"] = 0 if self.environments[environment].production else 50
            base["rollout"] = base["rollout"] or "rolling"
            return EndpointConfig.model_validate(base)
        if base["host"] is None and base["path"] is None:
            base["path"] = f"/{endpoint}/*"
        if base["fargate_spot_percent"] is None:
            base["fargate_spot_percent"] = 0 if self.environments[environment].production else 50
        if base["rollout"] is None:
            gradual = self.environments[environment].production and not base["variants"]
            base["rollout"] = "canary" if gradual else "rolling"
        balancers = self.environments[environment].load_balancers
        if base["exposure"] is None and len(balancers) == 1:
            base["exposure"] = EXPOSURE_OF_BALANCER[balancers[0]]
        return EndpointConfig.model_validate(base)
