"""What both HTTP front ends share (the raw ASGI inference path and the FastAPI app): one body reader and one mapping
of errors to `{"error": message}` responses, so a client sees the same answer whichever path served it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
from starlette.types import Receive

from serving.errors import InvalidRequest, PayloadTooLarge, ServingError
from serving.metrics import Metrics

log = logging.getLogger("serving.http")
INTERNAL_ERROR = "internal server error; the server's log has the details"


async def read_body(headers: Iterable[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes (declared or streamed). The body is
    parsed as JSON whatever the Content-Type says (curl's `-d` sends form-urlencoded)."""
    for key, value in headers:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise PayloadTooLarge(f"request body of {int(value)} bytes is larger than the limit of {limit}")
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def error_payload(status: int, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": message})


def serving_error(exc: ServingError) -> tuple[int, bytes]:
    return error_payload(exc.status, exc.message)


def unexpected_error(exc: BaseException, metrics: Metrics, path: str) -> tuple[int, bytes]:
    """A failure no handler expected (a bug): logged with its traceback, counted as a server error, answered 500."""
    metrics.record_server_error()
    log.error("request failed", exc_info=exc, extra={"fields": {"path": path}})
    return error_payload(500, INTERNAL_ERROR)
