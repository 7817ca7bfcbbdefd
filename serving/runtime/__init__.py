"""Model runtimes: load a model file, describe its signature, predict. ONNX Runtime is the default."""

from serving.runtime.base import ModelRuntime, TensorSpec
from serving.runtime.onnx import OnnxRuntimeModel

RUNTIMES = {"onnx": OnnxRuntimeModel}

__all__ = ["RUNTIMES", "ModelRuntime", "OnnxRuntimeModel", "TensorSpec"]
