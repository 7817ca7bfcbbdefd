"""Where autoscaling on concurrency meets the server that publishes it (the all-options fixture's fraud in qa,
`scale_on: concurrency`, three variants): each service's policy reads exactly the metric its own servers write
(namespace, name, and the dimension values the server derives from its variables), and the servers are told to
publish it; the target is per server process."""

from __future__ import annotations

import json

from serving.contract import CONCURRENCY_METRIC, DEFAULT_VARIANT, ServerVariable
from serving.settings import ServingSettings
from tests.infra.synth import resources, target

STACK = "acme-ml-qa-endpoint-fraud"


def test_each_variant_s_policy_reads_what_its_own_servers_publish(options_synth, options_config):
    stack = options_synth.stack(STACK)
    services = {f"${{aws_ecs_service.{logical_id}.name}}": body
                for logical_id, body in resources(stack, "aws_ecs_service").items()}
    policies = [body for body in resources(stack, "aws_appautoscaling_policy").values()
                if body["name"].endswith("-concurrency")]
    assert len(policies) == 3
    for policy in policies:
        _, _, scalable = target(stack, policy["resource_id"])
        service = services[scalable["resource_id"].rsplit("/", 1)[1]]
        _, _, task = target(stack, service["task_definition"])
        (container,) = json.loads(task["container_definitions"])
        environment = {entry["name"]: entry["value"] for entry in container["environment"]}
        assert float(environment[ServerVariable.CONCURRENCY_METRIC_SECONDS]) == 10
        # What serving.metrics.Metrics.write_concurrency names, from the server's own settings.
        published = {"Model": environment[ServerVariable.MODEL_NAME],
                     "Environment": environment[ServerVariable.ENVIRONMENT],
                     "Variant": environment.get(ServerVariable.VARIANT, DEFAULT_VARIANT)}
        specification = policy["target_tracking_scaling_policy_configuration"]["customized_metric_specification"]
        assert specification["namespace"] == ServingSettings.model_fields["metrics_namespace"].default
        assert specification["metric_name"] == CONCURRENCY_METRIC
        assert {entry["name"]: entry["value"] for entry in specification["dimensions"]} == published
        workers = int(environment[ServerVariable.WORKERS])
        assert policy["target_tracking_scaling_policy_configuration"]["target_value"] == (
            options_config.endpoint_for("qa", "fraud").concurrency_per_task / workers)


def test_servers_of_endpoints_scaled_on_requests_publish_no_concurrency(options_synth):
    stack = options_synth.stack("acme-ml-qa-endpoint-churn")
    for task in resources(stack, "aws_ecs_task_definition").values():
        for container in json.loads(task["container_definitions"]):
            names = {entry["name"] for entry in container.get("environment", [])}
            assert ServerVariable.CONCURRENCY_METRIC_SECONDS not in names
