"""The data plane alone, on a fake model runtime: no HTTP, no ONNX Runtime, no files. What it answers, what it counts
and which error each failure becomes."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from serving.capture import CaptureWriter
from serving.dataplane import DataPlane
from serving.errors import InvalidRequest, ModelFailed, ModelNotFound, ModelNotReady
from serving.metrics import Metrics
from serving.repository import LoadedModel
from serving.runtime import TensorSpec


class Doubler:
    """Two inputs' worth of model: `y = 2 * x`, over rows of two FP32 values."""

    inputs = [TensorSpec("x", "FP32", (-1, 2))]
    outputs = [TensorSpec("y", "FP32", (-1, 2))]

    def __init__(self, fail_with: Exception | None = None):
        self.fail_with = fail_with
        self.calls: list[np.ndarray] = []

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append(inputs["x"])
        if self.fail_with is not None:
            raise self.fail_with
        return {"y": inputs["x"] * 2}


@dataclass
class FakeManager:
    current: LoadedModel | None
    failed: dict = field(default_factory=dict)


def plane_for(runtime: Doubler | None, tmp_path) -> DataPlane:
    model = None if runtime is None else LoadedModel(
        version="3", runtime=runtime, metadata={}, inputs=runtime.inputs, outputs=runtime.outputs,
        predict_output="y")
    capture = CaptureWriter(tmp_path, "m", "test", enabled=False)
    return DataPlane("m", FakeManager(model), capture, Metrics("Test", "m", "test", io.StringIO()))


def counts(plane: DataPlane) -> tuple[int, int, int]:
    document = plane.metrics.flush("3") or {}
    return document.get("Predictions", 0), document.get("ClientErrors", 0), document.get("ServerErrors", 0)


def infer(plane: DataPlane, body: dict, name: str = "m", version: str | None = None) -> dict:
    return json.loads(asyncio.run(plane.infer(name, version, json.dumps(body).encode())).payload)


ROWS = {"id": "r1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def test_infer_answers_from_the_runtime_with_the_request_id_and_version(tmp_path):
    runtime = Doubler()
    plane = plane_for(runtime, tmp_path)
    assert infer(plane, ROWS) == {"model_name": "m", "model_version": "3", "id": "r1", "outputs": [
        {"name": "y", "datatype": "FP32", "shape": [2, 2], "data": [2.0, 4.0, 6.0, 8.0]}]}
    assert runtime.calls[0].dtype == np.float32 and runtime.calls[0].shape == (2, 2)
    assert counts(plane) == (1, 0, 0)


def test_predict_returns_the_predict_output(tmp_path):
    plane = plane_for(Doubler(), tmp_path)
    answer = json.loads(asyncio.run(plane.predict(b'{"instances": [[1, 1]]}')))
    assert answer == {"predictions": [[2.0, 2.0]], "model_name": "m", "model_version": "3"}


@pytest.mark.parametrize("body, error, message", [
    ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, InvalidRequest,
     "shape [1, 3] does not match the model's [-1, 2]"),
    ({"inputs": [{"name": "z", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}, InvalidRequest,
     "the model has no input 'z'"),
])
def test_a_client_mistake_is_a_counted_client_error_and_never_reaches_the_model(tmp_path, body, error, message):
    runtime = Doubler()
    plane = plane_for(runtime, tmp_path)
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        infer(plane, body)
    assert runtime.calls == [] and counts(plane) == (0, 1, 0)


def test_an_unknown_model_or_version_is_not_found_and_counted(tmp_path):
    plane = plane_for(Doubler(), tmp_path)
    with pytest.raises(ModelNotFound, match="model 'other' is not served here"):
        infer(plane, ROWS, name="other")
    with pytest.raises(ModelNotFound, match="version '9' of model 'm' is not loaded"):
        infer(plane, ROWS, version="9")
    assert counts(plane) == (0, 2, 0)


def test_no_model_yet_is_not_ready_and_not_a_client_error(tmp_path):
    plane = plane_for(None, tmp_path)
    assert not plane.ready()
    with pytest.raises(ModelNotReady):
        infer(plane, ROWS)
    assert counts(plane) == (0, 0, 0)


def test_a_runtime_failure_is_model_failed_counted_as_a_server_error(tmp_path):
    plane = plane_for(Doubler(fail_with=ValueError("bad graph")), tmp_path)
    with pytest.raises(ModelFailed, match="model version 3 failed on this request: ValueError: bad graph") as caught:
        infer(plane, ROWS)
    assert caught.value.status == 500
    assert counts(plane) == (0, 0, 1)


def test_shutdown_fails_readiness_but_keeps_answering(tmp_path):
    plane = plane_for(Doubler(), tmp_path)
    plane.begin_shutdown()
    assert not plane.ready() and plane.live()
    assert infer(plane, ROWS)["model_version"] == "3"
