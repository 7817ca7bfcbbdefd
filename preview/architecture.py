"""What an environment (and the pipeline) is made of, read from the synthesized stacks: nodes, the groups they are
drawn in, and the edges that matter to a reviewer (what routes to what, what runs where, what triggers what).

Nothing here is kept by hand: a resource the stacks stop creating disappears from the picture, and a new endpoint,
variant or stage appears in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from preview.synthesized import Address, Resource, Synthesized
from serving.contract import PROBE_PROGRAM


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    """vpc, public-subnet, private-subnet, nat, load-balancer, listener, rule, target-group, service, file-system,
    access-point, bucket, queue, task, trigger, topic, namespace, stage, project."""
    label: str
    group: str = ""
    """The box it is drawn in (an AZ, an endpoint, the pipeline); empty: the environment's top level."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""


@dataclass
class Architecture:
    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, resource: Resource | Address, kind: str, label: str, group: str = "") -> str:
        node_id = str(resource.address if isinstance(resource, Resource) else resource)
        self.nodes.setdefault(node_id, Node(node_id, kind, label, group))
        return node_id

    def link(self, source: str, target: str, label: str = "") -> None:
        edge = Edge(source, target, label)
        if source in self.nodes and target in self.nodes and edge not in self.edges:
            self.edges.append(edge)

    def of_kind(self, kind: str) -> list[Node]:
        return [node for node in self.nodes.values() if node.kind == kind]

    def targets(self, source: str, kind: str | None = None) -> set[str]:
        return {edge.target for edge in self.edges if edge.source == source
                and (kind is None or self.nodes[edge.target].kind == kind)}


def _name(resource: Resource, *keys: str) -> str:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, str) and value and "${" not in value:
            return value
    return resource.path.rsplit("/", 2)[-2] if "/" in resource.path else resource.address.logical_id


def _container(task: Resource) -> dict[str, Any]:
    return json.loads(task.get("container_definitions", "[{}]"))[0]


def environment(synth: Synthesized, project: str, name: str) -> Architecture:
    """The platform of one environment and its endpoints."""
    arch = Architecture(name)
    prefix = f"{project}-{name}-"
    stacks = [stack for stack in synth.stacks if stack == f"{prefix}platform" or stack.startswith(f"{prefix}endpoint-")]
    _network(synth, arch, stacks)
    _load_balancing(synth, arch, stacks)
    for stack in stacks:
        if stack.startswith(f"{prefix}endpoint-"):
            _endpoint(synth, arch, stack, stack.removeprefix(f"{prefix}endpoint-"))
    return arch


def _network(synth: Synthesized, arch: Architecture, stacks: list[str]) -> None:
    for stack in stacks:
        for vpc in synth.resources("aws_vpc", stack):
            arch.add(vpc, "vpc", f"VPC {vpc.get('cidr_block')}")
        for subnet in synth.resources("aws_subnet", stack):
            tier = subnet.get("tags", {}).get("tier", "private")
            zone = subnet.get("availability_zone", "")
            arch.add(subnet, f"{tier}-subnet", f"{tier} {subnet.get('cidr_block')}", group=zone)
            for vpc in synth.refs(subnet, subnet.get("vpc_id")):
                arch.link(str(vpc), str(subnet.address))
        for nat in synth.resources("aws_nat_gateway", stack):
            subnets = synth.refs(nat, nat.get("subnet_id"))
            zone = synth.resource(subnets[0]).get("availability_zone", "") if subnets else ""
            node = arch.add(nat, "nat", "NAT gateway", group=zone)
            for subnet in subnets:
                arch.link(node, str(subnet), "in")


