"""The example model's data set, and captures a real model server makes from its rows: what the monitor's tests
read."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import numpy as np

from tests.support.paths import PROJECT_ROOT
from tests.support.serving_process import Server

MODELS = PROJECT_ROOT / "serving/example/models"
SHIFTED = "mean radius"
ROWS = 400


def sample(data_set, seed: int, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    _, features, target = data_set
    chosen = np.random.default_rng(seed).integers(0, len(features), rows)
    return features[chosen].astype(np.float32), target[chosen]


def post(server: Server, path: str, body: bytes, headers: dict[str, str]) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        assert response.status == 200, payload
        length = response.getheader("Inference-Header-Content-Length")
        return json.loads(payload[:int(length)] if length else payload)
    finally:
        connection.close()


def capture(folder: Path, rows: np.ndarray, binary: bool = False) -> tuple[Path, dict[str, tuple[int, float]]]:
    """Captures of a real server answering `rows` (alternately /predict and V2 requests with an id, or all as
    binary tensors); returns the capture folder and, per id, the label and the probability of class 1 answered."""
    capture_dir = folder / "captures"
    server = Server(MODELS, capture_dir)
    answered: dict[str, tuple[int, float]] = {}
    try:
        server.wait_ready()
        for index, row in enumerate(rows):
            request_id = f"req-{index}"
            if binary:
                header = json.dumps({"id": request_id, "inputs": [{"name": "input", "shape": [1, 30],
                                     "datatype": "FP32", "parameters": {"binary_data_size": row.nbytes}}]}).encode()
                answer = post(server, "/v2/models/example/infer", header + row.tobytes(),
                              {"Content-Type": "application/octet-stream",
                               "Inference-Header-Content-Length": str(len(header))})
            elif index % 2:
                answer = post(server, "/predict", json.dumps({"instances": [row.tolist()]}).encode(),
                              {"Content-Type": "application/json"})
            else:
                body = {"id": request_id, "inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32",
                                                      "data": row.tolist()}]}
                answer = post(server, "/v2/models/example/infer", json.dumps(body).encode(),
                              {"Content-Type": "application/json"})
            if "outputs" in answer:
                outputs = {output["name"]: output["data"] for output in answer["outputs"]}
                answered[request_id] = (outputs["label"][0], outputs["probabilities"][1])
    finally:
        server.stop()
    return capture_dir, answered
