"""Fixtures of the monitor's tests (test_monitor.py, test_monitor_report_browser.py): the example model's data set,
as a CSV file, and its baseline; and of the asynchronous endpoint's (test_invoke.py, test_smoke_async.py): its AWS
side and a real worker on the session's moto server."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest

from pipeline.monitor.__main__ import main
from serving.example.train_model import write_data_set
from tests.support.async_endpoint import WorkerProcess, async_config, create_async_endpoint
from tests.support.monitor_captures import MODELS
from tests.support.serving_data import EXAMPLE_MODELS


@pytest.fixture(scope="module")
def data_set() -> tuple[list[str], np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return list(data.feature_names), data.data, data.target


@pytest.fixture(scope="module")
def monitor_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("monitor")


@pytest.fixture(scope="module")
def data_csv(monitor_folder: Path) -> Path:
    path = monitor_folder / "breast_cancer.csv"
    write_data_set(path)
    return path


@pytest.fixture(scope="module")
def baseline_file(monitor_folder: Path, data_csv: Path) -> Path:
    out = monitor_folder / "baseline.json"
    assert main(["baseline", "--data", str(data_csv), "--model", str(MODELS / "1"), "--out", str(out),
                 "--drop", "target"]) == 0
    return out


# --- an asynchronous endpoint with a real worker on the session's moto server -----------------------------------


@pytest.fixture
def config():
    """Its own project name: its own buckets on the session's moto server."""
    return async_config(f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def worker(clients, moto_url, config, tmp_path):
    """The scorer's bucket, queue and topics, and its worker (image tag `0a1b2c3`) serving the example model."""
    s3, sqs, sns = clients
    endpoint = create_async_endpoint(s3, sqs, sns, endpoint="scorer",
                                     bucket=config.async_bucket_name("staging", "scorer"))
    shutil.copytree(EXAMPLE_MODELS, tmp_path / "models")
    process = WorkerProcess(endpoint, moto_url, tmp_path / "models", tmp_path / "capture",
                            SERVING_MODEL_NAME="scorer", SERVING_IMAGE_TAG="0a1b2c3")
    yield endpoint, process
    assert process.terminate() == 0, process.output()
