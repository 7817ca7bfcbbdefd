"""Rules that relate several fields, endpoints or environments: checked after the schema, before any construct.

Each rule returns problems instead of raising, so that the user sees every problem in one run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from configuration.errors import Problem
from configuration.model import EXPOSURE_OF_BALANCER, MlopsConfig
from configuration.naming import derived_listener_priority
from configuration.zones import ZONES_AS_OF, region_zones

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Fargate's valid task sizes: CPU units -> allowed memory in MiB.
FARGATE_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}


def _field_path(config: MlopsConfig, environment: str, endpoint: str, field: str) -> str:
    """Where the effective value of an endpoint field was written: the environment override or the base entry."""
    override = config.environments[environment].endpoints.get(endpoint)
    if override is not None and field in override.model_fields_set:
        return f"environments.{environment}.endpoints.{endpoint}.{field}"
    return f"endpoints.{endpoint}.{field}"


def _env_note(config: MlopsConfig, environment: str, endpoints: list[str], *fields: str) -> str:
    """' in environment X' when an override in X takes part in the problem; otherwise the problem is the same in
    every environment and is reported once."""
    for endpoint in endpoints:
        override = config.environments[environment].endpoints.get(endpoint)
        if override is not None and override.model_fields_set & set(fields):
            return f" in environment {environment}"
    return ""


def _memory_ranges(allowed: tuple[int, ...]) -> str:
    if len(allowed) <= 3:
        return ", ".join(map(str, allowed))
    return f"{allowed[0]}-{allowed[-1]} in steps of {allowed[1] - allowed[0]}"


def check_override_targets(config: MlopsConfig) -> Iterator[Problem]:
    for env_name, env in config.environments.items():
        for endpoint in env.endpoints:
            if endpoint not in config.endpoints:
                known = ", ".join(config.endpoints) or "none"
                yield Problem(f"environments.{env_name}.endpoints.{endpoint}", endpoint,
                              f"overrides an endpoint that is not declared under `endpoints` (declared: {known})")


def check_fargate_sizes(config: MlopsConfig) -> Iterator[Problem]:
    for env_name in config.environments:
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            allowed = FARGATE_MEMORY_MIB.get(endpoint.cpu)
            if allowed is None:
                yield Problem(_field_path(config, env_name, name, "cpu"), endpoint.cpu,
                              f"is not a Fargate CPU size; allowed: {', '.join(map(str, FARGATE_MEMORY_MIB))}")
            elif endpoint.memory_mib not in allowed:
                yield Problem(_field_path(config, env_name, name, "memory_mib"), endpoint.memory_mib,
                              f"is not valid with cpu {endpoint.cpu} on Fargate"
                              f"{_env_note(config, env_name, [name], 'cpu', 'memory_mib')}; allowed memory_mib: "
                              f"{_memory_ranges(allowed)}")


def check_task_bounds(config: MlopsConfig) -> Iterator[Problem]:
    for env_name in config.environments:
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.min_tasks > endpoint.max_tasks:
                yield Problem(_field_path(config, env_name, name, "min_tasks"), endpoint.min_tasks,
                              f"must not exceed max_tasks ({endpoint.max_tasks})"
                              f"{_env_note(config, env_name, [name], 'min_tasks', 'max_tasks')}")
            if endpoint.min_tasks == 0 and endpoint.mode == "realtime":
                yield Problem(_field_path(config, env_name, name, "min_tasks"), 0,
                              "is for asynchronous endpoints only: a real-time endpoint behind a load balancer "
                              "cannot wake from zero (requests would fail while the first task starts, and nothing "
                              "counts the requests that would start it); set min_tasks: 1 or more, or mode: async"
                              f"{_env_note(config, env_name, [name], 'min_tasks', 'mode')}")
            if endpoint.max_tasks == 0:
                yield Problem(_field_path(config, env_name, name, "max_tasks"), 0,
                              "must be at least 1: no task could ever answer")


ROUTING_FIELDS = ("host", "path", "listener_rule_priority", "exposure", "variants")
"""What only a load balancer's endpoint has."""


