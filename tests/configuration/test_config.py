"""Configuration loading and validation: the shipped default, then one test per rule, asserting the message."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from configuration import ConfigError, load_config
from configuration.loader import parse_config
from configuration.naming import aws_name, derived_listener_priority
from tests.support.paths import DEFAULT_CONFIG, FIXTURES

BASE: dict[str, Any] = {
    "project": "mlops",
    "region": "eu-west-1",
    "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}, "prod": {"vpc_cidr": "10.20.0.0/16"}},
    "endpoints": {"a": {"path": "/a/*"}, "b": {"path": "/b/*"}},
}


PRIVATE: dict[str, Any] = {"alb_ingress_cidrs": ["203.0.113.0/24"]}
"""For a production environment in a test about something else: not open to the whole internet."""


def with_changes(**sections: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        data[key] = value
    return data


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.yaml")
    return caught.value.lines()


def only_problem(data: Any) -> str:
    lines = problems_of(data)
    assert len(lines) == 1, lines
    return lines[0]


# --- the shipped configuration -------------------------------------------------------------------------------------

def test_shipped_default_declares_staging_prod_and_endpoints_a_b():
    config = load_config(DEFAULT_CONFIG)
    assert list(config.environments) == ["staging", "prod"]
    assert list(config.endpoints) == ["a", "b"]
    assert all(env.account_id is None and env.deploy_role_arn is None for env in config.environments.values())


def test_environment_override_applies_to_one_environment_only():
    config = load_config(DEFAULT_CONFIG)
    assert config.endpoint_for("prod", "a").min_tasks == 2
    assert config.endpoint_for("staging", "a").min_tasks == 1
    assert config.endpoint_for("prod", "b").min_tasks == 1


def test_documented_defaults():
    config = parse_config(BASE, "test.yaml")
    endpoint = config.endpoint_for("staging", "a")
    assert (endpoint.cpu, endpoint.memory_mib, endpoint.container_port) == (512, 1024, 8080)
    assert endpoint.health_check_path == "/v2/health/ready"
    env = config.environments["staging"]
    assert (env.az_count, env.nat_gateways, env.enable_vpc_endpoints) == (2, "one_per_az", False)
    assert config.state.locking == "dynamodb"
    assert config.state_bucket_name == "mlops-tfstate-eu-west-1"
    assert config.lock_table_name == "mlops-tfstate-locks"


def test_default_route_is_the_endpoint_name_when_no_host_or_path():
    config = parse_config(with_changes(endpoints={"fraud": {}}), "test.yaml")
    assert config.endpoint_for("staging", "fraud").path == "/fraud/*"


def test_subnets_split_the_vpc_evenly_by_default():
    env = parse_config(BASE, "test.yaml").environments["staging"]
    assert env.subnet_cidrs() == (["10.10.0.0/18", "10.10.64.0/18"], ["10.10.128.0/18", "10.10.192.0/18"])
    assert env.zone_names("eu-west-1") == ["eu-west-1a", "eu-west-1b"]


def test_mlops_config_env_var_selects_another_file(monkeypatch):
    monkeypatch.setenv("MLOPS_CONFIG", str(FIXTURES / "all-options.yaml"))
    assert load_config().project == "acme-ml"


# --- file-level problems ---------------------------------------------------------------------------------------------

def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.lines() == [f"{tmp_path / 'nope.yaml'}: configuration file not found; create it or point "
                                    "MLOPS_CONFIG at an existing file"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("project: mlops\nregion: [eu-west-1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = caught.value.lines()
    assert line.startswith(f"{path}: line 3, column 1: invalid YAML")


def test_duplicate_yaml_key_is_an_error(tmp_path: Path):
    path = tmp_path / "dup.yaml"
    path.write_text("project: mlops\nproject: other\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.lines() == [f"{path}: line 2, column 1: invalid YAML: duplicate key 'project'"]


def test_file_must_be_a_mapping():
    assert only_problem(["a"]) == ("test.yaml: the file must hold a mapping with project, region, environments ... "
                                   "(got 'list')")


# --- schema rules ----------------------------------------------------------------------------------------------------

def test_unknown_top_level_key_lists_allowed_keys():
    assert only_problem({**BASE, "enviroments": {}}) == (
        "test.yaml: enviroments: unknown key; allowed here: project, region, state, tags, environments, endpoints, "
        "pipeline "
        "(got {})")


def test_unknown_key_in_an_environment_override():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "endpoints": {"a": {"cpus": 1}}}})
    line = only_problem(data)
    assert line.startswith("test.yaml: environments.staging.endpoints.a.cpus: unknown key; allowed here: cpu, "
                           "memory_mib, container_port")


def test_missing_required_field():
    data = with_changes(environments={"staging": {"az_count": 2}})
    assert only_problem(data) == "test.yaml: environments.staging.vpc_cidr: is required"


def test_cidr_syntax():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/33"}})
    assert only_problem(data) == ("test.yaml: environments.staging.vpc_cidr: must be an IPv4 CIDR block such as "
                                  "10.10.0.0/16 ('33' is not a valid netmask) (got '10.10.0.0/33')")


def test_cidr_with_host_bits_set():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.1/16"}})
    assert "must be an IPv4 CIDR block such as 10.10.0.0/16" in only_problem(data)


def test_az_count_at_least_two():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "az_count": 1}})
    assert only_problem(data) == ("test.yaml: environments.staging.az_count: must be between 2 and 6: a load "
                                  "balancer needs subnets in at least 2 AZs (got 1)")


@pytest.mark.parametrize("port", [0, 65536])
def test_port_range(port: int):
    data = with_changes(endpoints={"a": {"container_port": port}})
    assert only_problem(data) == (f"test.yaml: endpoints.a.container_port: must be a TCP port between 1 and 65535 "
                                  f"(got {port})")


def test_health_check_path_starts_with_slash():
    data = with_changes(endpoints={"a": {"health_check_path": "health"}})
    assert only_problem(data) == ("test.yaml: endpoints.a.health_check_path: must start with '/', e.g. "
                                  "/v2/health/ready (got 'health')")


def test_endpoint_name_syntax():
    data = with_changes(endpoints={"Endpoint_A": {}})
    assert "endpoint name 'Endpoint_A' must be lower-case letters" in only_problem(data)


def test_project_name_length():
    data = {**BASE, "project": "a-very-long-project-name"}
    assert only_problem(data) == ("test.yaml: project: project must be at most 16 characters (AWS name limits), it "
                                  "has 24 (got 'a-very-long-project-name')")


def test_region_syntax():
    assert only_problem({**BASE, "region": "Ireland"}) == ("test.yaml: region: must be an AWS region code such as "
                                                          "eu-west-1 (got 'Ireland')")


def test_account_id_must_be_twelve_digits():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "account_id": 1234}})
    assert "environments.staging.account_id" in only_problem(data)


def test_deploy_role_must_be_a_role_arn():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "deploy_role_arn": "deployer"}})
    assert only_problem(data) == ("test.yaml: environments.staging.deploy_role_arn: must be an IAM role ARN such as "
                                  "arn:aws:iam::123456789012:role/deploy (got 'deployer')")


def test_locking_choices():
    line = only_problem({**BASE, "state": {"locking": "etcd"}})
    assert line.startswith("test.yaml: state.locking: input should be 'dynamodb', 's3' or 's3_and_dynamodb'")


def test_flow_log_retention_must_be_a_cloudwatch_value():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "flow_logs_retention_days": 100}})
    assert only_problem(data).startswith("test.yaml: environments.staging.flow_logs_retention_days: must be one of "
                                         "1, 3, 5, 7, 14, 30")


def test_every_schema_problem_is_reported_in_one_run():
    data = with_changes(endpoints={"a": {"container_port": 0, "health_check_path": "x"}})
    assert len(problems_of(data)) == 2


# --- cross-field rules -----------------------------------------------------------------------------------------------

def test_fargate_cpu_must_be_a_fargate_size():
    data = with_changes(endpoints={"a": {"cpu": 300}})
    assert only_problem(data) == ("test.yaml: endpoints.a.cpu: is not a Fargate CPU size; allowed: 256, 512, 1024, "
                                  "2048, 4096, 8192, 16384 (got 300)")


def test_fargate_memory_must_pair_with_cpu():
    data = with_changes(endpoints={"a": {"cpu": 256, "memory_mib": 4096}})
    assert only_problem(data) == ("test.yaml: endpoints.a.memory_mib: is not valid with cpu 256 on Fargate; allowed "
                                  "memory_mib: 512, 1024, 2048 (got 4096)")


def test_fargate_pair_broken_by_an_environment_override_names_the_override():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "endpoints": {"a": {"cpu": 4096}}},
                                      "prod": {"vpc_cidr": "10.20.0.0/16"}})
    assert only_problem(data) == ("test.yaml: endpoints.a.memory_mib: is not valid with cpu 4096 on Fargate in "
                                  "environment staging; allowed memory_mib: 8192-30720 in steps of 1024 (got 1024)")


def test_min_tasks_not_above_max_tasks():
    data = with_changes(endpoints={"a": {"min_tasks": 5, "max_tasks": 2}})
    assert only_problem(data) == "test.yaml: endpoints.a.min_tasks: must not exceed max_tasks (2) (got 5)"


def test_min_tasks_override_above_max_names_the_environment():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16"},
                                      "prod": {"vpc_cidr": "10.20.0.0/16", "endpoints": {"a": {"min_tasks": 9}}}})
    assert only_problem(data) == ("test.yaml: environments.prod.endpoints.a.min_tasks: must not exceed max_tasks (4) "
                                  "in environment prod (got 9)")


def test_override_of_an_undeclared_endpoint():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "endpoints": {"c": {"cpu": 256}}}})
    assert only_problem(data) == ("test.yaml: environments.staging.endpoints.c: overrides an endpoint that is not "
                                  "declared under `endpoints` (declared: a, b) (got 'c')")


def test_vpc_cidrs_must_not_overlap():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16"}, "prod": {"vpc_cidr": "10.10.128.0/17"}})
    assert only_problem(data) == ("test.yaml: environments.prod.vpc_cidr: overlaps environment staging's VPC "
                                  "(10.10.0.0/16); give each environment its own block so they can be peered later "
                                  "(got '10.10.128.0/17')")


def test_subnets_must_fit_the_vpc():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "az_count": 3,
                                                  "subnet_prefix_length": 18}})
    assert only_problem(data) == ("test.yaml: environments.staging.subnet_prefix_length: 6 subnets of /18 do not fit "
                                  "in 10.10.0.0/16; use a prefix length of at least /19 or omit it (got 18)")


def test_vpc_too_small_for_the_az_count():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/28", "az_count": 2}})
    assert only_problem(data) == ("test.yaml: environments.staging.vpc_cidr: is too small for 4 subnets (public + "
                                  "private in 2 AZs); use a larger block or fewer AZs (got '10.10.0.0/28')")


def test_availability_zones_must_match_az_count_and_region():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16",
                                                  "availability_zones": ["eu-west-1a", "us-east-1b", "eu-west-1c"]}})
    assert problems_of(data) == [
        "test.yaml: environments.staging.availability_zones: must list 2 zones, one per az_count "
        "(got ['eu-west-1a', 'us-east-1b', 'eu-west-1c'])",
        "test.yaml: environments.staging.availability_zones: is not an availability zone of region eu-west-1; its "
        "zones are eu-west-1a, eu-west-1b, eu-west-1c (as of 2025-11) (got 'us-east-1b')",
    ]


def test_a_zone_the_region_does_not_have_is_refused():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16",
                                                  "availability_zones": ["eu-west-1a", "eu-west-1d"]}})
    assert only_problem(data) == (
        "test.yaml: environments.staging.availability_zones: is not an availability zone of region eu-west-1; its "
        "zones are eu-west-1a, eu-west-1b, eu-west-1c (as of 2025-11) (got 'eu-west-1d')")


def test_az_count_beyond_the_region_s_zones_is_refused():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", "az_count": 4}})
    assert only_problem(data) == (
        "test.yaml: environments.staging.az_count: region eu-west-1 has 3 availability zones (eu-west-1a, "
        "eu-west-1b, eu-west-1c, as of 2025-11); use at most 3 (got 4)")


def test_derived_zones_skip_letters_the_region_lacks():
    """ap-northeast-1 has no zone b: the first three zones are a, c and d."""
    data = with_changes(region="ap-northeast-1", environments={"staging": {"vpc_cidr": "10.10.0.0/16",
                                                                           "az_count": 3}})
    config = parse_config(data, "test.yaml")
    assert config.environments["staging"].zone_names("ap-northeast-1") == [
        "ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]


def test_a_region_missing_from_the_zone_table_is_checked_by_name_shape_only():
    data = with_changes(region="xx-new-1", environments={"staging": {
        "vpc_cidr": "10.10.0.0/16", "availability_zones": ["xx-new-1a", "xx-new-1zz"]}})
    assert only_problem(data) == ("test.yaml: environments.staging.availability_zones: is not an availability zone "
                                  "of region xx-new-1; use names such as xx-new-1a (got 'xx-new-1zz')")


@pytest.mark.parametrize("field, entries, twice", [
    ("alb_ingress_cidrs", ["10.0.0.0/8", "192.168.0.0/16", "10.0.0.0/8"], "10.0.0.0/8"),
    ("alarm_emails", ["ops@example.com", "OPS@example.com"], "OPS@example.com"),
    ("availability_zones", ["eu-west-1a", "eu-west-1a"], "eu-west-1a"),
])
def test_an_entry_listed_twice_is_a_configuration_error(field, entries, twice):
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", field: entries}})
    assert only_problem(data) == (f"test.yaml: environments.staging.{field}: is listed twice; list each entry once "
                                  f"(got {twice!r})")


def test_a_notification_email_listed_twice_is_a_configuration_error():
    data = with_changes(pipeline={"repository": "acme/models", "notification_emails": ["a@example.com"] * 2})
    assert only_problem(data) == ("test.yaml: pipeline.notification_emails: is listed twice; list each entry once "
                                  "(got 'a@example.com')")


def test_duplicate_paths_across_endpoints():
    data = with_changes(endpoints={"a": {"path": "/x/*"}, "b": {"path": "/x/*"}})
    assert only_problem(data) == ("test.yaml: endpoints.b.path: routes the same requests as endpoint(s) a; give each "
                                  "endpoint its own host or path (got '/x/*')")


def test_duplicate_hosts_across_endpoints():
    data = with_changes(endpoints={"a": {"host": "m.example.com"}, "b": {"host": "m.example.com"}})
    assert only_problem(data) == ("test.yaml: endpoints.b.host: routes the same requests as endpoint(s) a; give each "
                                  "endpoint its own host or path (got 'm.example.com')")


def test_same_path_on_different_hosts_is_fine():
    data = with_changes(endpoints={"a": {"host": "a.example.com", "path": "/v2/*"},
                                   "b": {"host": "b.example.com", "path": "/v2/*"}})
    config = parse_config(data, "test.yaml")
    routes = {name: (config.endpoint_for("staging", name).host, config.endpoint_for("staging", name).path)
              for name in config.endpoints}
    assert routes == {"a": ("a.example.com", "/v2/*"), "b": ("b.example.com", "/v2/*")}


def test_duplicate_listener_rule_priorities():
    data = with_changes(endpoints={"a": {"listener_rule_priority": 7}, "b": {"path": "/b/*",
                                                                            "listener_rule_priority": 7}})
    assert only_problem(data) == ("test.yaml: endpoints.b.listener_rule_priority: is the listener rule priority of "
                                  "endpoint(s) a too; set a distinct listener_rule_priority (got 7)")


# --- names -----------------------------------------------------------------------------------------------------------

def test_aws_names_are_shortened_deterministically_within_the_limit():
    long_name = aws_name("a-sixteen-chars-", "staging1", "endpoint-name-16", max_length=32)
    assert len(long_name) == 32
    assert long_name == aws_name("a-sixteen-chars-", "staging1", "endpoint-name-16", max_length=32)
    assert long_name != aws_name("a-sixteen-chars-", "staging1", "endpoint-name-17", max_length=32)
    assert aws_name("mlops", "staging", max_length=32) == "mlops-staging"


def test_derived_priority_is_pinned_per_name():
    """A listener rule's priority must never move between releases: adding, removing or reordering endpoints, or
    upgrading this tool, must not touch another endpoint's rule. These values are a contract."""
    assert [derived_listener_priority(name) for name in ("a", "b", "fraud-detector")] == [30499, 1965, 37694]


