"""Requests and model versions for the serving tests: the bundled example model, rows of its data set, V2 bodies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.paths import PROJECT_ROOT

EXAMPLE_MODELS = PROJECT_ROOT / "serving" / "example" / "models"
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
