"""The platform stack beyond the network: cluster, load balancer, image repository, alarm topic."""

from __future__ import annotations

import json

from tests.infra.synth import assert_has_resource, by_path_suffix, only, policy, ref, resources, target

STAGING = "mlops-staging-platform"
PROD = "mlops-prod-platform"
OPTIONS = "acme-ml-qa-platform"


def test_cluster_has_container_insights_and_both_fargate_providers(default_synth):
    stack = default_synth.stack(STAGING)
    cluster_id, cluster = only(stack, "aws_ecs_cluster")
    assert cluster["name"] == "mlops-staging"
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enhanced"}]
    assert_has_resource(stack, "aws_ecs_cluster_capacity_providers", {
        "cluster_name": ref("aws_ecs_cluster", cluster_id, "name"), "capacity_providers": ["FARGATE", "FARGATE_SPOT"]})


def test_load_balancer_is_public_in_the_public_subnets(default_synth):
    stack = default_synth.stack(STAGING)
    lb_id, lb = only(stack, "aws_lb")
    public = sorted(ref("aws_subnet", logical_id, "id") for logical_id, body in resources(stack, "aws_subnet").items()
                    if body["tags"]["tier"] == "public")
    assert sorted(lb["subnets"]) == public
    assert lb["internal"] is False and lb["load_balancer_type"] == "application"
    assert lb["drop_invalid_header_fields"] is True
    group_id, _ = by_path_suffix(stack, "aws_security_group", "load-balancer/security-group")
    assert lb["security_groups"] == [ref("aws_security_group", group_id, "id")]
    assert len(lb["name"]) <= 32


def test_deletion_protection_only_in_production(default_synth):
    assert only(default_synth.stack(PROD), "aws_lb")[1]["enable_deletion_protection"] is True
    assert only(default_synth.stack(STAGING), "aws_lb")[1]["enable_deletion_protection"] is False


def test_without_a_domain_one_http_listener_answers_404(default_synth):
    stack = default_synth.stack(STAGING)
    lb_id, _ = only(stack, "aws_lb")
    _, listener = only(stack, "aws_lb_listener")
    assert listener["load_balancer_arn"] == ref("aws_lb", lb_id, "arn")
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    (action,) = listener["default_action"]
    assert action["type"] == "fixed-response" and action["fixed_response"]["status_code"] == "404"
    assert json.loads(action["fixed_response"]["message_body"])["error"]["code"] == "not_found"


def test_load_balancer_admits_every_configured_cidr_on_every_listener_port(options_synth):
    stack = options_synth.stack(OPTIONS)
    group_id, group = by_path_suffix(stack, "aws_security_group", "load-balancer/security-group")
    assert not group.get("ingress") and not group.get("egress")  # rules are separate resources
    admitted = sorted((rule["cidr_ipv4"], rule["from_port"]) for rule in
                      resources(stack, "aws_vpc_security_group_ingress_rule").values()
                      if rule["security_group_id"] == ref("aws_security_group", group_id, "id"))
    assert admitted == [("198.51.100.0/24", 80), ("198.51.100.0/24", 443), ("203.0.113.0/24", 80),
                        ("203.0.113.0/24", 443)]


def test_with_a_domain_https_with_a_validated_certificate_and_http_redirects(options_synth):
    stack = options_synth.stack(OPTIONS)
    public_id, _ = by_path_suffix(stack, "aws_lb", "load-balancer/lb")
    listeners = {body["port"]: body for body in resources(stack, "aws_lb_listener").values()
                 if body["load_balancer_arn"] == ref("aws_lb", public_id, "arn")}
    https = listeners[443]
    assert https["protocol"] == "HTTPS" and https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13-1-2")
    validation_type, validation_id, validation = target(stack, https["certificate_arn"])
    assert validation_type == "aws_acm_certificate_validation"
    _, cert_id, certificate = target(stack, validation["certificate_arn"])
    assert certificate["domain_name"] == "ml.acme.example"
    assert certificate["subject_alternative_names"] == ["*.ml.acme.example"]
    assert certificate["validation_method"] == "DNS"
    _, record = only(stack, "aws_route53_record")
    assert record["zone_id"] == "Z0123456789ABCDEFGHIJ" and record["allow_overwrite"] is True
    assert validation["depends_on"] == [f"aws_route53_record.{next(iter(resources(stack, 'aws_route53_record')))}"]
    (redirect,) = listeners[80]["default_action"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}


def test_access_logs_waf_and_production_options(options_synth):
    stack = options_synth.stack(OPTIONS)
    lb_id, lb = by_path_suffix(stack, "aws_lb", "load-balancer/lb")
    bucket_id, bucket = by_path_suffix(stack, "aws_s3_bucket", "alb-access-logs/bucket")
    assert lb["access_logs"]["enabled"] is True
    assert lb["access_logs"]["bucket"] == ref("aws_s3_bucket", bucket_id, "bucket")
    _, bucket_policy = by_path_suffix(stack, "aws_s3_bucket_policy", "alb-access-logs/policy")
    principals = [s["Principal"] for s in policy(bucket_policy)["Statement"] if s["Effect"] == "Allow"]
    assert principals == [{"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}]
    assert_has_resource(stack, "aws_wafv2_web_acl_association", {
        "resource_arn": ref("aws_lb", lb_id, "arn"),
        "web_acl_arn": "arn:aws:wafv2:us-east-1:111111111111:regional/webacl/acme/0a1b2c3d"})
    assert lb["idle_timeout"] == 120 and lb["enable_deletion_protection"] is True


def test_serving_image_repository(default_synth):
    stack = default_synth.stack(STAGING)
    repo_id, repo = only(stack, "aws_ecr_repository")
    key_id, _ = only(stack, "aws_kms_key")
    assert repo["name"] == "mlops/staging/model-server"
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"] == {"scan_on_push": True}
    assert repo["encryption_configuration"] == [{"encryption_type": "KMS",
                                                 "kms_key": ref("aws_kms_key", key_id, "arn")}]
    _, lifecycle = only(stack, "aws_ecr_lifecycle_policy")
    assert lifecycle["repository"] == ref("aws_ecr_repository", repo_id, "name")
    rules = json.loads(lifecycle["policy"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "any"]
    assert rules[1]["selection"]["countNumber"] == 30


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(default_synth):
    stack = default_synth.stack(STAGING)
    key_id, key = only(stack, "aws_kms_key")
    _, topic = only(stack, "aws_sns_topic")
    assert topic["kms_master_key_id"] == ref("aws_kms_key", key_id, "arn")
    publishers = [s for s in policy(key)["Statement"] if s.get("Sid") == "ServicesPublishToEncryptedTopics"]
    assert "cloudwatch.amazonaws.com" in publishers[0]["Principal"]["Service"]
    assert resources(stack, "aws_sns_topic_subscription") == {}


def test_alarm_emails_subscribe_to_the_topic(options_synth):
    stack = options_synth.stack(OPTIONS)
    topic_id, _ = only(stack, "aws_sns_topic")
    subscriptions = sorted((s["endpoint"], s["protocol"], s["topic_arn"])
                           for s in resources(stack, "aws_sns_topic_subscription").values())
    arn = ref("aws_sns_topic", topic_id, "arn")
    assert subscriptions == [("ml-team@acme.example", "email", arn), ("oncall@acme.example", "email", arn)]
