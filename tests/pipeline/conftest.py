"""Fixtures of the monitor's tests (test_monitor.py, test_monitor_report_browser.py): the example model's data set,
as a CSV file, and its baseline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pipeline.monitor.__main__ import main
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
def data_csv(monitor_folder: Path, data_set) -> Path:
    names, features, target = data_set
    path = monitor_folder / "breast_cancer.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "target"])
        writer.writerows([*map(repr, map(float, row)), int(label)] for row, label in zip(features, target, strict=True))
    return path


@pytest.fixture(scope="module")
def baseline_file(monitor_folder: Path, data_csv: Path) -> Path:
    out = monitor_folder / "baseline.json"
    assert main(["baseline", "--data", str(data_csv), "--model", str(MODELS / "1"), "--out", str(out),
                 "--drop", "target"]) == 0
    return out
