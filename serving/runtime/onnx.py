"""ONNX Runtime, set up for small models on small tasks: one intra-op thread, no spinning, sequential execution.

ONNX Runtime's defaults start a thread per core and spin them between calls; on a 1-2 vCPU Fargate task that costs
about 3x the throughput for a single-row request (measured in bench/serving).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from serving.datatypes import ONNX_TO_V2
from serving.runtime.base import TensorSpec


def _spec(node: ort.NodeArg) -> TensorSpec:
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in node.shape)
    return TensorSpec(node.name, ONNX_TO_V2.get(node.type, "BYTES"), shape)


class OnnxRuntimeModel:
    def __init__(self, session: ort.InferenceSession):
        self._session = session
        self.inputs = [_spec(node) for node in session.get_inputs()]
        self.outputs = [_spec(node) for node in session.get_outputs()]
        self._output_names = [spec.name for spec in self.outputs]

    @classmethod
    def load(cls, path: Path, intra_op_threads: int = 1) -> OnnxRuntimeModel:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        return cls(session)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._session.run(self._output_names, inputs)
        return dict(zip(self._output_names, results, strict=True))
