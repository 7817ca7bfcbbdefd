"""The HTTP API in process: Open Inference Protocol (V2) conformance, /predict, health, prefix, docs."""

from __future__ import annotations

import pytest

from tests.support.serving_data import BENIGN_ROW, ROW, infer_body


@pytest.fixture(params=[True, False], ids=["fast-path", "fastapi-routes"])
def any_client(request, client_for):
    """Both ways the inference routes are served must answer the same."""
    return client_for(fast_path=request.param)


def test_server_metadata_and_health(client):
    assert client.get("/v2").json() == {"name": "ecs-mlops-serving", "version": "0.1.0",
                                        "extensions": ["binary_tensor_data"]}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models").json() == {"models": ["example"]}


def test_model_metadata_has_the_signature(client):
    expected = {"name": "example", "versions": ["1"], "platform": "onnxruntime",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 30]}],
                "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]}
    assert client.get("/v2/models/example").json() == expected
    assert client.get("/v2/models/example/versions/1").json() == expected
    assert client.get("/v2/models/example/ready").json() == {"name": "example", "ready": True}
    assert client.get("/v2/models/example/versions/1/ready").status_code == 200


def test_infer_returns_every_output_with_shape_and_datatype(any_client):
    response = any_client.post("/v2/models/example/infer", json=infer_body([ROW, BENIGN_ROW], id="req-1"))
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "example" and body["model_version"] == "1" and body["id"] == "req-1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 1]}
    probabilities = outputs["probabilities"]
    assert probabilities["shape"] == [2, 2] and probabilities["datatype"] == "FP32"
    assert probabilities["data"][0] > 0.5 and probabilities["data"][3] > 0.5  # malignant, then benign


def test_infer_on_a_version_and_selected_outputs(any_client):
    response = any_client.post("/v2/models/example/versions/1/infer",
                               json=infer_body(outputs=[{"name": "label"}]))
    assert response.status_code == 200
    assert [o["name"] for o in response.json()["outputs"]] == ["label"]


def test_nested_data_is_accepted(any_client):
    body = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", "data": [ROW]}]}
    assert any_client.post("/v2/models/example/infer", json=body).json()["outputs"][0]["data"] == [0]


def test_predict_for_humans(any_client):
    response = any_client.post("/predict", json={"instances": [ROW, BENIGN_ROW]})
    assert response.status_code == 200
    assert response.json() == {"predictions": [0, 1], "model_name": "example", "model_version": "1"}


def test_predict_without_a_json_content_type(client):
    # curl -d sends application/x-www-form-urlencoded; the body is JSON all the same.
    response = client.post("/predict", content=b'{"instances": [' + str(ROW).encode() + b"]}",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200


def test_load_balancer_health_path_and_route_prefix(client_for):
    client = client_for(health_path="/healthz", route_prefix="/a")
    assert client.get("/healthz").json() == {"ready": True}
    assert client.get("/a/v2/health/ready").status_code == 200
    assert client.post("/a/predict", json={"instances": [ROW]}).json()["predictions"] == [0]
    assert client.post("/a/v2/models/example/infer", json=infer_body()).status_code == 200
    assert client.post("/predict", json={"instances": [ROW]}).status_code == 200  # direct, without the prefix


def test_openapi_documents_every_route_and_the_request_bodies(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models", "/v2/models/{name}",
                 "/v2/models/{name}/ready", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer",
                 "/predict", "/status"):
        assert path in schema["paths"], path
    infer_body_schema = schema["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    assert infer_body_schema["application/json"]["schema"] == {"$ref": "#/components/schemas/InferenceRequest"}
    assert "RequestInput" in schema["components"]["schemas"]


def test_status_reports_the_image_live_version_and_counters(client_for):
    client = client_for(image_tag="0a1b2c3")
    client.post("/predict", json={"instances": [ROW]})
    status = client.get("/status").json()
    assert status["image_tag"] == "0a1b2c3"
    assert status["live_version"] == "1" and status["rejected_versions"] == {}
    assert status["batching"]["rows"] >= 1


def test_not_ready_without_a_model(client_for, models_dir, settings_for):
    from starlette.testclient import TestClient

    from serving.app import create_app

    empty = models_dir.parent / "empty"
    empty.mkdir()
    with TestClient(create_app(settings_for(models_dir=empty))) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 503
        response = client.post("/predict", json={"instances": [ROW]})
        assert response.status_code == 503 and "no version loaded" in response.json()["error"]
