"""Shared by the model delivery tests: their configuration and model bucket (the `s3` fixture in tests/conftest.py
makes that bucket in moto), and small ONNX models."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from configuration.loader import parse_config
from tests.support.serving_data import EXAMPLE_MODELS

CONFIG = parse_config({
    "project": "mlops", "region": "eu-west-1",
    "environments": {"staging": {"vpc_cidr": "10.10.0.0/16"}},
    "endpoints": {"a": {"path": "/a/*"}, "b": {"path": "/b/*"}},
}, "test-config")
BUCKET = CONFIG.model_bucket_name("staging")
EXAMPLE_MODEL = EXAMPLE_MODELS / "1" / "model.onnx"


def other_signature_model(path: Path) -> Path:
    """A valid ONNX model whose signature differs from the example's: 4 features in, the same 4 out."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["features"], ["scores"])], "other",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path
