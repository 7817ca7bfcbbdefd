"""What the API key check adds to a `/predict` request in process, where a microsecond shows.

Two apps in one process, one checking a set of 20 keys and one checking none, answer the same request (its
`Authorization` header included) straight through ASGI, no network: `--requests` at a time, alternating which goes
first, over `--rounds` rounds. The difference per round is the check's cost as it runs between two inferences (its
code and data cold), which is several times what `timeit` of the check alone says. A control run (`--control`) pits
two apps without keys against each other to show the method's own error.

    .venv/bin/python bench/serving/key_check.py [--rounds 30] [--requests 2000] [--control]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from the repository: the project's packages by path

from bench.serving.instructions import PREDICT  # noqa: E402
from serving.app import create_app  # noqa: E402
from serving.contract import key_set_document, new_api_key, stored_api_key  # noqa: E402
from serving.service import assemble  # noqa: E402
from serving.settings import ServingSettings  # noqa: E402


async def seconds_per_request(app, headers: list[tuple[bytes, bytes]], requests: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "query_string": b"",
             "root_path": "", "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8080),
             "client": ("127.0.0.1", 1)}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": PREDICT, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    started = time.perf_counter()
    for _ in range(requests):
        await app(scope, receive, send)
    elapsed = time.perf_counter() - started
    if sent[0].get("status") != 200:
        raise SystemExit(f"the app answered {sent[0].get('status')}, not 200: {sent[:2]}")
    return elapsed / requests


async def measure(rounds: int, requests: int, control: bool) -> None:
    keys = [new_api_key() for _ in range(20)]
    key_set = key_set_document(stored_api_key(key) for key in keys)
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"content-length", str(len(PREDICT)).encode()), (b"authorization", f"Bearer {keys[7]}".encode())]
    apps = {}
    for name, extra in (("without keys", {}), ("with keys", {} if control else {"api_keys": key_set})):
        settings = ServingSettings(**extra)
        service = assemble(settings)
        await service.start()
        apps[name] = create_app(settings, service)
    await asyncio.sleep(2)  # the model loaded and warm
    times: dict[str, list[float]] = {name: [] for name in apps}
    for round_index in range(rounds):
        order = list(apps.items()) if round_index % 2 == 0 else list(reversed(apps.items()))
        for name, app in order:
            times[name].append(await seconds_per_request(app, headers, requests))
    plain, keyed = times["without keys"], times["with keys"]
    added = [(k - p) * 1e6 for p, k in zip(plain, keyed, strict=True)]
    share = [(k - p) / p for p, k in zip(plain, keyed, strict=True)]
    quartiles = statistics.quantiles(share, n=4)
    print(f"{'control: ' if control else ''}/predict in process: {statistics.median(plain) * 1e6:.1f} us without "
          f"keys, {statistics.median(keyed) * 1e6:.1f} us with; the check adds {statistics.median(added):.2f} us "
          f"({statistics.median(share):.1%}, rounds' quartiles {quartiles[0]:.1%} .. {quartiles[2]:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000, help="requests per app and round")
    parser.add_argument("--control", action="store_true", help="two apps without keys: the method's own error")
    args = parser.parse_args()
    os.environ.update(SERVING_MODELS_DIR=str(ROOT / "serving/example/models"), SERVING_MODEL_NAME="example",
                      SERVING_LOG_LEVEL="WARNING", SERVING_CAPTURE_ENABLED="false")
    asyncio.run(measure(args.rounds, args.requests, args.control))


if __name__ == "__main__":
    main()
