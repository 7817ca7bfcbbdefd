"""A model file's inputs and outputs in Open Inference Protocol terms, read with the `onnx` package.

The delivery steps write this signature into a version's metadata.json; the server checks it against what ONNX
Runtime reports when it loads the version (tests/pipeline/test_onnx_signature.py holds the two to the same answer).
Reading the file's graph instead of starting the runtime keeps the model runtime out of the delivery steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

# ONNX tensor element types -> Open Inference Protocol datatypes; anything else (strings, sequences, maps) is BYTES,
# as the server reports it.
ONNX_ELEMENT_TO_V2 = {
    TensorProto.BOOL: "BOOL", TensorProto.UINT8: "UINT8", TensorProto.UINT16: "UINT16",
    TensorProto.UINT32: "UINT32", TensorProto.UINT64: "UINT64", TensorProto.INT8: "INT8",
    TensorProto.INT16: "INT16", TensorProto.INT32: "INT32", TensorProto.INT64: "INT64",
    TensorProto.FLOAT16: "FP16", TensorProto.FLOAT: "FP32", TensorProto.DOUBLE: "FP64",
}


class NotAModel(Exception):
    """The file is not an ONNX model this project can serve; the message says why."""


def _tensor(value: onnx.ValueInfoProto) -> dict[str, Any]:
    if not value.type.HasField("tensor_type"):
        return {"name": value.name, "datatype": "BYTES", "shape": []}
    tensor = value.type.tensor_type
    shape = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim]
    return {"name": value.name, "datatype": ONNX_ELEMENT_TO_V2.get(tensor.elem_type, "BYTES"), "shape": shape}


def signature_of(model_file: Path) -> dict[str, list[dict[str, Any]]]:
    """{"inputs": [...], "outputs": [...]}, each {"name", "datatype", "shape"} with -1 for a free dimension."""
    try:
        model = onnx.load(str(model_file), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises protobuf, checker and OS errors for files it cannot read
        raise NotAModel(f"{model_file} is not a valid ONNX model: {exc}") from None
    # Older models list their weights as graph inputs too; clients never send those.
    weights = {initializer.name for initializer in model.graph.initializer}
    return {"inputs": [_tensor(value) for value in model.graph.input if value.name not in weights],
            "outputs": [_tensor(value) for value in model.graph.output]}
