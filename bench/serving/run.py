"""Throughput and latency of the model server beside the HTTP floor, in one run.

The server (or the floor: a bare ASGI app answering fixed JSON, floor_app.py) is pinned to core 0, wrk to core 1;
one worker, 32 connections, single-row requests on the bundled example model. Cases alternate over `--rounds` so
that machine noise hits them alike; medians are reported. Also: seconds from process start to ready, and the
worker's RSS after the load. Traffic goes to 127.0.0.1 only.

    .venv/bin/python bench/serving/run.py [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PORT = 8091
URL = f"http://127.0.0.1:{PORT}"


def wrk(script: str, path: str, seconds: int) -> dict[str, float]:
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s",
                          str(HERE / script), URL + path], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"failed requests during the benchmark:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99_value, p99_unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_unit]
    return {"rps": rps, "p99_ms": float(p99_value) * scale}


def wait_ready(process: subprocess.Popen, path: str, timeout: float = 30.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(URL + path, timeout=1) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit("server did not become ready")


def start(command: list[str], env: dict[str, str], ready_path: str) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", "0", *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    wait_ready(process, ready_path)
    return process, time.perf_counter() - started


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    python = sys.executable
    scratch = Path(tempfile.mkdtemp())
    base_env = {**os.environ, "SERVING_MODELS_DIR": str(ROOT / "serving/example/models"),
                "SERVING_MODEL_NAME": "example", "SERVING_PORT": str(PORT), "SERVING_LOG_LEVEL": "WARNING",
                "SERVING_CAPTURE_DIR": str(scratch / "capture")}
    server = [python, "-m", "serving"]
    floor = [python, "-m", "uvicorn", "--app-dir", str(HERE), "floor_app:app", "--port", str(PORT), "--loop",
             "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"]
    cases = {
        "floor (bare ASGI, fixed JSON)": (floor, {}, "predict.lua", "/predict"),
        "/predict": (server, {"SERVING_CAPTURE_ENABLED": "false"}, "predict.lua", "/predict"),
        "V2 infer": (server, {"SERVING_CAPTURE_ENABLED": "false"}, "infer.lua", "/v2/models/example/infer"),
        "/predict, capture 100%": (server, {}, "predict.lua", "/predict"),
        "V2 infer, capture 100%": (server, {}, "infer.lua", "/v2/models/example/infer"),
    }
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (command, extra, script, path) in cases.items():
            ready_path = "/predict" if command is floor else "/v2/health/ready"
            process, ready_seconds = start(command, {**base_env, **extra}, ready_path)
            try:
                result = wrk(script, path, args.seconds)
                result["ready_s"] = ready_seconds
                result["rss_mib"] = psutil.Process(process.pid).memory_info().rss / 2**20
            finally:
                stop(process)
            samples[name].append(result)
    shutil.rmtree(scratch, ignore_errors=True)

    summary = {name: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
               for name, runs in samples.items()}
    floor_result = summary["floor (bare ASGI, fixed JSON)"]
    print(f"{'case':32} {'req/s':>9} {'% floor':>8} {'p99 ms':>8} {'x floor':>8} {'ready s':>8} {'RSS MiB':>8}")
    for name, result in summary.items():
        print(f"{name:32} {result['rps']:9.0f} {100 * result['rps'] / floor_result['rps']:7.0f}% "
              f"{result['p99_ms']:8.2f} {result['p99_ms'] / floor_result['p99_ms']:8.2f} {result['ready_s']:8.2f} "
              f"{result['rss_mib']:8.0f}")
    for kind in ("/predict", "V2 infer"):
        cost = 1 - summary[f"{kind}, capture 100%"]["rps"] / summary[kind]["rps"]
        print(f"capture cost on {kind}: {100 * cost:.1f}% of throughput")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"summary": summary, "runs": samples}, indent=2) + "\n")


if __name__ == "__main__":
    main()
