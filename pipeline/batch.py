"""`python -m pipeline.batch --env E --endpoint N --input s3://.../batch/in/ --output s3://.../batch/out/`: answer
every object under a prefix with an asynchronous endpoint's model, in one-off worker tasks.

The objects are requests as the endpoint takes them (Open Inference Protocol JSON, the `/predict` form, binary
tensors), or CSV and JSON Lines files, answered in requests of `--batch-size` rows. Both prefixes are in the
endpoint's own bucket under `batch/` (where its worker may read and write). Objects already answered under the output
prefix are skipped, so a run started again resumes; failures of an earlier run are tried again. The objects to answer
are split into `--tasks` manifests; each is one Fargate task of the endpoint's worker task definition (its network,
Spot share and role), started with `--manifest` (serving/worker/batch.py), optionally pinned to `--version`. The
command prints progress until every task has stopped, then the counts of done, failed and skipped objects, and each
failure's reason. Exit codes: 0 every object answered; 1 some failed or were left; 2 a mistake in the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from configuration import MlopsConfig, load_config
from configuration.resolved import resolve_endpoint, resolve_environment
from pipeline.commands import run_operator_command
from pipeline.invoke import InvokeError, address_of
from serving.contract import (
    BATCH_FAILURES_FOLDER,
    BATCH_MANIFESTS,
    BATCH_PREFIX,
    SERVER_CONTAINER,
    BatchManifest,
    ServerVariable,
    answer_keys,
    inference_id,
    read_remote_store,
)

MAX_FAILURES_SHOWN = 10


class BatchError(Exception):
    """A mistake in the command: the endpoint, the locations, the version."""


class BatchIncomplete(Exception):
    """Some objects failed or were left unanswered (exit code 1)."""


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_location(uri: str, flag: str) -> Location:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise BatchError(f"{flag} {uri!r}: an s3://bucket/prefix/ location")
    bucket, _, prefix = uri[5:].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return Location(bucket, prefix)


@dataclass
class Plan:
    pending: list[str]
    """Input keys to answer."""
    skipped: list[str]
    """Input keys answered before."""
    earlier_failures: list[str] = field(default_factory=list)
    """Failure records of an earlier run, removed so that their objects are tried again."""


def plan(s3: Any, source: Location, target: Location) -> Plan:
    inputs = [key for key in _keys(s3, source) if not key.endswith("/")]
    existing = set(_keys(s3, target))
    pending, skipped, failures = [], [], []
    for key in inputs:
        identity = inference_id(source.prefix, key)
        answer, binary, failure = answer_keys(target.prefix, f"{target.prefix}{BATCH_FAILURES_FOLDER}",
                                              identity)
        if answer in existing or binary in existing:
            skipped.append(key)
            continue
        if failure in existing:
            failures.append(failure)
        pending.append(key)
    return Plan(pending, skipped, failures)


def _keys(s3: Any, location: Location) -> list[str]:
    return [entry["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket, Prefix=location.prefix) for entry in page.get("Contents", [])]


def split(keys: list[str], tasks: int) -> list[list[str]]:
    """Round-robin, so each task gets a similar share of every folder."""
    shares: list[list[str]] = [[] for _ in range(min(tasks, len(keys)))]
    for index, key in enumerate(keys):
        shares[index % len(shares)].append(key)
    return shares


class TaskLauncher(Protocol):
    def launch(self, manifest_uri: str, version: str | None) -> str:
        """Start one worker task on the manifest; its id."""

    def running(self, task_ids: list[str]) -> int:
        """How many of these tasks have not stopped."""


class EcsLauncher:
    """One-off tasks of the endpoint's worker service's task definition, with its network and capacity."""

    def __init__(self, ecs: Any, cluster: str, service: str):
        self.ecs, self.cluster = ecs, cluster
        described = ecs.describe_services(cluster=cluster, services=[service])["services"]
        if not described or described[0].get("status") != "ACTIVE":
            raise BatchError(f"no active service {service} in cluster {cluster}: is the endpoint deployed?")
        self.service = described[0]

    def launch(self, manifest_uri: str, version: str | None) -> str:
        override: dict[str, Any] = {"name": SERVER_CONTAINER, "command": ["--manifest", manifest_uri]}
        if version is not None:
            override["environment"] = [{"name": ServerVariable.MODEL_VERSION, "value": version}]
        placement = ({"capacityProviderStrategy": self.service["capacityProviderStrategy"]}
                     if self.service.get("capacityProviderStrategy") else {"launchType": "FARGATE"})
        response = self.ecs.run_task(cluster=self.cluster, taskDefinition=self.service["taskDefinition"], count=1,
                                     networkConfiguration=self.service["networkConfiguration"],
                                     overrides={"containerOverrides": [override]}, startedBy="pipeline.batch",
                                     **placement)
        if response.get("failures") or not response.get("tasks"):
            raise BatchError(f"ECS did not start a task: {response.get('failures')}")
        return str(response["tasks"][0]["taskArn"])

    def running(self, task_ids: list[str]) -> int:
        running = 0
        for start in range(0, len(task_ids), 100):
            tasks = self.ecs.describe_tasks(cluster=self.cluster, tasks=task_ids[start:start + 100])["tasks"]
            running += sum(1 for task in tasks if task.get("lastStatus") != "STOPPED")
        return running


@dataclass
class Counts:
    done: int
    failed: int
    skipped: int
    left: int
    failures: dict[str, str]

    def line(self) -> str:
        return (f"done {self.done}, failed {self.failed}, skipped {self.skipped} (answered before)"
                + (f", left {self.left} (their tasks stopped first: run again to resume)" if self.left else ""))


def count(s3: Any, source: Location, target: Location, pending: list[str], skipped: int,
          reasons: bool = False) -> Counts:
    existing = set(_keys(s3, target))
    done, failures = 0, {}
    for key in pending:
        answer, binary, failure = answer_keys(target.prefix, f"{target.prefix}{BATCH_FAILURES_FOLDER}",
                                              inference_id(source.prefix, key))
        if answer in existing or binary in existing:
            done += 1
        elif failure in existing:
            failures[key] = json.loads(s3.get_object(Bucket=target.bucket, Key=failure)["Body"].read()).get(
                "failureReason", "") if reasons else ""
    return Counts(done, len(failures), skipped, len(pending) - done - len(failures), failures)


def run_batch(s3: Any, launcher: TaskLauncher | None, config: MlopsConfig, environment: str, endpoint: str,
              source: Location, target: Location, tasks: int, batch_size: int, version: str | None,
              say: Callable[[str], None], poll_seconds: float = 15.0,
              sleep: Callable[[float], None] = time.sleep) -> Counts:
    """`launcher` None: a dry run (nothing written or started)."""
    bucket = config.async_bucket_name(environment, endpoint)
    for location, flag in ((source, "--input"), (target, "--output")):
        if location.bucket != bucket or not location.prefix.startswith(BATCH_PREFIX) or \
                location.prefix.startswith(BATCH_MANIFESTS):
            raise BatchError(f"{flag} {location}: batch runs read and write under s3://{bucket}/{BATCH_PREFIX} (the "
                             "endpoint's worker may use nothing else); copy the inputs there, e.g. "
                             f"aws s3 sync <source> s3://{bucket}/{BATCH_PREFIX}<run>/input/")
    if target.prefix.startswith(source.prefix) or source.prefix.startswith(target.prefix):
        raise BatchError(f"--input {source} and --output {target} must not contain each other (answers would be "
                         "taken for inputs)")
    if version is not None:
        store = read_remote_store(s3, config.model_bucket_name(environment), f"{endpoint}/")
        if version not in store.versions:
            raise BatchError(f"--version {version}: not in s3://{config.model_bucket_name(environment)}/{endpoint}/ "
                             f"(there: {', '.join(store.ordered) or 'none'})")
    work = plan(s3, source, target)
    shares = split(work.pending, tasks)
    say(f"{len(work.pending) + len(work.skipped)} object(s) under {source}: {len(work.pending)} to answer, "
        f"{len(work.skipped)} answered before; {len(shares)} task(s)"
        + (f"; model version {version}" if version else "; the live model version"))
    if launcher is None:
        for index, share in enumerate(shares):
            say(f"would start task {index} on {len(share)} object(s), e.g. {share[0]}")
        return Counts(0, 0, len(work.skipped), len(work.pending), {})
    for failure in work.earlier_failures:  # tried again: its record goes
        s3.delete_object(Bucket=target.bucket, Key=failure)
    run = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    task_ids = []
    for index, share in enumerate(shares):
        key = f"{BATCH_MANIFESTS}{run}/{index}.json"
        s3.put_object(Bucket=bucket, Key=key, Body=BatchManifest(source.bucket, source.prefix, target.bucket,
                                                            target.prefix, tuple(share), batch_size).as_json(),
                      ContentType="application/json")
        task_ids.append(launcher.launch(f"s3://{bucket}/{key}", version))
    say(f"run {run}: started {len(task_ids)} task(s)")
    while True:
        running = launcher.running(task_ids)
        progress = count(s3, source, target, work.pending, len(work.skipped))
        say(f"answered {progress.done}/{len(work.pending)}, failed {progress.failed}; tasks running "
            f"{running}/{len(task_ids)}")
        if running == 0:
            break
        sleep(poll_seconds)
    return count(s3, source, target, work.pending, len(work.skipped), reasons=True)


def run(argv: list[str], s3: Any = None, launcher: TaskLauncher | None = None, config: MlopsConfig | None = None,
        say: Callable[[str], None] | None = None) -> str:
    args = _parser().parse_args(argv)
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    config = config or load_config()
    try:
        address_of(config, args.env, args.endpoint)  # an asynchronous endpoint: batch runs use its worker
    except InvokeError as exc:
        raise BatchError(str(exc)) from None
    if args.tasks < 1 or args.batch_size < 1:
        raise BatchError(f"--tasks {args.tasks} and --batch-size {args.batch_size}: at least 1")
    source, target = parse_location(args.input, "--input"), parse_location(args.output, "--output")
    if s3 is None or (launcher is None and not args.dry_run):
        from pipeline import preflight
        from pipeline.aws import environment_session, pipeline_session

        preflight.check(config, pipeline_session(config), [args.env])
        session = environment_session(config, args.env)
        s3 = s3 or session.client("s3")
        if not args.dry_run:
            launcher = EcsLauncher(session.client("ecs"), resolve_environment(config, args.env).cluster_name,
                                   resolve_endpoint(config, args.env, args.endpoint).service_name)
    counts = run_batch(s3, None if args.dry_run else launcher, config, args.env, args.endpoint, source, target,
                       args.tasks, args.batch_size, args.version, say, args.poll_seconds)
    if args.dry_run:
        return "dry run: nothing started"
    lines = [counts.line(), *(f"failed: {key}: {reason}" for key, reason in
                              list(counts.failures.items())[:MAX_FAILURES_SHOWN])]
    if len(counts.failures) > MAX_FAILURES_SHOWN:
        lines.append(f"... and {len(counts.failures) - MAX_FAILURES_SHOWN} more under {target}{BATCH_FAILURES_FOLDER}")
    if counts.failed or counts.left:
        raise BatchIncomplete("\n".join(lines))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--input", required=True, help="s3://<endpoint bucket>/batch/.../: the objects to answer")
    parser.add_argument("--output", required=True, help="s3://<endpoint bucket>/batch/.../: where answers go")
    parser.add_argument("--version", help="the model version to answer with (default: the live one)")
    parser.add_argument("--tasks", type=int, default=2, help="one-off worker tasks (default 2)")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per request of CSV and JSON Lines files")
    parser.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help="print the plan; write and start nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    def command() -> str:
        return run(sys.argv[1:] if argv is None else argv)

    try:
        return run_operator_command(command, (BatchError,))
    except BatchIncomplete as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