def check_async_endpoints(config: MlopsConfig) -> Iterator[Problem]:
    """An asynchronous endpoint has no load balancer: nothing routes to it, nothing shifts its traffic, and its
    callers are authorized by IAM on its bucket, not by the load balancer or a key."""
    for env_name in config.environments:
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.mode != "async":
                continue
            for field in ROUTING_FIELDS:
                value = getattr(endpoint, field)
                if value is not None:
                    yield Problem(_field_path(config, env_name, name, field), value,
                                  "is for real-time endpoints; asynchronous endpoint "
                                  f"{name} has no load balancer (requests arrive under its input prefix): remove it")
            if endpoint.rollout != "rolling":
                yield Problem(_field_path(config, env_name, name, "rollout"), endpoint.rollout,
                              "shifts load balancer traffic; an asynchronous endpoint's workers are replaced by "
                              "rolling updates: set rollout: rolling or leave it out")
            if endpoint.auth.type != "none":
                yield Problem(_field_path(config, env_name, name, "auth"), endpoint.auth.type,
                              "is for real-time endpoints; who may call an asynchronous endpoint is who may put "
                              "objects under its input prefix (IAM; docs/async.md): remove auth")
            if endpoint.scale_on != "requests":
                yield Problem(_field_path(config, env_name, name, "scale_on"), endpoint.scale_on,
                              "is for real-time endpoints; an asynchronous endpoint scales on its backlog per task "
                              "(async_inference.backlog_per_task): remove scale_on")


PRODUCTION_CANARY_BAKE_MINUTES = 3
"""ECS Express Mode's canary bake: a production canary bakes at least this long before the rest of the traffic."""


def check_production_canaries_bake(config: MlopsConfig) -> Iterator[Problem]:
    for env_name, env in config.environments.items():
        if not env.production:
            continue
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.rollout == "canary" and endpoint.canary_bake_minutes < PRODUCTION_CANARY_BAKE_MINUTES:
                yield Problem(_field_path(config, env_name, name, "canary_bake_minutes"),
                              endpoint.canary_bake_minutes,
                              f"is too short for production environment {env_name}: a canary bakes at least "
                              f"{PRODUCTION_CANARY_BAKE_MINUTES} minutes before the rest of the traffic moves")


def check_variants_roll(config: MlopsConfig) -> Iterator[Problem]:
    """ECS's canary and linear deployments move one listener rule's weights between two target groups; an endpoint
    with variants owns that rule's weights itself."""
    for env_name in config.environments:
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.variants and endpoint.rollout != "rolling":
                yield Problem(_field_path(config, env_name, name, "rollout"), endpoint.rollout,
                              "cannot be combined with variants (their weights are the gradual part): set rollout: "
                              "rolling or leave it out")


def check_subnets_fit(config: MlopsConfig) -> Iterator[Problem]:
    for env_name, env in config.environments.items():
        vpc_prefix = env.network.prefixlen
        prefix = env.effective_subnet_prefix_length
        needed = 2 * env.az_count
        path = f"environments.{env_name}"
        if prefix > 28:
            yield Problem(f"{path}.vpc_cidr", env.vpc_cidr,
                          f"is too small for {needed} subnets (public + private in {env.az_count} AZs); "
                          "use a larger block or fewer AZs")
        elif prefix < vpc_prefix or 2 ** (prefix - vpc_prefix) < needed:
            yield Problem(f"{path}.subnet_prefix_length", prefix,
                          f"{needed} subnets of /{prefix} do not fit in {env.vpc_cidr}; use a prefix length of "
                          f"at least /{vpc_prefix + (needed - 1).bit_length()} or omit it")


