"""Captured requests and answers, decoded into rows: what the monitor compares with a baseline.

Every line of every capture file is a SageMaker Data Capture record (serving/capture_records.py). The request is
an Open Inference Protocol request (`inputs`: name, shape, datatype, data; a binary tensor request is captured in
this JSON form too) or a `/predict` one (`instances`: rows of the model's one input); the answer has `outputs` or
`predictions` (the model's predict output). A line that is not such a record, or whose tensors do not fit their
shapes, is skipped and counted by reason, never fatal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

PREDICT_INPUT = "instances"
"""The input name a `/predict` request's rows go under until a baseline names the model's input."""
PREDICT_OUTPUT = "predictions"


class Skip(Exception):
    """A capture line that cannot be used; its message is the reason counted."""


@dataclass(frozen=True)
class Observation:
    """One captured request: its rows of each input and output (rows x width arrays)."""

    endpoint: str
    """The capture's `modelName`: the endpoint's model."""
    variant: str
    model_version: str
    inference_id: str
    moment: datetime
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    predict_route: bool

    @property
    def rows(self) -> int:
        return len(next(iter(self.inputs.values())))


@dataclass
class Reading:
    observations: list[Observation] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    files: int = 0

    def add_lines(self, lines: Iterable[bytes], since: datetime | None, until: datetime | None) -> None:
        self.files += 1
        for line in lines:
            if not line.strip():
                continue
            try:
                observation = decode_record(line)
            except Skip as reason:
                self.skipped[str(reason)] += 1
                continue
            if (since is None or observation.moment >= since) and (until is None or observation.moment < until):
                self.observations.append(observation)


def _tensor(item: Any, where: str) -> tuple[str, np.ndarray]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "data" not in item:
        raise Skip(f"{where} without name or data")
    shape = item.get("shape")
    values = np.asarray(item["data"], dtype=object if item.get("datatype") == "BYTES" else None)
    if values.dtype == object and item.get("datatype") != "BYTES":
        raise Skip(f"{where} {item['name']}: ragged data")
    try:
        array = values.reshape(shape) if isinstance(shape, list) else values
    except (ValueError, TypeError) as exc:
        raise Skip(f"{where} {item['name']}: data does not fit its shape") from exc
    if array.ndim == 0:
        array = array.reshape(1)
    return item["name"], array.reshape(len(array), -1)


def decode_record(line: bytes) -> Observation:
    """A `/predict` request's rows and answer go under PREDICT_INPUT and PREDICT_OUTPUT (named once the baseline
    says which of the model's tensors they are)."""
    try:
        record = json.loads(line)
        data = record["captureData"]
        metadata = record["eventMetadata"]
        request = json.loads(data["endpointInput"]["data"])
        response = json.loads(data["endpointOutput"]["data"])
        moment = datetime.strptime(metadata["inferenceTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (ValueError, KeyError, TypeError):
        raise Skip("not a capture record") from None
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise Skip("not a capture record")
    if "error" in response:
        raise Skip("an error answer")
    predict_route = "instances" in request
    if predict_route:
        rows = np.asarray(request["instances"])
        if rows.dtype == object or rows.ndim == 0:
            raise Skip("request: ragged instances")
        inputs = {PREDICT_INPUT: rows.reshape(len(rows), -1)}
        answer = np.asarray(response.get(PREDICT_OUTPUT))
        if answer.ndim == 0 or answer.dtype == object:
            raise Skip("answer: no predictions")
        outputs = {PREDICT_OUTPUT: answer.reshape(len(answer), -1)}
    else:
        if not isinstance(request.get("inputs"), list) or not request["inputs"]:
            raise Skip("request: no inputs")
        inputs = dict(_tensor(item, "request input") for item in request["inputs"])
        outputs = dict(_tensor(item, "answer output") for item in response.get("outputs") or [])
    counts = {len(array) for array in (*inputs.values(), *outputs.values())}
    if len(counts) != 1:
        raise Skip("inputs and outputs of different row counts")
    return Observation(str(metadata.get("modelName", "")), str(metadata.get("variantName", "main")),
                       str(metadata.get("modelVersion")),
                       str(metadata.get("inferenceId") or metadata.get("eventId") or ""), moment, inputs, outputs,
                       predict_route)


def variants(observations: Iterable[Observation]) -> list[str]:
    return sorted({observation.variant for observation in observations})


def by_version(observations: Iterable[Observation]) -> Iterator[tuple[str, list[Observation]]]:
    """(model version, its observations), the version that answered most first."""
    groups: dict[str, list[Observation]] = {}
    for observation in observations:
        groups.setdefault(observation.model_version, []).append(observation)
    yield from sorted(groups.items(), key=lambda item: (-sum(o.rows for o in item[1]), item[0]))