def test_fixture_all_options_is_valid():
    config = load_config(FIXTURES / "all-options.yaml")
    assert yaml.safe_load((FIXTURES / "all-options.yaml").read_text())["project"] == config.project


# --- platform, endpoint and pipeline options -------------------------------------------------------------------------

def env_with(**fields: Any) -> dict[str, Any]:
    return with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16", **fields}})


def test_endpoint_hosts_must_be_covered_by_the_domain_certificate():
    data = env_with(domain={"name": "models.example.com", "hosted_zone_id": "Z0123456789"})
    data["endpoints"] = {"a": {"host": "a.other.example.com"}, "b": {"host": "b.models.example.com"},
                         "c": {"host": "x.y.models.example.com"}}
    assert problems_of(data) == [
        "test.yaml: endpoints.a.host: is not models.example.com or a direct subdomain of it, which environment "
        "staging's certificate covers (got 'a.other.example.com')",
        "test.yaml: endpoints.c.host: is not models.example.com or a direct subdomain of it, which environment "
        "staging's certificate covers (got 'x.y.models.example.com')",
    ]


def test_every_alb_ingress_cidr_is_checked():
    line = only_problem(env_with(alb_ingress_cidrs=["10.0.0.0/8", "192.168.1.300/32"]))
    assert line.startswith("test.yaml: environments.staging.alb_ingress_cidrs: '192.168.1.300/32' is not an IPv4 CIDR")