def check_availability_zones(config: MlopsConfig) -> Iterator[Problem]:
    known = region_zones(config.region)
    for env_name, env in config.environments.items():
        zones = env.availability_zones
        if zones is None:
            if known is not None and env.az_count > len(known):
                yield Problem(f"environments.{env_name}.az_count", env.az_count,
                              f"region {config.region} has {len(known)} availability zones ({', '.join(known)}, "
                              f"as of {ZONES_AS_OF}); use at most {len(known)}")
            continue
        path = f"environments.{env_name}.availability_zones"
        if len(zones) != env.az_count:
            yield Problem(path, zones, f"must list {env.az_count} zones, one per az_count")
        for zone in zones:
            if known is not None and zone not in known:
                yield Problem(path, zone, f"is not an availability zone of region {config.region}; its zones are "
                                          f"{', '.join(known)} (as of {ZONES_AS_OF})")
            elif not (zone.startswith(config.region) and len(zone) == len(config.region) + 1 and zone[-1].isalpha()):
                yield Problem(path, zone, f"is not an availability zone of region {config.region}; use names "
                                          f"such as {config.region}a")


def check_distinct_entries(config: MlopsConfig) -> Iterator[Problem]:
    """A list entry given twice would become two resources with one construct ID (or two identical rules)."""
    lists: list[tuple[str, list[str]]] = []
    for env_name, env in config.environments.items():
        lists += [(f"environments.{env_name}.alb_ingress_cidrs", env.alb_ingress_cidrs),
                  (f"environments.{env_name}.alarm_emails", env.alarm_emails),
                  (f"environments.{env_name}.availability_zones", env.availability_zones or [])]
    if config.pipeline is not None:
        lists.append(("pipeline.notification_emails", config.pipeline.notification_emails))
    for path, values in lists:
        seen: set[str] = set()
        for value in values:
            key = value.lower() if "emails" in path else value
            if key in seen:
                yield Problem(path, value, "is listed twice; list each entry once")
            seen.add(key)


def check_environment_names_apart(config: MlopsConfig) -> Iterator[Problem]:
    """Every name of an environment starts `<project>-<env>-`; a deploy role is scoped by that prefix, so one
    environment's prefix must not cover another's."""
    names = list(config.environments)
    for name in names:
        for other in names:
            if other != name and other.startswith(name + "-"):
                yield Problem(f"environments.{other}", other,
                              f"starts like environment {name} ({config.project}-{name}-...): the deploy role of one "
                              "would reach the other's resources; give them names that are not prefixes of each "
                              f"other, e.g. {name}-main and {other}")


def check_cidr_overlaps(config: MlopsConfig) -> Iterator[Problem]:
    seen: list[tuple[str, object]] = []
    for env_name, env in config.environments.items():
        for other_name, other_network in seen:
            if env.network.overlaps(other_network):  # type: ignore[arg-type]
                yield Problem(f"environments.{env_name}.vpc_cidr", env.vpc_cidr,
                              f"overlaps environment {other_name}'s VPC ({other_network}); give each environment "
                              "its own block so they can be peered later")
        seen.append((env_name, env.network))


def check_routes_unique(config: MlopsConfig) -> Iterator[Problem]:
    for env_name in config.environments:
        routes: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
        priorities: dict[int, list[str]] = defaultdict(list)
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.mode == "async":
                continue
            routes[(endpoint.host, endpoint.path)].append(name)
            priority = endpoint.listener_rule_priority or derived_listener_priority(name)
            priorities[priority].append(name)
        for (host, path), names in routes.items():
            if len(names) > 1:
                route = " ".join(part for part in (host, path) if part)
                yield Problem(_field_path(config, env_name, names[-1], "path" if path else "host"), route,
                              f"routes the same requests as endpoint(s) {', '.join(names[:-1])}"
                              f"{_env_note(config, env_name, names, 'host', 'path')}; give each endpoint its own "
                              "host or path")
        for priority, names in priorities.items():
            if len(names) > 1:
                yield Problem(_field_path(config, env_name, names[-1], "listener_rule_priority"), priority,
                              f"is the listener rule priority of endpoint(s) {', '.join(names[:-1])} too"
                              f"{_env_note(config, env_name, names, 'listener_rule_priority')}; set a distinct "
                              "listener_rule_priority")


