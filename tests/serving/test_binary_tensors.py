"""The binary tensor data extension in the data plane, on the fake runtime: requests with binary inputs, answers
with binary outputs (per output and for all), the JSON form capture records, and each malformed request's error."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import orjson
import pytest

from serving.binary import Answer
from serving.errors import InvalidRequest
from tests.serving.test_dataplane import Doubler, counts, plane_for

ROWS = np.array([[1.5, -2.0], [3.25, 4.0]], dtype=np.float32)


def binary_request(header: dict, *blobs: bytes) -> tuple[bytes, int]:
    head = json.dumps(header).encode()
    return head + b"".join(blobs), len(head)


def binary_input(array: np.ndarray, name: str = "x") -> dict:
    return {"name": name, "shape": list(array.shape), "datatype": "FP32",
            "parameters": {"binary_data_size": array.nbytes}}


def split_answer(answer: Answer) -> tuple[dict, bytes]:
    assert answer.header_length is not None
    return json.loads(answer.payload[:answer.header_length]), answer.payload[answer.header_length:]


def run(plane, body: bytes, length: int | None) -> Answer:
    return asyncio.run(plane.infer("m", None, body, length))


def test_binary_input_and_binary_output_for_all(tmp_path):
    runtime = Doubler()
    plane = plane_for(runtime, tmp_path)
    body, length = binary_request({"inputs": [binary_input(ROWS)], "parameters": {"binary_data_output": True}},
                                  ROWS.tobytes())
    header, data = split_answer(run(plane, body, length))
    assert header["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [2, 2],
                                  "parameters": {"binary_data_size": 16}}]
    np.testing.assert_array_equal(np.frombuffer(data, dtype="<f4").reshape(2, 2), ROWS * 2)
    np.testing.assert_array_equal(runtime.calls[0], ROWS)
    assert counts(plane) == (1, 0, 0)


def test_binary_input_with_a_json_answer_and_a_per_output_flag(tmp_path):
    plane = plane_for(Doubler(), tmp_path)
    body, length = binary_request({"inputs": [binary_input(ROWS)]}, ROWS.tobytes())
    answer = run(plane, body, length)
    assert answer.header_length is None
    assert json.loads(answer.payload)["outputs"][0]["data"] == [3.0, -4.0, 6.5, 8.0]
    # A per-output flag overrides the request's default.
    body, length = binary_request({"inputs": [binary_input(ROWS)], "parameters": {"binary_data_output": True},
                                   "outputs": [{"name": "y", "parameters": {"binary_data": False}}]}, ROWS.tobytes())
    assert run(plane, body, length).header_length is None
    json_body = orjson.dumps({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": ROWS.ravel()}],
                              "outputs": [{"name": "y", "parameters": {"binary_data": True}}]},
                             option=orjson.OPT_SERIALIZE_NUMPY)
    header, data = split_answer(run(plane, json_body, None))
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16} and "data" not in header["outputs"][0]
    assert len(data) == 16


def test_capture_records_a_binary_request_and_answer_as_json(tmp_path):
    plane = plane_for(Doubler(), tmp_path)
    captured = []
    plane.capture.offer = lambda request, response, *rest: captured.append((request, response))  # type: ignore
    body, length = binary_request({"id": "b1", "inputs": [binary_input(ROWS)],
                                   "parameters": {"binary_data_output": True}}, ROWS.tobytes())
    run(plane, body, length)
    request, response = (json.loads(part) for part in captured[0])
    assert request["inputs"] == [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1.5, -2.0, 3.25, 4.0]}]
    assert response["outputs"][0]["data"] == [3.0, -4.0, 6.5, 8.0] and response["id"] == "b1"


@pytest.mark.parametrize("header, blob, length_change, message", [
    ({"inputs": [binary_input(ROWS)]}, ROWS.tobytes()[:12], 0, "the body ends 4 bytes before"),
    ({"inputs": [binary_input(ROWS)]}, ROWS.tobytes() + b"\0", 0, "1 bytes of binary data that no input"),
    ({"inputs": [{**binary_input(ROWS), "parameters": {"binary_data_size": 12}}]}, ROWS.tobytes(), 0,
     "binary_data_size 12 does not match shape"),
    ({"inputs": [{**binary_input(ROWS), "data": [1, 2, 3, 4]}]}, ROWS.tobytes(), 0, "either data or"),
    ({"inputs": [{**binary_input(ROWS), "parameters": {"binary_data_size": -1}}]}, b"", 0,
     "must be a non-negative integer"),
    ({"inputs": [binary_input(ROWS)]}, ROWS.tobytes(), 10_000, "but the body has only"),
])
def test_malformed_binary_requests_are_client_errors(tmp_path, header, blob, length_change, message):
    runtime = Doubler()
    plane = plane_for(runtime, tmp_path)
    body, length = binary_request(header, blob)
    with pytest.raises(InvalidRequest, match=message):
        run(plane, body, length + length_change)
    assert runtime.calls == [] and counts(plane) == (0, 1, 0)


def test_binary_data_size_without_the_header_length_is_refused(tmp_path):
    plane = plane_for(Doubler(), tmp_path)
    body, _ = binary_request({"inputs": [binary_input(ROWS)]})
    with pytest.raises(InvalidRequest, match="needs the Inference-Header-Content-Length header"):
        run(plane, body, None)


def test_the_extension_is_listed_in_server_metadata(tmp_path):
    assert plane_for(Doubler(), tmp_path).server_metadata()["extensions"] == ["binary_tensor_data"]