def test_scheduled_scaling_bounds_and_syntax():
    data = with_changes(endpoints={"a": {"scheduled_scaling": [
        {"name": "night", "schedule": "cron(0 20 * * ? *)", "min_tasks": 3, "max_tasks": 1}]}})
    assert only_problem(data) == ("test.yaml: endpoints.a.scheduled_scaling.0.min_tasks: must not exceed max_tasks "
                                  "(1) (got 3)")
    data = with_changes(endpoints={"a": {"scheduled_scaling": [
        {"name": "night", "schedule": "0 20 * * *", "min_tasks": 1, "max_tasks": 1}]}})
    assert "must be cron(...), rate(...) or at(...)" in only_problem(data)


def test_model_sync_schedule_and_bucket_name():
    assert "must be an EventBridge schedule" in only_problem(env_with(model_sync_schedule="hourly"))
    assert "must be a valid S3 bucket name" in only_problem(env_with(model_bucket_name="Models_Bucket"))
    config = parse_config(env_with(model_bucket_name="my-models"), "test.yaml")
    assert config.model_bucket_name("staging") == "my-models"


def test_pipeline_repository_and_terraform_pin():
    base = {**BASE, "pipeline": {"repository": "not a repo"}}
    assert only_problem(base) == "test.yaml: pipeline.repository: must be a GitHub repository as owner/name " \
                                 "(got 'not a repo')"
    bad_sha = {**BASE, "pipeline": {"repository": "acme/ml", "terraform_sha256": "abc"}}
    assert "must be a SHA-256 in lower-case hex" in only_problem(bad_sha)
    missing = {**BASE, "pipeline": {"branch": "main"}}
    assert only_problem(missing) == "test.yaml: pipeline.repository: is required"


