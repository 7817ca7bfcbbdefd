"""SageMaker Data Capture records, as JSON Lines, encoded a chunk of requests at a time.

One record (on one line):

    {"captureData":{
       "endpointInput":{"observedContentType":"application/json","mode":"INPUT","data":"<request>","encoding":"JSON"},
       "endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT","data":"<response>",
                         "encoding":"JSON"}},
     "eventMetadata":{"eventId":"<uuid4>","inferenceTime":"2026-11-27T14:33:20.123Z","latencyMs":     1.250,
                      "inferenceId":"<the request's id, else the event id>","modelName":"a","variantName":"main",
                      "modelVersion":"3"},
     "eventVersion":"0"}

The server runs on one core, so every instruction spent here is taken from serving (callgrind: about 11k per
record). Per record, Python only quotes the two bodies (orjson); what has a fixed width (event ID, time,
latency) is built for the whole chunk as one byte matrix in a few numpy calls, which is why the latency is
right-aligned behind spaces, as JSON allows between tokens (left-aligning it costs more than the rest of the row);
the lines are then interleaved from these columns by list slicing and joined.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import orjson

from serving.contract import DEFAULT_VARIANT

EVENT_VERSION = "0"
CONTENT_TYPE = "application/json"

CaptureItem = tuple[bytes, bytes, "str | None", float, str, float]
"""(request body, response body, the request's `id` or None, seconds since the epoch, model version, latency ms)."""
FIELDS_PER_RECORD = 6
"""Records wait in one flat list, a CaptureItem's fields one after another: appending them creates no container
that outlives the request, so waiting records never make the garbage collector run more often (a tuple each did)."""


class EncodedLines(NamedTuple):
    hour: int
    """Hours since the epoch: the file partition the lines belong to."""
    lines: bytes
    records: int


_HEAD = (b'{"captureData":{"endpointInput":{"observedContentType":"' + CONTENT_TYPE.encode()
         + b'","mode":"INPUT","data":')
_MIDDLE = (b',"encoding":"JSON"},"endpointOutput":{"observedContentType":"' + CONTENT_TYPE.encode()
           + b'","mode":"OUTPUT","data":')
_METADATA = b',"encoding":"JSON"}},"eventMetadata":{'
# A line's parts: _HEAD, request, _MIDDLE, response, _METADATA, identity, tail.
_LINE = [_HEAD, b"", _MIDDLE, b"", _METADATA, b"", b""]
_PARTS_PER_RECORD = len(_LINE)

# The fixed-width part of a record's metadata, filled for a whole chunk at once:
# `"eventId":"<uuid>","inferenceTime":"<time>Z","latencyMs":<latency>,"inferenceId":"<uuid>"`. When the request
# gave an id, the copied event ID is cut off and the given one appended.
_UUID_LENGTH = 36
_TIME_LENGTH = 23  # 2026-11-27T14:33:20.123
_LATENCY_DIGITS = 6  # whole milliseconds: up to 999999 ms; longer latencies are written as 999999.999
_LATENCY_LENGTH = _LATENCY_DIGITS + 4
_IDENTITY = (b'"eventId":"' + b"-" * _UUID_LENGTH + b'","inferenceTime":"' + b"0" * _TIME_LENGTH
             + b'Z","latencyMs":' + b"0" * _LATENCY_LENGTH + b',"inferenceId":"' + b"-" * _UUID_LENGTH + b'"')
_EVENT_ID_AT = len(b'"eventId":"')
_TIME_AT = _EVENT_ID_AT + _UUID_LENGTH + len(b'","inferenceTime":"')
_LATENCY_AT = _TIME_AT + _TIME_LENGTH + len(b'Z","latencyMs":')
_WITHOUT_COPIED_ID = _LATENCY_AT + _LATENCY_LENGTH
_COPIED_ID_AT = _WITHOUT_COPIED_ID + len(b',"inferenceId":"')
_IDENTITY_TEMPLATE = np.frombuffer(_IDENTITY, dtype=np.uint8)

# Which of the 32 hex digits goes to each of the 36 places of a UUID; the dashes are written over afterwards.
_UUID_DIGIT_OF_PLACE = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 8, 9, 10, 11, 0, 12, 13, 14, 15, 0, 16, 17, 18, 19, 0,
                                 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31])
