"""Train the bundled example model and write it as a model repository version, deterministically.

A 100-tree random forest on scikit-learn's breast-cancer data set (it ships with scikit-learn: no download),
exported to ONNX with probabilities as a plain tensor (no ZipMap), so that `make serve` and the tests need nothing
from outside. The same inputs give the same bytes and the same sha256 on every run.

    .venv/bin/python -m serving.example.train_model [--out serving/example/models] [--version 1] [--trees 100]
                                                    [--data-out FILE]

`--data-out FILE` writes the data set it trains on as CSV instead (the 30 features by name, then `target`), and no
model: what a monitoring baseline is computed from (`python -m pipeline.monitor baseline --data FILE --drop target`).

Fewer trees (`--trees 10 --version 2`) give a candidate that answers a little differently: what `replay` measures.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from pathlib import Path

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

from serving.contract import METADATA_FILE, MODEL_FILE

DEFAULT_OUT = Path(__file__).resolve().parent / "models"
FEATURES = 30
# Fixed opsets: a newer converter must not change the bytes (or the runtime's requirements) silently.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def train(trees: int = 100) -> tuple[bytes, dict]:
    data = load_breast_cancer()
    features = data.data.astype(np.float32)
    model = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1)
    model.fit(features, data.target)
    onnx_model = convert_sklearn(
        model, name="breast-cancer-rf", initial_types=[("input", FloatTensorType([None, FEATURES]))],
        options={id(model): {"zipmap": False}}, target_opset=TARGET_OPSET)
    content = onnx_model.SerializeToString(deterministic=True)
    metadata = {
        "name": "breast-cancer-rf",
        "framework": "onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, FEATURES]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
        "predict_output": "label",
        "description": f"RandomForestClassifier(n_estimators={trees}) on sklearn's breast_cancer: "
                       "30 float features; label 1 = benign, 0 = malignant",
    }
    return content, metadata


def write_version(out: Path, version: str, content: bytes, metadata: dict) -> Path:
    target = out / version
    target.mkdir(parents=True, exist_ok=True)
    (target / MODEL_FILE).write_bytes(content)
    full = {**metadata, "version": version, "file": MODEL_FILE, "sha256": hashlib.sha256(content).hexdigest()}
    (target / METADATA_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return target


def write_data_set(path: Path) -> int:
    """The training data as CSV with a header; returns the number of rows."""
    data = load_breast_cancer()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*data.feature_names, "target"])
        writer.writerows([*map(repr, map(float, row)), int(label)] for row, label in zip(data.data, data.target,
                                                                                          strict=True))
    return len(data.data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--version", default="1")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--data-out", type=Path, help="write the training data set here (CSV) instead of a model")
    args = parser.parse_args()
    if args.data_out:
        print(f"wrote {args.data_out} ({write_data_set(args.data_out)} rows)")
        return
    content, metadata = train(args.trees)
    target = write_version(args.out, args.version, content, metadata)
    print(f"wrote {target} ({len(content)} bytes, sha256 {hashlib.sha256(content).hexdigest()})")


if __name__ == "__main__":
    main()
