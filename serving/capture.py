"""Request data capture to the data volume, in SageMaker Data Capture's JSON Lines format.

The request path only samples and appends a tuple to a deque. Every `flush_interval_seconds` the event loop encodes
what waits, in chunks of ENCODE_CHUNK records between which requests are served, and hands the lines to a writer
thread for one write() per file. Encoding per request costs several times more under load than in one tight loop
(caches), and encoding in the writer thread would fight the event loop for the GIL (bench/serving).

Files are partitioned `<dir>/<model>/yyyy/mm/dd/hh/<instance>-<pid>.jsonl`, so two tasks or two workers never
append to the same file. A full queue drops the new record; a volume that fails a write (full, read-only, gone)
stops capture: both are counted and logged, and predictions never notice. `close()` writes every accepted record
before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NamedTuple

import orjson

EVENT_VERSION = "0"
ENCODE_CHUNK = 128
CONTENT_TYPE = "application/json"
log = logging.getLogger("serving.capture")


class CaptureItem(NamedTuple):
    request_body: bytes
    response_body: bytes
    inference_id: str | None
    """The request's `id` when it has one; otherwise one is generated when the record is written."""
    inference_time: float
    """Seconds since the epoch."""
    model_version: str
    latency_ms: float


class _SecondFormatter:
    """ISO timestamps, formatting the date and time once per second rather than once per record."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, moment: float) -> str:
        milliseconds = round(moment * 1000)
        second, fraction = divmod(milliseconds, 1000)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{fraction:03d}Z"


_iso = _SecondFormatter()


# The fixed parts of a record, encoded once: per record only the data strings and the metadata are encoded.
_INPUT = (b'{"captureData":{"endpointInput":{"observedContentType":"' + CONTENT_TYPE.encode()
          + b'","mode":"INPUT","data":')
_OUTPUT = (b',"encoding":"JSON"},"endpointOutput":{"observedContentType":"' + CONTENT_TYPE.encode()
           + b'","mode":"OUTPUT","data":')
_METADATA = b',"encoding":"JSON"}},"eventMetadata":'
_END = b',"eventVersion":"' + EVENT_VERSION.encode() + b'"}\n'


def _event_id() -> str:
    """A random (version 4) UUID, formatted by hand: about three times cheaper than uuid.uuid4()."""
    value = f"{(random.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62)) | (0x4 << 76) | (0x2 << 62):032x}"
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def capture_record(item: CaptureItem, model_name: str) -> bytes:
    """One JSON line: SageMaker's captureData and eventMetadata, plus the model name, version and latency."""
    event_id = _event_id()
    metadata = {
        "eventId": event_id,
        "inferenceId": item.inference_id or event_id,
        "inferenceTime": _iso(item.inference_time),
        "modelName": model_name,
        "modelVersion": item.model_version,
        "latencyMs": round(item.latency_ms, 3),
    }
    return b"".join((_INPUT, orjson.dumps(item.request_body.decode("utf-8", "replace")), _OUTPUT,
                     orjson.dumps(item.response_body.decode("utf-8", "replace")), _METADATA, orjson.dumps(metadata),
                     _END))


