"""Fixtures of the monitor's tests (test_monitor.py, test_monitor_report_browser.py): the example model's data set,
as a CSV file, and its baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.monitor.__main__ import main
from serving.example.train_model import write_data_set
from tests.support.monitor_captures import MODELS


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
