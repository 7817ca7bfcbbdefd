"""Smoke-test an asynchronous endpoint as its clients use it: one request, built from the live model version's
signature (zeros of its declared shape), put under the endpoint's input prefix; the step waits for its answer (a
start from zero tasks takes minutes) and requires that the image deployed answered it (the answer object's
`image-tag`). A failure record, another image, or no answer within the timeout fails the step."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from configuration import MlopsConfig
from pipeline.commands import StepFailed
from pipeline.invoke import NotAnswered, address_of, submit, wait_for_outcome
from serving.contract import read_remote_store
from serving.endpoint_check import example_request

ASYNC_SMOKE_TIMEOUT_SECONDS = 900.0
"""Long enough for a start from zero: the scaling alarm's minute, a Fargate task start and the first model load."""


def check_async_endpoint(s3: Any, config: MlopsConfig, environment: str, endpoint: str, say: Callable[[str], None],
                         expected_image_tag: str | None = None,
                         timeout_seconds: float = ASYNC_SMOKE_TIMEOUT_SECONDS, poll_seconds: float = 5.0) -> str:
    """The answer's location; raises StepFailed naming what went wrong."""
    address = address_of(config, environment, endpoint)
    store = read_remote_store(s3, config.model_bucket_name(environment), f"{endpoint}/")
    live = store.live
    if live is None or live not in store.versions:
        raise StepFailed(f"endpoint {endpoint}: no live model version in s3://{config.model_bucket_name(environment)}"
                         f"/{endpoint}/ to build a smoke request from; promote one")
    inference = f"smoke/{expected_image_tag or 'any'}-{int(time.time())}"
    with tempfile.TemporaryDirectory(prefix="smoke-") as scratch:
        request = Path(scratch) / "request.json"
        request.write_text(json.dumps({**example_request(store.versions[live].metadata), "id": inference}))
        location = submit(s3, address, request, inference, None)
    say(f"endpoint {endpoint}: submitted {location}; waiting up to {timeout_seconds:g} s for its answer")
    started = time.monotonic()
    try:
        outcome = wait_for_outcome(s3, address, inference, timeout_seconds, poll_seconds)
    except NotAnswered as exc:
        raise StepFailed(f"endpoint {endpoint}: {exc}") from None
    if not outcome.answered:
        reason = json.loads(outcome.body).get("failureReason")
        raise StepFailed(f"endpoint {endpoint}: the smoke request failed: {reason} ({outcome.location})")
    answered_by = outcome.metadata.get("image-tag")
    if expected_image_tag is not None and answered_by != expected_image_tag:
        raise StepFailed(f"endpoint {endpoint}: answered by image {answered_by}, not the one deployed "
                         f"({expected_image_tag}): the worker service did not roll out")
    say(f"endpoint {endpoint}: answered in {time.monotonic() - started:.0f} s by image {answered_by}, model version "
        f"{outcome.metadata.get('model-version')} ({outcome.location})")
    return outcome.location
