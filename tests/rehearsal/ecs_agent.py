"""What the emulated account would start, started: the rehearsal's stand-in for ECS's scheduler, EventBridge and
EventBridge Scheduler, reading everything from the emulated account's APIs (what Terraform applied):
- each service is deployed as ECS deploys it (tests/rehearsal/ecs_deployments.py: rolling within its minimum and
  maximum percent, completion on healthy tasks of the new revision, the circuit breaker and rollback, deployment
  alarms); ECS is told the deployments, counts and events, which Terraform and the deploy step read;
- a task is healthy by its target group's health check (interval, healthy and unhealthy thresholds) and its
  container health check; past the service's grace period an unhealthy task is stopped and counted as failed;
- a replaced task drains: deregistered from its target group, stopped after the deregistration delay (SIGTERM, then
  SIGKILL after its stopTimeout);
- an S3 event (the model bucket sends them to EventBridge) starts the ECS targets of every rule whose pattern
  matches it (moto's own pattern matcher);
- a one-time `at()` schedule starts its ECS target when due; a `rate()` rule's targets start when `fire` is called;
- `replace_tasks` stops a service's tasks the way ECS stops a task it replaces, and the service starts new ones.
Every start goes through the identities AWS would use: the agent pulls the image the task definition names and
creates the log stream as the task's execution role, mounts each EFS volume as the task role (against the file
system's policy), and hands the container the task role's session; a rule or schedule starts its task as its own
role (ecs:RunTask and the iam:PassRole of the task's roles). A DISABLED rule or schedule starts nothing. A service's
task that cannot start (access denied, image not found, a flow refused) counts as failed for its deployment; a
one-off task that cannot start is a rehearsal failure (`failures`).
Every task gets a network interface in one of its awsvpc subnets with its security groups, and the flows it makes are
decided against the applied network (tests/rehearsal/network.py) before it runs: image pull and logs (ECR, S3,
CloudWatch Logs), its EFS mounts through the mount target in its zone; each load balancer node's health checks to it
on the container port; HTTPS to each AWS service its task role may call. A flow AWS would drop fails the start (or the
health check), naming the missing rule or route. A client's RunTask container override (command, environment) is
applied as ECS applies it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.rehearsal.ecs_deployments import ServiceDeployments
from tests.rehearsal.identities import AccessDenied, Identities
from tests.rehearsal.leftovers import REHEARSAL_OWN
from tests.rehearsal.network import AppliedNetwork, FlowLedger, FlowRefused, Interface
from tests.rehearsal.tasks import Image, Launcher, LocalTask

OBSERVER = REHEARSAL_OWN
TASK_ROLE_ENDPOINTS = {"s3": "s3", "sqs": "sqs", "sns": "sns", "cloudwatch": "monitoring", "logs": "logs",
                       "secretsmanager": "secretsmanager", "dynamodb": "dynamodb", "ecs": "ecs", "events": "events",
                       "ssm": "ssm", "sts": "sts"}
"""IAM action prefix -> the service endpoint (`com.amazonaws.<region>.<name>`) a call to it connects to."""


@dataclass(frozen=True)
class TargetHealthCheck:
    interval_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int


@dataclass
class ServiceState:
    cluster: str
    name: str
    tasks: list[LocalTask] = field(default_factory=list)
    reported: dict[str, Any] = field(default_factory=dict)
    deployments: ServiceDeployments | None = None
    alarm_names: list[str] = field(default_factory=list)
    grace_seconds: int = 0
    check: TargetHealthCheck | None = None
    deregistration_delay: int = 300
    events: list[dict[str, Any]] = field(default_factory=list)
    """The service's events, newest first, as DescribeServices shows them."""
    target_group_arn: str | None = None
    container_port: int | None = None
    health_path: str = "/"
    balancer_nodes: list[Interface] | None = None
    network: AppliedNetwork | None = None


