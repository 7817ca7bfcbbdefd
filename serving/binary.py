"""The Open Inference Protocol's binary tensor data extension, as Triton defines it (tritonclient's default).

A request whose body starts with a JSON header of `Inference-Header-Content-Length` bytes carries the data of each
input whose `parameters.binary_data_size` is set after that header, in the order of the inputs, as raw little-endian
row-major bytes (BOOL one byte each). An output is answered in binary when its `parameters.binary_data` is true, or,
when the request names no such flag for it, when the request's `parameters.binary_data_output` is true; its bytes
follow the response's JSON header in the order of the outputs, and the response's `Inference-Header-Content-Length`
says where the header ends.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from serving.errors import InvalidRequest

EXTENSION = "binary_tensor_data"
HEADER_LENGTH = "inference-header-content-length"
"""The header's name as ASGI hands it over (lower case)."""
OCTET_STREAM = "application/octet-stream"


class Answer(NamedTuple):
    """An inference response: the JSON header, followed by the binary outputs when `header_length` is set."""

    payload: bytes
    header_length: int | None = None


def header_length(value: bytes | str | None) -> int | None:
    """The request's `Inference-Header-Content-Length`, checked."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not text.strip().isdigit():
        raise InvalidRequest(f"Inference-Header-Content-Length must be a whole number of bytes, got {text!r}")
    return int(text)


def split(body: bytes, length: int | None) -> tuple[bytes, memoryview | None]:
    """The JSON header and the binary data after it (None when the request has no binary part)."""
    if length is None:
        return body, None
    if length > len(body):
        raise InvalidRequest(f"Inference-Header-Content-Length is {length}, but the body has only {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


def binary_size(entry: dict[str, Any], what: str) -> int | None:
    """An input's `parameters.binary_data_size`, or None when its data is in the JSON."""
    parameters = entry.get("parameters")
    if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidRequest(f"{what}: parameters.binary_data_size must be a non-negative integer, got {size!r}")
    return size


class BinaryReader:
    """Takes each binary input's bytes from the request's binary part, in order."""

    def __init__(self, data: memoryview | None):
        self.data = data
        self.offset = 0

    def take(self, size: int, shape: list[int], dtype: np.dtype, what: str) -> np.ndarray:
        if self.data is None:
            raise InvalidRequest(f"{what}: parameters.binary_data_size needs the Inference-Header-Content-Length "
                                 "header, which says where the JSON ends and the binary data begins")
        expected = math.prod(shape) * dtype.itemsize
        if size != expected:
            raise InvalidRequest(f"{what}: binary_data_size {size} does not match shape {shape} of "
                                 f"{dtype.itemsize}-byte values ({expected} bytes)")
        if self.offset + size > len(self.data):
            raise InvalidRequest(f"{what}: the body ends {self.offset + size - len(self.data)} bytes before this "
                                 "input's binary data does")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)

    def finish(self) -> None:
        if self.data is not None and self.offset != len(self.data):
            raise InvalidRequest(f"the body has {len(self.data) - self.offset} bytes of binary data that no input's "
                                 "binary_data_size accounts for")


def binary_outputs(request: dict[str, Any], names: list[str]) -> set[str]:
    """The outputs to answer in binary."""
    parameters = request.get("parameters")
    default = bool(parameters.get("binary_data_output", False)) if isinstance(parameters, dict) else False
    flags = {}
    for output in request.get("outputs") or []:
        output_parameters = output.get("parameters")
        if isinstance(output_parameters, dict) and "binary_data" in output_parameters:
            flags[output["name"]] = bool(output_parameters["binary_data"])
    return {name for name in names if flags.get(name, default)}


def raw_bytes(array: np.ndarray) -> bytes:
    """An output's binary data: row-major, little-endian."""
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
