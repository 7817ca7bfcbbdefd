"""The smoke test of an asynchronous endpoint, against a real worker through moto's server: a request built from
the live version's signature is answered by the image deployed; another image, a failure or no live version fails
the step with the reason; and the smoke step routes asynchronous endpoints to this check."""

from __future__ import annotations

import io

import pytest

from pipeline.commands import Commands, StepFailed
from pipeline.smoke import smoke
from pipeline.smoke_async import check_async_endpoint
from tests.support.async_endpoint import create_async_endpoint
from tests.support.serving_data import EXAMPLE_MODELS


def _promote_example(s3, config) -> None:
    """What `python -m pipeline.models promote` leaves: version 1's files, then LIVE."""
    bucket = config.model_bucket_name("staging")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for name in ("model.onnx", "metadata.json"):
        s3.put_object(Bucket=bucket, Key=f"scorer/1/{name}", Body=(EXAMPLE_MODELS / "1" / name).read_bytes())
    s3.put_object(Bucket=bucket, Key="scorer/LIVE", Body=b"1")


def test_the_deployed_image_answers_the_smoke_request(clients, worker, config):
    s3, _, _ = clients
    _promote_example(s3, config)
    said: list[str] = []
    location = check_async_endpoint(s3, config, "staging", "scorer", said.append, "0a1b2c3", timeout_seconds=60,
                                    poll_seconds=0.2)
    assert location.startswith(f"s3://{worker[0].bucket}/async/scorer/output/smoke/0a1b2c3-")
    assert said[-1].startswith("endpoint scorer: answered in ") and "by image 0a1b2c3, model version 1" in said[-1]


def test_another_image_answering_fails_the_step(clients, worker, config):
    s3, _, _ = clients
    _promote_example(s3, config)
    with pytest.raises(StepFailed, match="answered by image 0a1b2c3, not the one deployed \\(ffff000\\)"):
        check_async_endpoint(s3, config, "staging", "scorer", lambda _: None, "ffff000", timeout_seconds=60,
                             poll_seconds=0.2)


def test_without_a_live_version_or_an_answer_the_step_fails_saying_why(clients, config):
    s3, sqs, sns = clients
    create_async_endpoint(s3, sqs, sns, endpoint="scorer", bucket=config.async_bucket_name("staging", "scorer"))
    s3.create_bucket(Bucket=config.model_bucket_name("staging"),
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(StepFailed, match="no live model version in s3://.*/scorer/ to build a smoke request from"):
        check_async_endpoint(s3, config, "staging", "scorer", lambda _: None, "0a1b2c3", timeout_seconds=1)
    bucket = config.model_bucket_name("staging")
    for name in ("model.onnx", "metadata.json"):  # a version, and no worker to answer
        s3.put_object(Bucket=bucket, Key=f"scorer/1/{name}", Body=(EXAMPLE_MODELS / "1" / name).read_bytes())
    with pytest.raises(StepFailed, match="not answered within 0.5 s; it stays queued"):
        check_async_endpoint(s3, config, "staging", "scorer", lambda _: None, "0a1b2c3", timeout_seconds=0.5,
                             poll_seconds=0.1)


def test_the_smoke_step_checks_asynchronous_endpoints_through_their_bucket(config):
    checked: list[str] = []
    commands = Commands(dry_run=True, out=io.StringIO())
    smoke(config, "staging", "http://balancer", commands, async_check=checked.append)
    assert checked == ["scorer"]
    assert not any("scorer" in line for line in commands.printed)  # the real-time one only is called over HTTP
    dry = Commands(dry_run=True, out=io.StringIO())
    smoke(config, "staging", "http://balancer", dry)
    assert f"would submit a request to asynchronous endpoint scorer through s3://" \
           f"{config.async_bucket_name('staging', 'scorer')}/ and wait for its answer" in dry.printed
