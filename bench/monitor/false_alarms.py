"""How often the monitor's default drift settings flag a window that did not drift, and how often they see one that
did: windows drawn from the baseline's own data set (the bundled example model's, sklearn's breast-cancer data,
rows drawn with replacement), analysed as the monitor analyses captures.

A false alarm is a window with any feature flagged (the monitor's drift alarm fires on any feature); predictions
are counted apart. The power rows shift one feature (`mean radius`) by a share of its standard deviation.
`--holdout` is the harder case: the baseline from a random half of the rows, the windows from the other half, drawn
without replacement (new samples of the same population, as production traffic is; so no window can be larger than
that half, 284 rows).

    .venv/bin/python bench/monitor/false_alarms.py [--windows 200] [--sizes 50,200,1000,5000,20000] [--holdout]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from the repository: the project's packages by path

from pipeline.monitor.baseline import compute  # noqa: E402
from pipeline.monitor.captures import Observation  # noqa: E402
from pipeline.monitor.dataset import DataSet  # noqa: E402
from pipeline.monitor.drift import DriftSettings  # noqa: E402
from pipeline.monitor.model import predictions, read_signature  # noqa: E402
from pipeline.monitor.report import analyse_version  # noqa: E402

MODEL = ROOT / "serving/example/models/1"
SHIFTED = "mean radius"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=200, help="windows per size")
    parser.add_argument("--sizes", default="50,200,1000,5000,20000")
    parser.add_argument("--shifts", default="0.25,0.5", help="shifts of mean radius, in standard deviations")
    parser.add_argument("--holdout", action="store_true", help="baseline from half the rows, windows from the rest")
    args = parser.parse_args()
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = [str(name) for name in data.feature_names]
    signature, session = read_signature(MODEL)
    rng = np.random.default_rng(7)
    reference = windows_from = data.data
    if args.holdout:
        order = rng.permutation(len(data.data))
        reference, windows_from = data.data[order[::2]], data.data[order[1::2]]
    with tempfile.NamedTemporaryFile(suffix=".csv") as file:
        baseline = compute(DataSet(names, [reference[:, i] for i in range(len(names))]), signature, session,
                           Path(file.name))
    settings = DriftSettings()
    column = names.index(SHIFTED)
    std = data.data[:, column].std()
    print(f"defaults: {settings}; baseline of {len(reference)} rows, windows from "
          f"{'the other' if args.holdout else 'the same'} {len(windows_from)}")
    print(f"{'rows':>6} {'shift':>6} {'any feature':>12} {'mean radius':>12} {'prediction':>11} methods")
    for size in (int(size) for size in args.sizes.split(",")):
        for shift in (0.0, *(float(value) for value in args.shifts.split(","))):
            any_feature = shifted = prediction = 0
            methods: Counter = Counter()
            for _ in range(args.windows):
                chosen = (rng.choice(len(windows_from), size, replace=False) if args.holdout
                          else rng.integers(0, len(windows_from), size))
                rows = windows_from[chosen].astype(np.float32)
                rows[:, column] += np.float32(shift * std)
                answers = predictions(session, signature, {"input": rows})
                observation = Observation("example", "main", "1", "", datetime.now(UTC), {"input": rows},
                                          answers, False)
                result = analyse_version([observation], baseline, {}, settings, Counter())
                any_feature += bool(result["drifted_features"])
                shifted += result["features"][SHIFTED]["drift"]
                prediction += bool(result["prediction_drift"])
                methods.update(entry["method"] for entry in result["features"].values())
            print(f"{size:>6} {shift:>6} {any_feature / args.windows:>12.1%} {shifted / args.windows:>12.1%} "
                  f"{prediction / args.windows:>11.1%} {', '.join(sorted(methods))}")


if __name__ == "__main__":
    main()