def test_spot_share_defaults_by_production():
    config = parse_config(with_changes(environments={
        "staging": {"vpc_cidr": "10.10.0.0/16"}, "prod": {"vpc_cidr": "10.20.0.0/16", "production": True, **PRIVATE}}),
        "test.yaml")
    assert config.endpoint_for("staging", "a").fargate_spot_percent == 50
    assert config.endpoint_for("prod", "a").fargate_spot_percent == 0


def test_initial_model_must_be_a_repository_onnx_file_or_an_s3_uri(tmp_path):
    from configuration import ConfigError
    from configuration.loader import parse_config

    def problems(initial_model):
        raw = {"project": "mlops", "region": "eu-west-1", "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
               "endpoints": {"a": {"initial_model": initial_model}}}
        try:
            parse_config(raw, "cfg.yaml")
        except ConfigError as exc:
            return exc.lines()
        return []

    assert problems("serving/example/models/1/model.onnx") == []
    assert problems("s3://my-models/a/model.onnx") == []
    (missing,) = problems("models/missing.onnx")
    assert missing.startswith("cfg.yaml: endpoints.a.initial_model: is not a file in the repository")
    assert "models/missing.onnx" in missing
    for bad in ("/etc/passwd.onnx", "../outside.onnx", "model.pt", "s3://Bad_Bucket/x.onnx"):
        (line,) = problems(bad)
        assert line.startswith("cfg.yaml: endpoints.a.initial_model:") and bad in line, line


