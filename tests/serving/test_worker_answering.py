"""What a queue message asks for, and one request's outcome, against moto in process: every form of request, the
client's mistakes recorded at once, the server's failures retried and recorded on the last try, each outcome written
and told once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.contract import HEADER_LENGTH_METADATA, inference_id
from serving.service import ModelService, assemble
from serving.settings import ServingSettings
from serving.worker.answering import Answerer, Destination, Outcome
from serving.worker.messages import Job, Unreadable, jobs_of
from serving.worker.settings import WorkerSettings
from tests.support.async_endpoint import AsyncEndpoint, create_async_endpoint, notifications
from tests.support.serving_data import ROW, infer_body


@pytest.fixture
def aws(monkeypatch) -> Iterator[tuple[Any, Any, Any]]:
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")


@pytest.fixture
def endpoint(aws) -> AsyncEndpoint:
    return create_async_endpoint(*aws)


def _service(models_dir: Path, tmp_path: Path, load: bool = True) -> ModelService:
    service = assemble(ServingSettings(model_name="example", models_dir=models_dir, capture_dir=tmp_path / "capture",
                                       instance_id="test"), capture_max_request_bytes=1024 * 1024)
    if load:
        service.manager.poll_once()
    return service


def _answer(service: ModelService, aws, endpoint: AsyncEndpoint, key: str, final: bool = False,
            max_request_bytes: int = 10 * 1024 * 1024):
    s3, _, sns = aws
    answerer = Answerer(service.plane, s3, sns, Destination(endpoint.bucket, endpoint.output_prefix,
                                                            endpoint.failure_prefix, endpoint.success_topic_arn,
                                                            endpoint.error_topic_arn), max_request_bytes)
    job = Job(endpoint.bucket, f"{endpoint.input_prefix}{key}", inference_id(endpoint.input_prefix,
                                                                             f"{endpoint.input_prefix}{key}"))
    return asyncio.run(answerer.answer(job, final))


def _read(s3, bucket: str, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_an_open_inference_protocol_request_is_answered_once(aws, endpoint, models_dir, tmp_path):
    s3, sqs, _ = aws
    s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}team/r1.json",
                  Body=json.dumps(infer_body(id="r1")))
    service = _service(models_dir, tmp_path)
    result = _answer(service, aws, endpoint, "team/r1.json")
    assert result.outcome is Outcome.ANSWERED
    assert result.location == f"s3://{endpoint.bucket}/{endpoint.output_prefix}team/r1.json"
    answer = _read(s3, endpoint.bucket, f"{endpoint.output_prefix}team/r1.json")
    assert answer["id"] == "r1" and answer["model_version"] == "1" and answer["outputs"][0]["data"] == [0]
    again = _answer(service, aws, endpoint, "team/r1.json")
    assert again.outcome is Outcome.ALREADY_ANSWERED and again.location == result.location
    [told] = notifications(sqs, endpoint.success_inbox_url)
    assert told["inferenceId"] == "team/r1" and told["requestLocation"].endswith("input/team/r1.json")
    assert notifications(sqs, endpoint.error_inbox_url) == []


def test_the_predict_form_is_answered_like_the_predict_route(aws, endpoint, models_dir, tmp_path):
    s3, _, _ = aws
    s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}p.json",
                  Body=json.dumps({"instances": [ROW, ROW]}))
    assert _answer(_service(models_dir, tmp_path), aws, endpoint, "p.json").outcome is Outcome.ANSWERED
    answer = _read(s3, endpoint.bucket, f"{endpoint.output_prefix}p.json")
    assert answer["predictions"] == [0, 0] and answer["model_version"] == "1"


def test_a_binary_request_is_answered_in_binary_with_its_header_length(aws, endpoint, models_dir, tmp_path):
    s3, _, _ = aws
    rows = np.asarray([ROW, ROW, ROW], dtype="<f4")
    header = json.dumps({"inputs": [{"name": "input", "shape": [3, 30], "datatype": "FP32",
                                     "parameters": {"binary_data_size": rows.nbytes}}],
                         "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
    s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}b.bin", Body=header + rows.tobytes(),
                  ContentType="application/octet-stream", Metadata={HEADER_LENGTH_METADATA: str(len(header))})
    assert _answer(_service(models_dir, tmp_path), aws, endpoint, "b.bin").outcome is Outcome.ANSWERED
    stored = s3.get_object(Bucket=endpoint.bucket, Key=f"{endpoint.output_prefix}b.bin")
    assert stored["ContentType"] == "application/octet-stream"
    length = int(stored["Metadata"][HEADER_LENGTH_METADATA])
    body = stored["Body"].read()
    [output] = json.loads(body[:length])["outputs"]
    probabilities = np.frombuffer(body[length:], dtype="<f4").reshape(output["shape"])
    assert probabilities.shape == (3, 2) and (probabilities[:, 0] > 0.5).all()


@pytest.mark.parametrize(("body", "metadata", "content_type", "reason"), [
    (b'{"inputs": [{"name": "nope", "shape": [1], "datatype": "FP32", "data": [1]}]}', {}, "application/json",
     "the model has no input 'nope'"),
    (b"{not json", {}, "application/json", "not valid JSON"),
    (b"\x00\x01\x02", {}, "application/octet-stream", f"needs the object metadata {HEADER_LENGTH_METADATA}"),
    (b"x" * 4096, {}, "application/json", "this endpoint takes up to 2048 (async_inference.max_request_bytes)"),
])
def test_a_request_the_client_got_wrong_is_recorded_as_failed_at_once(aws, endpoint, models_dir, tmp_path, body,
                                                                     metadata, content_type, reason):
    s3, sqs, _ = aws
    s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}bad.json", Body=body, Metadata=metadata,
                  ContentType=content_type)
    result = _answer(_service(models_dir, tmp_path), aws, endpoint, "bad.json", max_request_bytes=2048)
    assert result.outcome is Outcome.FAILED and reason in result.error
    record = _read(s3, endpoint.bucket, f"{endpoint.failure_prefix}bad.json")
    assert record["status"] == "Failed" and reason in record["failureReason"] and not record["retried"]
    [told] = notifications(sqs, endpoint.error_inbox_url)
    assert told["failureLocation"] == f"s3://{endpoint.bucket}/{endpoint.failure_prefix}bad.json"
    assert s3.list_objects_v2(Bucket=endpoint.bucket, Prefix=endpoint.output_prefix)["KeyCount"] == 0


def test_a_request_whose_object_is_gone_is_recorded_as_failed(aws, endpoint, models_dir, tmp_path):
    result = _answer(_service(models_dir, tmp_path), aws, endpoint, "gone.json")
    assert result.outcome is Outcome.FAILED and "no longer exists" in result.error


def test_a_server_side_failure_is_retried_and_recorded_only_on_the_last_try(aws, endpoint, tmp_path):
    s3, sqs, _ = aws
    s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}early.json", Body=json.dumps(infer_body()))
    empty_store = tmp_path / "no-models"
    empty_store.mkdir()
    service = _service(empty_store, tmp_path)  # no version yet: the model is not ready
    retry = _answer(service, aws, endpoint, "early.json")
    assert retry.outcome is Outcome.RETRY and "no version loaded" in retry.error and not retry.finished
    assert s3.list_objects_v2(Bucket=endpoint.bucket, Prefix=endpoint.failure_prefix)["KeyCount"] == 0
    gave_up = _answer(service, aws, endpoint, "early.json", final=True)
    assert gave_up.outcome is Outcome.GAVE_UP and gave_up.finished
    record = _read(s3, endpoint.bucket, f"{endpoint.failure_prefix}early.json")
    assert record["retried"] and record["errorType"] == "ModelNotReady"
    assert len(notifications(sqs, endpoint.error_inbox_url)) == 1


def test_a_large_request_is_answered_but_not_captured(aws, endpoint, models_dir, tmp_path):
    s3, _, _ = aws
    rows = [ROW] * 6000  # about 1.4 MB of JSON, over the 1 MiB capture limit set above
    s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}big.json", Body=json.dumps(infer_body(rows)))
    service = _service(models_dir, tmp_path)
    assert _answer(service, aws, endpoint, "big.json").outcome is Outcome.ANSWERED
    assert service.plane.capture_skipped_large == 1 and service.capture.accepted == 0


# --- messages ---------------------------------------------------------------------------------------------------


def _event(key: str, bucket: str = "b", event: str = "ObjectCreated:Put", source: str = "aws:s3") -> str:
    return json.dumps({"Records": [{"eventSource": source, "eventName": event,
                                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]})


def test_an_s3_notification_names_its_request_and_inference_id():
    [job] = jobs_of(_event("async/a/input/team/my+request%281%29.json"), "b", "async/a/input/")
    assert job.key == "async/a/input/team/my request(1).json"  # S3 URL-encodes keys in events
    assert job.inference_id == "team/my request(1)"
    assert jobs_of(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}), "b", "async/a/input/") == []


@pytest.mark.parametrize(("body", "reason"), [
    ("hello", "not JSON"),
    ("[1]", "not a JSON object"),
    ("{}", "no Records"),
    (json.dumps({"Records": [{"eventSource": "aws:s3"}]}), "not an S3 event record"),
    (_event("async/a/input/x.json", event="ObjectRemoved:Delete"), "not an S3 object created"),
    (_event("async/b/input/x.json"), "outside this endpoint's input"),
    (_event("async/a/input/x.json", bucket="other"), "outside this endpoint's input"),
])
def test_a_message_naming_no_request_of_this_endpoint_is_unreadable(body, reason):
    with pytest.raises(Unreadable, match=reason):
        jobs_of(body, "b", "async/a/input/")


@pytest.mark.parametrize(("key", "expected"), [
    ("in/a.json", "a"), ("in/a.b.bin", "a.b"), ("in/x/y/z", "x/y/z"), ("in/.hidden", ".hidden"), ("in/a.", "a"),
])
def test_the_inference_id_is_the_name_below_the_input_prefix_without_its_extension(key, expected):
    assert inference_id("in/", key) == expected


def test_worker_settings_refuse_a_heartbeat_outside_the_visibility_timeout_and_answers_under_the_input():
    base = {"queue_url": "q", "dead_letter_queue_url": "d", "bucket": "b", "input_prefix": "in/",
            "output_prefix": "out/", "failure_prefix": "failed/"}
    with pytest.raises(ValueError, match="heartbeat_seconds .* must be shorter than visibility_timeout_seconds"):
        WorkerSettings(**base, visibility_timeout_seconds=10, heartbeat_seconds=10)
    with pytest.raises(ValueError, match="must not land under the input prefix"):
        WorkerSettings(**{**base, "output_prefix": "in/out/"})
    with pytest.raises(ValueError, match="must end with '/'"):
        WorkerSettings(**{**base, "input_prefix": "in"})
