"""Serving fixtures: a model repository with the bundled example model, settings pointing at temporary folders,
and an in-process client (Starlette's TestClient runs the app's lifespan: poller, capture writer)."""

from __future__ import annotations

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
from tests.support.serving_data import EXAMPLE_MODELS


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
