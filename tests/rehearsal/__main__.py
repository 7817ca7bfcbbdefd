"""`make rehearse`: the whole lifecycle from an empty, emulated AWS account, with real tools wherever this machine
has them, every call authorized as its role and every flow decided against the applied network, and no person in
the loop (docs/rehearsal.md says what it proves and what it does not).

1. prepare: a copy of the repository, the emulated account (moto's server behind the authorization gate, shimmed:
   tests/rehearsal/moto_shims.py), real Terraform with the machine's provider mirror, the image's packages;
2. `make bootstrap` (python -m pipeline.bootstrap) as the administrator: the state bucket and lock table, then the
   pipeline stack;
3. the GitHub connection is authorized (the one step a person does);
4. one pipeline run, every action of every stage in the order of the applied CodePipeline, each CodeBuild action's
   buildspec (every phase) as its project's role (tests/rehearsal/pipeline_run.py); ECS deploys the services as ECS
   does and runs their tasks as local processes from the image Build pushed (tests/rehearsal/ecs_agent.py); then every
   environment, stack and service must be deployed and answering;
5. a model version is promoted with its monitoring baseline (S3 event -> sync task -> EFS -> hot swap, answered
   through the load balancer); the repair schedule must change nothing; the capture export puts every sealed record
   in S3; the model monitor's schedule writes its reports and metrics, and the monitor run over the rehearsal's
   hours reads every exported record;
6. a second push (a visible server change, rolled out under light load without a failed request) and a third (a
   server that cannot start: Deploy red with ECS's rollback reason, Smoke not run, the second commit answering);
7. teardown: `make destroy ENV=<first>`, then `make destroy-all`; the account's own APIs must list only the bootstrap
   stack's resources.
The last lines give the reviewed provider drops, per principal the calls checked and denied, per kind the flows
checked and refused, the three pushes' outcomes and the time. A failure names the stage, and the log that holds the
resource and API call.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.rehearsal.authorization import CONTROL_PLANE_KEY
from tests.rehearsal.autoscaling import ApplicationAutoScaling
from tests.rehearsal.ecs_agent import EcsAgent
from tests.rehearsal.identities import AccessDenied, Identities
from tests.rehearsal.leftovers import LISTED, holdings
from tests.rehearsal.load_balancer import LoadBalancers, proxy_for
from tests.rehearsal.network import INTERNET_CLIENT, AppliedNetwork, FlowLedger, FlowRefused, Interface
from tests.rehearsal.pipeline_run import StageFailed, run_pipeline
from tests.rehearsal.tasks import Launcher, build_packages
from tests.rehearsal.terraform import REVIEWED_DROPS, SetupMissing
from tests.rehearsal.workspace import REGION, Workspace
from tests.support.paths import PROJECT_ROOT

PYTHON = ".venv/bin/python"
TASK_CLIENT = "task-"
"""A load balancer client that is a running task: `task-<ECS task id>` (tests/rehearsal/load_balancer.py)."""
VPC_CLIENT = "vpc-client-"
"""The rehearsal's own client host in a VPC, for internal endpoints: `vpc-client-<its security group id>`."""
HIGHLIGHTS = re.compile(r"(Apply complete|Destroy complete|^deploying|copied |promoted |^error:|Error:|exists already|"
                        r"is there already|ready, image|deployment of image|pipeline .* is deployed|kept on purpose|"
                        r"deleted \d|switched off|\[docker stand-in\] pushed|not in the configuration|smoke test key|"
                        r"is refused \(401\)|^bootstrapping|answered in \d+ s by image)")
WORK_SETTING = "REHEARSAL_WORK_DIR"
ASYNC_ENDPOINT = "c"
ASYNC_OBSERVER = "rehearsal-async-observer"
"""The queue by which the rehearsal hears the asynchronous endpoint's success topic (deleted after its stage; the
teardown check would find it otherwise)."""
ASYNC_ENDPOINT_CONFIGURATION = """  c:
    # Added by the rehearsal to its copy of the configuration: an asynchronous endpoint that scales to zero.
    mode: async
    min_tasks: 0
    max_tasks: 2
    initial_model: serving/example/models/1/model.onnx
    async_inference: {idle_minutes: 1, concurrency: 2}
"""
"""The shipped configuration has no asynchronous endpoint; the rehearsal adds this one to exercise docs/async.md."""


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.start_wall = time.time()
        self.lock = threading.Lock()
        self.current = "prepare"

    def say(self, line: str) -> None:
        with self.lock:
            elapsed = time.monotonic() - self.start
            for index, text in enumerate(line.splitlines() or [""]):
                prefix = f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}]" if index == 0 else " " * 7
                print(f"{prefix} {text}", flush=True)

    def step(self, name: str, work: Callable[[], str | None]) -> None:
        self.current = name
        began = time.monotonic()
        self.say(f"== {name}")
        outcome = work()
        self.say(f"   {name}: done in {time.monotonic() - began:.0f} s" + (f": {outcome}" if outcome else ""))


