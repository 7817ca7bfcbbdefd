"""Instructions per request with and without capture, counted by callgrind: a measure this noisy machine cannot blur.

Each count runs the app in process (no network: requests go straight to the ASGI app, 32 at a time, so the micro-
batching and the capture chunks look as they do under load) under `valgrind --tool=callgrind`, once with N requests
and once with 2N: the difference is what N requests cost, start-up excluded. With capture, the server's shutdown
encodes and writes every record, so the count includes all of capture's work except the kernel's. Needs valgrind
(apt-get install valgrind); takes a few minutes.

    .venv/bin/python bench/serving/instructions.py [--requests 2560]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREDICT = (b'{"instances": [[17.99, 10.38, 122.8, 1001.0, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, '
           b'0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, '
           b'2019.0, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189]]}')
INFER = PREDICT.replace(b'{"instances": [', b'{"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", '
                                             b'"data": ').replace(b"]]}", b"]}]}")
ROUTES = {"/predict": ("/predict", PREDICT), "V2 infer": ("/v2/models/example/infer", INFER)}
CONCURRENCY = 32


async def _request(app, path: str, body: bytes) -> int:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    await app(scope, receive, send)
    return sent[0]["status"]


async def _serve(route: str, capture: bool, requests: int) -> None:
    """The inner run: start the app, wait for the model, serve `requests` requests, shut down."""
    from serving.app import create_app
    from serving.settings import ServingSettings

    path, body = ROUTES[route]
    settings = ServingSettings(models_dir=ROOT / "serving/example/models", model_name="example",
                               capture_dir=Path(tempfile.mkdtemp()), capture_enabled=capture, log_level="WARNING")
    app = create_app(settings)
    app.plane.capture.flush_interval_seconds = 3600  # no timed flush: shutdown encodes and writes everything
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    while await _request(app, path, body) != 200:  # the model loads in the background
        await asyncio.sleep(0.01)
    for _ in range(requests // CONCURRENCY):
        statuses = await asyncio.gather(*(_request(app, path, body) for _ in range(CONCURRENCY)))
        assert set(statuses) == {200}, statuses
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
    await lifespan
    if capture:
        assert app.plane.capture.written == app.plane.capture.accepted > requests


def _count(route: str, capture: bool, requests: int) -> int:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}  # idle BLAS threads spin under valgrind
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
                          "--inner", route, "on" if capture else "off", str(requests)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"I\s+refs:\s+([\d,]+)", run.stderr).group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2560)
    parser.add_argument("--inner", nargs=3, metavar=("ROUTE", "CAPTURE", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        import uvloop

        route, capture, requests = args.inner
        uvloop.run(_serve(route, capture == "on", int(requests)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    n = args.requests
    for route in ROUTES:
        per_request = {capture: (_count(route, capture, 2 * n) - _count(route, capture, n)) / n
                       for capture in (False, True)}
        extra = per_request[True] - per_request[False]
        print(f"{route:9} instructions per request without capture {per_request[False]:8.0f}, with "
              f"{per_request[True]:8.0f}: capture {extra:6.0f} ({100 * extra / per_request[False]:.1f}%)", flush=True)


if __name__ == "__main__":
    main()
