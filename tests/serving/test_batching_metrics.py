"""Micro-batching returns each request its own rows; EMF documents carry the metrics CloudWatch needs."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np

from serving.batching import MicroBatcher, batchable
from serving.metrics import Metrics, _bucket
from serving.repository import ModelManager
from tests.support.serving_data import BENIGN_ROW, ROW


def loaded(models_dir: Path):
    manager = ModelManager(models_dir)
    manager.poll_once()
    return manager.current


def test_requests_of_one_loop_iteration_share_a_call_and_get_their_own_rows(models_dir: Path):
    model = loaded(models_dir)
    batcher = MicroBatcher()
    requests = [np.asarray([ROW if i % 2 == 0 else BENIGN_ROW] * (1 + i % 3), dtype=np.float32) for i in range(10)]

    async def scenario():
        return await asyncio.gather(*(batcher.run(model, {"input": rows}) for rows in requests))

    results = asyncio.run(scenario())
    assert batcher.calls == 1 and batcher.rows == sum(len(r) for r in requests)
    for rows, result in zip(requests, results, strict=True):
        alone = model.runtime.predict({"input": rows})
        assert np.array_equal(result["label"], alone["label"])
        assert np.allclose(result["probabilities"], alone["probabilities"])


def test_batches_are_capped(models_dir: Path):
    model = loaded(models_dir)
    batcher = MicroBatcher(max_rows=4)
    row = np.asarray([ROW], dtype=np.float32)

    async def scenario():
        return await asyncio.gather(*(batcher.run(model, {"input": row}) for _ in range(10)))

    assert len(asyncio.run(scenario())) == 10
    assert batcher.calls == 3  # 4 + 4 + 2


def test_example_model_is_batchable(models_dir: Path):
    assert batchable(loaded(models_dir))


def test_emf_document():
    stream = io.StringIO()
    metrics = Metrics("EcsMlops/Serving", "a", "staging", stream)
    for latency in (0.5, 0.5, 2.0, 150.0):
        metrics.record_prediction(latency)
    metrics.record_client_error()
    metrics.record_server_error()
    metrics.record_server_error()
    metrics.set_capture_dropped(3)
    metrics.flush("7")
    document = json.loads(stream.getvalue())
    assert document["Model"] == "a" and document["Environment"] == "staging" and document["ModelVersion"] == "7"
    assert (document["Predictions"], document["ClientErrors"], document["ServerErrors"],
            document["CaptureDropped"]) == (4, 1, 2, 3)
    assert sum(document["Latency"]["Counts"]) == 4 and len(document["Latency"]["Values"]) == 3
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "EcsMlops/Serving"
    assert ["Model", "Environment"] in directive["Dimensions"]
    assert {m["Name"] for m in directive["Metrics"]} == {"Latency", "Predictions", "ClientErrors", "ServerErrors",
                                                      "CaptureDropped", "Unauthorized"}
    metrics.set_capture_dropped(3)
    assert metrics.flush("7") is None  # nothing new: no document


def test_latency_buckets_stay_close_to_the_value():
    for value in (0.01, 0.3, 1.0, 12.5, 900.0):
        assert abs(_bucket(value) - value) / value < 0.07