class LightLoad:
    """A prediction every 0.2 s from a background thread, each failure kept (what a client would have seen)."""

    def __init__(self, request: Callable[[], Any]):
        self.request = request
        self.sent = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="light-load", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sent += 1
            try:
                self.request()
            except Exception as error:  # noqa: BLE001 - every failure a client would see counts
                self.failed.append(f"{type(error).__name__}: {error}"[:200])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Rehearsal:
    def __init__(self, root: Path):
        self.timeline = Timeline()
        self.ws = Workspace(root)
        self.logs = root / "logs"
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)
        self._clients: dict[tuple[int, str], Any] = {}
        self.agent: EcsAgent | None = None
        self.scaling: ApplicationAutoScaling | None = None
        self.balancers: LoadBalancers | None = None
        self.identities: Identities | None = None
        self.flows = FlowLedger()
        self._client_flows: dict[tuple[str, int, str], str] = {}
        self.client_keys: dict[tuple[str, str], str] = {}
        """(environment, endpoint) -> the API key the rehearsal calls an `api_key` endpoint with."""

    def say(self, line: str) -> None:
        self.timeline.say(line)

    def client(self, service: str) -> Any:
        """A client of the rehearsal's own stand-ins (ECS's scheduler, EventBridge, the load balancer) and its
        observer: the control plane's key, allowed and counted apart from every role."""
        import boto3

        key = (threading.get_ident(), service)
        if key not in self._clients:
            self._clients[key] = boto3.session.Session().client(
                service, region_name=REGION, endpoint_url=self.ws.endpoint, aws_access_key_id=CONTROL_PLANE_KEY,
                aws_secret_access_key="control-plane")
        return self._clients[key]

    def role_client(self, service: str, credentials: dict[str, str]) -> Any:
        """A client that calls as a role's session (what a service does with the role it assumed)."""
        import boto3

        return boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=self.ws.endpoint,
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"])

    def assume(self, role_arn: str, service: str, source_arn: str) -> dict[str, str]:
        try:
            return self.identities.assume(role_arn, service, source_arn)
        except AccessDenied as denied:
            raise StageFailed(self.timeline.current, str(denied)) from None

    def run(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> str:
        """A product command in the repository copy, its output in logs/<name>.log; the highlights printed."""
        log = self.logs / f"{name}.log"
        with open(log, "a") as output:
            code = subprocess.run(argv, cwd=self.ws.repo, env={**self.ws.env, **(env or {})}, stdout=output,
                                  stderr=subprocess.STDOUT, check=False).returncode
        self.print_highlights(log)
        if code != 0:
            raise StageFailed(self.timeline.current, f"`{' '.join(argv)}` exited with {code}; log: {log}")
        return ""

    def print_highlights(self, log: Path) -> None:
        text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
        lines = [line.strip() for line in text.splitlines() if HIGHLIGHTS.search(line)]
        for line in dict.fromkeys(lines):
            self.say(f"   | {line[:200]}")

    # --- stages ----------------------------------------------------------------------------------------------------
    def prepare(self) -> str:
        self.ws.prepare()
        self.add_async_endpoint()
        venv = build_packages(self.ws.repo, self.ws.root / "image", self.say)
        venv("pipeline/monitor/requirements.txt")  # the monitor's image, now rather than in its task's first pull
        aws_env = {"AWS_ENDPOINT_URL": self.ws.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
        launcher = Launcher(self.ws.root / "tasks", self.ws.root / "efs", aws_env)
        (self.ws.root / "efs").mkdir(exist_ok=True)
        self.identities = Identities(self.ws.endpoint)
        self.agent = EcsAgent(self.client, launcher, self.ws.endpoint, self.say, self.identities, self.role_client,
                              self.flows, REGION, images=self.ws.root / "images", venv=venv)
        self.agent.start()
        self.scaling = ApplicationAutoScaling(self.client, self.agent.running, self.say)
        self.scaling.start()
        self.balancers = LoadBalancers(lambda: self.client("elbv2"), self.agent.healthy_targets, self.client_flow)
        self.balancers.start()
        self.agent.balancer_proxy = lambda task_id: proxy_for(self.balancers.url, f"{TASK_CLIENT}{task_id}")
        proxy = {"http_proxy": self.balancers.url, "HTTP_PROXY": self.balancers.url,
                 "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
        self.ws.env.update(proxy)
        self.ws.env["REHEARSAL_DOCKER_TAGS"] = str(self.ws.root / "docker-tags.json")
        return (f"repository copy {self.ws.repo}, emulated account {self.ws.endpoint}, Terraform with AWS provider "
                f"{self.ws.provider_version} from the mirror, load balancers at {self.balancers.url}")

    def add_async_endpoint(self) -> None:
        """The asynchronous endpoint, into the copy's configuration (after the shipped endpoints)."""
        path = self.ws.repo / "config" / "mlops.yaml"
        text = path.read_text()
        marker = "\n# The delivery pipeline"
        if marker not in text:
            raise StageFailed("prepare", f"{path} has no {marker.strip()!r} line to add endpoint "
                                         f"{ASYNC_ENDPOINT} before")
        path.write_text(text.replace(marker, ASYNC_ENDPOINT_CONFIGURATION + marker, 1))

    def client_flow(self, balancer: dict[str, Any], port: int, client: str | None = None) -> None:
        """A client's connection to the load balancer's listener, decided against the applied network, to every node
        (DNS answers with each zone's address): an internet client's (`client` None) once per load balancer and
        port; a task's (`client` `task-<ECS task id>`) from its network interface, on each request; the rehearsal's
        client host in a VPC (`client` `vpc-client-<security group id>`) from an interface in the balancer's subnet
        with that group."""
        key = (balancer["LoadBalancerArn"], port, client or "")
        if key not in self._client_flows:
            network = AppliedNetwork.read(self.client("ec2"))
            source = self._client_interface(network, balancer, client)
            self._client_flows[key] = ""
            for zone in balancer["AvailabilityZones"]:
                node = network.interface_in(f"load balancer {balancer['LoadBalancerName']} ({zone['ZoneName']})",
                                            zone["SubnetId"], balancer.get("SecurityGroups", []),
                                            public=balancer.get("Scheme") == "internet-facing")
                try:
                    kind = ("client -> load balancer" if client is None else "task -> load balancer"
                            if client.startswith(TASK_CLIENT) else "host in the VPC -> load balancer")
                    self.flows.connect(network, kind, source, node, port)
                except FlowRefused as refused:
                    self._client_flows[key] = str(refused)
            if client is not None and client.startswith(TASK_CLIENT):
                result = self._client_flows.pop(key)  # a task's interface is its own: decided on each request
                if result:
                    raise FlowRefused(result)
                return
        if self._client_flows[key]:
            raise FlowRefused(self._client_flows[key])

    def _client_interface(self, network: AppliedNetwork, balancer: dict[str, Any], client: str | None) -> Interface:
        if client is None:
            return Interface("an internet client", INTERNET_CLIENT)
        if client.startswith(TASK_CLIENT):
            interface = self.agent.task_interface(client[len(TASK_CLIENT):])
            if interface is None:
                raise FlowRefused(f"{client}: no running task has that id")
            return interface
        group = client.removeprefix(VPC_CLIENT)
        (name,) = [g["GroupName"] for g in network.security_groups if g["GroupId"] == group]
        subnet = balancer["AvailabilityZones"][0]["SubnetId"]
        return network.interface_in(f"a client host in the VPC (security group {name})", subnet, [group])

    def opener_for(self, config: Any, environment: str, endpoint: str) -> tuple[str, Any]:
        """(the endpoint's base URL, an opener) to call it as a client would: from the internet through the
        internet-facing load balancer, or from a host in the VPC through the internal one."""
        from configuration.resolved import resolve_endpoint
        from pipeline.smoke import load_balancer_url

        exposure = config.endpoint_for(environment, endpoint).exposure or "public"
        base = load_balancer_url(config, environment, self.client("elbv2"), exposure)
        proxy = self.balancers.url
        if exposure == "internal":
            # A host in the VPC with the endpoint's smoke probe group, the one group the stacks let reach it.
            probe = resolve_endpoint(config, environment, endpoint).smoke_probe_name
            (group,) = self.client("ec2").describe_security_groups(Filters=[
                {"Name": "group-name", "Values": [probe]}])["SecurityGroups"]
            proxy = proxy_for(proxy, f"{VPC_CLIENT}{group['GroupId']}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
        return f"{base}{resolve_endpoint(config, environment, endpoint).route_prefix}", opener

    def authorize_connection(self) -> str:
        arn = self.client("codepipeline").get_pipeline(name=f"{self.config.project}-delivery")["pipeline"][
            "stages"][0]["actions"][0]["configuration"]["ConnectionArn"]
        return f"the one step a person does, in the console; the rehearsal's Source stage needs no connection ({arn})"

    def deliver_model(self, config: Any, environment: str, endpoint: str) -> str:
        bucket = config.model_bucket_name(environment)
        version_before = self.answer(config, environment, endpoint)["model_version"]
        model = self.ws.repo / "serving" / "example" / "models" / "1" / "model.onnx"
        # The version's monitoring baseline, from the data it was trained on, travels with it (docs/monitoring.md).
        data, baseline = self.ws.root / "breast_cancer.csv", self.ws.root / "baseline.json"
        self.run("baseline", [PYTHON, "-m", "serving.example.train_model", "--data-out", str(data)])
        self.run("baseline", [PYTHON, "-m", "pipeline.monitor", "baseline", "--data", str(data), "--model",
                              str(model), "--out", str(baseline), "--drop", "target"])
        self.run("promote", [PYTHON, "-m", "pipeline.models", "promote", "--env", environment, "--endpoint",
                             endpoint, "--model-file", str(model), "--baseline", str(baseline)])
        live = self.client("s3").get_object(Bucket=bucket, Key=f"{endpoint}/LIVE")["Body"].read().decode().strip()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            answer = self.answer(config, environment, endpoint)
            if answer.get("model_version") == live:
                return (f"promoted version {live} (was {version_before}): S3 event -> sync task -> EFS -> hot swap; "
                        f"a prediction through the load balancer answers with version {live}")
            time.sleep(2)
        raise StageFailed(self.timeline.current, f"{endpoint} in {environment} still answers "
                                                 f"{self.answer(config, environment, endpoint)} after 180 s")

    def answer(self, config: Any, environment: str, endpoint: str,
               credentials: dict[str, str] | None = None) -> dict[str, Any]:
        """A prediction through the load balancer, with the client's key where the endpoint has API keys (or the
        `credentials` given: `{}` for none)."""
        from pipeline.smoke import example_request

        root, opener = self.opener_for(config, environment, endpoint)
        credentials = self.credentials(environment, endpoint) if credentials is None else credentials
        metadata = json.loads(opener.open(urllib.request.Request(f"{root}/v2/models/{endpoint}",
                                                                 headers=credentials), timeout=10).read())
        request = urllib.request.Request(f"{root}/v2/models/{endpoint}/infer", method="POST",
                                         data=json.dumps(example_request(metadata)).encode(),
                                         headers={"Content-Type": "application/json", **credentials})
        return json.loads(opener.open(request, timeout=10).read())

    def credentials(self, environment: str, endpoint: str, key: str | None = None) -> dict[str, str]:
        key = key or self.client_keys.get((environment, endpoint))
        return {"Authorization": f"Bearer {key}"} if key else {}

    def keys_command(self, *argv: str) -> dict[str, Any]:
        """`python -m pipeline.keys ... --format json` as the administrator, in the repository copy."""
        completed = subprocess.run([PYTHON, "-m", "pipeline.keys", *argv, "--format", "json"], cwd=self.ws.repo,
                                   env=self.ws.env, capture_output=True, text=True, check=False)
        with open(self.logs / "keys.log", "a") as log:
            log.write(f"$ pipeline.keys {' '.join(argv)}\n{completed.stderr}")  # never the printed key
        if completed.returncode != 0:
            raise StageFailed(self.timeline.current, f"pipeline.keys {' '.join(argv)}: {completed.stderr.strip()}")
        return json.loads(completed.stdout)

    def client_keys_issued(self, config: Any) -> str:
        """A client's key for every `api_key` endpoint (`pipeline.keys create`), before any client call."""
        for environment in config.environments:
            for endpoint in config.endpoints:
                if config.endpoint_for(environment, endpoint).auth.type == "api_key":
                    created = self.keys_command("create", "--env", environment, "--endpoint", endpoint, "--name",
                                                "rehearsal-client")
                    self.client_keys[(environment, endpoint)] = created["key"]
        # The servers read their key set again every 30 s: a client's first call may come before that.
        waited = {f"{environment}/{endpoint}": self._seconds_until(config, environment, endpoint, key, 200,
                                                                   "the client's new key accepted")
                  for (environment, endpoint), key in self.client_keys.items()}
        return ("key created for " + ", ".join(f"{name} (accepted after {seconds:.0f} s)"
                                              for name, seconds in sorted(waited.items()))
                if waited else "no endpoint has auth.type api_key")

    def key_revoked_mid_run(self, config: Any, environment: str, endpoint: str) -> str:
        """A second key answers once the servers read it, and is refused within a minute of its revocation; a call
        without a key is refused all along; the client's own key keeps working."""
        created = self.keys_command("create", "--env", environment, "--endpoint", endpoint, "--name", "to-revoke")
        accepted = self._seconds_until(config, environment, endpoint, created["key"], 200, "a new key accepted")
        if self._status(config, environment, endpoint, None) != 401:
            raise StageFailed(self.timeline.current, f"{environment}/{endpoint} answered a call without a key")
        self.keys_command("revoke", "--env", environment, "--endpoint", endpoint, created["id"])
        refused = self._seconds_until(config, environment, endpoint, created["key"], 401, "a revoked key refused")
        self.answer(config, environment, endpoint)  # the client's own key still works
        return (f"new key accepted after {accepted:.0f} s; refused {refused:.0f} s after its revocation (limit 60 s); "
                "a call without a key: 401; the client's key still answers")

    def _seconds_until(self, config: Any, environment: str, endpoint: str, key: str, status: int, what: str,
                       limit: float = 60) -> float:
        started = time.monotonic()
        while self._status(config, environment, endpoint, key) != status:
            if time.monotonic() - started > limit:
                raise StageFailed(self.timeline.current, f"{environment}/{endpoint}: not {what} within {limit:.0f} s")
            time.sleep(1)
        return time.monotonic() - started

    def _status(self, config: Any, environment: str, endpoint: str, key: str | None) -> int:
        """The status of one prediction through the load balancer with `key` (None: without credentials)."""
        try:
            self.answer(config, environment, endpoint, self.credentials(environment, endpoint, key) if key else {})
            return 200
        except urllib.error.HTTPError as error:
            return error.code

    def endpoint_get(self, config: Any, environment: str, endpoint: str, path: str) -> dict[str, Any]:
        """GET <endpoint's route>/<path> through the load balancer, as a client would."""
        root, opener = self.opener_for(config, environment, endpoint)
        request = urllib.request.Request(f"{root}{path}", headers=self.credentials(environment, endpoint))
        return json.loads(opener.open(request, timeout=10).read())

    def running_image(self, config: Any, environment: str, endpoint: str) -> tuple[str, str]:
        """(server version, image tag) that answer through the load balancer."""
        version = self.endpoint_get(config, environment, endpoint, "/v2")["version"]
        status = self.endpoint_get(config, environment, endpoint, "/status")
        return version, status.get("image_tag") or status.get("image", "")

    def push(self, config: Any, number: int, base: str, edits: dict[str, tuple[str, str]],
             load: tuple[str, str]) -> tuple[str, StageFailed | None]:
        """A later commit through the whole pipeline: `edits` (path -> (old, new) text) applied to the repository copy
        as commit `number`, while light load runs against `load` (environment, endpoint) through the load balancer
        and every failed request is counted. Returns the commit and the stage failure, if the pipeline stopped."""
        import hashlib

        for path, (old, new) in edits.items():
            file = self.ws.repo / path
            text = file.read_text()
            if old not in text:
                raise StageFailed(self.timeline.current, f"push {number}: {path} has no {old!r} to change")
            file.write_text(text.replace(old, new, 1))
        commit = hashlib.sha1(f"{base}+rehearsal-push-{number}".encode()).hexdigest()  # noqa: S324 - an id
        logs = self.logs / f"push-{number}"
        logs.mkdir(exist_ok=True)
        self.wait_answering(config, *load)  # an earlier stage may have just replaced its tasks
        traffic = LightLoad(lambda: self.answer(config, *load))
        traffic.start()
        try:
            run_pipeline(f"{config.project}-delivery", self.client, self.ws.repo, self.ws.env, commit, logs,
                         lambda name, work: self.timeline.step(f"push {number}: {name}", work),
                         self.print_highlights, assume=self.assume,
                         skip_projects=("-test",) if os.environ.get("CI") else ())
            failure = None
        except StageFailed as stopped:
            failure = stopped
        finally:
            traffic.stop()
        self.say(f"push {number}: light load on {'/'.join(load)} during the push: {traffic.sent} requests, "
                 f"{len(traffic.failed)} failed" + (f" ({traffic.failed[:3]})" if traffic.failed else ""))
        if traffic.failed:
            raise StageFailed(f"push {number}", f"{len(traffic.failed)} request(s) failed during the deploy: "
                                                f"{traffic.failed[:5]}")
        return commit, failure

    def wait_answering(self, config: Any, environment: str, endpoint: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.answer(config, environment, endpoint)
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise StageFailed(self.timeline.current,
                                      f"{environment}/{endpoint} does not answer: {error}") from None
                time.sleep(1)

    def second_push(self, config: Any, base: str) -> str:
        """A commit that changes the server visibly: it deploys everywhere, the old tasks drain without a failed
        request, and the new version and image tag answer."""
        from serving import __version__

        version = f"{__version__}+rehearsal.2"
        first = next(iter(config.environments))
        endpoint = next(iter(config.endpoints))
        commit, failure = self.push(config, 2, base, {"serving/__init__.py": (f'"{__version__}"', f'"{version}"')},
                                    (first, endpoint))
        if failure is not None:
            raise failure
        for environment in config.environments:
            for name in realtime_endpoints(config, environment):  # the Smoke step held the async ones to the image
                answered = self.running_image(config, environment, name)
                if answered != (version, commit):
                    raise StageFailed("push 2", f"{environment}/{name} answers {answered}, not {(version, commit)}")
        self.second = (version, commit)
        return f"completed: server {version}, image {commit[:12]} answering in every environment"

    def failing_push(self, config: Any, base: str) -> str:
        """A commit whose server cannot start, so it never answers its health check: Deploy must end red with ECS's
        rollback reason, Smoke must not run, and the endpoint must keep answering from the second commit's image.

        Why a server that exits rather than one that runs but never gets ready: ECS ignores failing health checks
        for the service's grace period (300 s in the shipped configuration) and the breaker needs 3 failed tasks,
        so that rollback takes 15 minutes, on AWS as here (measured once: the README's figures). An exited task
        counts at once; the health-check path is held by tests/rehearsal/test_ecs_deployments.py."""
        first = next(iter(config.environments))
        endpoint = next(iter(config.endpoints))
        crash = 'raise SystemExit("this server cannot start (the rehearsal\'s failing push)")\n'
        commit, failure = self.push(config, 3, base, {"serving/app.py": ("from serving import __version__\n",
                                                                         crash + "from serving import __version__\n")},
                                    (first, endpoint))
        if failure is None or not failure.stage.startswith("Deploy"):
            raise StageFailed("push 3", f"the pipeline did not stop at a Deploy stage: {failure}")
        log = (self.logs / "push-3" / f"{failure.stage}.log").read_text(errors="replace")
        reasons = [line.strip() for line in log.splitlines()
                   if "rolled back" in line or "circuit breaker" in line.lower()]
        if not reasons:
            raise StageFailed("push 3", f"{failure.stage} failed without ECS's rollback reason; log: {log[-1500:]}")
        if any((self.logs / "push-3").glob("Smoke-*.log")):
            raise StageFailed("push 3", "Smoke ran after a failed deploy")
        for name in realtime_endpoints(config, first):
            answered = self.running_image(config, first, name)
            if answered != self.second:
                raise StageFailed("push 3", f"{first}/{name} answers {answered} after the rollback, not "
                                            f"{self.second}")
        reason = reasons[-1].split("deployment failed: ", 1)[-1]
        return (f"rolled back: {failure.stage} ended red with ECS's reason \"{reason[:160]}\"; Smoke did not run; "
                f"{first} answers from image {self.second[1][:12]} again")

    def everything_deployed(self, config: Any) -> str:
        """Every configured environment's stacks applied, every service (each variant's) running its tasks in ECS
        and the emulation, and every endpoint answering a prediction through its load balancer."""
        from configuration.resolved import resolve_environment
        from pipeline.deploy import environment_stacks

        applied = self.applied_stacks()
        ecs = self.client("ecs")
        checked = []
        for environment in config.environments:
            missing = [stack for stack in environment_stacks(config, environment) if stack not in applied]
            if missing:
                raise StageFailed(self.timeline.current, f"{environment}: stacks not applied: {missing}")
            resolved = resolve_environment(config, environment)
            for name, endpoint in resolved.endpoints.items():
                for service in endpoint.service_names:
                    (described,) = ecs.describe_services(cluster=resolved.cluster_name, services=[service])[
                        "services"] or [None]
                    running = self.agent.running(resolved.cluster_name, service)
                    least = 0 if endpoint.is_async else max(described["desiredCount"], 1) if described else 1
                    if described is None or running < least:
                        raise StageFailed(self.timeline.current, f"{environment}/{service}: {running} task(s) run")
                    checked.append(f"{environment}/{service}" + (f" ({running} now; scales from zero)"
                                                                 if endpoint.is_async else ""))
                if endpoint.is_async:
                    continue  # answered through its bucket: the Smoke step did, the stage below does
                answer = self.answer(config, environment, name)
                if "model_version" not in answer:
                    raise StageFailed(self.timeline.current, f"{environment}/{name} answered {answer}")
        return f"{len(config.environments)} environment(s), services {', '.join(checked)}: running and answering"

    def applied_stacks(self) -> set[str]:
        """Stacks whose state (local or in the state bucket) holds managed resources."""
        return {name for name, state in self.states().items()
                if any(r.get("mode") == "managed" for r in state.get("resources", []))}

    def account_after_teardown(self) -> str:
        """Every resource type the stacks create, listed from the account's own APIs: only the bootstrap stack's
        resources (kept on purpose) may remain."""
        kept: set[str] = set()
        for state in (s for name, s in self.states().items() if name.endswith("bootstrap")):
            for resource in state.get("resources", []):
                for instance in resource.get("instances", []):
                    attributes = instance.get("attributes", {})
                    kept.update(str(attributes[key]) for key in ("id", "arn", "name", "bucket") if attributes.get(key))
        held = holdings(self.client)
        left = {kind: [i for i in ids if i not in kept] for kind, ids in held.items()}
        left = {kind: ids for kind, ids in left.items() if ids}
        if left:
            raise StageFailed("teardown", f"the account still holds: {left}")
        kinds = sorted(held)
        return (f"{len(LISTED)} resource types listed; only the bootstrap stack's remain "
                f"({', '.join(kinds)})")

    def repair(self, environment_endpoint: str) -> str:
        """The repair schedule on an endpoint whose models are in place must change nothing: the sync task says so
        (nothing downloaded or pruned) and every file of the models volume is as it was."""
        rules = [rule for rule in self.agent.schedule_rules() if rule == environment_endpoint]
        if len(rules) != 1:
            raise StageFailed(self.timeline.current, f"expected one rule {environment_endpoint}, found {rules}")
        volumes = self.ws.root / "efs"
        before = tree_digest(volumes)
        tasks = self.agent.fire(rules[0], "rate() schedule, fired once (time compressed)")
        self.agent.wait_one_off(180)
        if len(tasks) != 1 or tasks[0].process.returncode != 0:
            raise StageFailed(self.timeline.current, f"the repair task did not run to success: {tasks}")
        done = [json.loads(line) for line in tasks[0].log_path.read_text().splitlines()
                if line.startswith("{") and "model sync done" in line]
        if not done:
            raise StageFailed(self.timeline.current, f"the repair task logged no result:\n{tasks[0].log_tail()}")
        fields = {**done[-1], **done[-1].get("fields", {})}
        if fields.get("downloaded") or fields.get("pruned") or tree_digest(volumes) != before:
            raise StageFailed(self.timeline.current, f"the repair run changed something: {fields}")
        return (f"ran {rules[0]}: live version {fields.get('live')}, nothing downloaded or pruned, every file of the "
                "models volumes unchanged")

    def export_captures(self, config: Any, environment: str, endpoint: str) -> str:
        """The requests the rehearsal sent were captured on the endpoint's data volume; its tasks are replaced (the
        servers seal their files on SIGTERM), the export schedule fires once, and every sealed record must arrive in
        the capture bucket in SageMaker's layout, and leave the volume."""
        from configuration.resolved import resolve_environment
        from serving.contract import is_sealed_capture

        resolved_environment = resolve_environment(config, environment)
        resolved = resolved_environment.endpoints[endpoint]
        replaced = self.agent.replace_tasks(resolved_environment.cluster_name, resolved.service_name)
        # The endpoint's own file system (every environment's endpoint `a` has one): its Name tag is the prefix.
        (file_system,) = [fs["FileSystemId"] for fs in self.client("efs").describe_file_systems()["FileSystems"]
                          if {"Key": "Name", "Value": resolved.name_prefix} in fs.get("Tags", [])]

        def sealed() -> list[Path]:
            return [path for path in (self.ws.root / "efs" / file_system).glob(f"data/{endpoint}/*/*/*/*/*/*")
                    if is_sealed_capture(path.name)]

        files = sealed()
        records = sum(len(path.read_bytes().splitlines()) for path in files)
        if not records:
            raise StageFailed(self.timeline.current, f"no sealed capture file of {endpoint} after replacing "
                                                     f"{replaced} task(s)")
        rules = [rule for rule in self.agent.schedule_rules() if rule == f"{resolved.name_prefix}-capture-export"]
        if len(rules) != 1:
            raise StageFailed(self.timeline.current, f"expected one capture export rule, found {rules}")
        self.agent.fire(rules[0], "cron() schedule, fired once (time compressed)")
        self.agent.wait_one_off(180)
        s3 = self.client("s3")
        bucket = config.capture_bucket_name(environment)
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"{endpoint}/").get("Contents", [])]
        layout = re.compile(rf"^{re.escape(endpoint)}/main/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/[^/]+\.jsonl$")
        if not keys or not all(layout.match(key) for key in keys):
            raise StageFailed(self.timeline.current, f"capture bucket keys not in SageMaker's layout: {keys}")
        exported = sum(len(s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()) for key in keys)
        self.exported_records = exported
        if exported != records or sealed():
            raise StageFailed(self.timeline.current, f"{records} sealed records on the volume, {exported} exported, "
                                                     f"{len(sealed())} file(s) left behind")
        return (f"{replaced} task(s) replaced (their servers sealed {len(files)} capture file(s)); the export task "
                f"wrote {exported} records to s3://{bucket}/{keys[0]}" + (f" and {len(keys) - 1} more" if len(keys) > 1
                                                                          else ""))

    def monitor(self, config: Any, environment: str, endpoint: str) -> str:
        """The monitor's schedule fires once: its task (the monitor's own image, its own role) writes a report per
        variant to the capture bucket and publishes its metrics, read back from CloudWatch. Its window is the last
        full hour, which may hold none of this run's captures: then the report says "no data", as it would in AWS.
        The same program, run by an operator against the bucket over the hours of this run, must find every record
        the export wrote, compared with the live version's baseline from the model bucket."""
        from configuration.naming import EVENT_RULE_NAME_MAX, aws_name
        from configuration.resolved import resolve_endpoint

        resolved = resolve_endpoint(config, environment, endpoint)
        rule = aws_name(resolved.name_prefix, "monitor", max_length=EVENT_RULE_NAME_MAX)
        if rule not in self.agent.schedule_rules():
            raise StageFailed(self.timeline.current, f"no monitor schedule {rule}")
        tasks = self.agent.fire(rule, "cron() schedule, fired once (time compressed)")
        self.agent.wait_one_off(300)
        if len(tasks) != 1 or tasks[0].process.returncode != 0:
            raise StageFailed(self.timeline.current, f"the monitor task did not run to success: "
                                                     f"{[task.log_tail() for task in tasks]}")
        written = [json.loads(line) for line in tasks[0].log_path.read_text().splitlines()
                   if line.startswith("{") and "monitor report written" in line]
        bucket = config.capture_bucket_name(environment)
        s3 = self.client("s3")
        for entry in written:
            key = entry["report"].removeprefix(f"s3://{bucket}/")
            report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            s3.head_object(Bucket=bucket, Key=key.replace("report.json", "report.html"))
            if report["status"] != entry["status"]:
                raise StageFailed(self.timeline.current, f"{key} says {report['status']}, the task {entry}")
        if not written:
            raise StageFailed(self.timeline.current, f"the monitor wrote no report:\n{tasks[0].log_tail()}")
        dimensions = [{"Name": "Environment", "Value": environment}, {"Name": "Endpoint", "Value": endpoint},
                      {"Name": "Variant", "Value": written[0]["variant"]}]
        published = self.client("cloudwatch").get_metric_statistics(
            Namespace="EcsMlops/Monitor", MetricName="RecordsAnalysed", Dimensions=dimensions,
            StartTime=datetime.now(UTC) - timedelta(hours=1), EndTime=datetime.now(UTC) + timedelta(minutes=5),
            Period=3600, Statistics=["Maximum"])["Datapoints"]
        if not published:
            raise StageFailed(self.timeline.current, "no RecordsAnalysed metric in CloudWatch after the monitor ran")
        # The operator's run over the whole rehearsal: every exported record, against the live version's baseline.
        live = s3.get_object(Bucket=config.model_bucket_name(environment),
                             Key=f"{endpoint}/LIVE")["Body"].read().decode().strip()
        start = datetime.fromtimestamp(self.timeline.start_wall, UTC).replace(minute=0, second=0, microsecond=0)
        window = f"{start:%Y-%m-%dT%H:%MZ}/{datetime.now(UTC) + timedelta(hours=1):%Y-%m-%dT%H:%MZ}"
        log = self.logs / "monitor-report.log"
        with open(log, "w") as output:
            code = subprocess.run(
                [PYTHON, "-m", "pipeline.monitor", "report", "--captures", f"s3://{bucket}/{endpoint}/",
                 "--baseline", f"s3://{config.model_bucket_name(environment)}/{endpoint}/{live}/baseline.json",
                 "--window", window, "--format", "json"], cwd=self.ws.repo, env=self.ws.env, stdout=output,
                stderr=subprocess.PIPE, text=True, check=False)
        if code.returncode != 0:
            raise StageFailed(self.timeline.current, f"pipeline.monitor report exited {code.returncode}: "
                                                     f"{code.stderr[-1000:]}")
        document = json.loads(log.read_text())
        if document["records"] != self.exported_records:
            raise StageFailed(self.timeline.current, f"the monitor read {document['records']} records, the export "
                                                     f"wrote {self.exported_records}")
        versions = ", ".join(f"{entry['version']} ({entry['records']}, baseline {'yes' if entry['baseline'] else 'no'})"
                             for entry in document["model_versions"])
        statuses = ", ".join(f"{entry['variant']} {entry['status']}" for entry in written)
        return (f"ran {rule}: {statuses} for the last full hour "
                f"(report and metrics in place); over this run's hours: {document['records']} records of versions "
                f"{versions}, {len(document['drifted_features'])} of {len(document['features'])} features drifted")

    def _wait_for_tasks(self, cluster: str, service: str, count: int, timeout: float, what: str) -> float:
        """Seconds until the service's desired count and its running tasks are both `count`."""
        started = time.monotonic()
        ecs = self.client("ecs")
        while True:
            (described,) = ecs.describe_services(cluster=cluster, services=[service])["services"]
            running = self.agent.running(cluster, service)
            if described["desiredCount"] == count and running == count:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise StageFailed(self.timeline.current, f"{service}: not {what} within {timeout:.0f} s (desired "
                                                         f"{described['desiredCount']}, running {running}); "
                                                         f"scaling: {self.scaling.activities[-3:]}")
            time.sleep(2)

    def async_from_zero(self, config: Any, environment: str, endpoint: str) -> str:
        """An asynchronous endpoint at zero tasks: S3 may send its bucket's events to the queue (its policy, as S3
        is authorized); a request submitted with `python -m pipeline.invoke --async` starts a worker (the scaling
        alarm, Application Auto Scaling, ECS), its answer arrives under the output prefix and on the success topic,
        and the worker scales back to zero once the queue is idle."""
        from configuration.resolved import resolve_environment
        from serving.contract import WorkerVariable, read_remote_store
        from serving.endpoint_check import example_request

        resolved = resolve_environment(config, environment)
        target = resolved.endpoints[endpoint]
        (service,) = target.service_names
        cluster = resolved.cluster_name
        zero = self._wait_for_tasks(cluster, service, 0, 300, "at zero tasks")
        s3, sqs, sns = self.client("s3"), self.client("sqs"), self.client("sns")
        account = self.client("sts").get_caller_identity()["Account"]
        bucket = target.async_bucket_name
        notifications = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
        # The bucket must tell the queue the worker reads (its task definition's WORKER_QUEUE_URL).
        ecs = self.client("ecs")
        (described,) = ecs.describe_services(cluster=cluster, services=[service])["services"]
        (container,) = ecs.describe_task_definition(taskDefinition=described["taskDefinition"])["taskDefinition"][
            "containerDefinitions"]
        (queue_url,) = [item["value"] for item in container.get("environment", [])
                        if item["name"] == WorkerVariable.QUEUE_URL]
        queue_arn = f"arn:aws:sqs:{REGION}:{account}:{queue_url.rstrip('/').rsplit('/', 1)[-1]}"
        if [n["QueueArn"] for n in notifications] != [queue_arn]:
            raise StageFailed(self.timeline.current, f"{bucket} notifies {notifications}, not the worker's queue "
                                                     f"{queue_arn}")
        try:
            self.identities.authorize_service("s3.amazonaws.com", [{
                "action": "sqs:SendMessage", "resource": queue_arn,
                "context": {"aws:SourceArn": f"arn:aws:s3:::{bucket}", "aws:SourceAccount": account},
                "implied": f"S3 sends {bucket}'s event notifications to the queue"}])
        except AccessDenied as denied:
            raise StageFailed(self.timeline.current, str(denied)) from None
        observer = sqs.create_queue(QueueName=ASYNC_OBSERVER)["QueueUrl"]
        observer_arn = sqs.get_queue_attributes(QueueUrl=observer, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        topic = f"arn:aws:sns:{REGION}:{account}:{target.name_prefix}-answered"
        subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=observer_arn,
                                     Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)
        try:
            store = read_remote_store(s3, config.model_bucket_name(environment), f"{endpoint}/")
            request, answer = self.ws.root / "async-request.json", self.ws.root / "async-answer.json"
            inference = f"rehearsal-from-zero-{int(time.time())}"
            request.write_text(json.dumps(example_request(store.versions[store.live].metadata)))
            started = time.monotonic()
            self.run("invoke-async", [PYTHON, "-m", "pipeline.invoke", "--async", "--env", environment, "--endpoint",
                                      endpoint, str(request), "--id", inference, "--timeout", "600", "--out",
                                      str(answer)])
            answered = time.monotonic() - started
            outputs = json.loads(answer.read_text()).get("outputs")
            if not outputs:
                raise StageFailed(self.timeline.current, f"the answer has no outputs: {answer.read_text()[:300]}")
            told = [m["Body"] for m in sqs.receive_message(QueueUrl=observer, MaxNumberOfMessages=10,
                                                           WaitTimeSeconds=10).get("Messages", [])]
            if not any(inference in body for body in told):
                raise StageFailed(self.timeline.current, f"the success topic told {told}, not {inference}")
        finally:
            sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
            sqs.delete_queue(QueueUrl=observer)
        back = self._wait_for_tasks(cluster, service, 0, 300, "back at zero tasks")
        scaled = [line for line in self.scaling.activities if f"/{service}:" in line]
        return (f"{service} at zero tasks (after {zero:.0f} s); a request from zero answered in {answered:.0f} s "
                f"(the alarm's minute, the task's start, the first model load), told on {topic.rsplit(':', 1)[-1]}; "
                f"back at zero {back:.0f} s later; scaling activities: "
                + "; ".join(line.split(": ", 1)[1] for line in scaled[-2:]))

    def batch_run(self, config: Any, environment: str, endpoint: str) -> str:
        """`python -m pipeline.batch` over three CSV files of the example's data (one-off worker tasks, RunTask with
        the manifest as the command's override); run again, everything is skipped as answered."""
        from configuration.resolved import resolve_endpoint

        bucket = resolve_endpoint(config, environment, endpoint).async_bucket_name
        rows = (self.ws.root / "breast_cancer.csv").read_text().splitlines()
        header = rows[0].split(",")
        keep = [index for index, column in enumerate(header) if column != "target"]
        s3 = self.client("s3")
        for part in range(3):
            lines = [",".join(row.split(",")[i] for i in keep) for row in rows[1 + 5 * part:6 + 5 * part]]
            s3.put_object(Bucket=bucket, Key=f"batch/rehearsal/in/part-{part}.csv", Body="\n".join(lines).encode())
        argv = [PYTHON, "-m", "pipeline.batch", "--env", environment, "--endpoint", endpoint, "--input",
                f"s3://{bucket}/batch/rehearsal/in/", "--output", f"s3://{bucket}/batch/rehearsal/out/", "--tasks",
                "2", "--batch-size", "2", "--poll-seconds", "2"]
        self.run("batch", argv)
        first = (self.logs / "batch.log").read_text().strip().splitlines()[-1]
        self.run("batch", argv)
        again = (self.logs / "batch.log").read_text().strip().splitlines()[-1]
        answers = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="batch/rehearsal/out/").get(
            "Contents", [])]
        if len(answers) != 3 or "done 3, failed 0" not in first or "skipped 3" not in again:
            raise StageFailed(self.timeline.current, f"batch run: {first!r}, again: {again!r}, answers {answers}")
        return f"3 CSV files of 5 rows answered by one-off worker tasks ({first}); run again: {again}"

    def authorization_report(self) -> None:
        """Per principal: calls checked and denied; every denial named. Any denial fails the rehearsal."""
        report = self.identities.report()
        self.say("authorization, per principal (calls checked, denied):")
        for name, counts in report["principals"].items():
            self.say(f"   {name}: {counts['checked']} checked, {counts['denied']} denied")
        for action, expected in report["expected_denials"].items():
            self.say(f"   of these, {expected['count']} {action} denied as AWS denies it, and recovered from: "
                     f"{expected['why']}")
        unscoped = report["unscoped_actions"]
        if unscoped:
            self.say(f"   evaluated against resource \"*\" (no ARN derived; see tests/rehearsal/iam_requests.py): "
                     f"{sum(unscoped.values())} checks of {len(unscoped)} actions")
        if report["denied"]:
            raise StageFailed("authorization", f"{len(report['denied'])} call(s) denied:\n"
                              + "\n".join(dict.fromkeys(report["denied"])))

    def keep_evidence(self, name: str, text: str) -> None:
        """What the offline tests replay (tests/rehearsal/recorded/ holds one run's): `recorded/<name>`."""
        folder = self.ws.root / "recorded"
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(text)

    def network_report(self) -> None:
        """Per kind of flow: connections checked and refused; every refusal named. Any refusal fails the rehearsal."""
        self.say("network flows (checked, refused):")
        for kind, count in sorted(self.flows.checked.items()):
            self.say(f"   {kind}: {count} checked, {len(self.flows.refused.get(kind, []))} refused")
        refused = [reason for reasons in self.flows.refused.values() for reason in reasons]
        if refused:
            raise StageFailed("network", f"{len(refused)} flow(s) AWS would drop:\n" + "\n".join(refused))

    def failed_calls(self) -> list[str]:
        """`<service> <Action> <status>` of calls the emulated account refused or failed on; reads of what does not
        exist (404) and lock contention are routine and left out."""
        log = self.ws.root / "emulated-aws.log"
        calls = [line[5:] for line in log.read_text(errors="replace").splitlines()
                 if line.startswith("CALL ") and line.split()[-1][0] in "45"] if log.exists() else []
        return [call for call in calls if not call.endswith(" 404") and "PutItem" not in call]

    def states(self) -> dict[str, dict[str, Any]]:
        """Stack name -> its Terraform state: the bootstrap stack's local file, the others' in the state bucket."""
        s3 = self.client("s3")
        states = {name.removeprefix("terraform.").removesuffix(".tfstate"):
                  json.loads((self.ws.repo / name).read_text())
                  for name in os.listdir(self.ws.repo) if name.startswith("terraform.") and name.endswith(".tfstate")}
        for item in s3.list_objects_v2(Bucket=self.config.state_bucket_name).get("Contents", []):
            if item["Key"].endswith("/terraform.tfstate"):
                states[item["Key"].split("/")[0]] = json.loads(s3.get_object(
                    Bucket=self.config.state_bucket_name, Key=item["Key"])["Body"].read())
        return states

    def count_resources(self) -> tuple[int, int]:
        stacks, resources = 0, 0
        for state in self.states().values():
            managed = [r for r in state.get("resources", []) if r.get("mode") == "managed"]
            stacks += bool(managed)
            resources += sum(len(r.get("instances", [])) for r in managed)
        return stacks, resources

    def main(self) -> int:
        step = self.timeline.step
        try:
            step("prepare", self.prepare)
            from configuration import load_config

            self.config = config = load_config(self.ws.repo / "config" / "mlops.yaml")
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                    check=True).stdout.strip()
            step("make bootstrap (bootstrap stack, then pipeline stack)",
                 lambda: self.run("bootstrap", [PYTHON, "-m", "pipeline.bootstrap"]))
            step("authorize the GitHub connection", self.authorize_connection)
            run_pipeline(f"{config.project}-delivery", self.client, self.ws.repo, self.ws.env, commit, self.logs,
                         step, self.print_highlights, assume=self.assume,
                         # .ci/run runs `make lint` and `make test` right before `make rehearse`; elsewhere it runs.
                         skip_projects=("-test",) if os.environ.get("CI") else ())
            stacks, resources = self.count_resources()
            self.say(f"deployed: {stacks} stacks, {resources} resources")
            step("API keys: a client's key for every api_key endpoint (python -m pipeline.keys create)",
                 lambda: self.client_keys_issued(config))
            step("every environment, stack and service deployed and answering",
                 lambda: self.everything_deployed(config))
            self.keep_evidence("network.json", AppliedNetwork.read(self.client("ec2")).to_json())
            self.keep_evidence("policies.json", json.dumps(self.identities.policies(), indent=1))
            first = next(iter(config.environments))
            endpoint = next(iter(config.endpoints))
            for environment, keyed in sorted(self.client_keys)[:1]:
                step(f"API keys of {environment}/{keyed}: a key created, then revoked mid-run",
                     lambda environment=environment, keyed=keyed: self.key_revoked_mid_run(config, environment, keyed))
            step(f"promote a model version to {first}/{endpoint}",
                 lambda: self.deliver_model(config, first, endpoint))
            step(f"repair schedule of {first}/{endpoint}",
                 lambda: self.repair(f"{config.project}-{first}-{endpoint}-model-repair"))
            step(f"capture export of {first}/{endpoint}", lambda: self.export_captures(config, first, endpoint))
            step(f"model monitor of {first}/{endpoint}", lambda: self.monitor(config, first, endpoint))
            if ASYNC_ENDPOINT in config.endpoints:
                step(f"asynchronous endpoint {first}/{ASYNC_ENDPOINT} from zero tasks",
                     lambda: self.async_from_zero(config, first, ASYNC_ENDPOINT))
                step(f"batch inference with {first}/{ASYNC_ENDPOINT} (python -m pipeline.batch)",
                     lambda: self.batch_run(config, first, ASYNC_ENDPOINT))
            outcomes = ["completed"]
            step("second push: a visible server change", lambda: outcomes.append(self.second_push(config, commit))
                 or outcomes[-1])
            step("third push: a server that cannot start",
                 lambda: outcomes.append(self.failing_push(config, commit)) or outcomes[-1])
            step(f"make destroy ENV={first}",
                 lambda: self.run("destroy-env", [PYTHON, "-m", "pipeline.teardown", "--env", first]))
            step("make destroy-all", lambda: self.run("destroy-all", [PYTHON, "-m", "pipeline.teardown", "--all"]))
            left_stacks, left_resources = self.count_resources()
            if left_stacks != 1:
                raise StageFailed("teardown", f"{left_stacks} stacks still hold resources")
            self.say(f"teardown, read from the emulated account: {self.account_after_teardown()}")
            self.say(f"dropped for the mirror's older provider ({self.ws.provider_version}), each reviewed "
                     "(tests/rehearsal/terraform.py REVIEWED_DROPS), and what it costs:")
            for kind in dropped_kinds(self.ws.dropped_attributes()):
                self.say(f"   {kind}: {REVIEWED_DROPS[kind]}")
            failures = self.agent.failures + [f"application auto scaling: {failure}"
                                              for failure in dict.fromkeys(self.scaling.failures)]
            if failures:
                raise StageFailed("tasks", "; ".join(failures))
            self.keep_evidence("flows.json", json.dumps(self.flows.made, indent=1))
            self.authorization_report()
            self.network_report()
            self.say("the three pushes: " + "; ".join(o.split(":")[0] for o in outcomes) + f" ({outcomes[-1]})")
            self.say(f"rehearsal passed in {time.monotonic() - self.timeline.start:.0f} s: {stacks} stacks and "
                     f"{resources} resources applied; after teardown only the bootstrap stack's "
                     f"{left_resources} resources remain (state bucket, lock table and permissions boundaries, kept on "
                     "purpose)")
            return 0
        except StageFailed as failure:
            self.say(f"REHEARSAL FAILED in stage {failure.stage}: {failure}")
            self.say("last emulated API calls that failed:\n" + "\n".join(self.failed_calls()[-12:]))
            if self.identities is not None and failure.stage != "authorization":
                denied = self.identities.report()["denied"]
                if denied:
                    self.say("calls the emulated account denied:\n" + "\n".join(dict.fromkeys(denied)))
            return 1
        except Exception as error:
            self.say(f"REHEARSAL FAILED in stage {self.timeline.current}: {type(error).__name__}: {error}")
            raise
        finally:
            if self.scaling is not None:
                self.scaling.stop()
            if self.agent is not None:
                self.agent.stop()
            if self.balancers is not None:
                self.balancers.stop()
            self.ws.stop()



def realtime_endpoints(config: Any, environment: str) -> list[str]:
    """The endpoints that answer through a load balancer (an async one answers through its bucket)."""
    return [name for name in config.endpoints if config.endpoint_for(environment, name).mode != "async"]


def tree_digest(root: Path) -> str:
    """One digest of every file's path and content under `root` (`<file system>/<access point>/...`), the capture
    volumes (`data`), which the running servers write to, left out."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "data" not in p.relative_to(root).parts[1:2]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def dropped_kinds(dropped: list[str]) -> list[str]:
    """`<stack>: <type>.<name>.<attribute path>` lines as the distinct `<type>.<attribute path>`."""
    kinds = set()
    for line in dropped:
        resource_type, _, attribute = line.split(": ", 1)[1].split(".", 2)
        kinds.add(f"{resource_type}.{attribute}")
    return sorted(kinds)


def main() -> int:
    configured = os.environ.get(WORK_SETTING)
    root = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="rehearsal-"))
    if configured:
        shutil.rmtree(root / "repo", ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    print(f"rehearsal work folder: {root} (logs in {root / 'logs'})", flush=True)
    try:
        return Rehearsal(root).main()
    except SetupMissing as missing:
        print(f"error: this machine cannot rehearse: {missing}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