def check_scheduled_scaling(config: MlopsConfig) -> Iterator[Problem]:
    for env_name in config.environments:
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            path = _field_path(config, env_name, name, "scheduled_scaling")
            seen: set[str] = set()
            for index, action in enumerate(endpoint.scheduled_scaling):
                if action.min_tasks > action.max_tasks:
                    yield Problem(f"{path}.{index}.min_tasks", action.min_tasks,
                                  f"must not exceed max_tasks ({action.max_tasks})")
                if action.name in seen:
                    yield Problem(f"{path}.{index}.name", action.name, "is used by another scheduled action")
                seen.add(action.name)


def check_hosts_under_domain(config: MlopsConfig) -> Iterator[Problem]:
    """With a domain, the certificate covers the domain and its direct subdomains: other hosts would fail TLS."""
    for env_name, env in config.environments.items():
        if env.domain is None:
            continue
        domain = env.domain.name
        for name in config.endpoints:
            host = config.endpoint_for(env_name, name).host
            if host is None or host == domain:
                continue
            if not host.endswith("." + domain) or "." in host[: -len(domain) - 1]:
                yield Problem(_field_path(config, env_name, name, "host"), host,
                              f"is not {domain} or a direct subdomain of it, which environment {env_name}'s "
                              "certificate covers")


def check_initial_models_exist(config: MlopsConfig) -> Iterator[Problem]:
    """A first deploy promotes the file: a missing one must fail at synth, not in the middle of a deploy."""
    for env_name in config.environments:
        for name in config.endpoints:
            model = config.endpoint_for(env_name, name).initial_model
            if model is not None and not model.startswith("s3://") and not (PROJECT_ROOT / model).is_file():
                yield Problem(_field_path(config, env_name, name, "initial_model"), model,
                              "is not a file in the repository; give a path relative to its root or an s3:// URI")


def check_exposure(config: MlopsConfig) -> Iterator[Problem]:
    """An endpoint is routed on a load balancer its environment has; with both, it says which."""
    for env_name, env in config.environments.items():
        offered = {EXPOSURE_OF_BALANCER[kind] for kind in env.load_balancers}
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.mode == "async":
                continue
            exposure = endpoint.exposure
            if exposure is None:
                yield Problem(f"endpoints.{name}.exposure", None,
                              f"is required: environment {env_name} has an internet-facing and an internal load "
                              f"balancer; set exposure: public or internal (here or under "
                              f"environments.{env_name}.endpoints.{name})")
            elif exposure not in offered:
                wanted = "internet-facing" if exposure == "public" else "internal"
                yield Problem(_field_path(config, env_name, name, "exposure"), exposure,
                              f"needs an {wanted} load balancer, which environment {env_name} does not have: add "
                              f"{wanted} to environments.{env_name}.load_balancers")


def check_private_link(config: MlopsConfig) -> Iterator[Problem]:
    for env_name, env in config.environments.items():
        if env.private_link is not None and "internal" not in env.load_balancers:
            yield Problem(f"environments.{env_name}.private_link", None,
                          "publishes the internal load balancer, which this environment does not have: add internal "
                          f"to environments.{env_name}.load_balancers")


def check_auth_transport(config: MlopsConfig) -> Iterator[Problem]:
    """A bearer token or key crosses the network with every request: JWT validation needs HTTPS (the load balancer
    validates only on an HTTPS listener), and API keys never cross the internet in clear in production."""
    for env_name, env in config.environments.items():
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.auth.type == "jwt" and env.domain is None:
                yield Problem(_field_path(config, env_name, name, "auth"), "jwt",
                              f"needs HTTPS, which environment {env_name} serves only with a domain: set "
                              f"environments.{env_name}.domain (the load balancer validates tokens on HTTPS "
                              "listeners only)")
            if (endpoint.auth.type == "api_key" and env.production and env.domain is None
                    and endpoint.exposure == "public"):
                yield Problem(_field_path(config, env_name, name, "auth"), "api_key",
                              f"would send keys across the internet in clear: production environment {env_name} "
                              f"has no domain (plain HTTP); set environments.{env_name}.domain, or exposure: "
                              "internal")


