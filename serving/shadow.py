"""Shadow traffic: a copy of a share of the requests a serving variant answered, sent to the shadow variant.

The request path only samples and puts the request on a bounded queue (no I/O, no waiting). Sender tasks on the
same event loop post the copies over keep-alive connections and read the answers only to count them: the shadow's
answers are captured by the shadow's own server and never returned to anyone. They run on the event loop, not in
threads, because a sending thread holds the GIL for up to the interpreter's switch interval while the event loop
waits for it: measured, that doubled the serving variant's p99 (bench/serving). On the loop a copy costs a write
and a parse (httptools, in C) between requests. A full queue drops the copy and counts it; a shadow that is down or
slow costs failed copies, never an error on the serving variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import urllib.parse

import httptools

from serving.binary import HEADER_LENGTH

log = logging.getLogger("serving.shadow")
SHADOW_HEADER = "X-Shadow-Of"
"""Sent with every copy (the serving variant's name), so the shadow's logs can tell copies from direct requests."""


class ShadowMirror:
    """Counters: `offered` (sampled copies), `sent` (answered below 500), `failed`, `dropped` (queue full or
    closing). `start()` and `close()` run on the event loop."""

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
        self.queue_size = queue_size
        self.senders = senders
        self.timeout_seconds = timeout_seconds
        self.offered = 0
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[str, bytes, int | None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fixed_headers = (f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                               f"{SHADOW_HEADER}: {source_variant}\r\n").encode()

    def status(self) -> dict[str, object]:
        return {"url": self.url, "percent": round(self.fraction * 100.0, 3), "offered": self.offered,
                "sent": self.sent, "failed": self.failed, "dropped": self.dropped}

    def start(self) -> None:
        if self._tasks:
            return
        self._queue = asyncio.Queue(self.queue_size)
        self._tasks = [asyncio.create_task(self._send(), name=f"shadow-{index}") for index in range(self.senders)]

    def offer(self, path: str, body: bytes, header_length: int | None = None) -> None:
        """Copy this answered request to the shadow if it is sampled. Runs on the request path: never waits."""
        if self.fraction < 1.0 and random.random() >= self.fraction:  # noqa: S311 - sampling only
            return
        self.offered += 1
        if self._queue is None:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait((path, body, header_length))
        except asyncio.QueueFull:
            self.dropped += 1

    async def close(self, timeout: float = 2.0) -> None:
        """Let the senders finish what waits for up to `timeout`, then stop; what is left is dropped (and counted)."""
        if self._queue is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.dropped += self._queue.qsize()
        self._tasks = []
        self._queue = None

    # --- sending -------------------------------------------------------------------------------------------------

    def _request(self, path: str, body: bytes, header_length: int | None) -> bytes:
        extra = f"{HEADER_LENGTH}: {header_length}\r\n".encode() if header_length is not None else b""
        return (f"POST {self.base_path}{path} HTTP/1.1\r\n".encode() + self._fixed_headers + extra
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    async def _send(self) -> None:
        assert self._queue is not None
        queue = self._queue
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while True:
                path, body, header_length = await queue.get()
                try:
                    if writer is None or writer.is_closing():
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(self.host, self.port), self.timeout_seconds)
                    assert reader is not None
                    writer.write(self._request(path, body, header_length))
                    status, keep_alive = await asyncio.wait_for(_read_response(reader), self.timeout_seconds)
                    if status >= 500:
                        self.failed += 1
                    else:
                        self.sent += 1
                    if not keep_alive:
                        writer.close()
                        writer = None
                except (TimeoutError, OSError, httptools.HttpParserError) as exc:
                    self.failed += 1
                    if self.failed in (1, 10, 100) or self.failed % 1000 == 0:
                        log.warning("shadow copy failed", extra={"fields": {
                            "url": self.url, "error": f"{type(exc).__name__}: {exc}", "failed": self.failed}})
                    if writer is not None:
                        writer.close()
                    writer = None
                finally:
                    queue.task_done()
        finally:
            if writer is not None:
                writer.close()


class _Response:
    """httptools callbacks: only whether the message is complete matters (the body is read and dropped)."""

    def __init__(self) -> None:
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer; its status and whether the connection stays open."""
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    while not response.complete:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("the shadow closed the connection before answering")
        parser.feed_data(chunk)
    return parser.get_status_code(), parser.should_keep_alive()
