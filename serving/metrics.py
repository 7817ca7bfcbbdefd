"""CloudWatch metrics through the Embedded Metric Format: one JSON document per interval on stdout, which the
awslogs driver ships and CloudWatch turns into metrics (no API calls, no agent).

Latencies are aggregated into at most 100 log-spaced buckets (EMF's limit per metric), so p50/p99 alarms and
dashboards work on what a whole interval saw.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from typing import Any, TextIO

import orjson

from serving.contract import CONCURRENCY_METRIC

MAX_VALUES = 100
BUCKETS_PER_DECADE = 20  # about 12% wide: 0.01 ms to 100 s fits in 140 buckets, 100 at most are ever used at once


def _bucket(latency_ms: float) -> float:
    """Representative value of the log-spaced bucket that holds `latency_ms`."""
    if latency_ms <= 0.001:
        return 0.001
    index = math.floor(math.log10(latency_ms) * BUCKETS_PER_DECADE)
    return round(10 ** ((index + 0.5) / BUCKETS_PER_DECADE), 4)


class Metrics:
    def __init__(self, namespace: str, model_name: str, environment: str, stream: TextIO | None = None):
        self.namespace = namespace
        self.dimensions = {"Model": model_name, "Environment": environment}
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._latency: Counter[float] = Counter()
        self._predictions = 0
        self._client_errors = 0
        self._server_errors = 0
        self._capture_dropped = 0
        self._dropped_reported = 0
        self._unauthorized = 0
        self._key_uses: Counter[str] = Counter()

    def record_prediction(self, latency_ms: float) -> None:
        bucket = _bucket(latency_ms)
        with self._lock:
            self._latency[bucket] += 1
            self._predictions += 1

    def record_client_error(self) -> None:
        with self._lock:
            self._client_errors += 1

    def record_server_error(self) -> None:
        with self._lock:
            self._server_errors += 1

    def record_unauthorized(self) -> None:
        with self._lock:
            self._unauthorized += 1

    def record_key_use(self, key_id: str) -> None:
        """A request admitted with API key `key_id` (published per key id, never the key). Only the event loop
        counts and flushes these, so no lock: `flush` swaps the counter whole."""
        self._key_uses[key_id] += 1

    def set_capture_dropped(self, total: int) -> None:
        """The capture writer's running total; the interval's share is emitted."""
        with self._lock:
            self._capture_dropped = total

    def flush(self, model_version: str | None) -> dict[str, Any] | None:
        """Write one EMF document for the interval (none when nothing happened) and reset."""
        with self._lock:
            latency, self._latency = self._latency, Counter()
            predictions, self._predictions = self._predictions, 0
            client_errors, self._client_errors = self._client_errors, 0
            server_errors, self._server_errors = self._server_errors, 0
            unauthorized, self._unauthorized = self._unauthorized, 0
            key_uses, self._key_uses = self._key_uses, Counter()
            dropped_total = self._capture_dropped
        dropped = dropped_total - self._dropped_reported
        self._dropped_reported = dropped_total
        self._write_key_uses(key_uses)
        if not predictions and not client_errors and not server_errors and not dropped and not unauthorized:
            return None
        metrics = [{"Name": "Predictions", "Unit": "Count"}, {"Name": "ClientErrors", "Unit": "Count"},
                   {"Name": "ServerErrors", "Unit": "Count"},
                   {"Name": "CaptureDropped", "Unit": "Count"}, {"Name": "Unauthorized", "Unit": "Count"}]
        document: dict[str, Any] = {
            **self.dimensions,
            "ModelVersion": model_version or "none",
            "Predictions": predictions,
            "ClientErrors": client_errors,
            "ServerErrors": server_errors,
            "CaptureDropped": dropped,
            "Unauthorized": unauthorized,
        }
        if latency:
            common = latency.most_common(MAX_VALUES)
            document["Latency"] = {"Values": [value for value, _ in common], "Counts": [count for _, count in common]}
            metrics.insert(0, {"Name": "Latency", "Unit": "Milliseconds"})
        document["_aws"] = {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": self.namespace,
                "Dimensions": [list(self.dimensions), [*self.dimensions, "ModelVersion"]],
                "Metrics": metrics,
            }],
        }
        self.stream.write(orjson.dumps(document).decode() + "\n")
        self.stream.flush()
        return document

    def write_concurrency(self, average: float, peak: int, variant: str) -> dict[str, Any]:
        """One EMF document: the interval's time-averaged and peak requests in progress of this process, stored at
        one-second resolution (autoscaling on concurrency reads the first)."""
        dimensions = {**self.dimensions, "Variant": variant}
        document = {**dimensions, CONCURRENCY_METRIC: round(average, 4), "PeakConcurrentRequests": peak, "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{"Namespace": self.namespace, "Dimensions": [list(dimensions)], "Metrics": [
                {"Name": CONCURRENCY_METRIC, "Unit": "Count", "StorageResolution": 1},
                {"Name": "PeakConcurrentRequests", "Unit": "Count", "StorageResolution": 1}]}]}}
        self.stream.write(orjson.dumps(document).decode() + "\n")
        self.stream.flush()
        return document

    def _write_key_uses(self, key_uses: Counter[str]) -> None:
        """One EMF document per API key id used in the interval: `AuthenticatedRequests` by model and key id."""
        for key_id, count in sorted(key_uses.items()):
            document = {**self.dimensions, "KeyId": key_id, "AuthenticatedRequests": count, "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [{"Namespace": self.namespace, "Dimensions": [[*self.dimensions, "KeyId"]],
                                       "Metrics": [{"Name": "AuthenticatedRequests", "Unit": "Count"}]}]}}
            self.stream.write(orjson.dumps(document).decode() + "\n")
        if key_uses:
            self.stream.flush()