def check_no_anonymous_production(config: MlopsConfig) -> Iterator[Problem]:
    """A production endpoint open to the whole internet without authentication is a choice to write down."""
    for env_name, env in config.environments.items():
        if not env.production or "0.0.0.0/0" not in env.alb_ingress_cidrs:
            continue
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.exposure == "public" and endpoint.auth.type == "none" and not endpoint.auth.allow_anonymous:
                yield Problem(_field_path(config, env_name, name, "auth"), "none",
                              f"leaves production endpoint {name} open to anyone on the internet "
                              f"(environments.{env_name}.alb_ingress_cidrs admits 0.0.0.0/0): set auth.type api_key "
                              "or jwt, or exposure: internal, or narrower alb_ingress_cidrs; for a deliberately "
                              "public model, set auth.allow_anonymous: true")


def advisories(config: MlopsConfig) -> list[str]:
    """What is allowed but worth a second look: one line each, printed as warnings at synth."""
    lines = []
    for env_name, env in config.environments.items():
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if (endpoint.auth.type == "api_key" and not env.production and env.domain is None
                    and endpoint.exposure == "public"):
                lines.append(f"{_field_path(config, env_name, name, 'auth')}: API keys of endpoint {name} cross the "
                             f"internet in clear in environment {env_name} (no domain, plain HTTP); set "
                             f"environments.{env_name}.domain or exposure: internal before real clients use it")
            queue = endpoint.async_inference
            held_mib = queue.concurrency * queue.max_request_bytes / 2**20
            if endpoint.mode == "async" and held_mib > endpoint.memory_mib:
                lines.append(f"{_field_path(config, env_name, name, 'async_inference')}: a worker of endpoint {name} "
                             f"may hold {queue.concurrency} requests of up to {queue.max_request_bytes} bytes at once "
                             f"({held_mib:.0f} MiB) in {endpoint.memory_mib} MiB in environment {env_name}; lower "
                             "max_request_bytes or concurrency, or raise memory_mib, if requests can be that large")
    return lines


def check_monitoring_has_captures(config: MlopsConfig) -> Iterator[Problem]:
    for env_name in config.environments:
        for name in config.endpoints:
            endpoint = config.endpoint_for(env_name, name)
            if endpoint.monitoring.enabled and endpoint.capture_sample_percent == 0:
                where = _env_note(config, env_name, [name], "monitoring", "capture_sample_percent")
                yield Problem(_field_path(config, env_name, name, "capture_sample_percent"), 0,
                              "leaves the endpoint's monitoring (monitoring.enabled) nothing to read: capture a "
                              f"share of the requests or turn monitoring off{where}")


RULES: tuple[Callable[[MlopsConfig], Iterator[Problem]], ...] = (
    check_fargate_sizes,
    check_task_bounds,
    check_production_canaries_bake,
    check_variants_roll,
    check_subnets_fit,
    check_availability_zones,
    check_distinct_entries,
    check_environment_names_apart,
    check_cidr_overlaps,
    check_routes_unique,
    check_scheduled_scaling,
    check_hosts_under_domain,
    check_initial_models_exist,
    check_exposure,
    check_private_link,
    check_auth_transport,
    check_no_anonymous_production,
    check_monitoring_has_captures,
    check_async_endpoints,
)


def check_all(config: MlopsConfig) -> list[Problem]:
    """Every problem the cross-field rules find; overrides of unknown endpoints first, since the others need
    every override to name a declared endpoint."""
    problems = list(check_override_targets(config))
    if problems:
        return problems
    for rule in RULES:
        for problem in rule(config):
            if problem not in problems:  # a problem of the base entry shows in every environment: report it once
                problems.append(problem)
    return problems
