"""The configuration resolved for one environment and its endpoints: every value derived from it, computed once.

The stacks, the validation rules and the delivery steps read names, routes, priorities and server timings from here
instead of working them out again, so a derivation changes in one place. `resolve_environment` needs a configuration
that passed the schema; the rules (configuration/rules.py) use it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from configuration.model import EndpointConfig, EnvironmentConfig, MlopsConfig
from configuration.naming import (
    ALB_NAME_MAX,
    IAM_NAME_MAX,
    TARGET_GROUP_NAME_MAX,
    aws_name,
    derived_listener_priority,
    serving_repository_name,
    workload_boundary_name,
)

KEEP_ALIVE_MARGIN_SECONDS = 5
"""Seconds the server keeps idle connections beyond the load balancer's idle timeout, so the load balancer, not the
server, closes them (otherwise a request can race a closing connection and get a 502)."""
DRAIN_MARGIN_SECONDS = 5
"""Seconds of the container's stop timeout left after draining requests, for the capture flush."""
CPU_UNITS_PER_VCPU = 1024


def route_prefix(path: str | None) -> str:
    """The path prefix a server is mounted under: `/a/*` -> `/a`; host-only routes serve from `/`."""
    if path is None or not path.endswith("/*"):
        return ""
    return path[:-2]


@dataclass(frozen=True)
class ResolvedVariant:
    """One variant of an endpoint with `variants`: its own service, and its own target group when it serves."""

    name: str
    weight: int
    """Percent of the endpoint's requests; 0 for the shadow."""
    model_version: str | None
    """Pinned version, or None: follows LIVE."""
    shadow_percent: float
    name_prefix: str
    """`<project>-<env>-<endpoint>-<variant>`: task family, log group, alarms, scaling policies."""
    service_name: str
    """`<endpoint>-<variant>`."""
    target_group_name: str

    @property
    def is_shadow(self) -> bool:
        return self.weight == 0


@dataclass(frozen=True)
class ResolvedEndpoint:
    environment: str
    name: str
    settings: EndpointConfig
    """The endpoint's fields with the environment's overrides applied and name/environment defaults filled in."""
    name_prefix: str
    """`<project>-<env>-<endpoint>`: task family, log groups, roles."""
    service_name: str
    """The ECS service: the endpoint's name."""
    target_group_name: str
    alternate_target_group_name: str
    """The second target group of a canary or linear rollout."""
    gradual_rollout: bool
    """`canary` or `linear`: new versions shift traffic between two target groups, with ECS rolling back on alarms."""
    listener_priority: int
    """The configured priority, else one derived from the endpoint's name alone (stable as endpoints come and go)."""
    route_prefix: str
    fargate_spot_percent: int
    server_keep_alive_seconds: int
    server_drain_seconds: int
    server_workers: int
    """One server process per whole vCPU of the task (at least one): a process serves from one core."""
    workload_boundary_name: str
    """The permissions boundary the endpoint's roles carry (see ResolvedEnvironment)."""
    api_keys_secret_name: str
    """`<project>/<env>/<endpoint>/api-keys`: the endpoint's key set (salted digests), where `auth.type` is
    `api_key`."""
    smoke_key_secret_name: str
    """`<project>/<env>/<endpoint>/smoke-key`: the key the pipeline's smoke test calls with; only Smoke reads it."""
    variants: tuple[ResolvedVariant, ...] = ()
    """Empty without `variants`: one service that follows LIVE, named like the endpoint (as before variants)."""
    async_bucket_name: str = ""
    """`mode: async`: the endpoint's bucket (requests under `async/<endpoint>/input/`, answers, failures)."""

    @property
    def is_async(self) -> bool:
        return self.settings.mode == "async"

    @property
    def shadow(self) -> ResolvedVariant | None:
        return next((variant for variant in self.variants if variant.is_shadow), None)

    @property
    def service_names(self) -> tuple[str, ...]:
        """The endpoint's ECS services: one per variant, or the endpoint's one."""
        return tuple(variant.service_name for variant in self.variants) or (self.service_name,)

    @property
    def smoke_probe_name(self) -> str:
        """`<project>-<env>-<endpoint>-smoke-probe`: the probe task's family, security group and log stream prefix
        (an endpoint behind an internal load balancer)."""
        return f"{self.name_prefix}-smoke-probe"

    @property
    def smoke_probe_role_name(self) -> str:
        """The probe task's execution role."""
        return aws_name(self.name_prefix, "smoke-probe", max_length=IAM_NAME_MAX)

    @property
    def smoke_probe_log_group(self) -> str:
        return f"/ecs/{self.name_prefix}/smoke-probe"

    @property
    def pinned_versions(self) -> dict[str, str]:
        """Variant -> the model version it is pinned to."""
        return {variant.name: variant.model_version for variant in self.variants if variant.model_version is not None}


