"""Request data capture to the data volume, in SageMaker Data Capture's JSON Lines format.

The request path only samples and appends the record's fields to a list. Every `flush_interval_seconds` the event
loop encodes what waits (capture_records), in chunks of ENCODE_CHUNK records between which requests are served, and
hands one buffer per hour to a writer thread for one write() per file. Encoding in the writer thread would fight the
event loop for the GIL, and encoding each record as it comes costs more than a chunk at once (bench/serving).

Files are partitioned `<dir>/<model>/<variant>/yyyy/mm/dd/hh/<instance>-<pid>-<start>-<n>.jsonl` (serving/contract.py),
so two tasks or two workers never append to the same file. A file is written under a hidden name and sealed (renamed)
once its server will not write to it again: when a record of a later hour arrives, when an idle writer sees its hour
is over, and on close. The export task takes sealed files only. A full queue
drops the new record; a volume that fails a write (full, read-only, gone) stops capture: both are counted and logged,
and predictions never notice. `close()` writes every accepted record before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from serving.capture_records import FIELDS_PER_RECORD, EncodedLines, encode_records
from serving.contract import (
    CAPTURE_HOUR_FORMAT,
    CAPTURE_SUFFIX,
    DEFAULT_VARIANT,
    capture_folder,
    open_capture_name,
    sealed_capture_name,
)

ENCODE_CHUNK = 256
SEAL_CHECK_SECONDS = 30.0
"""How often an idle writer checks whether its file's hour is over (then seals it)."""
_now = time.time
log = logging.getLogger("serving.capture")