def _load_balancing(synth: Synthesized, arch: Architecture, stacks: list[str]) -> None:
    for stack in stacks:
        for balancer in synth.resources("aws_lb", stack):
            if balancer.get("load_balancer_type") == "network":
                node = arch.add(balancer, "network-load-balancer", f"network load balancer {_name(balancer, 'name')}")
            else:
                scheme = "internal" if balancer.get("internal") else "internet-facing"
                node = arch.add(balancer, "load-balancer", f"load balancer {_name(balancer, 'name')} ({scheme})")
            for subnet in synth.refs(balancer, balancer.get("subnets")):
                arch.link(node, str(subnet), "in")
        for attachment in synth.resources("aws_lb_target_group_attachment", stack):
            # PrivateLink: the NLB's target is the internal ALB.
            for group in synth.refs(attachment, attachment.get("target_group_arn")):
                for listener in synth.resources("aws_lb_listener", stack):
                    if group in synth.refs(listener, listener.get("default_action")):
                        for source in synth.refs(listener, listener.get("load_balancer_arn")):
                            for balancer in synth.refs(attachment, attachment.get("target_id")):
                                arch.link(str(source), str(balancer), "forwards")
        for service in synth.resources("aws_vpc_endpoint_service", stack):
            node = arch.add(service, "endpoint-service", "PrivateLink service (other accounts)")
            for balancer in synth.refs(service, service.get("network_load_balancer_arns")):
                arch.link(node, str(balancer))
        for listener in synth.resources("aws_lb_listener", stack):
            node = arch.add(listener, "listener", f"{listener.get('protocol', 'HTTP')} :{listener.get('port')}")
            for balancer in synth.refs(listener, listener.get("load_balancer_arn")):
                arch.link(str(balancer), node)


def _endpoint(synth: Synthesized, arch: Architecture, stack: str, endpoint: str) -> None:
    group = f"endpoint {endpoint}"
    for group_resource in synth.resources("aws_lb_target_group", stack):
        arch.add(group_resource, "target-group", f"target group {_name(group_resource, 'name')}", group)
    for rule in synth.resources("aws_lb_listener_rule", stack):
        conditions = [value for condition in rule.get("condition", []) for kind in condition.values()
                      for value in kind.get("values", [])]
        verifies = any(action.get("type") == "jwt-validation" for action in rule.get("action", []))
        label = f"rule {rule.get('priority')}: {' '.join(conditions)}" + (", verifies JWT" if verifies else "")
        node = arch.add(rule, "rule", label, group)
        for listener in synth.refs(rule, rule.get("listener_arn")):
            arch.link(str(listener), node)
        for action in rule.get("action", []):
            for target in synth.refs(rule, action.get("target_group_arn")):
                arch.link(node, str(target))
            for weighted in (action.get("forward") or {}).get("target_group", []):
                for target in synth.refs(rule, weighted.get("arn")):
                    arch.link(node, str(target), f"{weighted.get('weight')}%")
    for system in synth.resources("aws_efs_file_system", stack):
        arch.add(system, "file-system", "EFS", group)
    for point in synth.resources("aws_efs_access_point", stack):
        node = arch.add(point, "access-point", f"access point {point.get('root_directory', {}).get('path')}", group)
        for system in synth.refs(point, point.get("file_system_id")):
            arch.link(node, str(system))
    for registry in synth.resources("aws_service_discovery_service", stack):
        arch.add(registry, "namespace", f"Cloud Map {registry.get('name')}", group)
    tasks = {str(task.address): task for task in synth.resources("aws_ecs_task_definition", stack)}
    for service in synth.resources("aws_ecs_service", stack):
        task_ids = [str(task) for task in synth.refs(service, service.get("task_definition"))]
        keys = any(secret.get("name") == "SERVING_API_KEYS" for task in task_ids
                   for secret in _container(tasks[task]).get("secrets", []))
        node = arch.add(service, "service", f"service {service.get('name')}" + (", checks API keys" if keys else ""),
                        group)
        for balancer in service.get("load_balancer", []):
            for target in synth.refs(service, balancer.get("target_group_arn")):
                arch.link(node, str(target))
        registries = service.get("service_registries")
        for registry in synth.refs(service, registries.get("registry_arn") if registries else None):
            arch.link(node, str(registry), "registers")
        for task in synth.refs(service, service.get("task_definition")):
            _mounts(synth, arch, node, tasks[str(task)])
            shadow = {entry["name"]: entry["value"] for entry in _container(tasks[str(task)]).get("environment", [])}
            if "SERVING_SHADOW_URL" in shadow:
                for registry in arch.of_kind("namespace"):
                    if registry.group == group:
                        arch.link(node, registry.id, f"copies {shadow.get('SERVING_SHADOW_PERCENT')}%")
    run_by_services = {str(task) for service in synth.resources("aws_ecs_service", stack)
                       for task in synth.refs(service, service.get("task_definition"))}
    for task in tasks.values():
        if str(task.address) in run_by_services:
            continue  # a service's own task definition: drawn as the service
        container = _container(task)
        node = arch.add(task, "task", f"task {container.get('name')}", group)
        if container.get("entryPoint") == list(PROBE_PROGRAM):
            # The smoke test's probe calls the endpoint the way a client in the VPC does: through its rule.
            for rule in synth.resources("aws_lb_listener_rule", stack):
                arch.link(node, str(rule.address), "smoke test")
        _mounts(synth, arch, node, task)
        for bucket in synth.refs(task, task.get("container_definitions")):
            if bucket.type == "aws_s3_bucket":
                arch.add(bucket, "bucket", f"bucket {_name(synth.resource(bucket), 'bucket')}")
                arch.link(node, str(bucket))
    _asynchronous(synth, arch, stack, group)
    _triggers(synth, arch, stack, group)
    _alarms(synth, arch, stack)


