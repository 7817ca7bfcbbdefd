"""The model repository on EFS and the live model.

The layout and the rule for which version is live are the contract's (`serving/contract.py`): versioned folders
with the model file and `metadata.json` (name, version, inputs, outputs, sha256), and `LIVE` naming the version to
serve, else the newest complete one. The sync writes a version folder completely before renaming it into place,
and moves `LIVE` last.

`ModelManager.poll_once` looks for a different target version, verifies its checksum and signature, loads it beside
the live one, warms it up and swaps the reference atomically. A version that fails is logged, reported and not
retried until its files change; the old version keeps serving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serving.contract import LIVE_POINTER, METADATA_FILE, MODEL_FILE, local_live_version
from serving.datatypes import V2_TO_NUMPY
from serving.runtime import RUNTIMES, ModelRuntime, TensorSpec

log = logging.getLogger("serving.repository")


class VersionError(Exception):
    """A version that cannot be served: the message says why."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    runtime: ModelRuntime
    metadata: dict[str, Any]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    predict_output: str
    """The output `/predict` returns as `predictions`."""
    loaded_at: float = field(default_factory=time.time)


def fingerprint(folder: Path) -> tuple[float, int]:
    """Changes when the version's files are replaced: a fixed upload is retried, a broken one is not."""
    stats = [(folder / name).stat() for name in (METADATA_FILE, MODEL_FILE) if (folder / name).exists()]
    return (max((s.st_mtime for s in stats), default=0.0), sum(s.st_size for s in stats))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_signature(declared: list[dict[str, Any]], actual: list[TensorSpec], kind: str) -> None:
    declared_pairs = [(entry.get("name"), entry.get("datatype")) for entry in declared]
    actual_pairs = [(spec.name, spec.datatype) for spec in actual]
    if declared_pairs != actual_pairs:
        raise VersionError(f"metadata declares {kind} {declared_pairs}, the model has {actual_pairs}")


def load_version(folder: Path, intra_op_threads: int) -> LoadedModel:
    """Verify and load one version; raises VersionError with the reason."""
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise VersionError(f"unreadable {METADATA_FILE}: {exc}") from None
    model_path = folder / str(metadata.get("file", MODEL_FILE))
    expected = metadata.get("sha256")
    if not expected:
        raise VersionError(f"{METADATA_FILE} has no sha256")
    try:
        actual = sha256_of(model_path)
    except OSError as exc:
        raise VersionError(f"unreadable model file: {exc}") from None
    if actual != expected:
        raise VersionError(f"checksum mismatch: metadata says {expected}, the file is {actual}")
    runtime_class = RUNTIMES.get(metadata.get("framework", "onnx"))
    if runtime_class is None:
        raise VersionError(f"unknown framework {metadata.get('framework')!r}; known: {', '.join(RUNTIMES)}")
    try:
        runtime = runtime_class.load(model_path, intra_op_threads)
    except Exception as exc:  # the runtime's own errors vary; any of them means "cannot serve this"
        raise VersionError(f"the runtime cannot load the model: {exc}") from None
    _check_signature(metadata.get("inputs", []), runtime.inputs, "inputs")
    _check_signature(metadata.get("outputs", []), runtime.outputs, "outputs")
    predict_output = metadata.get("predict_output") or runtime.outputs[0].name
    if predict_output not in {spec.name for spec in runtime.outputs}:
        raise VersionError(f"predict_output {predict_output!r} is not an output of the model")
    _warm_up(runtime)
    return LoadedModel(version=folder.name, runtime=runtime, metadata=metadata, inputs=runtime.inputs,
                       outputs=runtime.outputs, predict_output=predict_output)


def _warm_up(runtime: ModelRuntime) -> None:
    """One call on zeros: the first call allocates, and it must not be a client's."""
    feeds = {}
    for spec in runtime.inputs:
        shape = tuple(1 if dim < 0 else dim for dim in spec.shape)
        feeds[spec.name] = np.zeros(shape, dtype=V2_TO_NUMPY[spec.datatype])
    try:
        runtime.predict(feeds)
    except Exception as exc:
        raise VersionError(f"the model fails on a zero input: {exc}") from None


@dataclass
class FailedVersion:
    version: str
    reason: str
    fingerprint: tuple[float, int]


class ModelManager:
    """Owns the live model. `current` is replaced by one assignment, so a request sees either the old or the new
    model, never a mix."""

    def __init__(self, models_dir: Path, intra_op_threads: int = 1, pinned_version: str = ""):
        self.models_dir = models_dir
        self.intra_op_threads = intra_op_threads
        self.pinned_version = pinned_version
        """Serve exactly this version (a pinned variant) instead of the one LIVE names."""
        self.current: LoadedModel | None = None
        self.failed: dict[str, FailedVersion] = {}
        self._lock = threading.Lock()  # one load at a time

    def poll_once(self) -> bool:
        """Load the target version if it differs from the live one. Returns True when the live model changed."""
        with self._lock:
            version = self.pinned_version or local_live_version(self.models_dir)
            if version is None or (self.current is not None and self.current.version == version):
                return False
            folder = self.models_dir / version
            mark = fingerprint(folder)
            known = self.failed.get(version)
            if known is not None and known.fingerprint == mark:
                return False
            if not folder.is_dir():
                named_by = "the pinned version" if self.pinned_version else f"{LIVE_POINTER} names version"
                self._fail(version, f"{named_by} {version}, which is not in {self.models_dir}", mark)
                return False
            started = time.perf_counter()
            try:
                loaded = load_version(folder, self.intra_op_threads)
            except VersionError as exc:
                self._fail(version, str(exc), mark)
                return False
            previous = self.current
            self.current = loaded
            self.failed.pop(version, None)
            log.info("model version live", extra={"fields": {
                "version": version, "previous_version": previous.version if previous else None,
                "load_seconds": round(time.perf_counter() - started, 3)}})
            return True

    def _fail(self, version: str, reason: str, mark: tuple[float, int]) -> None:
        self.failed[version] = FailedVersion(version, reason, mark)
        live = self.current.version if self.current else None
        log.error("model version rejected", extra={"fields": {"version": version, "reason": reason,
                                                               "serving_version": live}})
