"""python -m pipeline.monitor baseline|report: see pipeline/monitor/__init__.py and docs/monitoring.md."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.monitor.baseline import Baseline, BaselineError, compute, read_baseline
from pipeline.monitor.captures import Reading, variants
from pipeline.monitor.dataset import DataSetError, read_data_set
from pipeline.monitor.drift import DriftSettings
from pipeline.monitor.model import ModelError, read_signature
from pipeline.monitor.quality import read_ground_truth
from pipeline.monitor.report import Analysis, analyse
from pipeline.monitor.sources import SourceError, capture_files, ground_truth_files, parse_window, read_text

EXPECTED = (BaselineError, DataSetError, ModelError, SourceError)


def _s3(*locations: str | None) -> Any:
    if any(location and location.startswith("s3://") for location in locations):
        import boto3

        return boto3.client("s3")
    return None


def baseline_command(args: argparse.Namespace) -> int:
    data = read_data_set(Path(args.data)).without(args.drop)
    signature, session = read_signature(Path(args.model))
    baseline = compute(data, signature, session, Path(args.data))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.partial")
    temporary.write_text(baseline.to_json())
    temporary.replace(out)  # whole or not at all
    print(f"baseline of {signature.name} version {signature.version}: {data.rows} rows, "
          f"{len(baseline.features)} features, {len(baseline.predictions)} prediction columns -> {out}")
    return 0


def analysis_of(args: argparse.Namespace, now: datetime) -> Analysis:
    s3 = _s3(args.captures, args.baseline, args.ground_truth)
    window = parse_window(args.window, now)
    baseline: Baseline | None = read_baseline(read_text(args.baseline, s3), args.baseline) if args.baseline else None
    reading = Reading()
    for content in capture_files(args.captures, window, s3):
        reading.add_lines(content.splitlines(), window.start, window.end)
    found = variants(reading.observations)
    if args.variant is None and len(found) > 1:
        raise SourceError(f"the captures hold variants {', '.join(found)}: choose one with --variant")
    variant = args.variant or (found[0] if found else "main")
    observations = [observation for observation in reading.observations if observation.variant == variant]
    truth: dict[str, Any] = {}
    skipped: Counter = Counter(reading.skipped)
    if args.ground_truth:
        for content in ground_truth_files(args.ground_truth, window, s3):
            read_ground_truth(content.splitlines(), truth, skipped)
    endpoint = Counter(observation.endpoint for observation in observations).most_common(1)
    return analyse(endpoint[0][0] if endpoint else "", variant, observations, lambda version: baseline, truth,
                   DriftSettings(), window.as_dict(), skipped, reading.files)


def _text(document: dict[str, Any]) -> str:
    drifted = document.get("drifted_features") or []
    summary = f"{len(drifted)} of {len(document['features'])} features drifted" if drifted else document["status"]
    lines = [f"{document['endpoint']} / {document['variant']}: {summary}, {document['records']} records "
             f"({document['rows']} rows) in {document['files']} files"]
    for reason, count in document["skipped"].items():
        lines.append(f"  skipped {count}: {reason}")
    for title, section in (("feature", document["features"]), ("prediction", document["prediction"])):
        for name, result in section.items():
            statistic, threshold = result.get("statistic"), result.get("threshold")
            shown = "-" if statistic is None else f"{statistic:.4g}"
            if "p_value" in result:  # a test: its p-value is what the threshold applies to
                shown += f", p {result['p_value']:.3g}"
            limit = "" if threshold is None else (f" (drift if p < {threshold:.4g})" if "p_value" in result
                                                  else f" (drift at {threshold:.4g})")
            flag = "DRIFT" if result.get("drift") else "ok"
            lines.append(f"  {title:10} {name:28} {result['method']:14} {shown}{limit}  {flag}  "
                         f"missing {result.get('missing', 0)}, outside {result.get('out_of_range', '-')}")
    if document.get("quality"):
        lines.append("  quality: " + ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                                             for key, value in document["quality"].items()))
    lines.extend(f"  note: {note}" for note in document.get("notes", []))
    return "\n".join(lines)


def report_command(args: argparse.Namespace) -> int:
    result = analysis_of(args, datetime.now(UTC))
    if args.html:
        from pipeline.monitor.html import render

        Path(args.html).write_text(render(result.document, result.plots))
    print(json.dumps(result.document, indent=1) if args.format == "json" else _text(result.document))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m pipeline.monitor", description="Data drift and model quality "
                                  "from captured traffic.")
    commands = top.add_subparsers(dest="command", required=True)
    base = commands.add_parser("baseline", help="reference statistics of a data set for a model version")
    base.add_argument("--data", required=True, help="CSV (with a header) or Parquet: the training or validation data")
    base.add_argument("--model", required=True, help="a model version's folder or its model.onnx")
    base.add_argument("--out", required=True, help="the baseline file to write (JSON)")
    base.add_argument("--drop", action="append", default=[], help="a column that is not a feature (label, id)")
    base.set_defaults(run=baseline_command)
    report = commands.add_parser("report", help="one window of captures against the baseline")
    report.add_argument("--captures", required=True, help="a capture folder, or s3://BUCKET/ENDPOINT/")
    report.add_argument("--baseline", help="the version's baseline (file or s3://...); without it, completeness "
                        "and value ranges only")
    report.add_argument("--ground-truth", help="a folder or s3:// prefix of JSON Lines {inferenceId, groundTruth}")
    report.add_argument("--window", help="START/END (ISO 8601) or Nh (the last N full hours); locally all")
    report.add_argument("--variant", help="the variant to report on (needed when the captures hold several)")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.add_argument("--html", help="write the HTML report to this file")
    report.set_defaults(run=report_command)
    scheduled = commands.add_parser("run", help="the scheduled task: settings from MONITOR_* variables")
    scheduled.set_defaults(run=lambda _: _scheduled())
    return top


def _scheduled() -> int:
    from pipeline.monitor.task import main as task_main

    return task_main()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except EXPECTED as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
