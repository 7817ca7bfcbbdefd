"""The interface every model runtime implements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    """Open Inference Protocol datatype, e.g. FP32."""
    shape: tuple[int, ...]
    """-1 for a dimension of any size (usually the batch)."""

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class ModelRuntime(Protocol):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    @classmethod
    def load(cls, path: Path, intra_op_threads: int) -> ModelRuntime: ...

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model; inputs and outputs by tensor name."""
        ...
