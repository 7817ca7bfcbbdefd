"""The model repository: which version is live, verification, atomic swap, rejected versions."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from serving.contract import local_complete_versions, local_live_version, version_key
from serving.repository import ModelManager
from tests.support.serving_data import add_version


def test_versions_sort_as_numbers_and_incomplete_or_hidden_folders_are_ignored(models_dir: Path):
    add_version(models_dir, "10")
    add_version(models_dir, "2")
    (models_dir / "11").mkdir()  # no files yet
    add_version(models_dir, ".12.partial")  # an in-flight copy
    assert local_complete_versions(models_dir) == ["1", "2", "10"]
    assert local_live_version(models_dir) == "10"
    assert sorted(["b", "10", "9", "a"], key=version_key) == ["a", "b", "9", "10"]


def test_live_pointer_wins_over_the_newest(models_dir: Path):
    add_version(models_dir, "2")
    (models_dir / "LIVE").write_text("1\n")
    assert local_live_version(models_dir) == "1"


def test_manager_swaps_to_a_new_version(models_dir: Path):
    manager = ModelManager(models_dir)
    assert manager.poll_once() is True and manager.current.version == "1"
    first = manager.current
    assert manager.poll_once() is False  # nothing new
    add_version(models_dir, "2")
    assert manager.poll_once() is True
    assert manager.current.version == "2" and manager.current is not first


def test_a_corrupt_version_is_rejected_and_the_old_one_keeps_serving(models_dir: Path):
    manager = ModelManager(models_dir)
    manager.poll_once()
    add_version(models_dir, "2", sha256="0" * 64)
    assert manager.poll_once() is False
    assert manager.current.version == "1"
    assert "checksum mismatch" in manager.failed["2"].reason
    assert manager.poll_once() is False  # not retried while its files are unchanged


def test_a_truncated_model_file_is_rejected(models_dir: Path):
    manager = ModelManager(models_dir)
    manager.poll_once()
    folder = add_version(models_dir, "2")
    content = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(content[: len(content) // 2])
    assert manager.poll_once() is False and manager.current.version == "1"
    assert "checksum mismatch" in manager.failed["2"].reason


def test_a_fixed_upload_is_retried(models_dir: Path):
    manager = ModelManager(models_dir)
    manager.poll_once()
    folder = add_version(models_dir, "2", sha256="0" * 64)
    manager.poll_once()
    metadata = json.loads((models_dir / "1" / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**metadata, "version": "2"}))
    later = time.time() + 5
    os.utime(folder / "metadata.json", (later, later))
    assert manager.poll_once() is True and manager.current.version == "2"
    assert "2" not in manager.failed


def test_signature_mismatch_is_rejected(models_dir: Path):
    manager = ModelManager(models_dir)
    manager.poll_once()
    add_version(models_dir, "2", inputs=[{"name": "features", "datatype": "FP32", "shape": [-1, 30]}])
    assert manager.poll_once() is False
    assert "metadata declares inputs [('features', 'FP32')]" in manager.failed["2"].reason


def test_a_file_that_is_not_a_model_is_rejected(models_dir: Path):
    import hashlib

    manager = ModelManager(models_dir)
    manager.poll_once()
    folder = add_version(models_dir, "2")
    (folder / "model.onnx").write_bytes(b"not onnx")
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["sha256"] = hashlib.sha256(b"not onnx").hexdigest()
    (folder / "metadata.json").write_text(json.dumps(metadata))
    assert manager.poll_once() is False
    assert "the runtime cannot load the model" in manager.failed["2"].reason


def test_live_pointer_to_a_missing_version_is_reported(models_dir: Path):
    manager = ModelManager(models_dir)
    manager.poll_once()
    (models_dir / "LIVE").write_text("7")
    assert manager.poll_once() is False and manager.current.version == "1"
    assert "not in" in manager.failed["7"].reason
