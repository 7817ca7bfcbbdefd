"""The bundled example model is what its training script writes, byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from serving.example.train_model import train, write_version
from tests.support.serving_data import EXAMPLE_MODELS


def test_training_is_deterministic_and_matches_the_committed_model(tmp_path: Path):
    content, metadata = train()
    folder = write_version(tmp_path, "1", content, metadata)
    committed = json.loads((EXAMPLE_MODELS / "1" / "metadata.json").read_text())
    assert json.loads((folder / "metadata.json").read_text()) == committed
    assert hashlib.sha256((EXAMPLE_MODELS / "1" / "model.onnx").read_bytes()).hexdigest() == committed["sha256"]
