"""Triton's own HTTP client (`tritonclient.http`) against the server as a real process: with its defaults (binary
inputs, binary outputs) and in JSON, the answers equal what the plain JSON route answers; fast path and FastAPI
routes alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from tests.support.serving_data import BENIGN_ROW, ROW, infer_body
from tests.support.serving_process import Server

ROWS = np.array([ROW, BENIGN_ROW, ROW], dtype=np.float32)


@pytest.fixture(params=["true", "false"], ids=["fast-path", "fastapi"])
def server(request, models_dir: Path, tmp_path: Path) -> Iterator[Server]:
    started = Server(models_dir, tmp_path / "capture", SERVING_FAST_PATH=request.param)
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def test_tritonclient_defaults_and_json_agree_with_the_json_route(server: Server):
    status, expected = server.request("POST", "/v2/models/example/infer", infer_body(ROWS.tolist()))
    assert status == 200
    by_name = {output["name"]: output for output in expected["outputs"]}
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("example")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        assert [i["name"] for i in client.get_model_metadata("example")["inputs"]] == ["input"]
        for binary in (True, False):
            tensor = triton.InferInput("input", list(ROWS.shape), "FP32")
            tensor.set_data_from_numpy(ROWS, binary_data=binary)
            outputs = None if binary else [triton.InferRequestedOutput(name, binary_data=False)
                                           for name in ("label", "probabilities")]
            result = client.infer("example", [tensor], outputs=outputs, request_id=f"binary-{binary}")
            assert result.get_response()["id"] == f"binary-{binary}"
            label, probabilities = result.as_numpy("label"), result.as_numpy("probabilities")
            assert label.dtype == np.int64 and label.tolist() == by_name["label"]["data"] == [0, 1, 0]
            assert probabilities.shape == (3, 2)
            np.testing.assert_allclose(probabilities.ravel(), by_name["probabilities"]["data"], rtol=1e-6)
        # A mistake in a binary request is the same 400 with a message tritonclient raises.
        tensor = triton.InferInput("input", [3, 29], "FP32")
        tensor.set_data_from_numpy(ROWS[:, :29].copy())
        with pytest.raises(triton.InferenceServerException, match="does not match the model's"):
            client.infer("example", [tensor])
    finally:
        client.close()
