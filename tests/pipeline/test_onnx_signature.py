"""Where the delivery steps meet the server: the signature `pipeline.models promote` writes into metadata.json (read
from the file with `onnx`) is the one the server checks it against (read by ONNX Runtime when it loads the model)."""

from __future__ import annotations

import json

import pytest

from pipeline.onnx_signature import NotAModel, signature_of
from serving.runtime.onnx import OnnxRuntimeModel
from tests.support.delivery import EXAMPLE_MODEL


def test_the_file_s_signature_is_the_runtime_s():
    runtime = OnnxRuntimeModel.load(EXAMPLE_MODEL)
    assert signature_of(EXAMPLE_MODEL) == {"inputs": [spec.as_dict() for spec in runtime.inputs],
                                           "outputs": [spec.as_dict() for spec in runtime.outputs]}


def test_the_bundled_metadata_declares_the_file_s_signature():
    metadata = json.loads((EXAMPLE_MODEL.parent / "metadata.json").read_text())
    signature = signature_of(EXAMPLE_MODEL)
    assert signature == {"inputs": metadata["inputs"], "outputs": metadata["outputs"]}
    assert signature["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 30]}]


def test_a_file_that_is_not_a_model_is_refused_with_its_name(tmp_path):
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a protobuf")
    with pytest.raises(NotAModel, match=r"model.onnx is not a valid ONNX model"):
        signature_of(broken)
