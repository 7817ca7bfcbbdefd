"""The monitor's time and peak memory for one window of 100k captured rows of the example model, on one core.

Writes the captures first (100k single-row requests, half `/predict` and half Open Inference Protocol with all
outputs, as SageMaker Data Capture lines encoded by the server's own encoder, rows drawn from the breast-cancer data
set), then runs `python -m pipeline.monitor report --html` on them pinned to one core, as the scheduled task would
(its task has one vCPU), and reads its wall time and peak RSS (`/usr/bin/time -v`). Target: under a minute and
1 GiB.

    .venv/bin/python bench/monitor/run.py [--rows 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from the repository: the project's packages by path

from serving.capture_records import encode_records  # noqa: E402
from serving.contract import capture_folder  # noqa: E402
from serving.example.train_model import write_data_set  # noqa: E402

CHUNK = 5000


def write_captures(folder: Path, rows: int) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer().data.astype(np.float32)
    rng = np.random.default_rng(3)
    hour_folder = capture_folder(folder, "example", "main") / "2026/12/05/10"
    hour_folder.mkdir(parents=True)
    moment = 1_764_928_800.0  # 2026-12-05T10:00:00Z
    for part, start in enumerate(range(0, rows, CHUNK)):
        items = []
        for index in range(start, min(start + CHUNK, rows)):
            row = data[rng.integers(0, len(data))].tolist()
            label = int(rng.integers(0, 2))
            if index % 2:
                request = json.dumps({"instances": [row]}).encode()
                response = json.dumps({"predictions": [label]}).encode()
            else:
                request = json.dumps({"id": f"r{index}", "inputs": [{"name": "input", "shape": [1, 30],
                                                                     "datatype": "FP32", "data": row}]}).encode()
                response = json.dumps({"model_name": "example", "model_version": "1", "outputs": [
                    {"name": "label", "shape": [1], "datatype": "INT64", "data": [label]},
                    {"name": "probabilities", "shape": [1, 2], "datatype": "FP32",
                     "data": [1 - label * 0.9, label * 0.9]}]}).encode()
            items.extend((request, response, None, moment + index * 0.01, "1", 3.5))
        (hour_folder / f"bench-{part:03d}.jsonl").write_bytes(
            b"".join(chunk.lines for chunk in encode_records(items, "example", "main")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", help="write the captures, baseline and reports here and keep them")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    captures, baseline, data = folder / "captures", folder / "baseline.json", folder / "breast_cancer.csv"
    started = time.perf_counter()
    write_captures(captures, args.rows)
    write_data_set(data)
    python = sys.executable
    subprocess.run([python, "-m", "pipeline.monitor", "baseline", "--data", str(data), "--model",
                    str(ROOT / "serving/example/models/1"), "--out", str(baseline), "--drop", "target"], cwd=ROOT,
                   check=True, capture_output=True)
    size = sum(path.stat().st_size for path in captures.rglob("*.jsonl")) / 2**20
    print(f"{args.rows} rows in {size:.0f} MiB of captures, written in {time.perf_counter() - started:.1f} s")
    command = ["/usr/bin/time", "-v", "taskset", "-c", "0", python, "-m", "pipeline.monitor", "report",
               "--captures", str(captures), "--baseline", str(baseline), "--html", str(folder / "report.html"),
               "--format", "json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    seconds = (int(wall[1] or 0) * 3600 + int(wall[2]) * 60 + float(wall[3])) if wall else float("nan")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) / 1024
    document = json.loads(done.stdout)
    print(f"report of {document['rows']} rows ({document['status']}, {len(document['drifted_features'])} features "
          f"drifted): {seconds:.1f} s wall on one core, peak RSS {peak:.0f} MiB (target: 60 s, 1024 MiB)")


if __name__ == "__main__":
    main()
