"""A model version's baseline: the reference statistics of its inputs and predictions over a data set.

Per feature (an input's column) and per prediction (an output's column): its kind, how complete it is, and what
the drift tests need. A numeric column keeps its range, mean, standard deviation and its quantiles at up to
`QUANTILES` evenly spaced probabilities (every value, sorted, when the data set has fewer rows): the tests compare a
window with this sample of the baseline's distribution. A categorical column keeps each value's count.

    python -m pipeline.monitor baseline --data FILE --model PATH --out FILE [--drop COLUMN ...]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.monitor.dataset import DataSet, DataSetError
from pipeline.monitor.model import NUMERIC_DATATYPES, Signature, Tensor, predictions

FORMAT = 1
QUANTILES = 1001
NUMERIC, CATEGORICAL = "numeric", "categorical"


class BaselineError(Exception):
    """A baseline that cannot be made or read, and what to do."""


@dataclass(frozen=True)
class ColumnBaseline:
    name: str
    tensor: str
    index: int
    kind: str
    count: int
    missing: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] = field(default_factory=list)
    frequencies: dict[str, int] = field(default_factory=dict)
    datatype: str = ""
    """The tensor's type: numbers are compared at its precision (a float32 answer written in JSON as 0.9699994 is
    the float32 the model computed, not the float64 0.9699994)."""

    def at_precision(self, numbers: np.ndarray) -> np.ndarray:
        return numbers.astype(np.float32).astype(np.float64) if self.datatype == "FP32" else numbers

    @property
    def present(self) -> int:
        return self.count - self.missing


@dataclass(frozen=True)
class Baseline:
    model: dict[str, Any]
    data: dict[str, Any]
    features: list[ColumnBaseline]
    predictions: list[ColumnBaseline]
    created: str = ""
    format: int = FORMAT

    @property
    def input_names(self) -> dict[str, list[str]]:
        """Input tensor -> its feature names, in column order."""
        names: dict[str, list[str]] = {}
        for feature in self.features:
            names.setdefault(feature.tensor, []).append(feature.name)
        return names

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"


def category(value: Any) -> str:
    """How a categorical value is keyed (JSON keys are strings; 1 and 1.0 and "1" are one category)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool):
        value = int(value)
    return str(value)


def column_baseline(name: str, tensor: Tensor, index: int, values: np.ndarray) -> ColumnBaseline:
    kind = kind_of(tensor)
    if kind == NUMERIC:
        empty = ColumnBaseline(name, tensor.name, index, kind, 0, 0, datatype=tensor.datatype)
        numbers = empty.at_precision(np.asarray(values, dtype=np.float64))
        finite = np.sort(numbers[np.isfinite(numbers)])
        missing = int(len(numbers) - len(finite))
        if not len(finite):
            return replace(empty, count=len(numbers), missing=missing)
        points = min(len(finite), QUANTILES)
        quantiles = finite if points == len(finite) else np.quantile(finite, np.linspace(0, 1, points))
        return replace(empty, count=len(numbers), missing=missing, min=float(finite[0]), max=float(finite[-1]),
                       mean=float(finite.mean()), std=float(finite.std()),
                       quantiles=[float(value) for value in quantiles])
    present = [value for value in values if value is not None and not (isinstance(value, float) and np.isnan(value))]
    frequencies: dict[str, int] = {}
    for value in present:
        key = category(value.item() if isinstance(value, np.generic) else value)
        frequencies[key] = frequencies.get(key, 0) + 1
    return ColumnBaseline(name, tensor.name, index, kind, len(values), len(values) - len(present),
                          frequencies=dict(sorted(frequencies.items())), datatype=tensor.datatype)


def kind_of(tensor: Tensor) -> str:
    return NUMERIC if tensor.datatype in NUMERIC_DATATYPES else CATEGORICAL


def _split_inputs(data: DataSet, signature: Signature) -> dict[str, tuple[list[str], np.ndarray]]:
    """The data set's columns, in order, dealt to the model's inputs by their widths."""
    fixed = sum(tensor.width or 0 for tensor in signature.inputs)
    dynamic = [tensor for tensor in signature.inputs if tensor.width is None]
    if len(dynamic) > 1 or (not dynamic and fixed != len(data.names)) or (dynamic and fixed >= len(data.names)):
        widths = ", ".join(f"{tensor.name}: {tensor.width or 'any'}" for tensor in signature.inputs)
        raise BaselineError(f"the data set has {len(data.names)} columns ({', '.join(data.names[:6])}"
                            f"{', ...' if len(data.names) > 6 else ''}) but the model's inputs take {fixed} "
                            f"({widths}); drop label or id columns with --drop COLUMN")
    split: dict[str, tuple[list[str], np.ndarray]] = {}
    start = 0
    for tensor in signature.inputs:
        width = tensor.width or len(data.names) - fixed
        names = data.names[start:start + width]
        columns = data.columns[start:start + width]
        if kind_of(tensor) == NUMERIC and any(column.dtype == object for column in columns):
            text = next(name for name, column in zip(names, columns, strict=True) if column.dtype == object)
            raise BaselineError(f"column {text!r} holds text but feeds {tensor.name}, a {tensor.datatype} input")
        split[tensor.name] = (names, np.column_stack(columns))
        start += width
    return split


def compute(data: DataSet, signature: Signature, session, data_file: Path) -> Baseline:
    if data.rows == 0:
        raise DataSetError(f"{data_file}: no rows")
    split = _split_inputs(data, signature)
    features = []
    for tensor in signature.inputs:
        names, matrix = split[tensor.name]
        for index, name in enumerate(names):
            features.append(column_baseline(name, tensor, index, matrix[:, index]))
    answers = predictions(session, signature, {name: matrix for name, (_, matrix) in split.items()})
    outputs = []
    for tensor in signature.outputs:
        answer = answers[tensor.name]
        for index, name in enumerate(tensor.column_names(answer.shape[1])):
            outputs.append(column_baseline(name, tensor, index, answer[:, index]))
    model = {"name": signature.name, "version": signature.version, "sha256": signature.sha256,
             "predict_output": signature.predict_output,
             "inputs": [asdict(tensor) for tensor in signature.inputs],
             "outputs": [asdict(tensor) for tensor in signature.outputs]}
    source = {"file": data_file.name, "rows": data.rows, "sha256": hashlib.sha256(data_file.read_bytes()).hexdigest(),
              "columns": list(data.names)}
    return Baseline(model, source, features, outputs, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def read_baseline(text: str, where: str) -> Baseline:
    try:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise BaselineError(f"{where}: baseline format {document.get('format')!r}, this monitor reads {FORMAT}; "
                                "compute it again with `python -m pipeline.monitor baseline`")
        return Baseline(document["model"], document["data"],
                        [ColumnBaseline(**column) for column in document["features"]],
                        [ColumnBaseline(**column) for column in document["predictions"]],
                        document.get("created", ""), document["format"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"{where}: not a baseline ({type(exc).__name__}: {exc}); make one with "
                            "`python -m pipeline.monitor baseline`") from exc
