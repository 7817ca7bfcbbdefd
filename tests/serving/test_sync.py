"""The sync step against moto S3 and local folders: promote -> sync -> serve, rollback, corrupt uploads,
overlapping runs, pruning; and end to end, a running server picking up a promoted version with no failed request."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from pipeline.models import run
from serving.contract import local_complete_versions
from serving.repository import ModelManager
from serving.sync import SyncError, main, sync
from tests.support.delivery import BUCKET, CONFIG, EXAMPLE_MODEL


def promote(s3, *extra: str) -> str:
    return run(["promote", "--env", "staging", "--endpoint", "a", "--model-file", str(EXAMPLE_MODEL), *extra],
               s3=s3, config=CONFIG)["version"]


def leftovers(models_dir: Path) -> list[str]:
    return sorted(entry.name for entry in models_dir.iterdir() if entry.name.startswith("."))


def test_promote_sync_serve(s3, tmp_path: Path):
    models = tmp_path / "models"
    promote(s3)
    result = sync(s3, BUCKET, "a/", models)
    assert (result.live, result.downloaded) == ("1", ["1"])
    assert (models / "LIVE").read_text() == "1\n" and local_complete_versions(models) == ["1"]
    manager = ModelManager(models)
    assert manager.poll_once() and manager.current.version == "1"
    assert sync(s3, BUCKET, "a/", models).downloaded == []  # idempotent
    assert leftovers(models) == []


def test_new_version_and_rollback(s3, tmp_path: Path):
    models = tmp_path / "models"
    promote(s3)
    sync(s3, BUCKET, "a/", models)
    promote(s3)
    assert sync(s3, BUCKET, "a/", models).live == "2"
    assert (models / "LIVE").read_text() == "2\n"
    run(["rollback", "--env", "staging", "--endpoint", "a"], s3=s3, config=CONFIG)
    result = sync(s3, BUCKET, "a/", models)
    assert result.live == "1" and result.downloaded == []  # still on disk: the switch is instant
    assert (models / "LIVE").read_text() == "1\n"
    manager = ModelManager(models)
    manager.poll_once()
    assert manager.current.version == "1"


def test_a_corrupt_upload_is_rejected_and_live_stays(s3, tmp_path: Path):
    models = tmp_path / "models"
    promote(s3)
    sync(s3, BUCKET, "a/", models)
    metadata = json.loads(s3.get_object(Bucket=BUCKET, Key="a/1/metadata.json")["Body"].read())
    s3.put_object(Bucket=BUCKET, Key="a/2/model.onnx", Body=EXAMPLE_MODEL.read_bytes()[:1000])  # truncated
    s3.put_object(Bucket=BUCKET, Key="a/2/metadata.json", Body=json.dumps({**metadata, "version": "2"}).encode())
    s3.put_object(Bucket=BUCKET, Key="a/LIVE", Body=b"2\n")
    with pytest.raises(SyncError, match="upload is corrupt or incomplete"):
        sync(s3, BUCKET, "a/", models)
    assert (models / "LIVE").read_text() == "1\n"
    assert local_complete_versions(models) == ["1"] and leftovers(models) == []


def test_live_naming_a_missing_version_fails_cleanly(s3, tmp_path: Path):
    promote(s3)
    s3.put_object(Bucket=BUCKET, Key="a/LIVE", Body=b"9\n")
    with pytest.raises(SyncError, match="names version 9, which has no complete upload"):
        sync(s3, BUCKET, "a/", tmp_path / "models")


def test_overlapping_syncs_agree(s3, tmp_path: Path):
    promote(s3)
    promote(s3)
    for round_ in range(10):  # races are rare per round: several rounds, each on an empty volume
        models = tmp_path / f"models-{round_}"
        errors: list[BaseException] = []

        def one_run(models: Path = models, errors: list[BaseException] = errors) -> None:
            try:
                sync(s3, BUCKET, "a/", models)
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=one_run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert local_complete_versions(models) == ["1", "2"] and (models / "LIVE").read_text() == "2\n"
        assert leftovers(models) == []


def test_old_versions_are_pruned_but_never_live_or_previous(s3, tmp_path: Path):
    models = tmp_path / "models"
    for _ in range(6):
        promote(s3)
        sync(s3, BUCKET, "a/", models, keep_versions=3)
    assert local_complete_versions(models) == ["4", "5", "6"]
    run(["rollback", "--env", "staging", "--endpoint", "a", "--to", "2"], s3=s3, config=CONFIG)
    result = sync(s3, BUCKET, "a/", models, keep_versions=2)
    assert (result.live, result.previous) == ("2", "1")
    assert local_complete_versions(models) == ["1", "2"]  # live and previous kept, the rest pruned


def test_pinned_versions_are_copied_and_never_pruned(s3, tmp_path: Path):
    models = tmp_path / "models"
    for _ in range(5):
        promote(s3)
    result = sync(s3, BUCKET, "a/", models, keep_versions=2, pinned_versions=("1", "3"))
    assert (result.live, sorted(result.downloaded)) == ("5", ["1", "3", "4", "5"])
    assert local_complete_versions(models) == ["1", "3", "4", "5"]
    manager = ModelManager(models, pinned_version="3")
    assert manager.poll_once() and manager.current.version == "3"


def test_a_pinned_version_missing_from_the_bucket_fails_after_live_is_in_place(s3, tmp_path: Path):
    models = tmp_path / "models"
    promote(s3)
    with pytest.raises(SyncError, match="pinned version.s. 7 have no complete upload under s3://.*/a/; the variants "
                                        "pinned to them cannot start .live 1 is in place."):
        sync(s3, BUCKET, "a/", models, pinned_versions=("7",))
    assert (models / "LIVE").read_text() == "1\n"


def test_promoted_version_goes_live_in_a_running_server_without_a_failed_request(s3, tmp_path: Path):
    from tests.support.serving_process import Load, Server

    models = tmp_path / "models"
    promote(s3)
    sync(s3, BUCKET, "a/", models)
    server = Server(models, tmp_path / "capture")
    try:
        server.wait_ready()
        with Load(server) as load:
            assert load.wait_for(lambda: len(load.versions) > 50)
            assert promote(s3) == "2"
            sync(s3, BUCKET, "a/", models)
            assert load.wait_for(lambda: load.versions[-1] == "2", timeout=5), "not live within the polling interval"
        assert load.errors == [] and set(load.statuses) == {200}
    finally:
        server.stop()


@pytest.mark.parametrize("environment, message", [
    ({"SYNC_BUCKET": "b"}, "SYNC_PREFIX: required, not set\n"),
    ({"SYNC_BUCKET": "b", "SYNC_PREFIX": "a/", "SYNC_KEEP_VERSIONS": "1"},
     "SYNC_KEEP_VERSIONS: Input should be greater than or equal to 2 (got '1')\n"),
    ({"SYNC_BUCKET": "b", "SYNC_PREFIX": "a/", "SYNC_MODEL_DIR": "/x"},
     "unknown setting(s): SYNC_MODEL_DIR (did you mean SYNC_MODELS_DIR?); the SYNC_* variables are: SYNC_BUCKET, "
     "SYNC_KEEP_VERSIONS, SYNC_LOG_LEVEL, SYNC_MODELS_DIR, SYNC_PINNED_VERSIONS, SYNC_PREFIX\n"),
])
def test_the_sync_task_refuses_bad_settings_naming_the_variable(monkeypatch, capsys, environment, message):
    for name in [name for name in os.environ if name.startswith("SYNC_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert main() == 2
    assert capsys.readouterr().err == message
