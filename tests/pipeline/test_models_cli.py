"""`python -m pipeline.models` against moto: promote, list, rollback, and every refusal with its message."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.models import CommandError, main, run
from tests.support.delivery import BUCKET, CONFIG, EXAMPLE_MODEL, other_signature_model
from tests.support.paths import PROJECT_ROOT


def cli(s3, *argv: str) -> dict:
    return run(list(argv), s3=s3, config=CONFIG)


def promote(s3, *extra: str) -> dict:
    return cli(s3, "promote", "--env", "staging", "--endpoint", "a", "--model-file", str(EXAMPLE_MODEL), *extra)


def test_promote_uploads_model_and_metadata_then_moves_live(s3):
    result = promote(s3)
    assert result["version"] == "1" and result["previous_live"] is None
    metadata = json.loads(s3.get_object(Bucket=BUCKET, Key="a/1/metadata.json")["Body"].read())
    assert metadata["sha256"] == hashlib.sha256(EXAMPLE_MODEL.read_bytes()).hexdigest()
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 30]}]
    assert metadata["predict_output"] == "label" and metadata["name"] == "a"
    assert s3.get_object(Bucket=BUCKET, Key="a/LIVE")["Body"].read() == b"1\n"
    assert promote(s3)["version"] == "2"


def test_promote_stores_the_version_s_baseline_beside_it_and_refuses_one_of_another_model(s3, tmp_path: Path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"format": 1, "model": {"sha256": hashlib.sha256(
        EXAMPLE_MODEL.read_bytes()).hexdigest()}, "features": [], "predictions": []}))
    result = promote(s3, "--baseline", str(baseline))
    assert "put s3://" + BUCKET + "/a/1/baseline.json" in result["plan"]
    assert s3.get_object(Bucket=BUCKET, Key="a/1/baseline.json")["Body"].read() == baseline.read_bytes()

    baseline.write_text(json.dumps({"format": 1, "model": {"sha256": "0" * 64}}))
    with pytest.raises(CommandError, match="computed for another model file"):
        promote(s3, "--baseline", str(baseline))
    assert s3.get_object(Bucket=BUCKET, Key="a/LIVE")["Body"].read() == b"1\n"  # nothing of version 2 was written


def test_list_shows_versions_and_the_live_one(s3):
    promote(s3)
    promote(s3, "--version", "7")
    listing = cli(s3, "list", "--env", "staging", "--endpoint", "a")
    assert listing["live"] == "7"
    assert [(v["version"], v["live"]) for v in listing["versions"]] == [("1", False), ("7", True)]
    assert cli(s3, "list", "--env", "staging", "--endpoint", "b")["versions"] == []


def test_rollback_makes_the_previous_version_live(s3):
    promote(s3)
    promote(s3)
    assert cli(s3, "rollback", "--env", "staging", "--endpoint", "a") == {
        "live": "1", "previous_live": "2", "dry_run": False,
        "plan": [f"put s3://{BUCKET}/a/LIVE = 1 (was 2)"]}
    assert s3.get_object(Bucket=BUCKET, Key="a/LIVE")["Body"].read() == b"1\n"
    with pytest.raises(CommandError, match="is the oldest"):
        cli(s3, "rollback", "--env", "staging", "--endpoint", "a")
    cli(s3, "rollback", "--env", "staging", "--endpoint", "a", "--to", "2")
    assert s3.get_object(Bucket=BUCKET, Key="a/LIVE")["Body"].read() == b"2\n"


def test_dry_run_changes_nothing(s3):
    result = promote(s3, "--dry-run")
    assert result["plan"][-1] == f"put s3://{BUCKET}/a/LIVE = 1 (was none)"
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_signature_change_is_refused_unless_forced(s3, tmp_path: Path):
    promote(s3)
    other = other_signature_model(tmp_path / "other.onnx")
    with pytest.raises(CommandError, match="signature differs from live version 1") as caught:
        cli(s3, "promote", "--env", "staging", "--endpoint", "a", "--model-file", str(other))
    assert "Pass --force" in str(caught.value)
    assert cli(s3, "promote", "--env", "staging", "--endpoint", "a", "--model-file", str(other),
               "--force")["version"] == "2"


def test_versions_are_immutable(s3):
    promote(s3, "--version", "3")
    with pytest.raises(CommandError, match="already exists"):
        promote(s3, "--version", "3")


@pytest.mark.parametrize("argv,message", [
    (["promote", "--env", "staging", "--endpoint", "a", "--model-file", "/nope/model.onnx"],
     "error: model file /nope/model.onnx does not exist"),
    (["list", "--env", "qa", "--endpoint", "a"], "error: unknown environment 'qa'; configured: staging"),
    (["list", "--env", "staging", "--endpoint", "c"], "error: unknown endpoint 'c'; configured: a, b"),
    (["promote", "--env", "staging", "--endpoint", "a", "--model-file", str(Path(__file__))],
     "is not a valid ONNX model"),
])
def test_errors_are_one_clear_line(s3, monkeypatch, capsys, argv, message):
    monkeypatch.setattr("pipeline.models.load_config", lambda: CONFIG)
    monkeypatch.setattr("boto3.client", lambda *a, **k: s3)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_missing_credentials_are_explained(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    completed = subprocess.run([sys.executable, "-m", "pipeline.models", "list", "--env", "staging", "--endpoint",
                                "a"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
                               check=False)
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: no AWS credentials found")
