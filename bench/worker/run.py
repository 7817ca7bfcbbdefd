"""The queue worker's throughput and cold start on the example model, beside the real-time server's.

Each round: a fresh bucket, queue and topics in a moto server (its own process, pinned to core 1); `--requests`
single-row V2 requests put under the input prefix (the bucket's notification queues them); then the worker
(`python -m serving.worker`, pinned to core 0, `--concurrency` messages at once) is started, and the bench watches
the output prefix. Reported, medians over `--rounds`:

- cold start: from the worker's process start to the first answer in S3 (imports, model load, first receive,
  inference, write): the part of a start from zero that is the worker's own. On ECS a start from zero also waits
  for the "backlog without capacity" alarm (one-minute periods), Application Auto Scaling, task placement and the
  image pull: not measured here.
- answers per second, from the first answer to the last.
- the worker's CPU per request (user + system, from /proc, over the same span): what a request costs the worker
  itself, whatever moto's speed. Each request is six calls to AWS (receive, two LISTs, GET, PUT, publish, delete,
  some batched); moto answers them from Python on one core, so the wall-clock rate is moto's more than the worker's.

    .venv/bin/python bench/worker/run.py [--requests 400] [--rounds 3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.async_endpoint import REGION, create_async_endpoint  # noqa: E402
from tests.support.repository_copy import free_port  # noqa: E402
from tests.support.serving_data import EXAMPLE_MODELS, infer_body  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def start_moto(port: int) -> subprocess.Popen:
    process = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "moto.server", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                         aws_access_key_id="x", aws_secret_access_key="x").list_buckets()
            return process
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise SystemExit("moto server did not start")


def answered(s3, bucket: str, prefix: str) -> int:
    return sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix))


def one_round(url: str, requests: int, concurrency: int, models: Path, scratch: Path) -> dict[str, float]:
    options = {"endpoint_url": url, "region_name": REGION, "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    s3, sqs, sns = (boto3.client(name, **options) for name in ("s3", "sqs", "sns"))
    endpoint = create_async_endpoint(s3, sqs, sns, visibility_timeout=60)
    body = json.dumps(infer_body()).encode()
    for index in range(requests):
        s3.put_object(Bucket=endpoint.bucket, Key=f"{endpoint.input_prefix}r{index:05d}.json", Body=body)
    environment = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                   "AWS_DEFAULT_REGION": REGION, "SERVING_MODELS_DIR": str(models),
                   "SERVING_CAPTURE_DIR": str(scratch / "capture"), "SERVING_MODEL_NAME": "example",
                   "SERVING_POLL_INTERVAL_SECONDS": "0.05", "WORKER_CONCURRENCY": str(concurrency),
                   "WORKER_WAIT_SECONDS": "1", **endpoint.worker_environment()}
    started = time.monotonic()
    worker = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "serving.worker"], cwd=ROOT,
                              env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while answered(s3, endpoint.bucket, endpoint.output_prefix) == 0:
            if time.monotonic() - started > 60:
                raise SystemExit("no answer within 60 s")
            time.sleep(0.02)
        first = time.monotonic()
        cpu_at_first = cpu_seconds(worker.pid)
        while (done := answered(s3, endpoint.bucket, endpoint.output_prefix)) < requests:
            if time.monotonic() - first > 600:
                raise SystemExit(f"only {done} of {requests} answered in 600 s")
            time.sleep(0.1)
        last = time.monotonic()
        cpu = cpu_seconds(worker.pid) - cpu_at_first
    finally:
        worker.terminate()
        worker.wait(60)
    return {"cold_start_s": first - started, "answers_per_s": (requests - 1) / (last - first),
            "worker_cpu_ms_per_request": 1000 * cpu / (requests - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    port = free_port()
    moto = start_moto(port)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-worker-") as folder:
            scratch = Path(folder)
            shutil.copytree(EXAMPLE_MODELS, scratch / "models")
            for index in range(args.rounds):
                result = one_round(f"http://127.0.0.1:{port}", args.requests, args.concurrency, scratch / "models",
                                   scratch / f"round-{index}")
                print(json.dumps({"round": index, **{k: round(v, 3) for k, v in result.items()}}), flush=True)
                results.append(result)
    finally:
        moto.terminate()
        moto.wait(30)
    medians = {key: round(statistics.median(r[key] for r in results), 3) for key in results[0]}
    print(json.dumps({"requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
                      "median": medians}))


if __name__ == "__main__":
    main()
