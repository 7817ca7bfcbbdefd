"""Who may call an endpoint, as configured: load balancers, exposure, authentication, PrivateLink; every mistake is
one line naming the field, the value and the way out."""

from __future__ import annotations

from typing import Any

from configuration.loader import parse_config
from configuration.rules import advisories
from tests.configuration.test_config import only_problem, problems_of, with_changes

DOMAIN = {"name": "models.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ"}
JWT = {"type": "jwt", "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
       "jwks_url": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc/.well-known/jwks.json",
       "claims": [{"name": "scope", "values": ["models/invoke"], "format": "space-separated-values"}]}


def environments(staging: dict[str, Any] | None = None, prod: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"staging": {"vpc_cidr": "10.10.0.0/16", **(staging or {})},
            "prod": {"vpc_cidr": "10.20.0.0/16", **(prod or {})}}


def test_an_endpoint_is_exposed_on_the_environment_s_only_load_balancer_by_default():
    config = parse_config(with_changes(environments=environments(staging={"load_balancers": ["internal"]})), "t")
    assert config.endpoint_for("staging", "a").exposure == "internal"
    assert config.endpoint_for("prod", "a").exposure == "public"
    assert config.endpoints["a"].auth.type == "none"


def test_with_both_load_balancers_each_endpoint_says_which():
    data = with_changes(environments=environments(staging={"load_balancers": ["internet-facing", "internal"]}),
                        endpoints={"a": {"path": "/a/*", "exposure": "public"}, "b": {"path": "/b/*"}})
    assert only_problem(data) == (
        "test.yaml: endpoints.b.exposure: is required: environment staging has an internet-facing and an internal "
        "load balancer; set exposure: public or internal (here or under environments.staging.endpoints.b)")
    data["environments"]["staging"]["endpoints"] = {"b": {"exposure": "internal"}}
    config = parse_config(data, "t")
    assert config.endpoint_for("staging", "b").exposure == "internal"


def test_an_exposure_the_environment_has_no_load_balancer_for():
    data = with_changes(environments=environments(prod={"endpoints": {"a": {"exposure": "internal"}}}))
    assert only_problem(data) == (
        "test.yaml: environments.prod.endpoints.a.exposure: needs an internal load balancer, which environment prod "
        "does not have: add internal to environments.prod.load_balancers (got 'internal')")


def test_a_load_balancer_kind_listed_twice():
    data = with_changes(environments=environments(staging={"load_balancers": ["internal", "internal"]}))
    assert "environments.staging.load_balancers: lists each kind once" in only_problem(data)


def test_jwt_needs_issuer_and_jwks_and_https():
    data = with_changes(endpoints={"a": {"path": "/a/*", "auth": {"type": "jwt"}}, "b": {"path": "/b/*"}})
    assert "endpoints.a.auth: type jwt needs `issuer` and `jwks_url`" in only_problem(data)
    data = with_changes(endpoints={"a": {"path": "/a/*", "auth": {**JWT, "jwks_url": "http://idp.example/jwks"}},
                                   "b": {"path": "/b/*"}})
    assert "endpoints.a.auth.jwks_url: must be an https:// URL" in only_problem(data)
    data = with_changes(environments=environments(prod={"domain": DOMAIN}),
                        endpoints={"a": {"path": "/a/*", "auth": JWT}, "b": {"path": "/b/*"}})
    assert only_problem(data) == (
        "test.yaml: endpoints.a.auth: needs HTTPS, which environment staging serves only with a domain: set "
        "environments.staging.domain (the load balancer validates tokens on HTTPS listeners only) (got 'jwt')")
    data["environments"]["staging"]["domain"] = {**DOMAIN, "name": "staging.example.com"}
    assert parse_config(data, "t").endpoint_for("prod", "a").auth.claims[0].format == "space-separated-values"


def test_settings_of_another_auth_type_are_refused():
    data = with_changes(endpoints={"a": {"path": "/a/*", "auth": {"type": "api_key", "issuer": JWT["issuer"]}},
                                   "b": {"path": "/b/*", "auth": {"type": "api_key", "allow_anonymous": True}}})
    lines = "\n".join(problems_of(data))
    assert "endpoints.a.auth: issuer, jwks_url and claims are for type jwt" in lines
    assert "endpoints.b.auth: allow_anonymous confirms an endpoint without authentication" in lines


def test_api_keys_in_clear_across_the_internet_are_refused_in_production_and_flagged_elsewhere():
    data = with_changes(environments=environments(prod={"production": True}),
                        endpoints={"a": {"path": "/a/*", "auth": {"type": "api_key"}},
                                   "b": {"path": "/b/*", "auth": {"type": "none", "allow_anonymous": True}}})
    assert only_problem(data) == (
        "test.yaml: endpoints.a.auth: would send keys across the internet in clear: production environment prod has "
        "no domain (plain HTTP); set environments.prod.domain, or exposure: internal (got 'api_key')")
    data["environments"]["prod"]["load_balancers"] = ["internal"]
    config = parse_config(data, "t")
    assert advisories(config) == [
        "endpoints.a.auth: API keys of endpoint a cross the internet in clear in environment staging (no domain, "
        "plain HTTP); set environments.staging.domain or exposure: internal before real clients use it"]


def test_private_link_needs_the_internal_load_balancer_and_principal_arns():
    link = {"allowed_principals": ["arn:aws:iam::210987654321:root"]}
    data = with_changes(environments=environments(staging={"private_link": link}))
    assert only_problem(data) == (
        "test.yaml: environments.staging.private_link: publishes the internal load balancer, which this environment "
        "does not have: add internal to environments.staging.load_balancers")
    data = with_changes(environments=environments(staging={"load_balancers": ["internal"],
                                                           "private_link": {"allowed_principals": ["210987654321"]}}))
    assert "is not an IAM principal ARN" in only_problem(data)


def test_a_production_endpoint_open_to_the_internet_without_auth_is_an_error_with_its_ways_out():
    data = with_changes(environments=environments(prod={"production": True}))
    lines = problems_of(data)
    assert lines == [
        f"test.yaml: endpoints.{name}.auth: leaves production endpoint {name} open to anyone on the internet "
        "(environments.prod.alb_ingress_cidrs admits 0.0.0.0/0): set auth.type api_key or jwt, or exposure: "
        "internal, or narrower alb_ingress_cidrs; for a deliberately public model, set auth.allow_anonymous: true "
        "(got 'none')" for name in ("a", "b")]
    for way_out in ({"alb_ingress_cidrs": ["203.0.113.0/24"]}, {"load_balancers": ["internal"]},
                    {"endpoints": {"a": {"auth": {"type": "none", "allow_anonymous": True}},
                                   "b": {"auth": {"type": "none", "allow_anonymous": True}}}}):
        parse_config(with_changes(environments=environments(prod={"production": True, **way_out})), "t")


def test_the_shipped_configuration_authenticates_every_endpoint_and_keeps_prod_internal(default_config):
    """No domain, so no HTTPS: prod's keys stay inside the VPC; staging's cross the internet (a synth warning)."""
    for name in ("a", "b"):
        for environment in ("staging", "prod"):
            auth = default_config.endpoint_for(environment, name).auth
            assert auth.type == "api_key" and not auth.allow_anonymous
        assert default_config.endpoint_for("staging", name).exposure == "public"
        assert default_config.endpoint_for("prod", name).exposure == "internal"
    assert default_config.environments["prod"].load_balancers == ["internal"]
