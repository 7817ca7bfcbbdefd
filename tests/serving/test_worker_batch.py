"""A batch run's share in process, against moto: every kind of object answered into its output, rows files in
requests of the batch size, bad rows named by line, an object answered before skipped; and the manifest's checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from serving.contract import BatchManifest
from serving.errors import InvalidRequest
from serving.service import assemble
from serving.settings import ServingSettings
from serving.worker.answering import Outcome
from serving.worker.batch import BatchAnswerer, BatchRunner, destination_of, parse_rows, rows_format
from tests.support.serving_data import BENIGN_ROW, ROW, infer_body

BUCKET = "scores"


@pytest.fixture
def s3(monkeypatch):
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def _run(s3, models_dir: Path, tmp_path: Path, keys: list[str], batch_size: int = 2):
    manifest = BatchManifest(BUCKET, "batch/in/", BUCKET, "batch/out/", tuple(keys), batch_size)
    service = assemble(ServingSettings(model_name="example", models_dir=models_dir, capture_dir=tmp_path / "capture",
                                       instance_id="test", poll_interval_seconds=0.05))
    answerer = BatchAnswerer(service.plane, s3, None, destination_of(manifest), 10 * 1024 * 1024,
                             batch_size=manifest.batch_size)
    code = asyncio.run(BatchRunner(service, answerer, manifest, model_timeout_seconds=10).run())
    return code, answerer, service


def _read(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_every_kind_of_object_is_answered_and_rows_in_requests_of_the_batch_size(s3, models_dir, tmp_path):
    csv_rows = "\n".join(",".join(map(str, row)) for row in (ROW, BENIGN_ROW, ROW, BENIGN_ROW, ROW))
    objects = {"batch/in/one.json": json.dumps(infer_body(id="one")),
               "batch/in/team/two.json": json.dumps({"instances": [ROW]}),
               "batch/in/table.csv": ",".join(f"f{i}" for i in range(30)) + "\n" + csv_rows + "\n",
               "batch/in/lines.jsonl": "\n".join(json.dumps(row) for row in (BENIGN_ROW, ROW)) + "\n"}
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    code, answerer, service = _run(s3, models_dir, tmp_path, sorted(objects), batch_size=2)
    assert code == 0 and answerer.counts[Outcome.ANSWERED] == 4
    assert _read(s3, "batch/out/one.json")["outputs"][0]["data"] == [0]
    assert _read(s3, "batch/out/team/two.json")["predictions"] == [0]
    assert _read(s3, "batch/out/table.json") == {"predictions": [0, 1, 0, 1, 0], "model_name": "example",
                                                 "model_version": "1", "rows": 5}
    assert _read(s3, "batch/out/lines.json")["predictions"] == [1, 0]
    # the CSV's 5 rows went as requests of at most 2 rows (the JSON Lines file's 2 as one)
    assert service.plane.batcher.rows == 1 + 1 + 5 + 2
    again, answerer, _ = _run(s3, models_dir, tmp_path, sorted(objects))
    assert again == 0 and answerer.counts[Outcome.ALREADY_ANSWERED] == 4


def test_a_bad_row_fails_its_object_naming_the_line_and_the_others_are_answered(s3, models_dir, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="batch/in/bad.csv", Body=b"1,2\n3,x\n")
    s3.put_object(Bucket=BUCKET, Key="batch/in/good.jsonl", Body=json.dumps(ROW).encode())
    code, answerer, _ = _run(s3, models_dir, tmp_path, ["batch/in/bad.csv", "batch/in/good.jsonl"])
    assert code == 1 and answerer.counts[Outcome.FAILED] == 1 and answerer.counts[Outcome.ANSWERED] == 1
    failure = _read(s3, "batch/out/_failures/bad.json")
    assert failure["failureReason"] == "line 2 has a value that is not a number: ['3', 'x']"


def test_rows_are_parsed_with_an_optional_header_and_named_errors():
    assert parse_rows(b"a,b\n1,2\n\n3,4\n", "csv") == [[1.0, 2.0], [3.0, 4.0]]
    assert parse_rows(b"1,2\n", "csv") == [[1.0, 2.0]]
    assert parse_rows(b'[1, 2]\n\n{"x": 1}\n', "jsonl") == [[1, 2], {"x": 1}]
    with pytest.raises(InvalidRequest, match="line 2 is not JSON"):
        parse_rows(b"[1]\n[2\n", "jsonl")
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        parse_rows(b"\xff\xfe1", "csv")
    assert (rows_format("a/b.CSV"), rows_format("a/b.jsonl"), rows_format("a/b.json"), rows_format("a/.csv")) == (
        "csv", "jsonl", None, "csv")


@pytest.mark.parametrize(("document", "message"), [
    ("{}", "it needs input_bucket"),
    (json.dumps({"input_bucket": "b", "input_prefix": "in/", "output_bucket": "b", "output_prefix": "out/",
                 "keys": ["other/x.json"]}), "outside the input prefix"),
    (json.dumps({"input_bucket": "b", "input_prefix": "in/", "output_bucket": "b", "output_prefix": "out/",
                 "keys": [], "batch_size": 0}), "batch_size 0"),
])
def test_a_manifest_is_checked(document, message):
    with pytest.raises(ValueError, match=message):
        BatchManifest.from_json(document)