@pytest.mark.parametrize(("override", "expected"), [
    ({"container_port": 0}, "environments.prod.endpoints.a.container_port: must be a TCP port between 1 and 65535"),
    ({"cpu_target_percent": 5}, "environments.prod.endpoints.a.cpu_target_percent: input should be greater than or "
                                "equal to 10"),
    ({"min_tasks": "many"}, "environments.prod.endpoints.a.min_tasks: input should be a valid integer"),
    ({"bogus": 1}, "environments.prod.endpoints.a.bogus: unknown key"),
    ({"health_check_path": "nope"}, "environments.prod.endpoints.a.health_check_path: must start with '/'"),
    ({"container_port": None}, "environments.prod.endpoints.a.container_port: must not be null"),
    ({"scheduled_scaling": None}, "environments.prod.endpoints.a.scheduled_scaling: must not be null"),
    ({"min_tasks": 9}, "environments.prod.endpoints.a.min_tasks: must not exceed max_tasks (4) in environment prod"),
    ({"memory_mib": 9999}, "environments.prod.endpoints.a.memory_mib: is not valid with cpu 512 on Fargate"),
])
def test_an_override_keeps_every_limit_of_the_endpoint_field_and_names_its_own_path(override, expected):
    from configuration import ConfigError
    from configuration.loader import parse_config

    raw = {"project": "mlops", "region": "eu-west-1", "endpoints": {"a": {"max_tasks": 4}},
           "environments": {"prod": {"vpc_cidr": "10.20.0.0/16", "endpoints": {"a": override}}}}
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "cfg.yaml")
    (line,) = error.value.lines()
    assert line.startswith(f"cfg.yaml: {expected}"), line


