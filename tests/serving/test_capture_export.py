"""The capture export against moto S3 and a local folder standing in for the data volume: what the server's capture
writer sealed arrives in SageMaker's layout, each record once; open files wait, a dead server's file is taken
without its torn line, a failed upload keeps the file."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from serving import capture_export
from serving.capture import CaptureWriter
from serving.capture_export import export
from tests.support.delivery import BUCKET

HOUR = 1795788000  # 2026-11-27T14:00:00Z
PREFIX = "captures/"


def write(capture_dir: Path, variant: str, moments: list[float], instance: str = "task") -> CaptureWriter:
    """Records at these moments, through the server's own writer, closed (sealed) afterwards."""
    writer = CaptureWriter(capture_dir, "a", instance, variant=variant)

    async def run() -> None:
        writer.start()
        for index, moment in enumerate(moments):
            writer.offer(json.dumps({"n": index}).encode(), b'{"outputs":[]}', f"{variant}-{index}", "3", 1.0,
                         inference_time=moment)
        writer.close()

    asyncio.run(run())
    return writer


def objects(s3) -> dict[str, list[dict]]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    return {item["Key"]: [json.loads(line) for line in
                          s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().splitlines()]
            for item in listed}


def test_sealed_files_arrive_in_sagemaker_layout_each_record_once(s3, tmp_path: Path):
    current = write(tmp_path, "current", [HOUR + 10, HOUR + 20, HOUR + 3600 + 5])
    shadowed = write(tmp_path, "shadowed", [HOUR + 30])
    result = export(s3, BUCKET, PREFIX, tmp_path, "a")
    assert result.records == 4 and result.failed == []
    stored = objects(s3)
    assert sorted(stored) == sorted([
        f"captures/a/current/2026/11/27/14/{current.file_stem}-1.jsonl",
        f"captures/a/current/2026/11/27/15/{current.file_stem}-2.jsonl",
        f"captures/a/shadowed/2026/11/27/14/{shadowed.file_stem}-1.jsonl"])
    ids = sorted(record["eventMetadata"]["inferenceId"] for records in stored.values() for record in records)
    assert ids == ["current-0", "current-1", "current-2", "shadowed-0"]
    assert {record["eventMetadata"]["variantName"] for record in
            stored[f"captures/a/shadowed/2026/11/27/14/{shadowed.file_stem}-1.jsonl"]} == {"shadowed"}
    head = s3.head_object(Bucket=BUCKET, Key=sorted(stored)[0])
    assert head["ContentType"] == "application/jsonlines"
    # Files and emptied date folders removed; the variants' folders stay for their servers.
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == [
        "a", "a/current", "a/shadowed"]
    assert export(s3, BUCKET, PREFIX, tmp_path, "a").exported == []  # nothing twice


def test_a_run_cut_short_after_an_upload_writes_the_same_object_again(s3, tmp_path: Path):
    write(tmp_path, "main", [HOUR + 1, HOUR + 2])
    (path,) = tmp_path.rglob("*.jsonl")
    kept = path.read_bytes()
    first = export(s3, BUCKET, PREFIX, tmp_path, "a").exported
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(kept)  # as if the removal had not happened
    assert export(s3, BUCKET, PREFIX, tmp_path, "a").exported == first
    assert [len(records) for records in objects(s3).values()] == [2]


def test_open_files_wait_and_a_dead_servers_file_goes_without_its_torn_line(s3, tmp_path: Path):
    folder = tmp_path / "a" / "main" / "2026" / "11" / "27" / "14"
    folder.mkdir(parents=True)
    line = b'{"captureData":{},"eventMetadata":{"inferenceId":"x"}}\n'
    open_file = folder / ".task-7-1-1.jsonl.open"
    open_file.write_bytes(line + b'{"captureData":{"endpointIn')
    now = HOUR + 4000
    os.utime(open_file, (now - 60, now - 60))
    assert export(s3, BUCKET, PREFIX, tmp_path, "a", orphan_after_seconds=3600, now=now).exported == []
    assert open_file.exists()
    result = export(s3, BUCKET, PREFIX, tmp_path, "a", orphan_after_seconds=3600, now=now + 3600)
    assert (result.exported, result.orphans, result.records) == (
        ["captures/a/main/2026/11/27/14/task-7-1-1.jsonl"], 1, 1)
    assert s3.get_object(Bucket=BUCKET, Key=result.exported[0])["Body"].read() == line
    assert not open_file.exists()


def test_a_failed_upload_keeps_the_file_and_fails_the_task(s3, tmp_path: Path, monkeypatch, capsys):
    write(tmp_path, "main", [HOUR + 1])
    result = export(s3, "no-such-bucket", PREFIX, tmp_path, "a")
    assert result.exported == [] and len(result.failed) == 1 and "NoSuchBucket" in result.failed[0]
    assert len(list(tmp_path.rglob("*.jsonl"))) == 1
    monkeypatch.setattr("boto3.client", lambda service, **_: s3)
    for name, value in {"EXPORT_BUCKET": "no-such-bucket", "EXPORT_ENDPOINT": "a",
                        "EXPORT_CAPTURE_DIR": str(tmp_path), "EXPORT_PREFIX": PREFIX}.items():
        monkeypatch.setenv(name, value)
    assert capture_export.main() == 1
    monkeypatch.setenv("EXPORT_BUCKET", BUCKET)
    assert capture_export.main() == 0
    assert list(tmp_path.rglob("*.jsonl")) == [] and len(objects(s3)) == 1


@pytest.mark.parametrize("environment, message", [
    ({"EXPORT_ENDPOINT": "a"}, "EXPORT_BUCKET: required, not set"),
    ({"EXPORT_BUCKET": "b", "EXPORT_ENDPOINT": "a", "EXPORT_CAPTURE_DIRS": "/x"},
     "unknown setting(s): EXPORT_CAPTURE_DIRS (did you mean EXPORT_CAPTURE_DIR?)"),
])
def test_the_export_task_refuses_bad_settings_naming_the_variable(monkeypatch, capsys, environment, message):
    for name in [name for name in os.environ if name.startswith("EXPORT_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert capture_export.main() == 2
    assert message in capsys.readouterr().err