class CaptureWriter:
    """Counters: `accepted`, `written`, `dropped_queue_full`, `dropped_write_error`; `failed` once the volume
    refused a write. `start()` and `close()` run on the event loop."""

    def __init__(self, directory: Path, model_name: str, instance_id: str, sample_percent: float = 100.0,
                 queue_size: int = 10_000, enabled: bool = True, flush_interval_seconds: float = 0.2):
        self.directory = directory
        self.model_name = model_name
        self.file_name = f"{instance_id}-{os.getpid()}.jsonl"
        self.sample_fraction = sample_percent / 100.0
        self.enabled = enabled and sample_percent > 0
        self.queue_size = queue_size
        self.flush_interval_seconds = flush_interval_seconds
        self.accepted = 0
        self.written = 0
        self.dropped_queue_full = 0
        self.dropped_write_error = 0
        self.failed = False
        self._pending: deque[CaptureItem] = deque()  # accepted, not yet encoded (event loop only)
        self._encoded: list[tuple[int, bytes]] = []  # (hour since the epoch, line), not yet handed over
        self._to_write: deque[list[tuple[int, bytes]]] = deque()  # handed to the writer thread
        self._wake = threading.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handle: IO[bytes] | None = None
        self._handle_path: Path | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()
        self._timer = self._loop.call_later(self.flush_interval_seconds, self._encode_tick)

    def sampled(self) -> bool:
        """Whether to capture this request: cheap enough to call on every request."""
        return self.enabled and not self.failed and (self.sample_fraction >= 1.0
                                                     or random.random() < self.sample_fraction)  # noqa: S311

    def submit(self, item: CaptureItem) -> None:
        if self.failed:
            self.dropped_write_error += 1
        elif len(self._pending) + len(self._encoded) >= self.queue_size:
            self.dropped_queue_full += 1
        else:
            self._pending.append(item)
            self.accepted += 1

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_write_error

    def close(self, timeout: float = 10.0) -> None:
        """Encode and write every accepted record, then stop. Called on the event loop after the last request."""
        if self._thread is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._encode(len(self._pending))
        self._hand_over()
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("capture writer did not finish in time", extra={"fields": {"timeout_seconds": timeout}})
        self._thread = None

    # --- event loop: encoding --------------------------------------------------------------------------------------

    def _encode(self, count: int) -> None:
        for _ in range(min(count, len(self._pending))):
            item = self._pending.popleft()
            self._encoded.append((int(item.inference_time // 3600), capture_record(item, self.model_name)))

    def _hand_over(self) -> None:
        if self._encoded:
            self._to_write.append(self._encoded)
            self._encoded = []
            self._wake.set()

    def _encode_tick(self) -> None:
        assert self._loop is not None
        self._encode(ENCODE_CHUNK)
        if self._pending:  # more waiting: continue once the requests queued meanwhile have run
            self._timer = None
            self._loop.call_soon(self._encode_tick)
            return
        self._hand_over()
        self._timer = self._loop.call_later(self.flush_interval_seconds, self._encode_tick)

    # --- writer thread: file I/O -----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._to_write:
                self._write(self._to_write.popleft())
            if self._stopping and not self._to_write:
                break
        self._close_handle()

    def _write(self, batch: list[tuple[int, bytes]]) -> None:
        if self.failed:
            self.dropped_write_error += len(batch)
            return
        by_hour: dict[int, list[bytes]] = {}
        for hour, line in batch:
            by_hour.setdefault(hour, []).append(line)
        try:
            # One write() per file: each releases the GIL, and taking it back from a busy event loop costs a
            # forced thread switch.
            for hour, lines in by_hour.items():
                self._handle_for(hour).write(b"".join(lines))
            self.written += len(batch)
        except OSError as exc:
            self.failed = True
            self.dropped_write_error += len(batch)
            log.error("request capture stopped: the data volume refused a write; predictions continue",
                      extra={"fields": {"error": str(exc), "directory": str(self.directory)}})
            self._close_handle()

    def _handle_for(self, hour: int) -> IO[bytes]:
        moment = datetime.fromtimestamp(hour * 3600, UTC)
        folder = self.directory / self.model_name / moment.strftime("%Y/%m/%d/%H")
        path = folder / self.file_name
        if self._handle is None or self._handle_path != path:
            self._close_handle()
            folder.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("ab", buffering=0)  # unbuffered: one write() is one system call
            self._handle_path = path
        return self._handle

    def _close_handle(self) -> None:
        if self._handle is not None:
            try:
                os.fsync(self._handle.fileno())
                self._handle.close()
            except OSError as exc:
                log.error("closing a capture file failed", extra={"fields": {"error": str(exc)}})
            self._handle = None
            self._handle_path = None