_UUID_DASHES = [8, 13, 18, 23]
# A random hex digit (as ASCII) -> the RFC 4122 variant's 8, 9, a or b, keeping the digit's two low bits.
_VARIANT_DIGIT = np.zeros(256, dtype=np.uint8)
_VARIANT_DIGIT[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.frombuffer(b"89ab" * 4, dtype=np.uint8)

_WHOLE_POWERS = 10 ** np.arange(_LATENCY_DIGITS - 1, -1, -1, dtype=np.int64)  # 100000 .. 1
_THREE_DIGIT_POWERS = np.array([100, 10, 1], dtype=np.int64)


def _uuid4s(count: int) -> np.ndarray:
    """`count` random version-4 UUIDs as a (count, 36) matrix of ASCII."""
    digits = np.frombuffer(binascii.hexlify(os.urandom(16 * count)), dtype=np.uint8).reshape(count, 32).copy()
    digits[:, 12] = ord("4")  # version 4
    digits[:, 16] = _VARIANT_DIGIT[digits[:, 16]]
    text = digits.take(_UUID_DIGIT_OF_PLACE, axis=1)
    text[:, _UUID_DASHES] = ord("-")
    return text


def _iso_times(milliseconds: np.ndarray) -> np.ndarray:
    """Milliseconds since the epoch as `2026-11-27T14:33:20.123` (count, 23): the date and time are formatted once
    per distinct second, the milliseconds by arithmetic."""
    seconds, fraction = np.divmod(milliseconds, 1000)
    distinct, which = np.unique(seconds, return_inverse=True)
    prefixes = np.frombuffer(b"".join(datetime.fromtimestamp(int(second), UTC).strftime("%Y-%m-%dT%H:%M:%S.").encode()
                                      for second in distinct), dtype=np.uint8).reshape(len(distinct), 20)
    text = np.empty((len(milliseconds), _TIME_LENGTH), dtype=np.uint8)
    text[:, :20] = prefixes.take(which.ravel(), axis=0)
    text[:, 20:] = fraction[:, None] // _THREE_DIGIT_POWERS % 10 + ord("0")
    return text


def _latencies(latencies_ms: np.ndarray) -> np.ndarray:
    """Latencies as `<whole ms>.<3 digits>`, right-aligned behind spaces (count, _LATENCY_LENGTH)."""
    microseconds = np.clip(np.rint(latencies_ms * 1000.0), 0, 10 ** (_LATENCY_DIGITS + 3) - 1).astype(np.int64)
    whole, fraction = np.divmod(microseconds, 1000)
    leading = whole[:, None] // _WHOLE_POWERS
    significant = leading > 0
    significant[:, -1] = True  # the units digit is written even when it is 0
    text = np.empty((len(latencies_ms), _LATENCY_LENGTH), dtype=np.uint8)
    text[:, :_LATENCY_DIGITS] = np.where(significant, leading % 10 + ord("0"), ord(" "))
    text[:, _LATENCY_DIGITS] = ord(".")
    text[:, _LATENCY_DIGITS + 1:] = fraction[:, None] // _THREE_DIGIT_POWERS % 10 + ord("0")
    return text


def _identities(moments: np.ndarray, latencies_ms: np.ndarray) -> list[bytes]:
    count = len(moments)
    rows = np.empty((count, len(_IDENTITY)), dtype=np.uint8)
    rows[:] = _IDENTITY_TEMPLATE
    event_ids = _uuid4s(count)
    rows[:, _EVENT_ID_AT:_EVENT_ID_AT + _UUID_LENGTH] = event_ids
    rows[:, _COPIED_ID_AT:_COPIED_ID_AT + _UUID_LENGTH] = event_ids
    rows[:, _TIME_AT:_TIME_AT + _TIME_LENGTH] = _iso_times(np.rint(moments * 1000.0).astype(np.int64))
    rows[:, _LATENCY_AT:_LATENCY_AT + _LATENCY_LENGTH] = _latencies(latencies_ms)
    return rows.view(f"S{len(_IDENTITY)}").ravel().tolist()


class _Tails(dict[str, bytes]):
    """The end of a record for each model version: model name, variant and version, eventVersion, newline."""

    def __init__(self, model_name: str, variant: str):
        super().__init__()
        self.model_and_variant = (b',"modelName":' + orjson.dumps(model_name) + b',"variantName":'
                                  + orjson.dumps(variant))

    def __missing__(self, version: str) -> bytes:
        tail = (self.model_and_variant + b',"modelVersion":' + orjson.dumps(version)
                + b'},"eventVersion":"' + EVENT_VERSION.encode() + b'"}\n')
        self[version] = tail
        return tail


def _quoted(bodies: Sequence[bytes]) -> list[bytes]:
    """Each body as a JSON string. A strict decode is the fast path (bodies the data plane captures are JSON, hence
    UTF-8); a chunk with a body that is not UTF-8 is decoded again with replacement characters."""
    dumps = orjson.dumps
    try:
        return [dumps(body.decode()) for body in bodies]
    except UnicodeDecodeError:
        return [dumps(body.decode("utf-8", "replace")) for body in bodies]


def encode_records(fields: Sequence[Any], model_name: str, variant: str = DEFAULT_VARIANT) -> list[EncodedLines]:
    """The JSON Lines of records given as their fields one after another (FIELDS_PER_RECORD each), as one buffer
    per run of records in the same hour, in order."""
    count = len(fields) // FIELDS_PER_RECORD
    if not count:
        return []
    requests, responses, inference_ids, moments, versions, latencies = (
        fields[field::FIELDS_PER_RECORD] for field in range(FIELDS_PER_RECORD))
    moments = np.fromiter(moments, dtype=np.float64, count=count)
    identities = _identities(moments, np.fromiter(latencies, dtype=np.float64, count=count))
    for index, inference_id in enumerate(inference_ids):
        if inference_id is not None:
            identities[index] = (identities[index][:_WITHOUT_COPIED_ID] + b',"inferenceId":'
                                 + orjson.dumps(inference_id))
    tails = _Tails(model_name, variant)
    parts = _LINE * count
    parts[1::_PARTS_PER_RECORD] = _quoted(requests)
    parts[3::_PARTS_PER_RECORD] = _quoted(responses)
    parts[5::_PARTS_PER_RECORD] = identities
    parts[6::_PARTS_PER_RECORD] = ([tails[versions[0]]] * count if versions.count(versions[0]) == count
                                   else [tails[version] for version in versions])
    hours = (moments // 3600).astype(np.int64)
    bounds = [0, *(np.flatnonzero(np.diff(hours)) + 1).tolist(), count]
    return [EncodedLines(int(hours[begin]), b"".join(parts[begin * _PARTS_PER_RECORD:end * _PARTS_PER_RECORD]),
                         end - begin)
            for begin, end in zip(bounds, bounds[1:], strict=False)]


def plain_record(item: CaptureItem, model_name: str, event_id: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
    """The record `encode_records` writes for `item`, built the plain way: the format's reference, which the fast
    encoder is held to (tests/serving/test_capture_records.py), and its readable definition."""
    request, response, inference_id, moment, version, latency_ms = item
    milliseconds = round(moment * 1000.0)
    seconds, fraction = divmod(milliseconds, 1000)
    inference_time = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:03d}Z"
    latency = min(max(round(latency_ms * 1000.0), 0), 10 ** (_LATENCY_DIGITS + 3) - 1) / 1000

    def channel(body: bytes, mode: str) -> dict[str, str]:
        return {"observedContentType": CONTENT_TYPE, "mode": mode, "data": body.decode("utf-8", "replace"),
                "encoding": "JSON"}

    return {"captureData": {"endpointInput": channel(request, "INPUT"), "endpointOutput": channel(response, "OUTPUT")},
            "eventMetadata": {"eventId": event_id, "inferenceTime": inference_time, "latencyMs": latency,
                              "inferenceId": event_id if inference_id is None else inference_id,
                              "modelName": model_name, "variantName": variant, "modelVersion": version},
            "eventVersion": EVENT_VERSION}


def capture_record(item: CaptureItem, model_name: str, variant: str = DEFAULT_VARIANT) -> bytes:
    """One record's JSON line (for tests and tools: the writer encodes whole chunks)."""
    return encode_records(item, model_name, variant)[0].lines
