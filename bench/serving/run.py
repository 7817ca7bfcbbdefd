"""Throughput and latency of the model server beside the HTTP floor, and what request capture costs, in one run.

Every case (the floor: a bare ASGI app answering fixed JSON, floor_app.py; the server on each route, with and
without capture) runs as its own process on its own port, all pinned to core 0 and started once; wrk, pinned to
core 1, then loads them in turn for `--seconds` each, over `--rounds` rounds. Short alternating slices make the
machine's drift (this VM's speed wanders by +-20% within seconds) hit every case alike; medians are reported.
One worker, 32 connections, single-row requests on the bundled example model. Also: seconds from process start to
ready, and each worker's RSS after the load. Traffic goes to 127.0.0.1 only.

Capture's cost is measured apart, because alternating slices cannot resolve a few percent on this machine: the
server with capture and the one without are loaded at the same time, each by its own wrk, so the kernel splits
core 0 evenly between them and 1 - (requests/s with capture) / (requests/s without) is the share of the CPU a
request costs more with capture, whatever the machine's speed at that moment. A control pair of two identical
servers without capture shows the method's own error.

Workers (`SERVING_WORKERS`, one per vCPU on ECS) are measured apart too: `/predict` with one worker and with two,
neither pinned, loaded in alternating slices by a wrk that is not pinned either (2 threads, 64 connections): on
this 2-core machine the load generator shares the cores with the workers, so the gain shown is a floor of what a
2-vCPU task gives behind a load balancer.

API keys (`SERVING_API_KEYS`, a set of 20 keys; every request sends one) are measured like capture: the server that
checks the keys and one that checks none, both sent the same requests (Authorization header included), loaded at the
same time.

Shadow traffic (`SERVING_SHADOW_URL`, a copy of every request to a stand-in shadow, the floor app on core 1) is
measured apart as well: the p99 of `/predict` with and without the shadow at a set pace (16 connections, 5 ms
between answer and next request: the answer's latency, not a queue), in alternating slices; and its CPU cost at
saturation, both servers loaded at once like capture's.

    .venv/bin/python bench/serving/run.py [--seconds 3] [--rounds 16] [--capture-rounds 16] [--worker-rounds 16]
                                          [--shadow-rounds 16] [--key-rounds 16]
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
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIRST_PORT = 8091
FLOOR = "floor (bare ASGI, fixed JSON)"
TWIN = "/predict, a second server"  # the control of the capture cost measurement
SHADOW_TARGET = "shadow stand-in (the floor, core 1)"
SHADOWED = "/predict, shadow 100%"
KEYED = "/predict, API key"
KEY_HEADER_ONLY = "/predict, the same header, no keys"
"""The keyed case's baseline: the same requests (Authorization header included) to a server that checks no key."""
KEYS_IN_SET = 20
"""The keyed server's key set: the request's key is one of these many (the check costs one digest whatever)."""