def test_a_valid_override_changes_only_its_environment():
    from configuration.loader import parse_config

    config = parse_config({"project": "mlops", "region": "eu-west-1", "endpoints": {"a": {}},
                           "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"},
                                            "prod": {"vpc_cidr": "10.20.0.0/16",
                                                     "endpoints": {"a": {"min_tasks": 2, "host": None}}}}}, "x")
    assert config.endpoint_for("prod", "a").min_tasks == 2 and config.endpoint_for("staging", "a").min_tasks == 1


# --- the resolved view -----------------------------------------------------------------------------------------------

def test_resolved_values_are_derived_once_from_the_configuration():
    from configuration.resolved import resolve_environment

    config = load_config(FIXTURES / "all-options.yaml")
    env_name = next(iter(config.environments))
    resolved = resolve_environment(config, env_name)
    env = config.environments[env_name]
    assert resolved.load_balancer_name == aws_name(config.project, env_name, max_length=32)
    assert resolved.availability_zones == tuple(env.zone_names(config.region))
    churn = resolved.endpoints["churn"]
    assert churn.listener_priority == 10  # configured; fraud has none and gets its name's derived priority
    assert resolved.endpoints["fraud"].listener_priority == derived_listener_priority("fraud")
    assert churn.route_prefix == "" and churn.server_workers == 2 and churn.fargate_spot_percent == 25
    assert churn.server_keep_alive_seconds == env.alb_idle_timeout_seconds + 5
    assert churn.server_drain_seconds == 55  # stop timeout 60 - 5 for the capture flush


def test_route_prefix_of_a_path_route():
    from configuration.resolved import route_prefix

    assert [route_prefix(path) for path in ("/a/*", "/v2/models", None)] == ["/a", "", ""]


# --- rollouts -----------------------------------------------------------------------------------------------------

def test_production_rolls_out_as_a_canary_and_other_environments_rolling_by_default():
    data = with_changes(environments={"staging": {"vpc_cidr": "10.10.0.0/16"},
                                      "prod": {"vpc_cidr": "10.20.0.0/16", "production": True, **PRIVATE}})
    config = parse_config(data, "test.yaml")
    prod, staging = config.endpoint_for("prod", "a"), config.endpoint_for("staging", "a")
    assert (prod.rollout, prod.canary_percent, prod.canary_bake_minutes, prod.rollout_bake_minutes) == (
        "canary", 5.0, 5, 10)
    assert staging.rollout == "rolling"


@pytest.mark.parametrize("field, value, message", [
    ("canary_percent", 0, "input should be greater than or equal to 0.1"),
    ("canary_percent", 5.05, "must be a multiple of 0.1 (ECS's granularity), e.g. 5 or 12.5"),
    ("linear_step_percent", 2, "input should be greater than or equal to 3"),
    ("linear_step_percent", 30, "must divide 100 into equal steps, so the last step is not a different share"),
    ("canary_bake_minutes", 1441, "input should be less than or equal to 1440"),
    ("rollout", "blue-green", "input should be 'rolling', 'canary' or 'linear'"),
])
def test_rollout_values_ecs_would_refuse_are_refused_at_synth(field, value, message):
    line = only_problem(with_changes(endpoints={"a": {"path": "/a/*", field: value}, "b": {"path": "/b/*"}}))
    assert line.startswith(f"test.yaml: endpoints.a.{field}: {message}")


def test_a_production_canary_bakes_at_least_three_minutes():
    data = with_changes(environments={"prod": {"vpc_cidr": "10.20.0.0/16", "production": True, **PRIVATE,
                                               "endpoints": {"a": {"canary_bake_minutes": 2}}}})
    assert only_problem(data) == (
        "test.yaml: environments.prod.endpoints.a.canary_bake_minutes: is too short for production environment prod: "
        "a canary bakes at least 3 minutes before the rest of the traffic moves (got 2)")


