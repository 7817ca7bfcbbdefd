"""Shadow traffic: a copy of a share of the requests a serving variant answered, sent to the shadow variant.

The request path only samples and puts the request on a bounded queue (no I/O, no waiting); sender threads post the
copies over keep-alive connections with the standard library's HTTP client and read the answers only to count them:
the shadow's answers are captured by the shadow's own server and never returned to anyone. A full queue drops the
copy and counts it; a shadow that is down or slow costs failed copies, never latency or errors on the serving variant.
"""

from __future__ import annotations

import http.client
import logging
import queue
import random
import threading
import urllib.parse
from dataclasses import dataclass

from serving.binary import HEADER_LENGTH

log = logging.getLogger("serving.shadow")
SHADOW_HEADER = "X-Shadow-Of"
"""Sent with every copy (the serving variant's name), so the shadow's logs can tell copies from direct requests."""


@dataclass
class _Counts:
    sent: int = 0
    failed: int = 0


class ShadowMirror:
    """Counters: `offered` (sampled copies), `dropped` (queue full or closing), and per sender `sent`/`failed`."""

    def __init__(self, url: str, percent: float, source_variant: str, queue_size: int = 1000, senders: int = 2,
                 timeout_seconds: float = 5.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"shadow URL must be http://host[:port][/prefix], got {url!r}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.fraction = percent / 100.0
        self.source_variant = source_variant
        self.timeout_seconds = timeout_seconds
        self.offered = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, bytes, int | None] | None] = queue.Queue(queue_size)
        self._counts = [_Counts() for _ in range(senders)]
        self._threads: list[threading.Thread] = []

    @property
    def sent(self) -> int:
        return sum(count.sent for count in self._counts)

    @property
    def failed(self) -> int:
        return sum(count.failed for count in self._counts)

    def status(self) -> dict[str, object]:
        return {"url": self.url, "percent": round(self.fraction * 100.0, 3), "offered": self.offered,
                "sent": self.sent, "failed": self.failed, "dropped": self.dropped}

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [threading.Thread(target=self._send, args=(count,), name=f"shadow-{index}", daemon=True)
                         for index, count in enumerate(self._counts)]
        for thread in self._threads:
            thread.start()

    def offer(self, path: str, body: bytes, header_length: int | None = None) -> None:
        """Copy this answered request to the shadow if it is sampled. Runs on the request path: never blocks."""
        if self.fraction < 1.0 and random.random() >= self.fraction:  # noqa: S311 - sampling only
            return
        self.offered += 1
        try:
            self._queue.put_nowait((path, body, header_length))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 2.0) -> None:
        """Stop the senders; copies still queued after `timeout` are dropped (and counted)."""
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.dropped += 1
        self._threads = []

    def _send(self, counts: _Counts) -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            path, body, header_length = item
            headers = {"Content-Type": "application/json", SHADOW_HEADER: self.source_variant}
            if header_length is not None:
                headers[HEADER_LENGTH] = str(header_length)
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_seconds)
                connection.request("POST", self.base_path + path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status >= 500:
                    counts.failed += 1
                else:
                    counts.sent += 1
            except (OSError, http.client.HTTPException) as exc:
                counts.failed += 1
                if counts.failed in (1, 10, 100) or counts.failed % 1000 == 0:
                    log.warning("shadow copy failed", extra={"fields": {"url": self.url, "error": str(exc),
                                                                        "failed": counts.failed}})
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()