class CaptureWriter:
    """Counters: `accepted`, `written`, `dropped_queue_full`, `dropped_write_error`; `failed` once the volume
    refused a write. `start()` and `close()` run on the event loop."""

    def __init__(self, directory: Path, model_name: str, instance_id: str, sample_percent: float = 100.0,
                 queue_size: int = 10_000, enabled: bool = True, flush_interval_seconds: float = 0.2,
                 variant: str = DEFAULT_VARIANT):
        self.directory = directory
        self.model_name = model_name
        self.variant = variant
        # Unique per process start (a restarted container may get the same host name and pid); `-<n>` per file.
        self.file_stem = f"{instance_id}-{os.getpid()}-{int(time.time() * 1000):x}"
        self._files_opened = 0
        self.enabled = enabled and sample_percent > 0
        # 0 when disabled, so that one comparison answers both questions on the request path.
        self.sample_fraction = sample_percent / 100.0 if self.enabled else 0.0
        self.queue_size = queue_size
        self.flush_interval_seconds = flush_interval_seconds
        self.accepted = 0
        self.written = 0
        self.dropped_queue_full = 0
        self.dropped_write_error = 0
        self.failed = False
        # Event loop only: accepted records (their fields, flat), the batch being encoded and how far, the encoded
        # lines not yet handed over.
        self._pending: list[Any] = []
        self._taken: list[Any] = []
        self._taken_at = 0
        self._encoded: list[EncodedLines] = []
        self._to_write: deque[list[EncodedLines]] = deque()  # handed to the writer thread
        self._settled = 0  # accepted records the writer thread has written or given up on (it alone counts them)
        self._wake = threading.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handle: IO[bytes] | None = None
        self._handle_path: Path | None = None
        self._handle_hour: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()
        self._timer = self._loop.call_later(self.flush_interval_seconds, self._encode_tick)

    def offer(self, request_body: bytes, response_body: bytes, inference_id: str | None, model_version: str,
              latency_ms: float, inference_time: float | None = None) -> None:
        """Capture this request if it is sampled. Runs on every request, so it only samples, counts and appends."""
        if self.sample_fraction < 1.0 and random.random() >= self.sample_fraction:  # noqa: S311 - sampling only
            return
        if self.failed:
            self.dropped_write_error += 1
        elif self.accepted - self._settled >= self.queue_size:  # a slow volume must not grow the memory without end
            self.dropped_queue_full += 1
        else:
            self._pending.extend((request_body, response_body, inference_id,
                                  _now() if inference_time is None else inference_time, model_version,
                                  latency_ms))
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
        self._encode(self.accepted)
        self._hand_over()
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("capture writer did not finish in time", extra={"fields": {"timeout_seconds": timeout}})
        self._thread = None

    # --- event loop: encoding --------------------------------------------------------------------------------------

    def _waiting(self) -> bool:
        return bool(self._pending) or self._taken_at * FIELDS_PER_RECORD < len(self._taken)

    def _encode(self, count: int) -> None:
        """Encode up to `count` waiting records, ENCODE_CHUNK at a time."""
        while count > 0 and self._waiting():
            if self._taken_at * FIELDS_PER_RECORD >= len(self._taken):
                self._taken, self._pending, self._taken_at = self._pending, [], 0
            start = self._taken_at
            stop = min(start + min(count, ENCODE_CHUNK), len(self._taken) // FIELDS_PER_RECORD)
            self._encoded.extend(encode_records(self._taken[start * FIELDS_PER_RECORD:stop * FIELDS_PER_RECORD],
                                                self.model_name, self.variant))
            self._taken_at = stop
            count -= stop - start
        if not self._waiting():
            self._taken, self._taken_at = [], 0

    def _hand_over(self) -> None:
        if self._encoded:
            self._to_write.append(self._encoded)
            self._encoded = []
            self._wake.set()

    def _encode_tick(self) -> None:
        assert self._loop is not None
        self._encode(ENCODE_CHUNK)
        if self._waiting():  # more waiting: continue once the requests queued meanwhile have run
            self._timer = None
            self._loop.call_soon(self._encode_tick)
            return
        self._hand_over()
        self._timer = self._loop.call_later(self.flush_interval_seconds, self._encode_tick)

    # --- writer thread: file I/O -----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            if not self._wake.wait(SEAL_CHECK_SECONDS):
                self._seal_if_hour_over()
                continue
            self._wake.clear()
            while self._to_write:
                self._write(self._to_write.popleft())
            if self._stopping and not self._to_write:
                break
        self._close_handle()

    def _write(self, batch: list[EncodedLines]) -> None:
        for part in batch:
            if self.failed:
                self.dropped_write_error += part.records
            else:
                try:
                    # One write() per hour's buffer, nearly always one per flush: each releases the GIL, and taking
                    # it back from a busy event loop costs a forced thread switch.
                    self._handle_for(part.hour).write(part.lines)
                    self.written += part.records
                except OSError as exc:
                    self.failed = True
                    self.dropped_write_error += part.records
                    log.error("request capture stopped: the data volume refused a write; predictions continue",
                              extra={"fields": {"error": str(exc), "directory": str(self.directory)}})
                    self._close_handle()
            self._settled += part.records

    def _handle_for(self, hour: int) -> IO[bytes]:
        if self._handle is None or self._handle_hour != hour:
            self._close_handle()
            moment = datetime.fromtimestamp(hour * 3600, UTC)
            folder = (capture_folder(self.directory, self.model_name, self.variant)
                      / moment.strftime(CAPTURE_HOUR_FORMAT))
            folder.mkdir(parents=True, exist_ok=True)
            self._files_opened += 1
            path = folder / open_capture_name(f"{self.file_stem}-{self._files_opened}{CAPTURE_SUFFIX}")
            self._handle = path.open("ab", buffering=0)  # unbuffered: one write() is one system call
            self._handle_path = path
            self._handle_hour = hour
        return self._handle

    def _seal_if_hour_over(self) -> None:
        """An idle writer's file is sealed once its hour is over, so the export need not wait for traffic."""
        if self._handle_hour is not None and self._handle_hour < int(_now() // 3600) and not self._to_write:
            self._close_handle()

    def _close_handle(self) -> None:
        """Flush, close and seal the current file: the export may take it from now on."""
        if self._handle is None or self._handle_path is None:
            return
        path = self._handle_path
        try:
            os.fsync(self._handle.fileno())
            self._handle.close()
            path.rename(path.with_name(sealed_capture_name(path.name)))
        except OSError as exc:
            log.error("closing a capture file failed", extra={"fields": {"error": str(exc), "path": str(path)}})
        self._handle = None
        self._handle_path = None
        self._handle_hour = None
