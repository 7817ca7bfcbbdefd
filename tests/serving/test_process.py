"""The server as a real process (`python -m serving` under uvicorn): hot swap under load, SIGTERM behaviour,
capture integrity. Traffic goes to 127.0.0.1 only; every loop is bounded in time."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import PROJECT_ROOT
from tests.support.serving_data import ROW, add_version
from tests.support.serving_process import Load, Server


@pytest.fixture
def server_for(models_dir: Path, tmp_path: Path) -> Iterator:
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = Server(models_dir, tmp_path / "capture", **env)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


def publish(models_dir: Path, version: str, **metadata_changes: str) -> None:
    """As the delivery step does: build the version in a hidden folder, then rename it into place."""
    staging = add_version(models_dir, f".{version}.tmp", **metadata_changes)
    metadata = json.loads((staging / "metadata.json").read_text())
    metadata["version"] = version
    (staging / "metadata.json").write_text(json.dumps(metadata))
    staging.rename(models_dir / version)


def test_hot_swap_under_load_fails_no_request(server_for, models_dir: Path):
    server = server_for()
    with Load(server) as load:
        assert load.wait_for(lambda: len(load.versions) > 50)
        publish(models_dir, "2")
        assert load.wait_for(lambda: load.versions[-1] == "2"), "version 2 never went live"
        publish(models_dir, "3", sha256="0" * 64)  # corrupt: must be ignored
        time.sleep(1.0)  # several polls
        count = len(load.versions)
        assert load.wait_for(lambda: len(load.versions) > count + 50)
    assert load.errors == [] and set(load.statuses) == {200}, (load.statuses, load.errors[:5])
    assert load.versions[0] == "1" and load.versions[-1] == "2" and "3" not in load.versions
    first_two = load.versions.index("2")
    assert "1" not in load.versions[first_two + 50:]  # after the swap, the old version is gone for good
    status = server.request("GET", "/status")[1]
    assert status["live_version"] == "2" and "checksum mismatch" in status["rejected_versions"]["3"]


def test_sigterm_under_load_loses_no_acknowledged_capture_record(server_for, tmp_path: Path):
    server = server_for(SERVING_DRAIN_SECONDS="5")
    with Load(server, threads=6) as load:
        assert load.wait_for(lambda: len(load.acknowledged) > 300)
        server.process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once shutdown is complete, so the exit status says "stopped by SIGTERM".
        assert server.process.wait(30) == -signal.SIGTERM
    assert '"message":"server stopped"' in server.output()
    acknowledged = set(load.acknowledged)
    lines = [line for path in (tmp_path / "capture").rglob("*.jsonl") for line in path.read_text().splitlines()]
    records = [json.loads(line) for line in lines]  # every line parses
    captured = {record["eventMetadata"]["inferenceId"] for record in records}
    assert acknowledged <= captured, f"{len(acknowledged - captured)} acknowledged requests were not captured"
    assert all(record["captureData"]["endpointOutput"]["data"] for record in records)


def test_sigterm_fails_readiness_while_requests_are_still_served(server_for):
    server = server_for(SERVING_UNREADY_DELAY_SECONDS="2")
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert server.request("GET", "/v2/health/ready") == (503, {"ready": False})
    status, body = server.request("POST", "/predict", {"instances": [ROW]})
    assert status == 200 and body["predictions"] == [0]
    assert server.process.wait(30) == -signal.SIGTERM


def test_keep_alive_outlasts_the_load_balancer(server_for):
    server = server_for(SERVING_KEEP_ALIVE_SECONDS="3")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/v2/health/live")
    connection.getresponse().read()
    time.sleep(1.5)  # idle, but within the keep-alive: the same connection still works
    connection.request("GET", "/v2/health/live")
    assert connection.getresponse().status == 200
    connection.close()


def test_bad_settings_exit_with_the_variable_named(models_dir: Path):
    completed = subprocess.run([sys.executable, "-m", "serving"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                               env={**os.environ, "SERVING_PORT": "99999"}, timeout=60, check=False)
    assert completed.returncode == 2
    assert completed.stderr.startswith("SERVING_PORT: Input should be less than or equal to 65535 (got '99999')")


def test_a_misspelled_setting_stops_the_server_instead_of_falling_back_to_the_default():
    completed = subprocess.run([sys.executable, "-m", "serving"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                               env={**os.environ, "SERVING_MODEL_DIR": "/mnt/models"}, timeout=60, check=False)
    assert completed.returncode == 2
    assert completed.stderr.startswith("unknown setting(s): SERVING_MODEL_DIR (did you mean SERVING_MODELS_DIR?); "
                                       "the SERVING_* variables are: SERVING_ACCESS_LOG, ")


def worker_processes(server: Server) -> list:
    """The server's worker processes (multiprocessing's resource tracker is a child too)."""
    import psutil

    return [child for child in psutil.Process(server.process.pid).children()
            if not any("resource_tracker" in part for part in child.cmdline())]


def test_two_workers_share_the_port_each_capturing_to_its_own_file_and_drain_on_sigterm(server_for, tmp_path: Path):
    server = server_for(SERVING_WORKERS="2", SERVING_DRAIN_SECONDS="5")
    workers = worker_processes(server)
    assert len(workers) == 2, workers
    with Load(server, threads=6) as load:
        assert load.wait_for(lambda: len(load.acknowledged) > 300)
        server.process.send_signal(signal.SIGTERM)  # as ECS does: to the container's first process only
        assert server.process.wait(30) == 0
    files = list((tmp_path / "capture").rglob("*.jsonl"))
    worker_pids = {str(worker.pid) for worker in workers}
    # <instance>-<worker pid>-<start>-<n>, all sealed once the workers stopped
    assert files and {path.stem.split("-")[1] for path in files} <= worker_pids
    assert not [path for path in (tmp_path / "capture").rglob("*") if path.name.startswith(".")]
    captured = {json.loads(line)["eventMetadata"]["inferenceId"]
                for path in files for line in path.read_text().splitlines()}
    assert set(load.acknowledged) <= captured


def test_a_worker_that_dies_stops_the_server(server_for):
    server = server_for(SERVING_WORKERS="2")
    first, _ = worker_processes(server)
    first.kill()
    assert server.process.wait(30) == 1  # ECS replaces the task rather than leave it on fewer cores
