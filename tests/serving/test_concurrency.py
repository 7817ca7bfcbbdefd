"""Requests in progress as the server publishes them for autoscaling: the time-weighted average and peak of an
interval (a deterministic clock), the EMF document at one-second resolution, and a real server under load."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from serving.concurrency import Concurrency
from serving.contract import CONCURRENCY_METRIC
from serving.metrics import Metrics
from tests.support.serving_process import Load, Server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_average_weighs_each_request_by_the_time_it_was_in_progress():
    clock = Clock()
    concurrency = Concurrency(clock)
    concurrency.started()           # t=0: 1
    clock.now += 1
    concurrency.started()           # t=1: 2
    clock.now += 2
    concurrency.finished()          # t=3: 1
    clock.now += 1                  # t=4
    assert concurrency.take() == (1.5, 2)  # (1x1 + 2x2 + 1x1) / 4
    clock.now += 2
    assert concurrency.take() == (1.0, 1)  # the one still in progress carries over
    concurrency.finished()
    clock.now += 5
    assert concurrency.take() == (0.0, 1)  # its end falls in this interval: the peak it reached here
    clock.now += 5
    assert concurrency.take() == (0.0, 0)


def test_the_emf_document_stores_at_one_second_resolution_with_the_variant():
    stream = io.StringIO()
    Metrics("EcsMlops/Serving", "a", "staging", stream).write_concurrency(2.25, 4, "candidate")
    document = json.loads(stream.getvalue())
    assert document[CONCURRENCY_METRIC] == 2.25 and document["PeakConcurrentRequests"] == 4
    assert (document["Model"], document["Environment"], document["Variant"]) == ("a", "staging", "candidate")
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["Model", "Environment", "Variant"]]
    assert {metric["Name"]: metric["StorageResolution"] for metric in directive["Metrics"]} == {
        CONCURRENCY_METRIC: 1, "PeakConcurrentRequests": 1}


def test_a_server_under_load_publishes_its_requests_in_progress(models_dir: Path, tmp_path: Path):
    server = Server(models_dir, tmp_path / "capture", SERVING_CONCURRENCY_METRIC_SECONDS="0.5",
                    SERVING_ENVIRONMENT="staging")
    try:
        server.wait_ready()
        with Load(server, threads=4):
            time.sleep(2.0)
        time.sleep(1.2)  # an interval with no request in progress
    finally:
        server.stop()
    documents = [json.loads(line) for line in server.output().splitlines()
                 if line.startswith("{") and CONCURRENCY_METRIC in line]
    assert len(documents) >= 4
    busy = [document for document in documents if document["PeakConcurrentRequests"] > 0]
    assert busy and all(0 < document[CONCURRENCY_METRIC] <= 4 for document in busy)
    assert max(document["PeakConcurrentRequests"] for document in busy) <= 4
    assert documents[-1][CONCURRENCY_METRIC] == 0
    assert {(document["Model"], document["Environment"], document["Variant"]) for document in documents} == {
        ("example", "staging", "main")}
