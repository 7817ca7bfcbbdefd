"""Wall time and peak memory of a full synth beside the floor, measured in the same run.

- full:  `cdktf synth` of the default configuration, exactly what `make synth` runs once installed;
- app:   `python main.py`, the same synth without the cdktf CLI around it;
- floor: a process that only imports the AWS provider bindings and synthesizes one resource (floor.py).

Peak memory is the largest sum of RSS over the whole process tree (Python, the jsii Node process and, for the
CLI, its own Node process), sampled every 20 ms. Runs alternate between the commands so that machine noise hits
them alike; the median of each is reported.

    .venv/bin/python bench/synth/run.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    process = psutil.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, tree_rss(process))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()[-2000:]}")
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    if not (Path.home() / ".terraformrc").exists():
        env.setdefault("TF_CLI_CONFIG_FILE", os.devnull)
    with tempfile.TemporaryDirectory() as scratch:
        commands = {
            "full (cdktf synth)": [str(ROOT / "node_modules/.bin/cdktf"), "synth", "--output", f"{scratch}/full"],
            "app (python main.py)": [sys.executable, "main.py"],
            "floor (import + 1 resource)": [sys.executable, "bench/synth/floor.py", f"{scratch}/floor"],
        }
        app_env = {**env, "CDKTF_OUTDIR": f"{scratch}/app"}
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                samples[name].append(measure(command, app_env if name.startswith("app") else env))

    floor_name = "floor (import + 1 resource)"
    floor_time = statistics.median(s[0] for s in samples[floor_name])
    floor_memory = statistics.median(s[1] for s in samples[floor_name])
    results = {}
    print(f"{'command':30} {'wall s (median)':>16} {'x floor':>8} {'peak MiB (median)':>18} {'x floor':>8}")
    for name, runs in samples.items():
        wall = statistics.median(s[0] for s in runs)
        memory = statistics.median(s[1] for s in runs)
        results[name] = {"wall_seconds": round(wall, 2), "peak_mib": round(memory / 2**20),
                         "wall_x_floor": round(wall / floor_time, 2), "memory_x_floor": round(memory / floor_memory, 2),
                         "runs": [[round(t, 2), round(m / 2**20)] for t, m in runs]}
        print(f"{name:30} {wall:16.2f} {wall / floor_time:8.2f} {memory / 2**20:18.0f} {memory / floor_memory:8.2f}")
    out = ROOT / "bench/synth/results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