def test_an_environment_name_must_not_be_the_prefix_of_another():
    data = with_changes(environments={"prod": {"vpc_cidr": "10.10.0.0/16"},
                                      "prod-eu": {"vpc_cidr": "10.20.0.0/16"}})
    assert only_problem(data) == (
        "test.yaml: environments.prod-eu: starts like environment prod (mlops-prod-...): the deploy role of one would "
        "reach the other's resources; give them names that are not prefixes of each other, e.g. prod-main and "
        "prod-eu (got 'prod-eu')")


# --- variants ---------------------------------------------------------------------------------------------------------

THREE_VARIANTS = {"current": {"weight": 90}, "candidate": {"weight": 10, "model_version": "7"},
                  "shadowed": {"weight": 0, "shadow_percent": 25, "model_version": "8"}}


def with_variants(variants: Any, **endpoint: Any) -> dict[str, Any]:
    return with_changes(endpoints={"a": {"path": "/a/*", "variants": variants, **endpoint}, "b": {"path": "/b/*"}})


def test_variants_resolve_and_make_a_production_endpoint_roll():
    from configuration.resolved import resolve_environment

    data = with_variants(THREE_VARIANTS)
    data["environments"]["prod"].update(production=True, **PRIVATE)
    prod = resolve_environment(parse_config(data, "test.yaml"), "prod")
    a = prod.endpoints["a"]
    assert [(v.name, v.weight, v.model_version, v.service_name) for v in a.variants] == [
        ("current", 90, None, "a-current"), ("candidate", 10, "7", "a-candidate"), ("shadowed", 0, "8", "a-shadowed")]
    assert a.shadow is not None and a.shadow.name == "shadowed" and not a.gradual_rollout
    assert a.pinned_versions == {"candidate": "7", "shadowed": "8"}
    assert a.service_names == ("a-current", "a-candidate", "a-shadowed")
    assert prod.endpoints["b"].variants == () and prod.endpoints["b"].service_names == ("b",)


@pytest.mark.parametrize("variants, message", [
    ({"x": {"weight": 60}, "y": {"weight": 30}}, "the weights of the serving variants must add up to 100, they add "
                                                 "up to 90 (x: 60, y: 30)"),
    ({"x": {"weight": 100}, "y": {"weight": 0}}, "variant 'y' has weight 0, so it needs shadow_percent above 0"),
    ({"x": {"weight": 100, "shadow_percent": 5}}, "variant 'x' serves (weight 100); shadow_percent is for a variant "
                                                  "with weight 0"),
    ({"x": {"weight": 100}, "s1": {"weight": 0, "shadow_percent": 5}, "s2": {"weight": 0, "shadow_percent": 5}},
     "at most one shadow variant per endpoint, got s1, s2"),
    ({"x": {"weight": 0, "shadow_percent": 5}}, "at least one variant needs a weight above 0"),
    ({"a-very-long-variant": {"weight": 100}}, "variant name 'a-very-long-variant' must be at most 12 characters"),
])
def test_variant_rules(variants, message):
    line = only_problem(with_variants(variants))
    assert line.startswith("test.yaml: endpoints.a.variants: ") and message in line, line


def test_a_pinned_version_must_be_a_version_name():
    line = only_problem(with_variants({"x": {"weight": 100, "model_version": "7 beta"}}))
    assert line.startswith("test.yaml: endpoints.a.variants.x.model_version: must be a model version name"), line


def test_variants_cannot_use_a_canary_rollout():
    assert only_problem(with_variants(THREE_VARIANTS, rollout="canary")) == (
        "test.yaml: endpoints.a.rollout: cannot be combined with variants (their weights are the gradual part): set "
        "rollout: rolling or leave it out (got 'canary')")


# --- monitoring ----------------------------------------------------------------------------------------------------

def test_monitoring_is_off_by_default_and_on_where_it_says():
    config = parse_config(with_changes(endpoints={"a": {"path": "/a/*", "monitoring": {"enabled": True}},
                                                  "b": {"path": "/b/*"}}), "test.yaml")
    assert config.endpoint_for("staging", "a").monitoring.enabled
    assert not config.endpoint_for("staging", "b").monitoring.enabled
    assert config.endpoint_for("staging", "a").monitoring.schedule == "cron(20 * * * ? *)"  # after the export at :05


