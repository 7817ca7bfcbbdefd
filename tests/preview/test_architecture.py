"""The architecture read from the synthesized stacks (default and all-options): the edges a reviewer relies on, each
checked against the synthesized resources themselves, so a resource drawn without its wiring fails here."""

from __future__ import annotations

import pytest

from preview.architecture import Architecture, environment, environments_of, pipeline
from preview.synthesized import Address, Synthesized

CASES = [("default_synth", "mlops"), ("options_synth", "acme-ml")]


@pytest.fixture(scope="module", params=CASES, ids=[case[0] for case in CASES])
def drawn(request) -> tuple[Synthesized, str, dict[str, Architecture]]:
    fixture, project = request.param
    synth = Synthesized.read(request.getfixturevalue(fixture).outdir)
    return synth, project, {name: environment(synth, project, name) for name in environments_of(synth, project)}


def test_every_service_goes_to_its_target_group_and_its_file_system(drawn):
    synth, _, environments = drawn
    for arch in environments.values():
        services = arch.of_kind("service")
        assert services
        for service in services:
            stack = service.id.split("/")[0]
            body = synth.stacks[stack]["resource"]["aws_ecs_service"][service.id.split(".", 1)[1]]
            groups = {str(a) for b in body.get("load_balancer", []) for a in synth.refs(
                synth.resource(_address(service.id)), b["target_group_arn"])}
            assert arch.targets(service.id, "target-group") == groups
            assert len(arch.targets(service.id, "file-system")) == 1
            assert {arch.nodes[p].label for p in arch.targets(service.id, "access-point")} == {
                "access point /models", "access point /data"}
            if not groups:  # a shadow, reached through Cloud Map instead; or a queue worker, which takes requests
                assert arch.targets(service.id, "namespace") or arch.targets(service.id, "queue")


def test_every_rule_forwards_to_its_target_groups_from_a_listener(drawn):
    _, _, environments = drawn
    for arch in environments.values():
        for rule in arch.of_kind("rule"):
            assert arch.targets(rule.id, "target-group"), rule
            assert any(edge.target == rule.id and arch.nodes[edge.source].kind == "listener" for edge in arch.edges)
        routed = {edge.target for rule in arch.of_kind("rule") for edge in arch.edges if edge.source == rule.id}
        assert {group.id for group in arch.of_kind("target-group")} == routed  # no target group left unrouted


def test_the_sync_trigger_runs_the_sync_task_and_the_export_its_own(drawn):
    _, _, environments = drawn
    for arch in environments.values():
        tasks = {node.id: node.label for node in arch.of_kind("task")}
        endpoints = {node.group for node in arch.of_kind("service")}
        for endpoint in endpoints:
            run = {tasks[target] for trigger in arch.of_kind("trigger") if trigger.group == endpoint
                   for target in arch.targets(trigger.id, "task")}
            # ... and the model monitor's schedule where the endpoint is monitored (the all-options churn).
            assert run - {"task monitor"} == {"task model-sync", "task capture-export"}, endpoint
        for trigger in arch.of_kind("trigger"):
            (task,) = arch.targets(trigger.id, "task")
            expected = ("task capture-export" if "capture-export" in trigger.label
                        else "task monitor" if "monitor" in trigger.label else "task model-sync")
            assert tasks[task] == expected
        for task in arch.of_kind("task"):
            if task.label == "task probe":  # the smoke test of an internal endpoint: it calls the endpoint's rule
                assert arch.targets(task.id, "rule") and not arch.targets(task.id, "access-point")
                continue
            if task.label == "task monitor":  # reads the capture and model buckets, mounts nothing; alarms
                buckets = {arch.nodes[target].label for target in arch.targets(task.id, "bucket")}
                assert len(buckets) == 2 and not arch.targets(task.id, "access-point"), buckets
                assert arch.targets(task.id, "topic")  # its drift and no-data alarms, to the alarm topic
                continue
            assert arch.targets(task.id, "bucket") and arch.targets(task.id, "access-point")