class EcsAgent:
    def __init__(self, clients: Callable[[str], Any], launcher: Launcher, endpoint: str, say: Callable[[str], None],
                 identities: Identities, role_client: Callable[[str, dict[str, str]], Any], flows: FlowLedger,
                 region: str, images: Path, venv: Any):
        self.client = clients
        self.images = images
        self.venv = venv
        self.flows = flows
        self.region = region
        self._placements = itertools.count()
        self.identities = identities
        self.role_client = role_client
        """`role_client(service, credentials)`: a client that calls as a role session."""
        self.launcher = launcher
        self.endpoint = endpoint
        self.say = say
        self.services: dict[tuple[str, str], ServiceState] = {}
        self.one_off: list[LocalTask] = []
        self.client_tasks: dict[str, LocalTask] = {}
        """Tasks a client started with RunTask (the Smoke step's probe), by task ARN, until reported stopped."""
        self.seen_client_tasks: set[str] = set()
        self.client_interfaces: dict[str, Interface] = {}
        """ECS task id -> network interface of a task a client started, from before its container starts."""
        self.balancer_proxy: Callable[[str], str] | None = None
        """Task id -> the load balancers' stand-in as that task's HTTP proxy (tests/rehearsal/load_balancer.py):
        the task resolves and reaches a load balancer's name from its own network interface."""
        self.fired_schedules: set[str] = set()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ecs-agent", daemon=True)
        self.queue_url = ""

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        sqs, events = self.client("sqs"), self.client("events")
        self.queue_url = sqs.create_queue(QueueName=OBSERVER)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events.put_rule(Name=OBSERVER, EventPattern=json.dumps({"source": ["aws.s3"]}))
        events.put_targets(Rule=OBSERVER, Targets=[{"Id": "queue", "Arn": queue_arn}])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        with self.lock:
            for state in self.services.values():
                for task in state.tasks:
                    task.stop(timeout=10)
            for task in [*self.one_off, *self.client_tasks.values()]:
                task.stop(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the agent reports and keeps going; the rehearsal decides
                self.failures.append(f"ecs agent: {type(exc).__name__}: {exc}")
                self.say(f"ecs agent error: {type(exc).__name__}: {exc}")
            self._stop.wait(1.0)

    # --- one pass ------------------------------------------------------------------------------------------------
    def tick(self) -> None:
        self._services()
        self._events()
        self._schedules()
        self._one_off()
        self._client_tasks()

    def _task_definition(self, arn: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        definition = self.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
        access_points = {}
        for volume in definition.get("volumes", []):
            efs = volume.get("efsVolumeConfiguration")
            if efs:
                for point in self.client("efs").describe_access_points(FileSystemId=efs["fileSystemId"])[
                        "AccessPoints"]:
                    access_points[point["AccessPointId"]] = point
        return definition, access_points

    def _as_ecs_agent(self, definition: dict[str, Any], cluster_arn: str,
                      task_id: str | None = None) -> tuple[Image, dict[str, str], dict[str, Any]]:
        """What the ECS agent does with the execution role before a container starts: authenticate to the registry,
        pull the image the task definition names (manifest, config, layers), create the task's log stream, and
        read each of the container's `secrets` into its variable (a task whose secret cannot be read never starts:
        ResourceInitializationError)."""
        role = definition.get("executionRoleArn")
        (container,) = definition["containerDefinitions"]
        image = container["image"]
        if not role or ".dkr.ecr." not in image.split("/", 1)[0]:
            raise AccessDenied(f"CannotPullContainerError: {image}: the rehearsal pulls only from the emulated ECR, "
                               "with an execution role")
        credentials = self.identities.assume(role, "ecs-tasks.amazonaws.com", cluster_arn)
        try:
            ecr = self.role_client("ecr", credentials)
            ecr.get_authorization_token()
            try:
                pulled = Image.pull(ecr, image, self.images, self.venv)  # venv: requirements file -> venv
            except LookupError as missing:
                raise AccessDenied(str(missing)) from None
            options = container.get("logConfiguration", {}).get("options", {})
            awslogs: dict[str, Any] = {}
            if "awslogs-group" in options:
                logs = self.role_client("logs", credentials)
                # awslogs names a task's stream <prefix>/<container>/<task id>.
                prefix = options.get("awslogs-stream-prefix", "ecs")
                stream = f"{prefix}/{container['name']}/{task_id or time.time_ns()}"
                awslogs = {"group": options["awslogs-group"], "stream": stream, "credentials": credentials}
                logs.create_log_stream(logGroupName=options["awslogs-group"], logStreamName=stream)
                logs.put_log_events(logGroupName=options["awslogs-group"], logStreamName=stream, logEvents=[
                    {"timestamp": int(time.time() * 1000), "message": "task starting (rehearsal)"}])
            secrets = {}
            if container.get("secrets"):
                manager = self.role_client("secretsmanager", credentials)
                for secret in container["secrets"]:
                    secrets[secret["name"]] = manager.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
        except self._client_errors() as error:
            raise AccessDenied(f"execution role {role.rsplit('/', 1)[-1]}: {error}") from None
        return pulled, secrets, awslogs

    @staticmethod
    def _client_errors() -> tuple[type[Exception], ...]:
        from botocore.exceptions import ClientError

        return (ClientError,)

    def _mount_checks(self, definition: dict[str, Any], access_points: dict[str, dict[str, Any]],
                      credentials: dict[str, str] | None) -> None:
        """EFS authorizes a mount with IAM as the task role, against the file system's policy and the role's
        policies: ClientMount, and ClientWrite for a mount that is not read-only."""
        (container,) = definition["containerDefinitions"]
        read_only = {p["sourceVolume"]: bool(p.get("readOnly")) for p in container.get("mountPoints", [])}
        for volume in definition.get("volumes", []):
            efs = volume.get("efsVolumeConfiguration")
            if not efs or volume["name"] not in read_only:
                continue
            authorization = efs.get("authorizationConfig", {})
            if authorization.get("iam") != "ENABLED":
                continue
            if credentials is None:
                raise AccessDenied(f"volume {volume['name']}: IAM authorization needs a task role")
            point = access_points[authorization["accessPointId"]]
            context = {"elasticfilesystem:AccessPointArn": point["AccessPointArn"],
                       "elasticfilesystem:AccessedViaMountTarget": "true",
                       "aws:SecureTransport": "true" if efs.get("transitEncryption") == "ENABLED" else "false"}
            resource = point["AccessPointArn"].split(":access-point/")[0] + f":file-system/{efs['fileSystemId']}"
            actions = ["elasticfilesystem:ClientMount"] + ([] if read_only[volume["name"]]
                                                           else ["elasticfilesystem:ClientWrite"])
            self.identities.authorize(credentials, [
                {"action": action, "resource": resource, "context": context,
                 "implied": f"EFS mount of volume {volume['name']} through {point['AccessPointId']}"}
                for action in actions])

    def _role_services(self, role_arn: str | None) -> tuple[str, ...]:
        """The AWS service endpoints the task role's policies let its container call over HTTPS: each is a flow
        the task needs (EFS's ClientMount and ClientWrite are NFS, KMS is called by S3 and SNS on its behalf)."""
        if not role_arn:
            return ()
        role = self.identities.policies()["roles"].get(role_arn.rsplit("/", 1)[-1], {})
        prefixes = {action.split(":", 1)[0] for document in role.get("identity", {}).values()
                    for statement in document.get("Statement", []) if statement.get("Effect") == "Allow"
                    for action in ([statement["Action"]] if isinstance(statement.get("Action"), str)
                                   else statement.get("Action", []))}
        return tuple(sorted(TASK_ROLE_ENDPOINTS[prefix] for prefix in prefixes if prefix in TASK_ROLE_ENDPOINTS))

    def _place(self, definition: dict[str, Any], awsvpc: dict[str, Any] | None, purpose: str,
               role_services: tuple[str, ...] = ()) -> Interface:
        """The task's network interface, and every flow it needs before its container runs."""
        if not awsvpc or not awsvpc.get("subnets"):
            raise FlowRefused(f"{purpose}: no awsvpc network configuration (Fargate needs subnets)")
        network = AppliedNetwork.read(self.client("ec2"))
        subnets = awsvpc["subnets"]
        interface = network.interface_in(f"task of {purpose}", subnets[next(self._placements) % len(subnets)],
                                         awsvpc.get("securityGroups", []), awsvpc.get("assignPublicIp") == "ENABLED")
        (container,) = definition["containerDefinitions"]
        services = ("ecr.api", "ecr.dkr", "s3", "logs") + (("secretsmanager",) if container.get("secrets") else ())
        for service in dict.fromkeys(services + role_services):
            self.flows.call_service(network, f"task -> {service}", interface, service, self.region)
        efs = self.client("efs")
        zone = network.subnet(interface.subnet_id)["AvailabilityZone"]  # type: ignore[arg-type]
        for volume in definition.get("volumes", []):
            file_system = volume.get("efsVolumeConfiguration", {}).get("fileSystemId")
            if not file_system:
                continue
            targets = [t for t in efs.describe_mount_targets(FileSystemId=file_system)["MountTargets"]
                       if t.get("AvailabilityZoneName") == zone]
            if not targets:
                self.flows.refuse("task -> EFS mount target", f"{interface.name}: {file_system} has no mount "
                                                              f"target in {zone}")
            groups = efs.describe_mount_target_security_groups(MountTargetId=targets[0]["MountTargetId"])[
                "SecurityGroups"]
            target = Interface(f"EFS mount target {targets[0]['MountTargetId']} of {file_system}",
                               targets[0]["IpAddress"], targets[0]["SubnetId"], tuple(groups))
            self.flows.connect(network, "task -> EFS mount target", interface, target, 2049)
        return interface

    def start_task(self, arn: str, purpose: str, cluster_arn: str, awsvpc: dict[str, Any] | None,
                   task_id: str | None = None, container_override: dict[str, Any] | None = None) -> LocalTask:
        """`task_id`: the ECS task's id, for a task ECS already holds (RunTask by a client); `container_override`:
        its RunTask container override (a `command` replaces the task definition's, keeping its entryPoint;
        `environment` entries override the definition's)."""
        definition, access_points = self._task_definition(arn)
        variables: dict[str, str] = {}
        if container_override:
            (container,) = definition["containerDefinitions"]
            if "command" in container_override:
                definition = {**definition, "containerDefinitions": [
                    {**container, "command": container_override["command"]}]}
            variables = {item["name"]: item["value"] for item in container_override.get("environment", [])}
        interface = self._place(definition, awsvpc, purpose, self._role_services(definition.get("taskRoleArn")))
        if task_id is not None:
            self.client_interfaces[task_id] = interface  # its first request may come before start_task returns
        image, secrets, awslogs = self._as_ecs_agent(definition, cluster_arn, task_id)
        credentials = (self.identities.assume(definition["taskRoleArn"], "ecs-tasks.amazonaws.com", cluster_arn)
                       if definition.get("taskRoleArn") else None)
        self._mount_checks(definition, access_points, credentials)
        # Not the container's environment: how its HTTP calls find the load balancers' stand-in (DNS, in AWS).
        network = ({"http_proxy": self.balancer_proxy(task_id), "no_proxy": "127.0.0.1,localhost"}
                   if task_id is not None and self.balancer_proxy is not None else {})
        task = self.launcher.start(definition, access_points, purpose, credentials, image,
                                   overrides={**variables, **secrets, **network})
        task.extra["task_definition"] = arn
        task.extra["interface"] = interface
        task.extra["awslogs"] = awslogs
        self.say(f"task {task.task_id} started ({purpose}) on {task.address} from "
                 f"{image.reference.rsplit('/', 1)[-1]}: {' '.join(task.command)}")
        return task

    def _services(self) -> None:
        ecs = self.client("ecs")
        seen = set()
        for cluster in ecs.list_clusters()["clusterArns"]:
            names = ecs.list_services(cluster=cluster)["serviceArns"]
            if not names:
                continue
            for service in ecs.describe_services(cluster=cluster, services=names)["services"]:
                key = (cluster, service["serviceName"])
                if service.get("status") == "DRAINING" and key not in self.services:
                    self._report_inactive(ServiceState(cluster, service["serviceName"]))  # it ran no task here
                if service.get("status") != "ACTIVE":
                    continue
                seen.add(key)
                with self.lock:
                    state = self.services.setdefault(key, ServiceState(cluster, service["serviceName"]))
                    self._reconcile(state, service)
        with self.lock:
            for key in [key for key in self.services if key not in seen]:
                state = self.services.pop(key)
                for task in state.tasks:
                    if task.alive():
                        task.process.terminate()  # SIGTERM: the tasks are STOPPING
                # ECS: a deleted service is INACTIVE once its tasks are stopping (they still drain).
                self._report_inactive(state)
                threading.Thread(target=lambda tasks=state.tasks: [task.stop() for task in tasks],
                                 name=f"stop-{state.name}", daemon=True).start()
                self.say(f"service {state.name} deleted: its {len(state.tasks)} task(s) stopping")

    def _settings(self, state: ServiceState, service: dict[str, Any]) -> None:
        """The service's deployment settings and its target group's health check, read once."""
        configuration = service.get("deploymentConfiguration", {})
        breaker = configuration.get("deploymentCircuitBreaker", {})
        state.deployments = ServiceDeployments(
            service["taskDefinition"], service["desiredCount"],
            minimum_healthy_percent=configuration.get("minimumHealthyPercent", 100),
            maximum_percent=configuration.get("maximumPercent", 200),
            circuit_breaker=breaker.get("enable", False), rollback=breaker.get("rollback", False))
        alarms = configuration.get("alarms", {})
        state.alarm_names = alarms.get("alarmNames", []) if alarms.get("enable") else []
        state.grace_seconds = service.get("healthCheckGracePeriodSeconds", 0)
        if service.get("loadBalancers"):
            balancer = service["loadBalancers"][0]
            state.target_group_arn, state.container_port = balancer["targetGroupArn"], balancer["containerPort"]
            group = self.client("elbv2").describe_target_groups(TargetGroupArns=[state.target_group_arn])[
                "TargetGroups"][0]
            state.health_path = group.get("HealthCheckPath", "/")
            state.check = TargetHealthCheck(group.get("HealthCheckIntervalSeconds", 30),
                                            group.get("HealthyThresholdCount", 5),
                                            group.get("UnhealthyThresholdCount", 2))
            attributes = self.client("elbv2").describe_target_group_attributes(
                TargetGroupArn=state.target_group_arn)["Attributes"]
            state.deregistration_delay = next((int(a["Value"]) for a in attributes
                                               if a["Key"] == "deregistration_delay.timeout_seconds"), 300)

    def _reconcile(self, state: ServiceState, service: dict[str, Any]) -> None:
        """ECS's scheduler for one service: the deployment controller says what to start and stop; failures count
        toward its circuit breaker; ECS is told the deployments and counts."""
        if state.deployments is None:
            self._settings(state, service)
        controller = state.deployments
        controller.update(service["taskDefinition"], service["desiredCount"])
        for task in [t for t in state.tasks if not t.alive() and not t.extra.get("stopping")]:
            state.tasks.remove(task)
            controller.task_failed(task.extra["task_definition"], f"essential container exited with "
                                                                  f"{task.process.returncode}")
            self.say(f"task {task.task_id} of service {state.name} exited with {task.process.returncode}:\n"
                     f"{task.log_tail()}")
        state.tasks = [t for t in state.tasks if not (t.extra.get("stopping") and not t.alive())]
        self._health(state)
        if state.alarm_names:
            in_alarm = [a["AlarmName"] for a in self.client("cloudwatch").describe_alarms(
                AlarmNames=state.alarm_names)["MetricAlarms"] if a["StateValue"] == "ALARM"]
            controller.alarm(in_alarm)
        serving = [t for t in state.tasks if not t.extra.get("stopping")]
        plan = controller.plan(_by_definition(serving))
        for task in [t for t in serving if t.task_id in plan.stop]:
            current = task.extra["task_definition"] == controller.task_definition
            self._drain(state, task, f"the desired count is {controller.desired}" if current else
                        f"replaced by the deployment of {controller.task_definition.rsplit('/', 1)[-1]}")
        for _ in range(plan.start):
            try:
                task = self.start_task(controller.task_definition, f"service {state.name}", state.cluster,
                                       _awsvpc(service.get("networkConfiguration")))
            except (AccessDenied, FlowRefused) as denied:
                controller.task_failed(controller.task_definition, str(denied))
                self.say(f"service {state.name}: task not started: {denied}")
                break
            state.tasks.append(task)
        # A draining task still runs: its deployment is not done until it has stopped.
        controller.observe(_by_definition([t for t in state.tasks if t.alive()]))
        for event in controller.events:
            self.say(f"service {state.name}: {event}")
            state.events.insert(0, {"id": f"event-{len(state.events) + 1}", "createdAt": time.time(),
                                    "message": f"(service {state.name}) {event}"})
        controller.events.clear()
        self._report(state)

    def _drain(self, state: ServiceState, task: LocalTask, why: str) -> None:
        """ECS deregisters the task from its target group (no new requests), waits the deregistration delay, then
        stops it: SIGTERM, and SIGKILL after the container's stopTimeout."""
        task.extra["stopping"] = True
        delay = state.deregistration_delay if state.target_group_arn else 0
        timeout = task.container.get("stopTimeout", 30)
        self.say(f"task {task.task_id} of service {state.name} draining ({why}): deregistered, stopped in {delay} s")

        def stop() -> None:
            self._stop.wait(delay)
            code = task.stop(timeout=timeout)
            self.say(f"task {task.task_id} of service {state.name} stopped (exit {code})")

        threading.Thread(target=stop, name=f"drain-{task.task_id}", daemon=True).start()

    def _report_inactive(self, state: ServiceState) -> None:
        urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - the emulated account on 127.0.0.1
            f"{self.endpoint}/_rehearsal/ecs-service", data=json.dumps(
                {"cluster": state.cluster, "service": state.name, "status": "INACTIVE"}).encode(), method="POST"),
            timeout=5).read()

    def _report(self, state: ServiceState) -> None:
        """What ECS shows: the deployments, the counts, and the service's task definition (a rollback moves it)."""
        controller = state.deployments
        running = len([t for t in state.tasks if t.alive() and not t.extra.get("stopping")])
        report = {"cluster": state.cluster, "service": state.name, "running": running,
                  "pending": max(controller.desired - running, 0), "deployments": controller.shape(),
                  "taskDefinition": controller.task_definition, "events": state.events[:100]}
        if report != state.reported:
            urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - the emulated account on 127.0.0.1
                f"{self.endpoint}/_rehearsal/ecs-service", data=json.dumps(report).encode(), method="POST"),
                timeout=5).read()
            state.reported = report

    def _balancer_nodes(self, state: ServiceState) -> list[Interface]:
        """One interface per zone of the target group's load balancer, with its security groups."""
        if state.balancer_nodes is None:
            elbv2 = self.client("elbv2")
            group = elbv2.describe_target_groups(TargetGroupArns=[state.target_group_arn])["TargetGroups"][0]
            (balancer,) = elbv2.describe_load_balancers(LoadBalancerArns=group["LoadBalancerArns"][:1])[
                "LoadBalancers"]
            network = AppliedNetwork.read(self.client("ec2"))
            state.balancer_nodes = [
                network.interface_in(f"load balancer {balancer['LoadBalancerName']} ({zone['ZoneName']})",
                                     zone["SubnetId"], balancer.get("SecurityGroups", []),
                                     public=balancer.get("Scheme") == "internet-facing")
                for zone in balancer["AvailabilityZones"]]
            state.network = network
        return state.balancer_nodes

    def _reachable_from_balancer(self, state: ServiceState, task: LocalTask) -> bool:
        """Health checks (and requests) come from every node of the load balancer to the task's port."""
        if "balancer_flow" not in task.extra:
            try:
                for node in self._balancer_nodes(state):
                    self.flows.connect(state.network, "load balancer -> task", node, task.extra["interface"],
                                       state.container_port)
                task.extra["balancer_flow"] = True
            except FlowRefused as refused:
                task.extra["balancer_flow"] = False
                self.failures.append(f"service {state.name}: {refused}")
                self.say(f"service {state.name}: health checks cannot reach task {task.task_id}: {refused}")
        return task.extra["balancer_flow"]

    def _health(self, state: ServiceState) -> None:
        """The target group's health checks (every interval: healthy after HealthyThresholdCount passes in a row,
        unhealthy after UnhealthyThresholdCount failures) and the container's own health check (HEALTHY after a pass,
        UNHEALTHY after `retries` failures past `startPeriod`). ECS stops an unhealthy task once the service's grace
        period is over, and counts it as failed; a task with no check is healthy once it runs."""
        now = time.monotonic()
        for task in [t for t in state.tasks if t.alive() and not t.extra.get("stopping")]:
            container_ok = self._container_health(task, now)
            if state.check is None or state.container_port is None:
                balancer_ok: bool | None = True
            else:
                balancer_ok = self._target_health(state, task, now)
            healthy = balancer_ok is True and container_ok is not False
            if healthy and task.ready_at is None:
                task.ready_at = now
                self.say(f"task {task.task_id} healthy after {now - task.started_at:.0f} s")
            elif not healthy and task.ready_at is not None and (balancer_ok is False or container_ok is False):
                task.ready_at = None
                self.say(f"task {task.task_id} unhealthy")
            if (balancer_ok is False or container_ok is False) and now - task.started_at >= state.grace_seconds:
                why = "failed ELB health checks" if balancer_ok is False else "failed container health checks"
                state.deployments.task_failed(task.extra["task_definition"], f"task {task.task_id} {why}")
                self._drain(state, task, why)

    def _target_health(self, state: ServiceState, task: LocalTask, now: float) -> bool | None:
        """True healthy, False unhealthy, None not decided yet (the target's initial state)."""
        health = task.extra.setdefault("target", {"next": now, "passes": 0, "fails": 0, "state": None})
        if now < health["next"]:
            return health["state"]
        health["next"] = now + state.check.interval_seconds
        if not self._reachable_from_balancer(state, task):
            passed = False
        else:
            url = f"http://{task.address}:{state.container_port}{state.health_path}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local task
                    passed = response.status == 200
            except OSError:
                passed = False
        health["passes"], health["fails"] = (health["passes"] + 1, 0) if passed else (0, health["fails"] + 1)
        if health["passes"] >= state.check.healthy_threshold:
            health["state"] = True
        elif health["fails"] >= state.check.unhealthy_threshold:
            health["state"] = False
        return health["state"]

    def _container_health(self, task: LocalTask, now: float) -> bool | None:
        """The task definition's container health check, run as the container would run it."""
        check = task.container.get("healthCheck")
        if not check:
            return True
        health = task.extra.setdefault("container", {"next": now, "fails": 0, "state": None})
        if now < health["next"]:
            return health["state"]
        health["next"] = now + check.get("interval", 30)
        passed = self.launcher.probe(task, check["command"], check.get("timeout", 5)) == 0
        if passed:
            health["state"], health["fails"] = True, 0
        elif now - task.started_at >= check.get("startPeriod", 0):
            health["fails"] += 1
            if health["fails"] >= check.get("retries", 3):
                health["state"] = False
        return health["state"]

    def replace_tasks(self, cluster_name: str, service_name: str) -> int:
        """Stop every task of the service gracefully (as a forced new deployment would); returns how many."""
        with self.lock:
            states = [state for (cluster, name), state in self.services.items()
                      if name == service_name and cluster.rsplit("/", 1)[-1] == cluster_name]
            stopped = 0
            for state in states:
                for task in list(state.tasks):
                    code = task.stop()
                    state.tasks.remove(task)
                    stopped += 1
                    self.say(f"task {task.task_id} of service {state.name} stopped (exit {code}) to be replaced")
        return stopped

    def running(self, cluster_name: str, service_name: str) -> int:
        """How many of the service's tasks run as local processes."""
        with self.lock:
            return sum(1 for (cluster, name), state in self.services.items()
                       if name == service_name and cluster.rsplit("/", 1)[-1] == cluster_name
                       for task in state.tasks if task.alive())

    def healthy_targets(self, target_group_arn: str) -> list[str]:
        """The group's registered targets the load balancer routes to: the healthy ones; when every registered
        target is unhealthy, all of them (the load balancer fails open)."""
        with self.lock:
            registered = [(state, task) for state in self.services.values()
                          if state.target_group_arn == target_group_arn for task in state.tasks
                          if task.alive() and not task.extra.get("stopping")]
            healthy = [f"{task.address}:{state.container_port}" for state, task in registered
                       if task.ready_at is not None]
            unhealthy = [f"{task.address}:{state.container_port}" for state, task in registered
                         if task.extra.get("target", {}).get("state") is False]
            return healthy or (unhealthy if len(unhealthy) == len(registered) else [])

    # --- EventBridge, Scheduler ----------------------------------------------------------------------------------
    def _rules(self) -> list[dict[str, Any]]:
        """The account's rules that can fire: a DISABLED rule matches no event and runs no schedule."""
        return [rule for rule in self.client("events").list_rules()["Rules"]
                if rule["Name"] != OBSERVER and rule.get("State", "ENABLED") == "ENABLED"]

    def _start_as(self, role_arn: str, service: str, source_arn: str, task_definition_arn: str, cluster_arn: str,
                  purpose: str, awsvpc: dict[str, Any] | None) -> LocalTask | None:
        """A rule's or schedule's ECS target, started the way EventBridge does it: as the target's role, which must
        be allowed ecs:RunTask on the task definition in that cluster and to pass the task's roles to ECS tasks."""
        try:
            credentials = self.identities.assume(role_arn, service, source_arn)
            definition, _ = self._task_definition(task_definition_arn)
            checks = [{"action": "ecs:RunTask", "resource": task_definition_arn,
                       "context": {"ecs:cluster": cluster_arn}, "implied": f"{service} starts the target"}]
            checks += [{"action": "iam:PassRole", "resource": definition[key],
                        "context": {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
                        "implied": f"ecs:RunTask passes {definition[key]} to ecs-tasks.amazonaws.com"}
                       for key in ("taskRoleArn", "executionRoleArn") if definition.get(key)]
            self.identities.authorize(credentials, checks)
            task = self.start_task(task_definition_arn, purpose, cluster_arn, awsvpc)
        except (AccessDenied, FlowRefused) as denied:
            self.failures.append(f"{purpose}: no task started: {denied}")
            self.say(f"{purpose}: no task started: {denied}")
            return None
        self.one_off.append(task)
        return task

    def _run_targets(self, rule_name: str, why: str) -> list[LocalTask]:
        started = []
        rule_arn = self.client("events").describe_rule(Name=rule_name)["Arn"]
        for target in self.client("events").list_targets_by_rule(Rule=rule_name)["Targets"]:
            parameters = target.get("EcsParameters")
            if parameters:
                task = self._start_as(target["RoleArn"], "events.amazonaws.com", rule_arn,
                                      parameters["TaskDefinitionArn"], target["Arn"], f"{why}, rule {rule_name}",
                                      _awsvpc(parameters.get("NetworkConfiguration")))
                if task is not None:
                    started.append(task)
        return started

    def _events(self) -> None:
        from moto.events.models import EventPattern, EventPatternParser

        sqs = self.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            key = event.get("detail", {}).get("object", {}).get("key")
            for rule in self._rules():
                pattern = rule.get("EventPattern")
                if pattern and EventPattern(pattern, EventPatternParser(pattern).parse()).matches_event(event):
                    self._run_targets(rule["Name"], f"{event['detail-type']} {key}")

    def fire(self, rule_name: str, why: str) -> list[LocalTask]:
        with self.lock:
            return self._run_targets(rule_name, why)

    def schedule_rules(self) -> list[str]:
        return [rule["Name"] for rule in self._rules() if rule.get("ScheduleExpression")]

    def _schedules(self) -> None:
        scheduler = self.client("scheduler")
        for summary in scheduler.list_schedules()["Schedules"]:
            try:
                schedule = scheduler.get_schedule(Name=summary["Name"])
            except scheduler.exceptions.ResourceNotFoundException:
                continue  # deleted between the list and the get (a destroy running): nothing left to start
            expression = schedule["ScheduleExpression"]
            if schedule.get("State", "ENABLED") != "ENABLED":
                continue
            if not expression.startswith("at(") or schedule["Arn"] + expression in self.fired_schedules:
                continue
            due = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)
            if datetime.now(UTC) >= due:
                self.fired_schedules.add(schedule["Arn"] + expression)
                parameters = schedule["Target"].get("EcsParameters")
                if parameters:
                    self._start_as(schedule["Target"]["RoleArn"], "scheduler.amazonaws.com", schedule["Arn"],
                                   parameters["TaskDefinitionArn"], schedule["Target"]["Arn"],
                                   f"schedule {summary['Name']} {expression}",
                                   _awsvpc(parameters.get("NetworkConfiguration")))

    def _one_off(self) -> None:
        for task in [t for t in self.one_off if not t.alive()]:
            self.one_off.remove(task)
            code = task.process.returncode
            self.say(f"task {task.task_id} ({task.purpose}) exited with {code} after "
                     f"{time.monotonic() - task.started_at:.0f} s")
            if code != 0:
                self.failures.append(f"task {task.task_id} ({task.purpose}) exited with {code}:\n{task.log_tail()}")
                self.say(task.log_tail())

    # --- RunTask by a client --------------------------------------------------------------------------------------
    def _client_tasks(self) -> None:
        """A task a client started with RunTask (ECS holds it, RUNNING) is started as ECS starts one: placed in its
        subnet with its security groups, its image pulled, its secrets read and its log stream made as its
        execution role. While it runs ECS shows it RUNNING; when its container exits, its output reaches its log
        stream (as awslogs sends it) and ECS shows it STOPPED with the exit code. StopTask stops it. A task that
        cannot start is STOPPED with the reason, as ECS reports it (the client decides what that means)."""
        ecs = self.client("ecs")
        for cluster in ecs.list_clusters()["clusterArns"]:
            new = [arn for arn in ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
                   if arn not in self.seen_client_tasks]
            for described in ecs.describe_tasks(cluster=cluster, tasks=new)["tasks"] if new else []:
                self.seen_client_tasks.add(described["taskArn"])
                self._start_client_task(cluster, described)
        for arn, task in list(self.client_tasks.items()):
            if task.alive():
                (described,) = ecs.describe_tasks(cluster=task.extra["cluster"], tasks=[arn])["tasks"] or [{}]
                if described.get("desiredStatus") != "STOPPED":
                    continue
                task.stop(timeout=30)  # StopTask: SIGTERM, then SIGKILL after the stop timeout
            self.client_tasks.pop(arn)
            self.client_interfaces.pop(arn.rsplit("/", 1)[-1], None)
            self._ship_log(task)
            code = task.process.returncode
            self.say(f"task {task.task_id} ({task.purpose}) exited with {code} after "
                     f"{time.monotonic() - task.started_at:.0f} s")
            self._report_task(arn, "STOPPED", exit_code=code, reason="Essential container in task exited")

    def _start_client_task(self, cluster: str, described: dict[str, Any]) -> None:
        arn = described["taskArn"]
        task_id = arn.rsplit("/", 1)[-1]
        purpose = f"task {task_id} started by {described.get('startedBy') or 'a client'}"
        details = {detail["name"]: detail["value"] for attachment in described.get("attachments", [])
                   for detail in attachment.get("details", [])}
        awsvpc = None
        if "networkInterfaceId" in details:
            (eni,) = self.client("ec2").describe_network_interfaces(
                NetworkInterfaceIds=[details["networkInterfaceId"]])["NetworkInterfaces"]
            awsvpc = {"subnets": [eni["SubnetId"]], "securityGroups": [group["GroupId"] for group in eni["Groups"]]}
        overrides = described.get("overrides", {}).get("containerOverrides", [])
        try:
            task = self.start_task(described["taskDefinitionArn"], purpose, cluster, awsvpc, task_id=task_id,
                                   container_override=overrides[0] if overrides else None)
        except (AccessDenied, FlowRefused) as denied:
            self.say(f"{purpose}: did not start: {denied}")
            self._report_task(arn, "STOPPED", reason=f"ResourceInitializationError: {denied}")
            return
        task.extra["cluster"] = cluster
        self.client_tasks[arn] = task

    def _ship_log(self, task: LocalTask) -> None:
        """The container's output into its log stream, as the awslogs driver sends it (as the execution role)."""
        awslogs = task.extra.get("awslogs") or {}
        lines = [line for line in task.log_path.read_text(errors="replace").splitlines() if line]
        if not awslogs or not lines:
            return
        now = int(time.time() * 1000)
        self.role_client("logs", awslogs["credentials"]).put_log_events(
            logGroupName=awslogs["group"], logStreamName=awslogs["stream"],
            logEvents=[{"timestamp": now, "message": line} for line in lines[-5000:]])

    def _report_task(self, arn: str, status: str, exit_code: int | None = None, reason: str = "") -> None:
        report = {"taskArn": arn, "lastStatus": status, "exitCode": exit_code, "stoppedReason": reason}
        urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - the emulated account on 127.0.0.1
            f"{self.endpoint}/_rehearsal/ecs-task", data=json.dumps(report).encode(), method="POST"),
            timeout=5).read()

    def task_interface(self, task_id: str) -> Interface | None:
        """The network interface of a running task a client started, by its ECS task id."""
        return self.client_interfaces.get(task_id)

    def wait_one_off(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.one_off and time.monotonic() < deadline:
            time.sleep(0.5)


def _awsvpc(configuration: dict[str, Any] | None) -> dict[str, Any] | None:
    """A network configuration's awsvpc part, in ECS's spelling (EventBridge and Scheduler capitalise the keys)."""
    if not configuration:
        return None
    awsvpc = configuration.get("awsvpcConfiguration") or configuration.get("AwsvpcConfiguration")
    if awsvpc is None:
        return None
    return {key[0].lower() + key[1:]: value for key, value in awsvpc.items()}


def _by_definition(tasks: list[LocalTask]) -> dict[str, list[tuple[str, bool]]]:
    """Task definition -> [(task id, healthy)]."""
    grouped: dict[str, list[tuple[str, bool]]] = {}
    for task in tasks:
        healthy = task.ready_at is not None and not task.extra.get("stopping")
        grouped.setdefault(task.extra["task_definition"], []).append((task.task_id, healthy))
    return grouped
