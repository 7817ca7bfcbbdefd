"""An asynchronous endpoint's AWS side in moto (bucket with the input notification, queue with its dead-letter
queue, success and error topics, an inbox queue subscribed to each topic), a worker as a real process, and a model
whose inference takes as long as a test needs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serving.contract import WorkerVariable, async_prefixes
from tests.support.paths import PROJECT_ROOT

REGION = "eu-west-1"
MAX_RECEIVES = 3


def async_config(project: str) -> Any:
    """A configuration with one real-time endpoint (a) and one asynchronous endpoint (scorer) in staging."""
    from configuration.loader import parse_config

    return parse_config({
        "project": project, "region": REGION,
        "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
        "endpoints": {"a": {"path": "/a/*"}, "scorer": {"mode": "async", "min_tasks": 0}}}, "test.yaml")


@dataclass(frozen=True)
class AsyncEndpoint:
    bucket: str
    queue_url: str
    dead_letter_queue_url: str
    success_topic_arn: str
    error_topic_arn: str
    success_inbox_url: str
    error_inbox_url: str
    input_prefix: str
    output_prefix: str
    failure_prefix: str

    def worker_environment(self) -> dict[str, str]:
        return {WorkerVariable.QUEUE_URL: self.queue_url, WorkerVariable.DEAD_LETTER_QUEUE_URL:
                self.dead_letter_queue_url, WorkerVariable.BUCKET: self.bucket,
                WorkerVariable.INPUT_PREFIX: self.input_prefix, WorkerVariable.OUTPUT_PREFIX: self.output_prefix,
                WorkerVariable.FAILURE_PREFIX: self.failure_prefix,
                WorkerVariable.SUCCESS_TOPIC_ARN: self.success_topic_arn,
                WorkerVariable.ERROR_TOPIC_ARN: self.error_topic_arn, WorkerVariable.MAX_RECEIVES: str(MAX_RECEIVES)}


def create_async_endpoint(s3: Any, sqs: Any, sns: Any, endpoint: str = "example",
                          visibility_timeout: int = 30, bucket: str | None = None) -> AsyncEndpoint:
    """Every resource named uniquely (the bucket too, unless given), so tests sharing one moto server never see each
    other's messages."""
    suffix = uuid.uuid4().hex[:8]
    bucket = bucket or f"async-{suffix}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    dead_letter = sqs.create_queue(QueueName=f"{endpoint}-dlq-{suffix}")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"{endpoint}-requests-{suffix}", Attributes={
        "VisibilityTimeout": str(visibility_timeout),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVES})})[
        "QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    input_prefix, output_prefix, failure_prefix = async_prefixes(endpoint)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": input_prefix}]}}}]})
    topics, inboxes = [], []
    for kind in ("success", "error"):
        topic = sns.create_topic(Name=f"{endpoint}-{kind}-{suffix}")["TopicArn"]
        inbox = sqs.create_queue(QueueName=f"{endpoint}-{kind}-inbox-{suffix}")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn,
                      Attributes={"RawMessageDelivery": "true"})
        topics.append(topic)
        inboxes.append(inbox)
    drain(sqs, queue)  # S3's test event, sent when the notification is configured
    return AsyncEndpoint(bucket, queue, dead_letter, topics[0], topics[1], inboxes[0], inboxes[1],
                         input_prefix, output_prefix, failure_prefix)


def drain(sqs: Any, queue_url: str, wait_seconds: int = 0) -> list[dict[str, Any]]:
    """Every message now visible in a queue, deleted as read."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
                                    MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible and in-flight messages."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def notifications(sqs: Any, inbox_url: str) -> list[dict[str, Any]]:
    return [json.loads(message["Body"]) for message in drain(sqs, inbox_url)]


def wait_for(condition: Any, timeout: float, what: str, process: WorkerProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.process.poll() is not None:
            raise AssertionError(f"the worker exited ({process.process.returncode}) before {what}:\n"
                                 f"{process.output()}")
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}" + (f"\n{process.output()}" if process else ""))


def add_slow_version(models_dir: Path, version: str, hidden: int = 1024, layers: int = 4) -> Path:
    """A multilayer perceptron over the example model's 30 features: its inference costs about
    2 x hidden^2 x layers floating-point operations per row, so a test sizes a request to take the time it needs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from serving.repository import sha256_of

    generator = np.random.default_rng(7)
    nodes, weights, previous = [], [], "input"
    sizes = [30, *([hidden] * layers), 2]
    for index, (rows, columns) in enumerate(zip(sizes, sizes[1:], strict=False)):
        weight = (generator.standard_normal((rows, columns)) / np.sqrt(rows)).astype(np.float32)
        weights.append(numpy_helper.from_array(weight, f"w{index}"))
        product = f"m{index}"
        nodes.append(helper.make_node("MatMul", [previous, f"w{index}"], [product]))
        previous = f"t{index}" if index < len(sizes) - 2 else "probabilities"
        nodes.append(helper.make_node("Tanh" if index < len(sizes) - 2 else "Softmax", [product], [previous]))
    graph = helper.make_graph(
        nodes, "slow", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 30])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = models_dir / version
    folder.mkdir(parents=True)
    onnx.save(model, folder / "model.onnx")
    metadata = {"name": "slow-mlp", "version": version, "file": "model.onnx", "framework": "onnx",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 30]}],
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
                "predict_output": "probabilities", "sha256": sha256_of(folder / "model.onnx")}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


class WorkerProcess:
    """`python -m serving.worker` against a moto server."""

    def __init__(self, endpoint: AsyncEndpoint, moto_url: str, models_dir: Path, capture_dir: Path, **env: str):
        self.env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                    "SERVING_MODELS_DIR": str(models_dir), "SERVING_CAPTURE_DIR": str(capture_dir),
                    "SERVING_MODEL_NAME": "example", "SERVING_POLL_INTERVAL_SECONDS": "0.2",
                    "SERVING_INSTANCE_ID": f"worker-{uuid.uuid4().hex[:6]}", "WORKER_WAIT_SECONDS": "1",
                    "WORKER_RETRY_DELAY_SECONDS": "0", **endpoint.worker_environment(), **env}
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "serving.worker"], cwd=PROJECT_ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode()

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.output().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def peak_memory_bytes(self) -> int:
        """The process's peak resident set so far (Linux VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc")

    def terminate(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise AssertionError(f"the worker did not stop within {timeout} s:\n{self.output()}") from None
        return self.process.returncode