@dataclass
class Case:
    name: str
    command: list[str]
    env: dict[str, str]
    script: str
    path: str
    ready_path: str
    cpus: str = "0"
    """The cores the server may run on (taskset list)."""
    in_table: bool = True
    """Loaded in the table's rounds (the shadow's cases are measured apart)."""
    port: int = 0
    process: subprocess.Popen | None = None
    ready_seconds: float = 0.0
    samples: list[dict[str, float]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def wrk_command(case: Case, seconds: int, cpus: str = "1", threads: int = 1, connections: int = 32,
                script: str | None = None) -> list[str]:
    return ["taskset", "-c", cpus, "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
            str(HERE / (script or case.script)), case.url + case.path]


def wrk(case: Case, seconds: int, **options: object) -> dict[str, float]:
    return parse_wrk(case, subprocess.run(wrk_command(case, seconds, **options), capture_output=True, text=True,
                                          check=True).stdout)


def parse_wrk(case: Case, out: str) -> dict[str, float]:
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"failed requests during the benchmark of {case.name}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99_value, p99_unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_unit]
    return {"rps": rps, "p99_ms": float(p99_value) * scale}


def start(case: Case, timeout: float = 30.0) -> None:
    """Start the case's process and time it from start to its first 200 on the ready path."""
    started = time.perf_counter()
    case.process = subprocess.Popen(["taskset", "-c", case.cpus, *case.command], cwd=ROOT, env=case.env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while time.perf_counter() - started < timeout:
        if case.process.poll() is not None:
            raise SystemExit(f"{case.name} exited: {case.process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(case.url + case.ready_path, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    case.ready_seconds = time.perf_counter() - started
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"{case.name} did not become ready")


def simultaneous_cost(plain: Case, other: Case, seconds: int, rounds: int) -> list[float]:
    """1 - rps(other) / rps(plain) per round, both loaded at once; who starts first alternates."""
    costs = []
    for round_index in range(rounds):
        pair = (plain, other) if round_index % 2 == 0 else (other, plain)
        running = {case.name: subprocess.Popen(wrk_command(case, seconds), stdout=subprocess.PIPE, text=True)
                   for case in pair}
        rps = {name: parse_wrk(by, process.communicate()[0])["rps"]
               for (name, process), by in zip(running.items(), pair, strict=True)}
        costs.append(1 - rps[other.name] / rps[plain.name])
    return costs


def all_cores_of() -> str:
    return ",".join(str(core) for core in sorted(os.sched_getaffinity(0)))


def resident_mib(pid: int) -> float:
    """RSS of the server and its worker processes."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in (process, *process.children(recursive=True))) / 2**20


def stop(case: Case) -> None:
    if case.process is not None and case.process.poll() is None:
        case.process.terminate()
        case.process.wait(30)


def key_script(folder: Path) -> tuple[str, str]:
    """(key set document, wrk script sending one of its keys) for the keyed case."""
    sys.path.insert(0, str(ROOT))  # run as a script from the repository: the project's packages by path
    from serving.contract import key_set_document, new_api_key, stored_api_key

    keys = [new_api_key() for _ in range(KEYS_IN_SET)]
    script = folder / "predict_key.lua"
    script.write_text((HERE / "predict.lua").read_text() + f'wrk.headers["Authorization"] = "Bearer {keys[7]}"\n')
    return key_set_document(stored_api_key(key) for key in keys), str(script)


def build_cases(capture_dir: Path) -> list[Case]:
    python = sys.executable
    server_env = {**os.environ, "SERVING_MODELS_DIR": str(ROOT / "serving/example/models"),
                  "SERVING_MODEL_NAME": "example", "SERVING_LOG_LEVEL": "WARNING",
                  "SERVING_CAPTURE_DIR": str(capture_dir)}
    no_capture = {**server_env, "SERVING_CAPTURE_ENABLED": "false"}
    server = [python, "-m", "serving"]
    floor = [python, "-m", "uvicorn", "--app-dir", str(HERE), "floor_app:app", "--loop", "uvloop", "--http",
             "httptools", "--log-level", "warning", "--no-access-log"]
    infer = "/v2/models/example/infer"
    cases = [
        Case(FLOOR, floor, dict(os.environ), "predict.lua", "/predict", "/predict"),
        Case("/predict", server, no_capture, "predict.lua", "/predict", "/v2/health/ready"),
        Case("V2 infer", server, no_capture, "infer.lua", infer, "/v2/health/ready"),
        Case("/predict, capture 100%", server, server_env, "predict.lua", "/predict", "/v2/health/ready"),
        Case("V2 infer, capture 100%", server, server_env, "infer.lua", infer, "/v2/health/ready"),
        Case(TWIN, server, no_capture, "predict.lua", "/predict", "/v2/health/ready"),
    ]
    all_cores = all_cores_of()
    cases += [Case(f"/predict, {count} worker{'s' if count > 1 else ''}, any core", server,
                   {**no_capture, "SERVING_WORKERS": str(count)}, "predict.lua", "/predict", "/v2/health/ready",
                   cpus=all_cores) for count in (1, 2)]
    shadow_port = FIRST_PORT + len(cases)
    # The shadow is another task in production: here the cheapest server that reads the copies and answers (the
    # floor), on wrk's core, so that it takes as little as possible from the load generator.
    key_set, keyed_script = key_script(capture_dir.parent)
    cases.append(Case(KEYED, server, {**no_capture, "SERVING_API_KEYS": key_set}, keyed_script, "/predict",
                      "/v2/health/ready", in_table=False))
    cases.append(Case(KEY_HEADER_ONLY, server, no_capture, keyed_script, "/predict", "/v2/health/ready",
                      in_table=False))
    cases += [Case(SHADOW_TARGET, floor, dict(os.environ), "predict.lua", "/predict", "/predict", cpus="1",
                   in_table=False),
              Case(SHADOWED, server, {**no_capture, "SERVING_SHADOW_URL": f"http://127.0.0.1:{shadow_port}",
                                      "SERVING_SHADOW_PERCENT": "100"}, "predict.lua", "/predict",
                   "/v2/health/ready", in_table=False)]
    for index, case in enumerate(cases):
        case.port = FIRST_PORT + index
        if case.command is floor:
            case.command = [*floor, "--port", str(case.port)]
        else:
            case.env = {**case.env, "SERVING_PORT": str(case.port)}
    return cases


def print_table(summary: dict[str, dict[str, float]]) -> None:
    floor_result = summary[FLOOR]
    print(f"{'case':32} {'req/s':>9} {'% floor':>8} {'p99 ms':>8} {'x floor':>8} {'ready s':>8} {'RSS MiB':>8}")
    for name, result in summary.items():
        print(f"{name:32} {result['rps']:9.0f} {100 * result['rps'] / floor_result['rps']:7.0f}% "
              f"{result['p99_ms']:8.2f} {result['p99_ms'] / floor_result['p99_ms']:8.2f} {result['ready_s']:8.2f} "
              f"{result['rss_mib']:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=16, help="rounds of the table (0: no table)")
    parser.add_argument("--capture-rounds", type=int, default=16, help="rounds of each capture-cost pair")
    parser.add_argument("--worker-rounds", type=int, default=16, help="rounds of the one vs two workers pair")
    parser.add_argument("--shadow-rounds", type=int, default=16, help="rounds of the with and without shadow pair")
    parser.add_argument("--key-rounds", type=int, default=16, help="rounds of the with and without API key pair")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    scratch = Path(tempfile.mkdtemp())
    cases = build_cases(scratch / "capture")
    try:
        for case in cases:
            start(case)
        pinned = [case for case in cases if case.cpus == "0" and case.in_table]
        unpinned = [case for case in cases if case.cpus not in ("0", "1")]
        for round_index in range(args.rounds):
            # Rotate who goes first, so no case always follows the same neighbour. The twin is loaded too, so that
            # the control pair has the same history as the pairs it controls.
            shift = round_index % len(pinned)
            for case in pinned[shift:] + pinned[:shift]:
                case.samples.append(wrk(case, args.seconds))
        for round_index in range(args.worker_rounds):
            for case in unpinned if round_index % 2 == 0 else unpinned[::-1]:
                case.samples.append(wrk(case, args.seconds, cpus=all_cores_of(), threads=2, connections=64))
        by_name = {case.name: case for case in cases}
        paced: dict[str, list[dict[str, float]]] = {"/predict": [], SHADOWED: []}
        for round_index in range(args.shadow_rounds):
            for name in list(paced) if round_index % 2 == 0 else list(paced)[::-1]:
                paced[name].append(wrk(by_name[name], args.seconds, connections=16, script="predict_paced.lua"))
        shadow_status = json.loads(urllib.request.urlopen(  # noqa: S310 - loopback
            by_name[SHADOWED].url + "/status", timeout=5).read())["shadow"]
        costs = {}
        if args.capture_rounds:
            costs = {f"capture on {kind}": simultaneous_cost(by_name[kind], by_name[f"{kind}, capture 100%"],
                                                             args.seconds, args.capture_rounds)
                     for kind in ("/predict", "V2 infer")}
            costs["control: two /predict servers without capture"] = simultaneous_cost(
                by_name["/predict"], by_name[TWIN], args.seconds, args.capture_rounds)
        if args.shadow_rounds:
            costs["shadow 100% on /predict"] = simultaneous_cost(by_name["/predict"], by_name[SHADOWED],
                                                                 args.seconds, args.shadow_rounds)
        if args.key_rounds:
            costs["API key on /predict"] = simultaneous_cost(by_name[KEY_HEADER_ONLY], by_name[KEYED],
                                                             args.seconds, args.key_rounds)
        rss = {case.name: resident_mib(case.process.pid) for case in cases}
    finally:
        for case in cases:
            stop(case)
        shutil.rmtree(scratch, ignore_errors=True)

    paced_summary = {name: {"rps": statistics.median(s["rps"] for s in samples),
                            "p99_ms": statistics.median(s["p99_ms"] for s in samples)}
                     for name, samples in paced.items() if samples}
    summary = {case.name: {"rps": statistics.median(s["rps"] for s in case.samples),
                           "p99_ms": statistics.median(s["p99_ms"] for s in case.samples),
                           "ready_s": case.ready_seconds, "rss_mib": rss[case.name]}
               for case in cases if case.name != TWIN and case.samples}
    if any(name in summary for name in (FLOOR, "/predict")):
        print_table({name: result for name, result in summary.items()
                     if by_name[name].cpus == "0" and by_name[name].in_table})
    if len(paced_summary) == 2:
        plain, shadowed = paced_summary["/predict"], paced_summary[SHADOWED]
        print(f"shadow at a set pace: /predict {plain['rps']:.0f} req/s p99 {plain['p99_ms']:.2f} ms; with a shadow "
              f"copy of every request {shadowed['rps']:.0f} req/s p99 {shadowed['p99_ms']:.2f} ms; copies "
              f"{shadow_status['sent']} sent, {shadow_status['dropped']} dropped, {shadow_status['failed']} failed")
    one, two = (summary.get(case.name) for case in unpinned)
    if one and two:
        print(f"workers, any core, wrk on the same cores: 1 worker {one['rps']:.0f} req/s (p99 {one['p99_ms']:.2f} ms, "
              f"{one['rss_mib']:.0f} MiB), 2 workers {two['rps']:.0f} req/s (p99 {two['p99_ms']:.2f} ms, "
              f"{two['rss_mib']:.0f} MiB): x{two['rps'] / one['rps']:.2f}")
    for name, per_round in costs.items():
        quartiles = statistics.quantiles(per_round, n=4)
        print(f"{name}: median {100 * statistics.median(per_round):.1f}% of throughput "
              f"(rounds' quartiles {100 * quartiles[0]:.1f}% .. {100 * quartiles[2]:.1f}%)")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"args": vars(args), "summary": summary, "capture_cost": costs,
                                                 "shadow_paced": paced_summary,
                                                 "samples": {case.name: case.samples for case in cases}},
                                                indent=2) + "\n")


if __name__ == "__main__":
    main()
