"""Every client mistake gets a 4xx with a JSON error that says what is wrong, never a 5xx; a failure of the model
or the server gets a 500 with a JSON error; both are counted, on both front ends (fast path and FastAPI routes)."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from serving.http import INTERNAL_ERROR
from tests.serving.conftest import ServedClient
from tests.support.serving_data import ROW, infer_body

INFER = "/v2/models/example/infer"


def with_input(**changes):
    body = infer_body()
    body["inputs"][0].update(changes)
    return body


CASES = [
    ("malformed JSON", INFER, b'{"inputs": [', 400, "not valid JSON"),
    ("not an object", INFER, b"[1, 2]", 400, "must be a JSON object"),
    ("no inputs", INFER, json.dumps({"id": "x"}).encode(), 400, "non-empty `inputs`"),
    ("input not an object", INFER, json.dumps({"inputs": [1]}).encode(), 400, "inputs[0] must be an object"),
    ("missing fields", INFER, json.dumps({"inputs": [{"name": "input"}]}).encode(), 400, "lacks shape, datatype, data"),
    ("unknown input", INFER, json.dumps(with_input(name="x")).encode(), 400, "no input 'x'"),
    ("wrong datatype", INFER, json.dumps(with_input(datatype="FP64")).encode(), 400,
     "datatype 'FP64' does not match the model's 'FP32'"),
    ("wrong shape", INFER, json.dumps(with_input(shape=[1, 29], data=ROW[:29])).encode(), 400,
     "shape [1, 29] does not match the model's [-1, 30]"),
    ("shape not filled", INFER, json.dumps(with_input(shape=[2, 30])).encode(), 400, "30 values do not fill shape"),
    ("bad shape", INFER, json.dumps(with_input(shape="1x30")).encode(), 400, "list of non-negative integers"),
    ("text as numbers", INFER, json.dumps(with_input(data=["a"] * 30)).encode(), 400, "does not fit datatype"),
    ("ragged data", INFER, json.dumps(with_input(data=[ROW, [1.0]])).encode(), 400, "regular shape"),
    ("null data", INFER, json.dumps(with_input(data=None)).encode(), 400, "data must be a list"),
    ("unknown output", INFER, json.dumps(infer_body(outputs=[{"name": "score"}])).encode(), 400,
     "no output(s) 'score'"),
    ("id not a string", INFER, json.dumps(infer_body(id=7)).encode(), 400, "id must be a string"),
    ("unknown model", "/v2/models/other/infer", json.dumps(infer_body()).encode(), 404,
     "model 'other' is not served here"),
    ("unknown version", "/v2/models/example/versions/9/infer", json.dumps(infer_body()).encode(), 404,
     "version '9' of model 'example' is not loaded"),
    ("predict without instances", "/predict", b'{"rows": []}', 400, '{"instances": [...]}'),
    ("predict empty instances", "/predict", b'{"instances": []}', 400, "at least one instance"),
    ("predict wrong width", "/predict", json.dumps({"instances": [ROW[:5]]}).encode(), 400,
     "shape [1, 5] does not match"),
    ("predict flat row", "/predict", json.dumps({"instances": ROW}).encode(), 400, "shape [30] does not match"),
]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "fastapi-routes"])
@pytest.mark.parametrize("name,path,body,status,message", CASES, ids=[c[0] for c in CASES])
def test_client_errors(client_for, fast_path, name, path, body, status, message):
    client = client_for(fast_path=fast_path)
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_request_too_large_is_413(client_for, declared):
    client = client_for(max_request_bytes=2048)
    big = json.dumps({"instances": [ROW] * 100}).encode()
    if declared:
        response = client.post("/predict", content=big)
    else:
        response = client.post("/predict", content=iter([big[:1500], big[1500:]]))
    assert response.status_code == 413
    assert "larger than the limit of 2048" in response.json()["error"]


def test_unknown_model_metadata_is_404(client):
    response = client.get("/v2/models/other")
    assert response.status_code == 404 and "not served here" in response.json()["error"]
    assert client.get("/v2/models/example/versions/2").status_code == 404
    assert client.get("/nope").json() == {"error": "Not Found"}


def counters(client: ServedClient) -> dict[str, int]:
    """The metrics the next EMF document would carry (read by flushing into a buffer)."""
    metrics = client.service.metrics
    metrics.stream = io.StringIO()
    document = metrics.flush("test") or {}
    return {name: document.get(name, 0) for name in ("Predictions", "ClientErrors", "ServerErrors")}


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "fastapi-routes"])
def test_client_errors_are_counted_not_predictions(client_for, fast_path):
    client = client_for(fast_path=fast_path)
    counters(client)  # start from zero: the warm-up reads nothing, but be sure
    assert client.post(INFER, content=b"{").status_code == 400
    assert client.post("/predict", json={"instances": [ROW]}).status_code == 200
    assert counters(client) == {"Predictions": 1, "ClientErrors": 1, "ServerErrors": 0}


class FailingRuntime:
    """A model that raises on every call, as a model whose runtime breaks on some input would."""

    def __init__(self, real):
        self.inputs, self.outputs = real.inputs, real.outputs

    def predict(self, inputs):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code\nsecond line")


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "fastapi-routes"])
def test_a_model_failure_is_a_counted_500_with_an_error_body(client_for, fast_path):
    client = client_for(fast_path=fast_path)
    manager = client.service.manager
    manager.current = dataclasses.replace(manager.current, runtime=FailingRuntime(manager.current.runtime))
    counters(client)
    for path, body in ((INFER, infer_body()), ("/predict", {"instances": [ROW]})):
        response = client.post(path, json=body)
        assert response.status_code == 500
        assert response.json() == {"error": "model version 1 failed on this request: RuntimeError: "
                                            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code"}
    assert counters(client) == {"Predictions": 0, "ClientErrors": 0, "ServerErrors": 2}
    assert client.get("/v2/health/ready").status_code == 200  # one bad call does not take the server down


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "fastapi-routes"])
def test_an_unexpected_failure_is_a_counted_500_without_internals(client_for, fast_path, monkeypatch):
    client = client_for(fast_path=fast_path, raise_server_exceptions=False)

    async def broken(body):
        raise KeyError("an internal detail")

    monkeypatch.setattr(client.service.plane, "predict", broken)
    counters(client)
    response = client.post("/predict", json={"instances": [ROW]})
    assert (response.status_code, response.json()) == (500, {"error": INTERNAL_ERROR})
    assert counters(client)["ServerErrors"] == 1
