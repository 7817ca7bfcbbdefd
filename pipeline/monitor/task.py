"""The scheduled monitor task (`python -m pipeline.monitor run`): one window of an endpoint's exported captures, per
variant, against the baseline of each answering version (from the model bucket), with the labels uploaded since the
window began; a report (JSON and HTML) per variant in the capture bucket and metrics in CloudWatch.

It runs after the hourly capture export, in its own image, with a role that may read the endpoint's captures, ground
truth and baselines, write its reports and put metrics in its namespace only. A variant without captures is
reported and published as "no data" (its own metric and alarm), never a failure.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.monitor.baseline import Baseline, BaselineError, read_baseline
from pipeline.monitor.captures import Reading
from pipeline.monitor.drift import DriftSettings
from pipeline.monitor.html import render
from pipeline.monitor.quality import read_ground_truth
from pipeline.monitor.report import NO_DATA, Analysis, analyse, severity
from pipeline.monitor.sources import Window, capture_files, ground_truth_files
from serving.contract import (
    BASELINE_FILE,
    CAPTURE_HOUR_FORMAT,
    GROUND_TRUTH_PREFIX,
    MONITOR_VARIABLE_PREFIX,
    MONITORING_PREFIX,
    version_object_key,
)


class MonitorSettings(BaseSettings):
    """From `MONITOR_*` variables (the endpoint stack sets them; serving/contract.py)."""

    model_config = SettingsConfigDict(env_prefix=MONITOR_VARIABLE_PREFIX, extra="forbid", frozen=True)

    endpoint: str
    environment: str
    capture_bucket: str
    capture_prefix: str = ""
    """Before `<endpoint>/<variant>/...` in the capture bucket, as the export writes (empty or ending in `/`)."""
    model_bucket: str
    model_prefix: str
    """The endpoint's model store in the model bucket (`<endpoint>/`): `<version>/baseline.json` beside each version."""
    variants: str = "main"
    """The endpoint's variants, comma-separated: each is reported, "no data" when it has no captures."""
    window_hours: int = Field(default=1, ge=1, le=168)
    """The window: the last this many full hours before the run."""
    namespace: str = "EcsMlops/Monitor"


@dataclass
class VariantResult:
    variant: str
    status: str
    records: int
    report_key: str


class Baselines:
    """A version's baseline from the model bucket, read once; None for a version without one."""

    def __init__(self, s3: Any, bucket: str, prefix: str):
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self._read: dict[str, Baseline | None] = {}

    def __call__(self, version: str) -> Baseline | None:
        if version not in self._read:
            key = version_object_key(self.prefix, version, BASELINE_FILE)
            # Listed first: a missing object then reads as absent, never as a refusal (a GetObject of a missing key
            # is answered 403 to a role whose ListBucket is limited to a prefix).
            listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key).get("Contents", [])
            if not any(item["Key"] == key for item in listed):
                self._read[version] = None
            else:
                text = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
                self._read[version] = read_baseline(text, f"s3://{self.bucket}/{key}")
        return self._read[version]


def metric_data(document: dict[str, Any], settings: MonitorSettings) -> list[dict[str, Any]]:
    """CloudWatch datums of one variant's report (contract: MONITOR_METRICS)."""
    dimensions = [{"Name": "Environment", "Value": settings.environment},
                  {"Name": "Endpoint", "Value": settings.endpoint}, {"Name": "Variant", "Value": document["variant"]}]

    def datum(name: str, value: float, unit: str = "None", extra: list | None = None) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dimensions + (extra or []), "Value": float(value), "Unit": unit}

    data = [datum("RecordsAnalysed", document["rows"], "Count"), datum("NoData", document["status"] == NO_DATA)]
    if document.get("baseline"):
        data += [datum("FeaturesDrifted", len(document["drifted_features"]), "Count"),
                 datum("ShareOfFeaturesDrifted", document["share_drifted"] or 0.0),
                 datum("PredictionDrift", bool(document["prediction_drift"]))]
        data += [datum("DriftScore", severity(result), extra=[{"Name": "Feature", "Value": name[:255]}])
                 for name, result in document["features"].items() if result.get("statistic") is not None]
    quality = document.get("quality") or {}
    for key, name in (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
                      ("auc", "AUC"), ("mae", "MAE"), ("rmse", "RMSE")):
        if quality.get(key) is not None:
            data.append(datum(name, quality[key]))
    return data


def run(settings: MonitorSettings, s3: Any, cloudwatch: Any, now: datetime) -> list[VariantResult]:
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    window = Window(end - timedelta(hours=settings.window_hours), end)
    captures = f"s3://{settings.capture_bucket}/{settings.capture_prefix}{settings.endpoint}/"
    reading = Reading()
    for content in capture_files(captures, window, s3):
        reading.add_lines(content.splitlines(), window.start, window.end)
    truth: dict[str, Any] = {}
    skipped: Counter = Counter(reading.skipped)
    ground_truth = f"s3://{settings.capture_bucket}/{GROUND_TRUTH_PREFIX}{settings.endpoint}/"
    for content in ground_truth_files(ground_truth, window, s3):
        read_ground_truth(content.splitlines(), truth, skipped)
    baselines = Baselines(s3, settings.model_bucket, settings.model_prefix)
    expected = [variant.strip() for variant in settings.variants.split(",") if variant.strip()]
    found = {observation.variant for observation in reading.observations}
    results = []
    for variant in [*expected, *sorted(found - set(expected))]:
        observations = [observation for observation in reading.observations if observation.variant == variant]
        # The lines skipped while reading belong to every variant's report; what a variant skips, to its own.
        analysis = analyse(settings.endpoint, variant, observations, baselines, truth, DriftSettings(),
                           window.as_dict(), Counter(skipped), reading.files)
        key = _write(s3, settings, variant, window, analysis)
        data = metric_data(analysis.document, settings)
        for start in range(0, len(data), 500):  # PutMetricData takes at most 1000 datums; keep requests small
            cloudwatch.put_metric_data(Namespace=settings.namespace, MetricData=data[start:start + 500])
        document = analysis.document
        print(json.dumps({"message": "monitor report written", "variant": variant, "status": document["status"],
                          "records": document["records"], "drifted_features": document.get("drifted_features", []),
                          "report": f"s3://{settings.capture_bucket}/{key}"}), flush=True)
        results.append(VariantResult(variant, document["status"], document["records"], key))
    return results


def _write(s3: Any, settings: MonitorSettings, variant: str, window: Window, analysis: Analysis) -> str:
    assert window.start is not None
    folder = (f"{MONITORING_PREFIX}{settings.endpoint}/{variant}/"
              f"{window.start.strftime(CAPTURE_HOUR_FORMAT)}/")
    s3.put_object(Bucket=settings.capture_bucket, Key=folder + "report.html",
                  Body=render(analysis.document, analysis.plots).encode(), ContentType="text/html; charset=utf-8")
    # report.json last: its presence says the window's report is complete.
    s3.put_object(Bucket=settings.capture_bucket, Key=folder + "report.json",
                  Body=json.dumps(analysis.document, indent=1).encode(), ContentType="application/json")
    return folder + "report.json"


def main() -> int:
    import boto3

    try:
        settings = MonitorSettings()  # type: ignore[call-arg]  # from the environment
    except Exception as exc:  # pydantic's message names each variable
        print(f"error: the monitor task's settings: {exc}")
        return 2
    try:
        run(settings, boto3.client("s3"), boto3.client("cloudwatch"), datetime.now(UTC))
    except BaselineError as exc:
        print(f"error: {exc}")
        return 1
    return 0