@pytest.mark.parametrize("monitoring, message", [
    ({"enabled": True, "window_hours": 24, "drift_alarm_windows": 8},
     "endpoints.a.monitoring: drift_alarm_windows x window_hours is 192 hours; CloudWatch alarms look back at most "
     "168 hours (7 days)"),
    ({"schedule": "hourly"}, "endpoints.a.monitoring.schedule: must be an EventBridge schedule"),
    ({"quality_alarm": {"metric": "logloss", "value": 1}}, "endpoints.a.monitoring.quality_alarm.metric"),
])
def test_monitoring_settings_are_checked(monitoring, message):
    data = with_changes(endpoints={"a": {"path": "/a/*", "monitoring": monitoring}, "b": {"path": "/b/*"}})
    assert only_problem(data).startswith(f"test.yaml: {message}")


def test_monitoring_without_captures_is_refused_with_the_way_out():
    data = with_changes(endpoints={"a": {"path": "/a/*", "capture_sample_percent": 0,
                                         "monitoring": {"enabled": True}}, "b": {"path": "/b/*"}})
    assert only_problem(data) == ("test.yaml: endpoints.a.capture_sample_percent: leaves the endpoint's monitoring "
                                  "(monitoring.enabled) nothing to read: capture a share of the requests or turn "
                                  "monitoring off (got 0)")


# --- asynchronous endpoints -----------------------------------------------------------------------------------------

def test_a_real_time_endpoint_may_not_scale_to_zero_and_says_why():
    data = with_changes(endpoints={"a": {"path": "/a/*", "min_tasks": 0}, "b": {"path": "/b/*"}})
    problem = only_problem(data)
    assert problem.startswith("test.yaml: endpoints.a.min_tasks: is for asynchronous endpoints only: a real-time "
                              "endpoint behind a load balancer cannot wake from zero")
    assert "set min_tasks: 1 or more, or mode: async" in problem and problem.endswith("(got 0)")


def test_an_asynchronous_endpoint_may_scale_to_zero_and_gets_no_route():
    config = parse_config(with_changes(endpoints={"a": {"path": "/a/*"}, "s": {"mode": "async", "min_tasks": 0}}),
                          "test.yaml")
    endpoint = config.endpoint_for("staging", "s")
    assert endpoint.min_tasks == 0 and endpoint.path is None and endpoint.exposure is None
    assert endpoint.rollout == "rolling" and endpoint.async_inference.max_receives == 3
    assert config.async_bucket_name("staging", "s") == "mlops-staging-s-async-eu-west-1"


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"path": "/s/*"}, "path", "is for real-time endpoints; asynchronous endpoint s has no load balancer"),
    ({"exposure": "internal"}, "exposure", "has no load balancer"),
    ({"auth": {"type": "api_key"}}, "auth", "who may call an asynchronous endpoint is who may put objects under its "
                                            "input prefix"),
    ({"rollout": "canary"}, "rollout", "set rollout: rolling or leave it out"),
    ({"scale_on": "concurrency"}, "scale_on", "scales on its backlog per task"),
])
def test_what_only_a_load_balancer_s_endpoint_has_is_refused_for_an_asynchronous_one(changes, field, says):
    data = with_changes(endpoints={"a": {"path": "/a/*"}, "s": {"mode": "async", **changes}})
    problem = only_problem(data)
    assert problem.startswith(f"test.yaml: endpoints.s.{field}: ") and says in problem


def test_async_inference_limits_name_the_field():
    data = with_changes(endpoints={"a": {"path": "/a/*"}, "s": {"mode": "async", "async_inference": {
        "message_retention_days": 15}}})
    assert "endpoints.s.async_inference.message_retention_days" in only_problem(data)


def test_a_worker_that_could_hold_more_than_its_memory_is_pointed_out():
    from configuration.rules import advisories

    config = parse_config(with_changes(endpoints={"a": {"path": "/a/*"}, "s": {
        "mode": "async", "memory_mib": 2048, "async_inference": {"max_request_bytes": 1073741824}}}), "test.yaml")
    lines = advisories(config)
    assert len(lines) == 2 and lines[0].startswith(
        "endpoints.s.async_inference: a worker of endpoint s may hold 4 requests of up to 1073741824 bytes at once "
        "(4096 MiB) in 2048 MiB in environment staging")
    roomy = parse_config(with_changes(endpoints={"a": {"path": "/a/*"}, "s": {
        "mode": "async", "memory_mib": 2048, "async_inference": {"max_request_bytes": 104857600}}}), "test.yaml")
    assert advisories(roomy) == []
