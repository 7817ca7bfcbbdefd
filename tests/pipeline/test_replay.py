"""Replay where captures meet candidates: requests captured by a real server process (as `make serve` writes them)
are replayed against another version, locally with the server's own runtime and against a running server, and from
the buckets (captures exported by the export task, the version promoted by `promote`); each bad input is one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from pipeline.models import CommandError, run
from serving.capture_export import export
from serving.contract import METADATA_FILE, MODEL_FILE
from serving.example.train_model import train, write_version
from tests.support.delivery import CONFIG, EXAMPLE_MODEL, other_signature_model
from tests.support.paths import PROJECT_ROOT
from tests.support.serving_data import BENIGN_ROW, EXAMPLE_MODELS, ROW, infer_body
from tests.support.serving_process import Server

SINCE = ["--since", "2000-01-01T00:00"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """Version 1 (the example) and version 2: ten trees instead of a hundred."""
    folder = tmp_path_factory.mktemp("models")
    shutil.copytree(EXAMPLE_MODELS / "1", folder / "1")
    content, metadata = train(trees=10)
    write_version(folder, "2", content, metadata)
    return folder


@pytest.fixture(scope="module")
def captured(models: Path, tmp_path_factory) -> Iterator[Path]:
    """A server on version 1 answers 61 requests (V2 and /predict, several rows each, and one from tritonclient in
    binary), then stops: its captures."""
    serving_dir = tmp_path_factory.mktemp("serving")
    shutil.copytree(models / "1", serving_dir / "1")
    capture_dir = tmp_path_factory.mktemp("capture")
    server = Server(serving_dir, capture_dir)
    try:
        server.wait_ready()
        rows = [ROW, BENIGN_ROW, [value * 1.1 for value in ROW], [value * 0.9 for value in BENIGN_ROW]]
        for index in range(50):
            assert server.request("POST", "/v2/models/example/infer",
                                  infer_body(rows[index % 4:] + rows[:index % 4]))[0] == 200
        for index in range(10):
            assert server.request("POST", "/predict", {"instances": rows[index % 4:]})[0] == 200
        client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        tensor = triton.InferInput("input", [2, 30], "FP32")
        tensor.set_data_from_numpy(np.array(rows[:2], dtype=np.float32))
        client.infer("example", [tensor])  # binary in and out, as tritonclient does by default
        client.close()
    finally:
        server.stop()
    yield capture_dir


def replay(*arguments: str, **kwargs) -> dict:
    return run(["replay", "--endpoint", "example", *SINCE, *arguments, "--format", "json"], **kwargs)


def test_replay_locally_against_another_version(captured: Path, models: Path):
    report = replay("--version", "2", "--local", "--captures", str(captured), "--models", str(models))
    assert report["requests"] == 61 and report["failed"] == 0 and report["answered_versions"] == {"1": 61}
    label, probabilities = report["outputs"]["label"], report["outputs"]["probabilities"]
    assert label["kind"] == "label" and label["values_compared"] == 50 * 4 + 2
    assert 0.5 < label["agreement"] <= 1.0
    assert probabilities["kind"] == "numeric" and 0 < probabilities["mean_abs_diff"] <= probabilities["max_abs_diff"]
    predictions = report["outputs"]["predictions"]
    assert predictions["kind"] == "label" and predictions["values_compared"] == sum(
        len(range(4)[index % 4:]) for index in range(10))
    assert set(report["latency_ms"]["candidate"]) == {"p50", "p90", "p99"}


def test_the_same_version_agrees_exactly(captured: Path, models: Path):
    report = replay("--version", "1", "--local", "--captures", str(captured), "--models", str(models))
    assert report["outputs"]["label"]["agreement"] == 1.0
    assert report["outputs"]["probabilities"]["max_abs_diff"] == 0.0


def test_replay_against_a_running_server_agrees_with_the_local_replay(captured: Path, models: Path, tmp_path: Path):
    local = replay("--version", "2", "--local", "--captures", str(captured), "--models", str(models))
    serving_dir = tmp_path / "serving"
    shutil.copytree(models / "2", serving_dir / "2")
    server = Server(serving_dir, tmp_path / "capture-2")
    try:
        server.wait_ready()
        remote = replay("--version", "2", "--url", f"http://127.0.0.1:{server.port}", "--captures", str(captured))
    finally:
        server.stop()
    assert remote["outputs"] == local["outputs"] and remote["requests"] == 61


def test_replay_against_a_server_with_api_keys_sends_the_key_from_the_environment(
        captured: Path, models: Path, tmp_path: Path, monkeypatch):
    from pipeline.models import CommandError
    from serving.contract import key_set_document, new_api_key, stored_api_key

    serving_dir = tmp_path / "serving"
    shutil.copytree(models / "2", serving_dir / "2")
    key = new_api_key()
    server = Server(serving_dir, tmp_path / "capture-2", SERVING_API_KEYS=key_set_document([stored_api_key(key)]))
    try:
        server.wait_ready()
        url = f"http://127.0.0.1:{server.port}"
        monkeypatch.delenv("MLOPS_API_KEY", raising=False)
        with pytest.raises(CommandError, match=f"{url} needs an API key: set MLOPS_API_KEY"):
            replay("--version", "2", "--url", url, "--captures", str(captured))
        monkeypatch.setenv("MLOPS_API_KEY", key)
        remote = replay("--version", "2", "--url", url, "--captures", str(captured))
    finally:
        server.stop()
    assert remote["requests"] == 61 and remote["failed"] == 0


def test_text_report_from_the_command_line(captured: Path, models: Path):
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline.models", "replay", "--endpoint", "example", "--version", "2", "--local",
         "--captures", str(captured), "--models", str(models), *SINCE], cwd=PROJECT_ROOT, capture_output=True,
        text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("replayed 61 captured requests of example (")
    assert lines[0].endswith("answered by version(s) 1 (61)) against version 2, run locally (the server's data "
                             "plane and runtime)")
    assert lines[1].lstrip().startswith("label:") and "agreement" in lines[1]
    assert lines[2].lstrip().startswith("probabilities:") and "max |diff|" in lines[2]
    assert lines[-1].lstrip().startswith("latency ms: candidate p50")


def test_from_the_buckets(s3, captured: Path, tmp_path: Path, models: Path):
    """Captures as the export task leaves them in the capture bucket, the candidate as `promote` leaves it."""
    capture_bucket = CONFIG.capture_bucket_name("staging")
    s3.create_bucket(Bucket=capture_bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    shutil.copytree(captured / "example", tmp_path / "a")  # the endpoint `a` of the test configuration
    assert export(s3, capture_bucket, "", tmp_path, "a").records == 61
    run(["promote", "--env", "staging", "--endpoint", "a", "--model-file", str(EXAMPLE_MODEL)], s3=s3, config=CONFIG)
    run(["promote", "--env", "staging", "--endpoint", "a", "--model-file", str(models / "2" / MODEL_FILE)], s3=s3,
        config=CONFIG)
    report = run(["replay", "--env", "staging", "--endpoint", "a", "--version", "2", "--local", *SINCE, "--format",
                  "json"], s3=s3, config=CONFIG)
    assert report["requests"] == 61 and report["variants"] == {"main": 61}
    assert report["outputs"]["label"]["agreement"] == replay(
        "--version", "2", "--local", "--captures", str(captured), "--models", str(models))["outputs"]["label"][
        "agreement"]


def test_bad_input_is_one_clear_line(captured: Path, models: Path, tmp_path: Path):
    def error(*arguments: str) -> str:
        with pytest.raises(CommandError) as caught:
            replay(*arguments)
        return str(caught.value)

    local = ["--local", "--captures", str(captured), "--models", str(models)]
    assert error("--version", "9", *local) == f"version '9' is not in {models}"
    assert error("--version", "2", *local, "--until", "2000-01-02T00:00").startswith(
        "no captured requests of example between 2000-01-01 00:00 and 2000-01-02 00:00 UTC")
    assert error("--version", "2", *local, "--until", "yesterday") == (
        "--until 'yesterday' is not a time such as 2026-11-29T07:00 (UTC)")
    other = tmp_path / "other"
    (other / "3").mkdir(parents=True)
    model = other_signature_model(other / "3" / MODEL_FILE)
    (other / "3" / METADATA_FILE).write_text(json.dumps({
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 4]}],
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}))
    assert error("--version", "3", "--local", "--captures", str(captured), "--models", str(other)) == (
        "version 3's inputs [('features', 'FP32')] differ from the captured requests' [('input', 'FP32')]: replay "
        "needs the same signature")
    assert error("--version", "2", "--local", "--models", str(models)).startswith("--env is required")
