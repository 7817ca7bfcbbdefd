"""`python -m pipeline.batch` where it meets the worker: the plan (what is answered, skipped, tried again), the
manifests, one-off worker tasks as real processes (`python -m serving.worker --manifest`, what ECS would start)
through moto's server, the counts at the end, and a second run resuming; ECS's RunTask as the launcher makes it
(moto); the mistakes it refuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from pipeline import batch
from serving.contract import BatchManifest
from tests.rehearsal import moto_shims
from tests.support.async_endpoint import REGION, create_async_endpoint
from tests.support.paths import PROJECT_ROOT
from tests.support.serving_data import BENIGN_ROW, EXAMPLE_MODELS, ROW, infer_body


class ProcessLauncher:
    """Starts the worker task as ECS would (its entry point, `--manifest`), as a local process."""

    def __init__(self, environment: dict[str, str]):
        self.environment = environment
        self.processes: dict[str, subprocess.Popen] = {}
        self.versions: list[str | None] = []

    def launch(self, manifest_uri: str, version: str | None) -> str:
        environment = {**self.environment, **({"SERVING_MODEL_VERSION": version} if version else {})}
        self.versions.append(version)
        process = subprocess.Popen([sys.executable, "-m", "serving.worker", "--manifest", manifest_uri],
                                   cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        task_id = f"task-{len(self.processes)}"
        self.processes[task_id] = process
        return task_id

    def running(self, task_ids: list[str]) -> int:
        return sum(1 for task_id in task_ids if self.processes[task_id].poll() is None)


@pytest.fixture
def endpoint(clients, config):
    s3, sqs, sns = clients
    return create_async_endpoint(s3, sqs, sns, endpoint="scorer",
                                 bucket=config.async_bucket_name("staging", "scorer"))


@pytest.fixture
def launcher(endpoint, moto_url, tmp_path):
    shutil.copytree(EXAMPLE_MODELS, tmp_path / "models")
    return ProcessLauncher({**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                            "SERVING_MODELS_DIR": str(tmp_path / "models"),
                            "SERVING_CAPTURE_DIR": str(tmp_path / "capture"), "SERVING_MODEL_NAME": "scorer",
                            "SERVING_POLL_INTERVAL_SECONDS": "0.1", **endpoint.worker_environment()})


def _put_inputs(s3, bucket: str) -> None:
    rows = "\n".join(",".join(map(str, row)) for row in (ROW, BENIGN_ROW, ROW))
    for index in range(5):
        s3.put_object(Bucket=bucket, Key=f"batch/june/in/r{index}.json", Body=json.dumps(infer_body()).encode())
    s3.put_object(Bucket=bucket, Key="batch/june/in/table.csv", Body=rows.encode())
    s3.put_object(Bucket=bucket, Key="batch/june/in/broken.csv", Body=b"1,2\n3,x\n")


def _argv(*extra: str) -> list[str]:
    return ["--env", "staging", "--endpoint", "scorer", "--input", "s3://{b}/batch/june/in/",
            "--output", "s3://{b}/batch/june/out/", *extra]


def test_a_run_answers_everything_in_its_tasks_and_a_second_run_resumes(clients, config, endpoint, launcher):
    s3, _, _ = clients
    bucket = endpoint.bucket
    _put_inputs(s3, bucket)
    s3.put_object(Bucket=bucket, Key="batch/june/out/r0.json", Body=b"{}")  # answered by an earlier run
    said: list[str] = []
    argv = [part.format(b=bucket) for part in _argv("--tasks", "2", "--batch-size", "2", "--poll-seconds", "0.2")]
    with pytest.raises(batch.BatchIncomplete) as incomplete:
        batch.run(argv, s3=s3, launcher=launcher, config=config, say=said.append)
    report = str(incomplete.value).splitlines()
    assert report[0] == "done 5, failed 1, skipped 1 (answered before)"
    assert report[1] == ("failed: batch/june/in/broken.csv: line 2 has a value that is not a number: "
                         "['3', 'x']")
    assert said[0] == (f"7 object(s) under s3://{bucket}/batch/june/in/: 6 to answer, 1 answered before; 2 task(s); "
                       "the live model version")
    assert said[-1].startswith("answered 5/6, failed 1; tasks running 0/2")
    assert all(process.returncode in (0, 1) for process in launcher.processes.values())
    table = json.loads(s3.get_object(Bucket=bucket, Key="batch/june/out/table.json")["Body"].read())
    assert table["predictions"] == [0, 1, 0] and table["rows"] == 3
    manifests = [json.loads(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
                 for entry in s3.list_objects_v2(Bucket=bucket, Prefix="batch/_manifests/")["Contents"]]
    assert sorted(key for manifest in manifests for key in manifest["keys"]) == sorted(
        f"batch/june/in/{name}" for name in ("broken.csv", "r1.json", "r2.json", "r3.json", "r4.json", "table.csv"))
    assert all(manifest["batch_size"] == 2 for manifest in manifests)

    # The broken file is fixed and the run started again: only it is answered, its old failure record goes.
    s3.put_object(Bucket=bucket, Key="batch/june/in/broken.csv", Body=b"1,2\n".replace(b"1,2", ",".join(
        map(str, ROW)).encode()))
    again: list[str] = []
    printed = batch.run(argv, s3=s3, launcher=launcher, config=config, say=again.append)
    assert printed == "done 1, failed 0, skipped 6 (answered before)"
    assert again[0].startswith("7 object(s) under") and "1 to answer, 6 answered before; 1 task(s)" in again[0]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="batch/june/out/_failures/").get("KeyCount", 0) == 0


def test_a_pinned_version_must_exist_and_goes_to_every_task(clients, config, endpoint, launcher):
    s3, _, _ = clients
    bucket = endpoint.bucket
    models = config.model_bucket_name("staging")
    s3.create_bucket(Bucket=models, CreateBucketConfiguration={"LocationConstraint": REGION})
    for name in ("model.onnx", "metadata.json"):
        s3.put_object(Bucket=models, Key=f"scorer/1/{name}", Body=(EXAMPLE_MODELS / "1" / name).read_bytes())
    s3.put_object(Bucket=bucket, Key="batch/june/in/r.json", Body=json.dumps(infer_body()).encode())
    argv = [part.format(b=bucket) for part in _argv("--poll-seconds", "0.2")]
    with pytest.raises(batch.BatchError, match="--version 7: not in s3://.*/scorer/ \\(there: 1\\)"):
        batch.run([*argv, "--version", "7"], s3=s3, launcher=launcher, config=config, say=lambda _: None)
    assert batch.run([*argv, "--version", "1"], s3=s3, launcher=launcher, config=config,
                     say=lambda _: None) == "done 1, failed 0, skipped 0 (answered before)"
    assert launcher.versions == ["1"]


def test_a_dry_run_prints_the_plan_and_starts_nothing(clients, config, endpoint):
    s3, _, _ = clients
    _put_inputs(s3, endpoint.bucket)
    said: list[str] = []
    argv = [part.format(b=endpoint.bucket) for part in _argv("--tasks", "3", "--dry-run")]
    assert batch.run(argv, s3=s3, config=config, say=said.append) == "dry run: nothing started"
    assert said[0].endswith("7 to answer, 0 answered before; 3 task(s); the live model version")
    assert said[1].startswith("would start task 0 on 3 object(s)")
    assert s3.list_objects_v2(Bucket=endpoint.bucket, Prefix="batch/_manifests/").get("KeyCount", 0) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--env", "staging", "--endpoint", "a", "--input", "s3://x/batch/i/", "--output", "s3://x/batch/o/"],
     "endpoint a is a real-time endpoint in staging"),
    (["--env", "staging", "--endpoint", "scorer", "--input", "s3://elsewhere/in/", "--output", "s3://{b}/batch/o/"],
     "--input s3://elsewhere/in/: batch runs read and write under s3://{b}/batch/"),
    (["--env", "staging", "--endpoint", "scorer", "--input", "s3://{b}/batch/i/", "--output", "s3://{b}/batch/i/o/"],
     "must not contain each other"),
    (["--env", "staging", "--endpoint", "scorer", "--input", "{b}/batch/i/", "--output", "s3://{b}/batch/o/"],
     "an s3://bucket/prefix/ location"),
    (["--env", "staging", "--endpoint", "scorer", "--input", "s3://{b}/batch/i/", "--output", "s3://{b}/batch/o/",
      "--tasks", "0"], "--tasks 0 and --batch-size 256: at least 1"),
])
def test_mistakes_are_named(clients, config, argv, message):
    bucket = config.async_bucket_name("staging", "scorer")
    with pytest.raises(batch.BatchError) as raised:
        batch.run([part.format(b=bucket) for part in argv], s3=clients[0], launcher=object(), config=config,
                  say=lambda _: None)
    assert message.format(b=bucket) in str(raised.value)


def test_ecs_starts_each_task_from_the_worker_service_with_its_manifest(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # moto 5.2.5's RunTask: task-level memory and a network interface's DNS name (tests/rehearsal/moto_shims.py)
    moto_shims.apply("ecs-run-task-task-level-memory", "ecs-run-task-interface-name")
    with mock_aws():
        ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="worker", Description="w", VpcId=vpc)["GroupId"]
        ecs.create_cluster(clusterName="mlops-staging")
        definition = ecs.register_task_definition(
            family="mlops-staging-scorer", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024",
            memory="4096", containerDefinitions=[{"name": "model-server", "image": "i", "essential": True,
                                                  "entryPoint": ["python", "-m", "serving.worker"]}])
        network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group],
                                           "assignPublicIp": "DISABLED"}}
        ecs.create_service(cluster="mlops-staging", serviceName="scorer",
                           taskDefinition=definition["taskDefinition"]["taskDefinitionArn"], desiredCount=0,
                           launchType="FARGATE", networkConfiguration=network)
        launcher = batch.EcsLauncher(ecs, "mlops-staging", "scorer")
        task = launcher.launch("s3://b/batch/_manifests/run/0.json", "7")
        (described,) = ecs.describe_tasks(cluster="mlops-staging", tasks=[task])["tasks"]
        (override,) = described["overrides"]["containerOverrides"]
        assert override["name"] == "model-server"
        assert override["command"] == ["--manifest", "s3://b/batch/_manifests/run/0.json"]
        assert override["environment"] == [{"name": "SERVING_MODEL_VERSION", "value": "7"}]
        assert described["taskDefinitionArn"] == definition["taskDefinition"]["taskDefinitionArn"]
        assert launcher.running([task]) == 1
        with pytest.raises(batch.BatchError, match="no active service missing in cluster mlops-staging"):
            batch.EcsLauncher(ecs, "mlops-staging", "missing")


def test_the_manifest_the_pipeline_writes_is_the_one_the_worker_reads():
    written = BatchManifest("b", "batch/in/", "b", "batch/out/", ("batch/in/a.json",), 64).as_json()
    assert BatchManifest.from_json(written) == BatchManifest("b", "batch/in/", "b", "batch/out/",
                                                             ("batch/in/a.json",), 64)
