"""A model version's signature and its predictions over a data set (ONNX Runtime, on the CPU)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.contract import METADATA_FILE, MODEL_FILE

_ORT_DATATYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(float16)": "FP16",
                  "tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(int16)": "INT16", "tensor(int8)": "INT8",
                  "tensor(uint8)": "UINT8", "tensor(bool)": "BOOL", "tensor(string)": "BYTES"}
NUMERIC_DATATYPES = {"FP16", "FP32", "FP64"}
"""Tensors of these types are numeric features; integers, booleans and strings are categories."""
_NUMPY = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32,
          "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_, "BYTES": object}


class ModelError(Exception):
    """A model that cannot be read or run on the data set, and why."""


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    width: int | None
    """Values per row: 1 for a tensor of shape [-1], k for [-1, k], None when the second dimension is dynamic."""

    def column_names(self, count: int) -> list[str]:
        return [self.name] if count == 1 and self.width == 1 else [f"{self.name}[{i}]" for i in range(count)]


@dataclass(frozen=True)
class Signature:
    name: str
    version: str
    sha256: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    predict_output: str


def _width(shape: list) -> int | None:
    if len(shape) <= 1:
        return 1
    rest = shape[1:]
    if any(not isinstance(size, int) or size < 0 for size in rest):
        return None
    return int(np.prod(rest))


def model_file(path: Path) -> Path:
    """PATH given to `--model`: a version's folder (with its model.onnx) or the file itself."""
    candidate = path / MODEL_FILE if path.is_dir() else path
    if not candidate.is_file():
        raise ModelError(f"--model {path}: no {MODEL_FILE} there; give a model version's folder or its {MODEL_FILE}")
    return candidate


def _session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"--model {path}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc})") from exc


def read_signature(path: Path) -> tuple[Signature, object]:
    """The signature (from the version's metadata.json where there is one, else from the model) and a session."""
    file = model_file(path)
    session = _session(file)
    metadata_path = file.parent / METADATA_FILE
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}

    def tensors(nodes) -> list[Tensor]:
        return [Tensor(node.name, _ORT_DATATYPES.get(node.type, node.type), _width(list(node.shape)))
                for node in nodes]

    outputs = tensors(session.get_outputs())
    signature = Signature(
        name=str(metadata.get("name", file.stem)), version=str(metadata.get("version", file.parent.name)),
        sha256=hashlib.sha256(file.read_bytes()).hexdigest(), inputs=tensors(session.get_inputs()), outputs=outputs,
        predict_output=str(metadata.get("predict_output") or outputs[0].name))
    return signature, session


def predictions(session, signature: Signature, inputs: dict[str, np.ndarray], batch_rows: int = 1024,
                ) -> dict[str, np.ndarray]:
    """Every output of the model over `inputs` (rows x width each), as rows x width arrays."""
    rows = len(next(iter(inputs.values())))
    answers: dict[str, list[np.ndarray]] = {tensor.name: [] for tensor in signature.outputs}
    for start in range(0, rows, batch_rows):
        feed = {tensor.name: inputs[tensor.name][start:start + batch_rows].astype(_NUMPY.get(tensor.datatype, object))
                for tensor in signature.inputs}
        try:
            results = session.run(None, feed)
        except Exception as exc:
            raise ModelError(f"the model refused the data set's rows {start}..{start + batch_rows - 1} "
                             f"({type(exc).__name__}: {exc})") from exc
        for tensor, result in zip(signature.outputs, results, strict=True):
            answers[tensor.name].append(np.asarray(result).reshape(len(result), -1))
    return {name: np.concatenate(parts) for name, parts in answers.items()}