def test_network_and_load_balancer_per_zone(drawn):
    _, _, environments = drawn
    for arch in environments.values():
        zones = {node.group for node in arch.of_kind("private-subnet")}
        assert len(zones) >= 2 and {node.group for node in arch.of_kind("public-subnet")} == zones
        for nat in arch.of_kind("nat"):
            assert {arch.nodes[s].kind for s in arch.targets(nat.id)} == {"public-subnet"}
        balancers = arch.of_kind("load-balancer")
        assert balancers
        for balancer in balancers:
            tier = "private-subnet" if balancer.label.endswith("(internal)") else "public-subnet"
            assert {arch.nodes[s].kind for s in arch.targets(balancer.id) if arch.nodes[s].kind.endswith("subnet")} \
                == {tier}
            assert arch.targets(balancer.id, "listener")


def test_where_requests_are_authenticated_and_the_private_link_path_are_drawn(options_synth):
    synth = Synthesized.read(options_synth.outdir)
    arch = environment(synth, "acme-ml", "qa")
    rules = {node.group: node.label for node in arch.of_kind("rule")}
    assert rules["endpoint churn"].endswith(", verifies JWT") and "JWT" not in rules["endpoint fraud"]
    services = {node.label for node in arch.of_kind("service")}
    assert {"service fraud-current, checks API keys", "service fraud-candidate, checks API keys",
            "service fraud-shadowed", "service churn", "service scoring"} == services
    (link,) = arch.of_kind("endpoint-service")
    (network,) = [arch.nodes[target] for target in arch.targets(link.id)]
    assert network.kind == "network-load-balancer"
    (forwarded,) = arch.targets(network.id, "load-balancer")
    assert arch.nodes[forwarded].label.endswith("(internal)")


def test_an_asynchronous_endpoint_is_drawn_from_its_bucket_through_its_queue_to_its_worker(options_synth):
    arch = environment(Synthesized.read(options_synth.outdir), "acme-ml", "qa")
    in_endpoint = [node for node in arch.nodes.values() if node.group == "endpoint scoring"]
    (bucket,) = [node for node in in_endpoint if node.kind == "bucket"]
    (queue,) = [arch.nodes[target] for target in arch.targets(bucket.id, "queue")]
    assert queue.label == "queue acme-ml-qa-scoring-requests"
    assert [edge.label for edge in arch.edges if (edge.source, edge.target) == (bucket.id, queue.id)] == [
        "requests under async/scoring/input/"]
    (dead,) = [arch.nodes[target] for target in arch.targets(queue.id, "queue")]
    assert dead.label == "queue acme-ml-qa-scoring-requests-dlq"
    (worker,) = [node for node in in_endpoint if node.kind == "service"]
    assert arch.targets(worker.id, "queue") == {queue.id} and bucket.id in arch.targets(worker.id, "bucket")
    assert {arch.nodes[t].label for t in arch.targets(worker.id, "topic")} >= {
        "topic acme-ml-qa-scoring-answered", "topic acme-ml-qa-scoring-failed"}
    assert not any(node.kind == "topic" and "autoscaling" in node.id for node in arch.nodes.values())


def test_the_pipeline_runs_its_stages_in_order_each_environment_after_the_one_before(drawn):
    synth, project, environments = drawn
    drawn_pipeline = pipeline(synth, project)
    stages = [node.label for node in drawn_pipeline.of_kind("stage")]
    assert stages[:3] == ["Source", "Test", "Build"]
    deploys = [stage.removeprefix("Deploy-") for stage in stages if stage.startswith("Deploy-")]
    assert sorted(deploys) == sorted(environments)
    if project == "mlops":  # the shipped configuration: staging, then prod after its approval
        assert deploys == ["staging", "prod"] and "Approve-prod" in stages
    order = {(drawn_pipeline.nodes[e.source].label, drawn_pipeline.nodes[e.target].label)
             for e in drawn_pipeline.edges if drawn_pipeline.nodes[e.target].kind == "stage"}
    assert order == set(zip(stages, stages[1:], strict=False))
    for stage in drawn_pipeline.of_kind("stage"):
        if stage.label.startswith(("Deploy-", "Smoke-")):
            (project_node,) = drawn_pipeline.targets(stage.id, "project")
            assert drawn_pipeline.nodes[project_node].label.endswith(f"-> {stage.label.split('-', 1)[1]}")


def _address(node_id: str) -> Address:
    stack, rest = node_id.split("/", 1)
    resource_type, logical_id = rest.split(".", 1)
    return Address(stack, resource_type, logical_id)
