"""Serving fixtures: a model repository with the bundled example model, settings pointing at temporary folders,
and an in-process client (Starlette's TestClient runs the app's lifespan: poller, capture writer)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from serving.app import create_app
from serving.service import ModelService, assemble
from serving.settings import ServingSettings

EXAMPLE_MODELS = Path(__file__).resolve().parents[2] / "serving" / "example" / "models"
ROW = [17.99, 10.38, 122.8, 1001.0, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4,
       0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019.0, 0.1622, 0.6656, 0.7119,
       0.2654, 0.4601, 0.1189]  # a malignant case from the data set: label 0
BENIGN_ROW = [13.54, 14.36, 87.46, 566.3, 0.09779, 0.08129, 0.06664, 0.04781, 0.1885, 0.05766, 0.2699, 0.7886, 2.058,
              23.56, 0.008462, 0.0146, 0.02387, 0.01315, 0.0198, 0.0023, 15.11, 19.26, 99.7, 711.2, 0.144, 0.1773,
              0.239, 0.1288, 0.2977, 0.07259]  # label 1


def infer_body(rows: list[list[float]] | None = None, **extra: Any) -> dict[str, Any]:
    rows = rows or [ROW]
    return {"inputs": [{"name": "input", "shape": [len(rows), 30], "datatype": "FP32",
                        "data": [v for row in rows for v in row]}], **extra}


def add_version(models_dir: Path, version: str, source: str = "1", **metadata_changes: Any) -> Path:
    """Copy the example version under a new name, with metadata changes (e.g. a wrong sha256)."""
    target = models_dir / version
    shutil.copytree(EXAMPLE_MODELS / source, target)
    metadata = json.loads((target / "metadata.json").read_text())
    metadata.update(version=version, **metadata_changes)
    (target / "metadata.json").write_text(json.dumps(metadata))
    return target


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(EXAMPLE_MODELS, target)
    return target


@pytest.fixture
def settings_for(tmp_path: Path, models_dir: Path):
    def make(**changes: Any) -> ServingSettings:
        values: dict[str, Any] = {"model_name": "example", "models_dir": models_dir,
                                  "capture_dir": tmp_path / "capture", "poll_interval_seconds": 0.05,
                                  "metrics_interval_seconds": 3600, "instance_id": "test"}
        values.update(changes)
        return ServingSettings(**values)
    return make


def wait_ready(client: TestClient, path: str = "/v2/health/ready", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(path).status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError("the server did not become ready")


class ServedClient(TestClient):
    """An in-process client of an app, with the model service behind it (its metrics, manager, capture)."""

    def __init__(self, service: ModelService, **options: Any):
        super().__init__(create_app(service.settings, service), **options)
        self.service = service


@pytest.fixture
def client_for(settings_for) -> Iterator:
    clients: list[TestClient] = []

    def make(raise_server_exceptions: bool = True, **changes: Any) -> ServedClient:
        client = ServedClient(assemble(settings_for(**changes)), raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        wait_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for) -> ServedClient:
    return client_for()
