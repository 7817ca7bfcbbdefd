"""The queue worker as a real process (`python -m serving.worker`) against moto's server: S3 notifications reach
the queue, answers and failures land in S3, topics are told, and what SQS does with visibility, redelivery and
dead letters is what the worker must live with."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from serving.contract import HEADER_LENGTH_METADATA
from tests.support.async_endpoint import (
    REGION,
    AsyncEndpoint,
    WorkerProcess,
    add_slow_version,
    create_async_endpoint,
    drain,
    notifications,
    queue_depth,
    wait_for,
)
from tests.support.serving_data import EXAMPLE_MODELS, ROW, infer_body


@pytest.fixture
def endpoint(clients) -> AsyncEndpoint:
    return create_async_endpoint(*clients)


@pytest.fixture
def example_models(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE_MODELS, tmp_path / "models")
    return tmp_path / "models"


def _answer(s3, endpoint: AsyncEndpoint, inference: str, suffix: str = ".json") -> dict:
    body = s3.get_object(Bucket=endpoint.bucket, Key=f"{endpoint.output_prefix}{inference}{suffix}")["Body"].read()
    return json.loads(body)


def _exists(s3, bucket: str, key: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


def test_a_request_put_under_the_input_prefix_is_answered_and_told(clients, endpoint, moto_url, example_models,
                                                                     tmp_path):
    s3, sqs, _ = clients
    worker = WorkerProcess(endpoint, moto_url, example_models, tmp_path / "capture")
    try:
        s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}first.json",
                      Body=json.dumps(infer_body(id="first")))
        key = f"{endpoint.output_prefix}first.json"
        wait_for(lambda: _exists(s3, endpoint.bucket, key), 30, "the answer", worker)
        answer = _answer(s3, endpoint, "first")
        assert answer["id"] == "first" and answer["outputs"][0]["data"] == [0]
        wait_for(lambda: queue_depth(sqs, endpoint.queue_url) == 0, 10, "the message deleted", worker)
        [told] = notifications(sqs, endpoint.success_inbox_url)
        assert told["inferenceId"] == "first" and told["status"] == "Completed"
        assert told["outputLocation"] == f"s3://{endpoint.bucket}/{key}" and told["modelVersion"] == "1"
    finally:
        assert worker.terminate() == 0, worker.output()
    captured = [json.loads(line) for path in (tmp_path / "capture").rglob("*.jsonl")
                for line in path.read_text().splitlines()]
    assert [record["eventMetadata"]["inferenceId"] for record in captured] == ["first"]


def _binary_request(rows: np.ndarray, binary_output: bool = True) -> tuple[bytes, dict[str, str]]:
    """A binary Open Inference Protocol request and the object metadata that says where its JSON ends."""
    data = np.ascontiguousarray(rows, dtype="<f4").tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(data)}}],
                         "parameters": {"binary_data_output": binary_output}}).encode()
    return header + data, {HEADER_LENGTH_METADATA: str(len(header))}


def _put_binary(s3, endpoint: AsyncEndpoint, name: str, rows: np.ndarray) -> None:
    body, metadata = _binary_request(rows)
    s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}{name}.bin", Body=body, Metadata=metadata,
                  ContentType="application/octet-stream")


def _s3_event(endpoint: AsyncEndpoint, key: str) -> str:
    """The notification S3 sends for a new object (what a duplicate delivery repeats)."""
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
                                    "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": endpoint.bucket}, "object": {"key": key}}}]})


@pytest.fixture
def slow_models(tmp_path: Path) -> Path:
    """Only the slow model: ~70 us a row on one core here (hidden 1024, 4 layers)."""
    add_slow_version(tmp_path / "slow-models", "1")
    return tmp_path / "slow-models"


def test_a_redelivered_message_finds_its_answer_and_is_only_deleted(clients, endpoint, moto_url, example_models,
                                                                    tmp_path):
    s3, sqs, _ = clients
    worker = WorkerProcess(endpoint, moto_url, example_models, tmp_path / "capture")
    try:
        key = f"{endpoint.input_prefix}again.json"
        s3.put_object(Bucket=endpoint.bucket, Key=key, Body=json.dumps(infer_body()))
        answer_key = f"{endpoint.output_prefix}again.json"
        wait_for(lambda: _exists(s3, endpoint.bucket, answer_key), 30, "the answer", worker)
        wait_for(lambda: queue_depth(sqs, endpoint.queue_url) == 0, 10, "the message deleted", worker)
        first = s3.head_object(Bucket=endpoint.bucket, Key=answer_key)
        sqs.send_message(QueueUrl=endpoint.queue_url, MessageBody=_s3_event(endpoint, key))  # delivered again
        wait_for(lambda: any(record.get("outcome") == "already answered" for record in worker.log_records()), 30,
                 "the second delivery handled", worker)
        wait_for(lambda: queue_depth(sqs, endpoint.queue_url) == 0, 10, "the second message deleted", worker)
    finally:
        assert worker.terminate() == 0, worker.output()
    assert s3.head_object(Bucket=endpoint.bucket, Key=answer_key)["ETag"] == first["ETag"]
    assert s3.head_object(Bucket=endpoint.bucket, Key=answer_key)["LastModified"] == first["LastModified"]
    assert [told["inferenceId"] for told in notifications(sqs, endpoint.success_inbox_url)] == ["again"]


def test_a_long_inference_keeps_its_message_invisible(clients, endpoint, moto_url, slow_models, tmp_path):
    s3, sqs, _ = clients
    visibility = 2
    worker = WorkerProcess(endpoint, moto_url, slow_models, tmp_path / "capture", WORKER_CONCURRENCY="1",
                           WORKER_VISIBILITY_TIMEOUT_SECONDS=str(visibility), WORKER_HEARTBEAT_SECONDS="0.5")
    answer_key = f"{endpoint.output_prefix}long.bin"
    try:
        wait_for(lambda: any(r.get("message") == "taking requests" for r in worker.log_records()), 30,
                 "the model loaded", worker)
        _put_binary(s3, endpoint, "long", np.random.default_rng(1).random((80_000, 30), dtype=np.float32))
        wait_for(lambda: queue_depth(sqs, endpoint.queue_url) == 1, 10, "the request queued", worker)
        started = time.monotonic()
        stolen = 0
        while not _exists(s3, endpoint.bucket, answer_key):
            assert time.monotonic() - started < 120, worker.output()
            # Another consumer asking all along: a message whose visibility lapsed would be handed out here.
            stolen += len(sqs.receive_message(QueueUrl=endpoint.queue_url, VisibilityTimeout=0,
                                              WaitTimeSeconds=0).get("Messages", []))
            time.sleep(0.2)
        took = time.monotonic() - started
        wait_for(lambda: queue_depth(sqs, endpoint.queue_url) == 0, 10, "the message deleted", worker)
    finally:
        assert worker.terminate() == 0, worker.output()
    assert took > 2 * visibility, f"the inference took {took:.1f} s: too short to prove anything"
    assert stolen == 0
    [stopped] = [r for r in worker.log_records() if r.get("message") == "worker stopped"]
    assert stopped["visibility_extensions"] >= 2 * visibility
    assert [told["inferenceId"] for told in notifications(sqs, endpoint.success_inbox_url)] == ["long"]


def test_a_message_naming_no_request_goes_to_the_dead_letter_queue_with_its_error(clients, endpoint, moto_url,
                                                                                   example_models, tmp_path):
    s3, sqs, _ = clients
    worker = WorkerProcess(endpoint, moto_url, example_models, tmp_path / "capture")
    try:
        sqs.send_message(QueueUrl=endpoint.queue_url, MessageBody="not an S3 event")
        s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}after.json",
                      Body=json.dumps(infer_body()))
        wait_for(lambda: _exists(s3, endpoint.bucket, f"{endpoint.output_prefix}after.json"), 30,
                 "the request after it answered", worker)
        dead: list[dict] = []
        wait_for(lambda: dead.extend(drain(sqs, endpoint.dead_letter_queue_url)) or dead, 10, "a dead letter", worker)
        wait_for(lambda: queue_depth(sqs, endpoint.queue_url) == 0, 10, "the queue empty", worker)
    finally:
        assert worker.terminate() == 0, worker.output()
    [letter] = dead
    assert letter["Body"] == "not an S3 event"
    assert "not JSON" in letter["MessageAttributes"]["error"]["StringValue"]
    assert letter["MessageAttributes"]["receive-count"]["StringValue"] == "1"


def test_sigterm_under_a_backlog_loses_nothing_and_answers_everything_once(clients, endpoint, moto_url, slow_models,
                                                                            tmp_path):
    s3, sqs, _ = clients
    names = [f"backlog-{index:02d}" for index in range(12)]
    generator = np.random.default_rng(2)
    for name in names:  # about 0.4 s each on the slow model
        _put_binary(s3, endpoint, name, generator.random((6_000, 30), dtype=np.float32))
    answered = lambda: sum(_exists(s3, endpoint.bucket, f"{endpoint.output_prefix}{n}.bin") for n in names)  # noqa: E731
    first = WorkerProcess(endpoint, moto_url, slow_models, tmp_path / "capture", WORKER_CONCURRENCY="2",
                          WORKER_DRAIN_SECONDS="0.3")
    try:
        wait_for(lambda: answered() >= 3, 60, "three answers", first)
    finally:
        assert first.terminate() == 0, first.output()
    after_first = answered()
    assert after_first < len(names), "the backlog was gone before SIGTERM: nothing was proven"
    [stopped] = [r for r in first.log_records() if r.get("message") == "worker stopped"]
    second = WorkerProcess(endpoint, moto_url, slow_models, tmp_path / "capture")
    try:
        wait_for(lambda: answered() == len(names), 90, "every request answered", second)
        wait_for(lambda: queue_depth(sqs, endpoint.queue_url) == 0, 30, "the queue empty", second)
    finally:
        assert second.terminate() == 0, second.output()
    told = Counter(note["inferenceId"] for note in notifications(sqs, endpoint.success_inbox_url))
    assert told == Counter(names), f"each answer told once: {told}"
    assert drain(sqs, endpoint.dead_letter_queue_url) == []
    assert notifications(sqs, endpoint.error_inbox_url) == []
    print(f"first worker: {after_first} answered, {stopped['returned']} returned at SIGTERM")


def test_a_200_mb_request_is_streamed_into_one_buffer(clients, endpoint, moto_url, example_models, tmp_path):
    s3, sqs, _ = clients
    worker = WorkerProcess(endpoint, moto_url, example_models, tmp_path / "capture",
                           WORKER_MAX_REQUEST_BYTES=str(300 * 1024 * 1024))
    rows = 200 * 1024 * 1024 // 120
    try:
        s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}small.json", Body=json.dumps(infer_body()))
        wait_for(lambda: _exists(s3, endpoint.bucket, f"{endpoint.output_prefix}small.json"), 30, "a small answer",
                 worker)
        before = worker.peak_memory_bytes()
        data = np.tile(np.asarray(ROW, dtype=np.float32), (rows, 1))
        _put_binary(s3, endpoint, "large", data)
        del data
        wait_for(lambda: _exists(s3, endpoint.bucket, f"{endpoint.output_prefix}large.bin"), 120, "the answer",
                 worker)
        peak = worker.peak_memory_bytes()
    finally:
        assert worker.terminate() == 0, worker.output()
    answer = s3.get_object(Bucket=endpoint.bucket, Key=f"{endpoint.output_prefix}large.bin")
    length = int(answer["Metadata"][HEADER_LENGTH_METADATA])
    body = answer["Body"].read()
    header = json.loads(body[:length])
    label = header["outputs"][0]
    assert label["name"] == "label" and label["shape"] == [rows]
    labels = np.frombuffer(body[length:length + label["parameters"]["binary_data_size"]], dtype="<i8")
    assert labels.shape == (rows,) and not labels.any()  # every row is the malignant example
    request_bytes = rows * 120
    grown = peak - before
    print(f"200 MB request: peak RSS {before / 2**20:.0f} MiB before, {peak / 2**20:.0f} MiB after "
          f"(+{grown / 2**20:.0f} MiB for a {request_bytes / 2**20:.0f} MiB request)")
    # One copy of the request, plus the answer (28 MB of tensors, their bytes, the body joined from them) and the
    # model's own work; a request held twice at any moment (read whole, then copied) would be two request sizes.
    assert grown < 1.75 * request_bytes


def test_the_worker_refuses_to_start_with_a_missing_or_misspelt_setting(tmp_path):
    import subprocess
    import sys

    from tests.support.paths import PROJECT_ROOT

    environment = {"PATH": "/usr/bin:/bin", "WORKER_QUEUE_URLL": "x", "SERVING_MODEL_NAME": "example"}
    finished = subprocess.run([sys.executable, "-m", "serving.worker"], cwd=PROJECT_ROOT, env=environment,
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert "WORKER_QUEUE_URLL (did you mean WORKER_QUEUE_URL?)" in finished.stderr
    assert "Traceback" not in finished.stderr