def _asynchronous(synth: Synthesized, arch: Architecture, stack: str, group: str) -> None:
    """An asynchronous endpoint: its bucket tells its queue of requests, its worker takes them from the queue,
    writes answers to the bucket and tells its topics; what cannot be answered goes to the dead-letter queue."""
    for notification in synth.resources("aws_s3_bucket_notification", stack):
        for bucket in synth.refs(notification, notification.get("bucket")):
            source = arch.add(bucket, "bucket", f"bucket {_name(synth.resource(bucket), 'bucket')}", group)
            for entry in notification.get("queue", []):
                for queue in synth.refs(notification, entry.get("queue_arn")):
                    body = synth.resource(queue)
                    node = arch.add(queue, "queue", f"queue {_name(body, 'name')}", group)
                    arch.link(source, node, f"requests under {entry.get('filter_prefix')}")
                    redrive = json.loads(body.get("redrive_policy") or "{}")
                    for dead in synth.refs(body, redrive.get("deadLetterTargetArn")):
                        dead_node = arch.add(dead, "queue", f"queue {_name(synth.resource(dead), 'name')}", group)
                        arch.link(node, dead_node, f"after {redrive.get('maxReceiveCount')} receives")
    tasks = {str(task.address): task for task in synth.resources("aws_ecs_task_definition", stack)}
    for service in synth.resources("aws_ecs_service", stack):
        for task in synth.refs(service, service.get("task_definition")):
            variables = {entry["name"]: entry["value"]
                         for entry in _container(tasks[str(task)]).get("environment", [])}
            if "WORKER_QUEUE_URL" not in variables:
                continue
            for name, label in (("WORKER_QUEUE_URL", "takes requests"), ("WORKER_BUCKET", "writes answers"),
                                ("WORKER_SUCCESS_TOPIC_ARN", "tells"), ("WORKER_ERROR_TOPIC_ARN", "tells")):
                for resource in synth.refs(tasks[str(task)], variables.get(name)):
                    if resource.type == "aws_sns_topic":
                        arch.add(resource, "topic", f"topic {_name(synth.resource(resource), 'name')}", group)
                    arch.link(str(service.address), str(resource), label)


def _mounts(synth: Synthesized, arch: Architecture, node: str, task: Resource) -> None:
    """Edges to the access points a task mounts, and from them to the file system."""
    for volume in task.get("volume", []):
        efs = volume.get("efs_volume_configuration")
        if not efs:
            continue
        for point in synth.refs(task, efs.get("authorization_config", {}).get("access_point_id")):
            arch.link(node, str(point), "mounts")
        for system in synth.refs(task, efs.get("file_system_id")):
            arch.link(node, str(system))


