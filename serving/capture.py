"""Request data capture to the data volume, in SageMaker Data Capture's JSON Lines format.

The request path only samples and enqueues (the raw request and response bytes, ids, times); a writer thread
encodes, writes and flushes. Files are partitioned `<dir>/<model>/yyyy/mm/dd/hh/<instance>-<pid>.jsonl`, so two
tasks or two workers never append to the same file. A full queue drops the new record; a volume that fails a
write (full, read-only, gone) stops capture: both are counted and logged, and predictions never notice. `close()`
writes everything already accepted before it returns.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

EVENT_VERSION = "0"
CONTENT_TYPE = "application/json"
log = logging.getLogger("serving.capture")


@dataclass(frozen=True)
class CaptureItem:
    request_body: bytes
    response_body: bytes
    inference_id: str
    inference_time: datetime
    model_version: str
    latency_ms: float


def capture_record(item: CaptureItem, model_name: str) -> bytes:
    """One JSON line: SageMaker's captureData and eventMetadata, plus the model name, version and latency."""
    record = {
        "captureData": {
            "endpointInput": {"observedContentType": CONTENT_TYPE, "mode": "INPUT",
                              "data": item.request_body.decode("utf-8", "replace"), "encoding": "JSON"},
            "endpointOutput": {"observedContentType": CONTENT_TYPE, "mode": "OUTPUT",
                               "data": item.response_body.decode("utf-8", "replace"), "encoding": "JSON"},
        },
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceId": item.inference_id,
            "inferenceTime": item.inference_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "modelName": model_name,
            "modelVersion": item.model_version,
            "latencyMs": round(item.latency_ms, 3),
        },
        "eventVersion": EVENT_VERSION,
    }
    return orjson.dumps(record) + b"\n"


class CaptureWriter:
    """Counters: `accepted`, `written`, `dropped_queue_full`, `dropped_write_error`; `failed` once the volume
    refused a write."""

    _STOP = object()

    def __init__(self, directory: Path, model_name: str, instance_id: str, sample_percent: float = 100.0,
                 queue_size: int = 10_000, enabled: bool = True):
        self.directory = directory
        self.model_name = model_name
        self.file_name = f"{instance_id}-{os.getpid()}.jsonl"
        self.sample_fraction = sample_percent / 100.0
        self.enabled = enabled and sample_percent > 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self.accepted = 0
        self.written = 0
        self.dropped_queue_full = 0
        self.dropped_write_error = 0
        self.failed = False
        self._handle: IO[bytes] | None = None
        self._handle_path: Path | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
            self._thread.start()

    def sampled(self) -> bool:
        """Whether to capture this request: cheap enough to call on every request."""
        return self.enabled and not self.failed and (self.sample_fraction >= 1.0
                                                     or random.random() < self.sample_fraction)  # noqa: S311

    def submit(self, item: CaptureItem) -> None:
        if self.failed:
            self.dropped_write_error += 1
            return
        try:
            self._queue.put_nowait(item)
            self.accepted += 1
        except queue.Full:
            self.dropped_queue_full += 1

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_write_error

    def close(self, timeout: float = 10.0) -> None:
        """Write every accepted record, then stop. Called at shutdown, after the last request."""
        if self._thread is None:
            return
        self._queue.put(self._STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("capture writer did not finish in time", extra={"fields": {"timeout_seconds": timeout}})
        self._thread = None

    # --- writer thread -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < 1000:  # take what is waiting, so one flush covers many records
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is self._STOP or self._STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not self._STOP]
            self._write(batch)  # type: ignore[arg-type]
        self._close_handle()

    def _write(self, batch: list[CaptureItem]) -> None:
        if not batch:
            return
        if self.failed:
            self.dropped_write_error += len(batch)
            return
        try:
            for item in batch:
                handle = self._handle_for(item.inference_time)
                handle.write(capture_record(item, self.model_name))
            if self._handle is not None:
                self._handle.flush()
            self.written += len(batch)
        except OSError as exc:
            self.failed = True
            self.dropped_write_error += len(batch)
            log.error("request capture stopped: the data volume refused a write; predictions continue",
                      extra={"fields": {"error": str(exc), "directory": str(self.directory)}})
            self._close_handle()

    def _handle_for(self, moment: datetime) -> IO[bytes]:
        folder = self.directory / self.model_name / moment.strftime("%Y/%m/%d/%H")
        path = folder / self.file_name
        if self._handle is None or self._handle_path != path:
            self._close_handle()
            folder.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("ab")
            self._handle_path = path
        return self._handle

    def _close_handle(self) -> None:
        if self._handle is not None:
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
            except OSError as exc:
                log.error("closing a capture file failed", extra={"fields": {"error": str(exc)}})
            self._handle = None
            self._handle_path = None


def now_utc() -> datetime:
    return datetime.now(UTC)