@dataclass(frozen=True)
class ResolvedEnvironment:
    name: str
    settings: EnvironmentConfig
    name_prefix: str
    """`<project>-<env>`: key alias, alarm topic."""
    cluster_name: str
    load_balancer_name: str
    """The platform's internet-facing load balancer; the delivery steps find it by this name."""
    internal_load_balancer_name: str
    """The platform's internal load balancer (where `load_balancers` lists `internal`)."""
    availability_zones: tuple[str, ...]
    public_subnet_cidrs: tuple[str, ...]
    private_subnet_cidrs: tuple[str, ...]
    model_bucket_name: str
    capture_bucket_name: str
    serving_repository_name: str
    owns_workload_boundary: bool
    """Deployed through its own `deploy_role_arn` (usually in its own account, where the bootstrap stack's boundary
    does not exist): the platform stack creates the environment's own workload boundary."""
    workload_boundary_name: str
    endpoints: dict[str, ResolvedEndpoint]


def _workload_boundary_name(config: MlopsConfig, environment: str) -> str:
    own = config.environments[environment].deploy_role_arn is not None
    return workload_boundary_name(config.project, environment if own else None)


def resolve_endpoint(config: MlopsConfig, environment: str, endpoint: str) -> ResolvedEndpoint:
    settings = config.endpoint_for(environment, endpoint)
    env = config.environments[environment]
    return ResolvedEndpoint(
        environment=environment,
        name=endpoint,
        settings=settings,
        name_prefix=f"{config.project}-{environment}-{endpoint}",
        service_name=endpoint,
        target_group_name=aws_name(config.project, environment, endpoint, max_length=TARGET_GROUP_NAME_MAX),
        alternate_target_group_name=aws_name(config.project, environment, endpoint, "alt",
                                             max_length=TARGET_GROUP_NAME_MAX),
        gradual_rollout=settings.rollout in ("canary", "linear"),
        listener_priority=settings.listener_rule_priority or derived_listener_priority(endpoint),
        route_prefix=route_prefix(settings.path),
        fargate_spot_percent=settings.fargate_spot_percent or 0,
        server_keep_alive_seconds=env.alb_idle_timeout_seconds + KEEP_ALIVE_MARGIN_SECONDS,
        server_drain_seconds=max(1, settings.stop_timeout_seconds - DRAIN_MARGIN_SECONDS),
        server_workers=max(1, settings.cpu // CPU_UNITS_PER_VCPU),
        workload_boundary_name=_workload_boundary_name(config, environment),
        api_keys_secret_name=f"{config.project}/{environment}/{endpoint}/api-keys",
        smoke_key_secret_name=f"{config.project}/{environment}/{endpoint}/smoke-key",
        variants=tuple(ResolvedVariant(
            name=name, weight=variant.weight, model_version=variant.model_version,
            shadow_percent=variant.shadow_percent,
            name_prefix=f"{config.project}-{environment}-{endpoint}-{name}", service_name=f"{endpoint}-{name}",
            target_group_name=aws_name(config.project, environment, endpoint, name, max_length=TARGET_GROUP_NAME_MAX))
            for name, variant in (settings.variants or {}).items()),
        async_bucket_name=config.async_bucket_name(environment, endpoint) if settings.mode == "async" else "",
    )


def resolve_environment(config: MlopsConfig, environment: str) -> ResolvedEnvironment:
    env = config.environments[environment]
    public, private = env.subnet_cidrs()
    return ResolvedEnvironment(
        name=environment,
        settings=env,
        name_prefix=f"{config.project}-{environment}",
        cluster_name=f"{config.project}-{environment}",
        load_balancer_name=aws_name(config.project, environment, max_length=ALB_NAME_MAX),
        internal_load_balancer_name=aws_name(config.project, environment, "internal", max_length=ALB_NAME_MAX),
        availability_zones=tuple(env.zone_names(config.region)),
        public_subnet_cidrs=tuple(public),
        private_subnet_cidrs=tuple(private),
        model_bucket_name=config.model_bucket_name(environment),
        capture_bucket_name=config.capture_bucket_name(environment),
        serving_repository_name=serving_repository_name(config.project, environment),
        owns_workload_boundary=env.deploy_role_arn is not None,
        workload_boundary_name=_workload_boundary_name(config, environment),
        endpoints={name: resolve_endpoint(config, environment, name) for name in config.endpoints},
    )


def load_balancer_name_for(resolved: ResolvedEnvironment, exposure: str) -> str:
    """The name of the load balancer that routes to endpoints of `exposure` (`public` or `internal`)."""
    return resolved.internal_load_balancer_name if exposure == "internal" else resolved.load_balancer_name