def _triggers(synth: Synthesized, arch: Architecture, stack: str, group: str) -> None:
    rules = {str(rule.address): rule for rule in synth.resources("aws_cloudwatch_event_rule", stack)}
    for target in synth.resources("aws_cloudwatch_event_target", stack):
        for rule in synth.refs(target, target.get("rule")):
            body = rules[str(rule)]
            what = body.get("schedule_expression") or "S3 event"
            trigger = arch.add(rule, "trigger", f"{_name(body, 'name')} ({what})", group)
            for task in synth.refs(target, (target.get("ecs_target") or {}).get("task_definition_arn")):
                arch.link(trigger, str(task), "runs")
    for schedule in synth.resources("aws_scheduler_schedule", stack):
        trigger = arch.add(schedule, "trigger", f"{_name(schedule, 'name')} (once)", group)
        parameters = (schedule.get("target") or {}).get("ecs_parameters") or {}
        for task in synth.refs(schedule, parameters.get("task_definition_arn")):
            arch.link(trigger, str(task), "runs")


def _alarms(synth: Synthesized, arch: Architecture, stack: str) -> None:
    """One edge per monitored service (and from the model monitor's task) to the alarm topic, labelled with its
    number of alarms."""
    counts: dict[tuple[str, str], int] = {}
    for alarm in synth.resources("aws_cloudwatch_metric_alarm", stack):
        monitoring = alarm.path.split("/")[-2]  # monitoring, monitoring-<variant> or model-monitor
        if monitoring == "model-monitor":  # drift, no data and quality: raised from the monitor task's metrics
            services = [t for t in synth.resources("aws_ecs_task_definition", stack)
                        if t.path == f"{stack}/model-monitor/task-definition"]
        else:
            service_paths = {f"{stack}/{monitoring.replace('monitoring', kind, 1)}/service"
                             for kind in ("service", "worker")}
            services = [s for s in synth.resources("aws_ecs_service", stack) if s.path in service_paths]
        for topic in synth.refs(alarm, alarm.get("alarm_actions")):
            if topic.type == "aws_appautoscaling_policy":
                continue  # a scaling alarm: it acts, nobody is told
            arch.add(topic, "topic", "alarm topic")
            for service in services:
                counts[(str(service.address), str(topic))] = counts.get((str(service.address), str(topic)), 0) + 1
    for (service, topic), count in counts.items():
        arch.link(service, topic, f"{count} alarms")


def pipeline(synth: Synthesized, project: str) -> Architecture:
    """The pipeline's stages in order, each with what it runs and the environment it deploys or checks."""
    arch = Architecture("pipeline")
    for pipe in synth.resources("aws_codepipeline"):
        previous = None
        for stage in pipe.get("stage", []):
            node = arch.add(Address(pipe.address.stack, "stage", stage["name"]), "stage", stage["name"],
                            group="pipeline")
            if previous is not None:
                arch.link(previous, node)
            previous = node
            for action in stage.get("action", []):
                for project_address in synth.refs(pipe, (action.get("configuration") or {}).get("ProjectName")):
                    build = synth.resource(project_address)
                    variables = {v.get("name"): v.get("value")
                                 for v in (build.get("environment") or {}).get("environment_variable", [])}
                    where = f" -> {variables['DEPLOY_ENV']}" if "DEPLOY_ENV" in variables else ""
                    arch.link(node, arch.add(project_address, "project", f"{_name(build, 'name')}{where}",
                                             group="pipeline"), action.get("name", ""))
    return arch


def environments_of(synth: Synthesized, project: str) -> list[str]:
    """The environments whose platform stacks were synthesized, in the order they were declared."""
    suffix = "-platform"
    return [stack[len(project) + 1:-len(suffix)] for stack in synth.stacks
            if stack.startswith(f"{project}-") and stack.endswith(suffix)]
