"""What the emulated account would start, started: the rehearsal's stand-in for ECS's scheduler, EventBridge and
EventBridge Scheduler, reading everything from the emulated account's APIs (what Terraform applied):
- each service keeps `desiredCount` tasks of its current task definition (a new revision replaces the old tasks once
  the new ones pass the target group's health check), and ECS is told how many run;
- an S3 event (the model bucket sends them to EventBridge) starts the ECS targets of every rule whose pattern
  matches it (moto's own pattern matcher);
- a one-time `at()` schedule starts its ECS target when due; a `rate()` rule's targets start when `fire` is called;
- a target group's health check runs against each task, as the load balancer's would;
- `replace_tasks` stops a service's tasks the way ECS stops a task it replaces (SIGTERM, then the stop timeout), and
  the service starts new ones.
Every start goes through the identities AWS would use: the agent pulls the image and creates the log stream as the
task's execution role, mounts each EFS volume as the task role (against the file system's policy), and hands the
container the task role's session; a rule or schedule starts its task as its own role (ecs:RunTask and the
iam:PassRole of the task's roles). A DISABLED rule or schedule starts nothing. A start refused by any of these fails
the service (counted in `failures`) instead of running a task AWS would not run.
Every task gets a network interface in one of its awsvpc subnets with its security groups, and the flows it makes are
decided against the applied network (tests/rehearsal/network.py) before it runs: image pull and logs (ECR, S3,
CloudWatch Logs), its EFS mounts through the mount target in its zone; each load balancer node's health checks to it
on the container port. A flow AWS would drop fails the start (or the health check), naming the missing rule or route.
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
from typing import Any

from tests.rehearsal.identities import AccessDenied, Identities
from tests.rehearsal.network import AppliedNetwork, FlowLedger, FlowRefused, Interface
from tests.rehearsal.tasks import Launcher, LocalTask

OBSERVER = "rehearsal-s3-observer"


@dataclass
class ServiceState:
    cluster: str
    name: str
    tasks: list[LocalTask] = field(default_factory=list)
    reported_running: int = -1
    target_group_arn: str | None = None
    container_port: int | None = None
    health_path: str = "/"
    refused: str = ""
    """Why ECS could not start this service's tasks (an access denial); nothing is started again."""
    balancer_nodes: list[Interface] | None = None
    network: AppliedNetwork | None = None


class EcsAgent:
    def __init__(self, clients: Callable[[str], Any], launcher: Launcher, endpoint: str, say: Callable[[str], None],
                 identities: Identities, role_client: Callable[[str, dict[str, str]], Any], flows: FlowLedger,
                 region: str):
        self.client = clients
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
            for task in self.one_off:
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

    def _as_ecs_agent(self, definition: dict[str, Any], cluster_arn: str) -> None:
        """What the ECS agent does with the execution role before a container starts: authenticate to the registry
        and read the image's manifest (an image in ECR), and create the task's log stream."""
        role = definition.get("executionRoleArn")
        if not role:
            return
        credentials = self.identities.assume(role, "ecs-tasks.amazonaws.com", cluster_arn)
        (container,) = definition["containerDefinitions"]
        image = container["image"]
        registry, _, reference = image.partition("/")
        try:
            if ".dkr.ecr." in registry:
                ecr = self.role_client("ecr", credentials)
                ecr.get_authorization_token()
                repository, _, tag = reference.rpartition(":")
                found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
                if not found.get("images"):
                    raise AccessDenied(f"CannotPullContainerError: {image} not found in the registry")
            options = container.get("logConfiguration", {}).get("options", {})
            if "awslogs-group" in options:
                logs = self.role_client("logs", credentials)
                stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container['name']}/{time.time_ns()}"
                logs.create_log_stream(logGroupName=options["awslogs-group"], logStreamName=stream)
                logs.put_log_events(logGroupName=options["awslogs-group"], logStreamName=stream, logEvents=[
                    {"timestamp": int(time.time() * 1000), "message": "task starting (rehearsal)"}])
        except self._client_errors() as error:
            raise AccessDenied(f"execution role {role.rsplit('/', 1)[-1]}: {error}") from None

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

    def _place(self, definition: dict[str, Any], awsvpc: dict[str, Any] | None, purpose: str) -> Interface:
        """The task's network interface, and every flow it needs before its container runs."""
        if not awsvpc or not awsvpc.get("subnets"):
            raise FlowRefused(f"{purpose}: no awsvpc network configuration (Fargate needs subnets)")
        network = AppliedNetwork.read(self.client("ec2"))
        subnets = awsvpc["subnets"]
        interface = network.interface_in(f"task of {purpose}", subnets[next(self._placements) % len(subnets)],
                                         awsvpc.get("securityGroups", []), awsvpc.get("assignPublicIp") == "ENABLED")
        for service in ("ecr.api", "ecr.dkr", "s3", "logs"):
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

    def start_task(self, arn: str, purpose: str, cluster_arn: str, awsvpc: dict[str, Any] | None) -> LocalTask:
        definition, access_points = self._task_definition(arn)
        interface = self._place(definition, awsvpc, purpose)
        self._as_ecs_agent(definition, cluster_arn)
        credentials = (self.identities.assume(definition["taskRoleArn"], "ecs-tasks.amazonaws.com", cluster_arn)
                       if definition.get("taskRoleArn") else None)
        self._mount_checks(definition, access_points, credentials)
        task = self.launcher.start(definition, access_points, purpose, credentials)
        task.extra["task_definition"] = arn
        task.extra["interface"] = interface
        self.say(f"task {task.task_id} started ({purpose}) on {task.address}: {' '.join(task.command)}")
        return task

    def _services(self) -> None:
        ecs = self.client("ecs")
        seen = set()
        for cluster in ecs.list_clusters()["clusterArns"]:
            names = ecs.list_services(cluster=cluster)["serviceArns"]
            if not names:
                continue
            for service in ecs.describe_services(cluster=cluster, services=names)["services"]:
                if service.get("status") != "ACTIVE":
                    continue
                key = (cluster, service["serviceName"])
                seen.add(key)
                with self.lock:
                    state = self.services.setdefault(key, ServiceState(cluster, service["serviceName"]))
                    self._reconcile(state, service)
        with self.lock:
            for key in [key for key in self.services if key not in seen]:
                state = self.services.pop(key)
                for task in state.tasks:
                    task.stop()
                self.say(f"service {state.name} deleted: its {len(state.tasks)} task(s) stopped")

    def _reconcile(self, state: ServiceState, service: dict[str, Any]) -> None:
        if state.target_group_arn is None and service.get("loadBalancers"):
            balancer = service["loadBalancers"][0]
            state.target_group_arn, state.container_port = balancer["targetGroupArn"], balancer["containerPort"]
            group = self.client("elbv2").describe_target_groups(TargetGroupArns=[state.target_group_arn])[
                "TargetGroups"][0]
            state.health_path = group.get("HealthCheckPath", "/")
        for task in [t for t in state.tasks if not t.alive()]:
            state.tasks.remove(task)
            self.failures.append(f"service {state.name}: task {task.task_id} exited with {task.process.returncode}")
            self.say(f"task {task.task_id} of service {state.name} exited with {task.process.returncode}:\n"
                     f"{task.log_tail()}")
        if state.refused:
            return
        current_definition = service["taskDefinition"]
        current = [t for t in state.tasks if t.extra["task_definition"] == current_definition]
        old = [t for t in state.tasks if t not in current]
        for _ in range(service["desiredCount"] - len(current)):
            try:
                task = self.start_task(current_definition, f"service {state.name}", state.cluster,
                                       _awsvpc(service.get("networkConfiguration")))
            except (AccessDenied, FlowRefused) as denied:
                state.refused = str(denied)
                self.failures.append(f"service {state.name}: no task started: {denied}")
                self.say(f"service {state.name}: no task started: {denied}")
                return
            state.tasks.append(task)
            current.append(task)
        for task in current[service["desiredCount"]:]:
            task.stop()
            state.tasks.remove(task)
        self._health(state)
        if old and all(t.ready_at is not None for t in current):
            for task in old:
                task.stop()
                state.tasks.remove(task)
                self.say(f"task {task.task_id} of service {state.name} replaced by the new revision")
        running = len([t for t in state.tasks if t.alive()])
        if running != state.reported_running:
            body = json.dumps({"cluster": state.cluster, "service": state.name, "running": running}).encode()
            urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - the emulated account on 127.0.0.1
                f"{self.endpoint}/_rehearsal/ecs-running", data=body, method="POST"), timeout=5).read()
            state.reported_running = running

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
        if state.container_port is None:
            return
        for task in state.tasks:
            if not self._reachable_from_balancer(state, task):
                continue
            url = f"http://{task.address}:{state.container_port}{state.health_path}"
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - a local task
                    healthy = response.status == 200
            except OSError:
                healthy = False
            if healthy and task.ready_at is None:
                task.ready_at = time.monotonic()
                self.say(f"task {task.task_id} healthy in its target group after "
                         f"{task.ready_at - task.started_at:.0f} s")
            elif not healthy and task.ready_at is not None:
                task.ready_at = None
                self.say(f"task {task.task_id} unhealthy")

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
        with self.lock:
            return [f"{task.address}:{state.container_port}" for state in self.services.values()
                    if state.target_group_arn == target_group_arn for task in state.tasks
                    if task.ready_at is not None and task.alive()]

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
