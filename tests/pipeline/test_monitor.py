"""The model monitor on the bundled example model: a baseline of its data set, and captures made by a real server
process from rows of that data set (as they are, with one feature shifted, as binary tensors, with ground truth),
reported by `python -m pipeline.monitor` as a user runs it."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pipeline.monitor.__main__ import main
from tests.support.monitor_captures import MODELS, ROWS, SHIFTED, capture, sample


def report(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["report", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def plain(monitor_folder: Path, data_set) -> tuple[Path, dict[str, tuple[int, float]]]:
    return capture(monitor_folder / "plain", sample(data_set, seed=1)[0])


def test_the_baseline_holds_each_feature_named_by_the_header_and_the_model_s_predictions(baseline_file, data_set):
    names, features, _ = data_set
    baseline = json.loads(baseline_file.read_text())
    assert [feature["name"] for feature in baseline["features"]] == names
    radius = baseline["features"][0]
    assert radius["kind"] == "numeric" and radius["count"] == 569 and radius["missing"] == 0
    # Fewer rows than quantiles: every value, at the precision of the model's FP32 input.
    assert radius["quantiles"] == sorted(features[:, 0].astype(np.float32).astype(np.float64).tolist())
    label = next(column for column in baseline["predictions"] if column["name"] == "label")
    assert label["kind"] == "categorical" and sum(label["frequencies"].values()) == 569
    assert {column["name"] for column in baseline["predictions"]} == {"label", "probabilities[0]",
                                                                      "probabilities[1]"}
    assert baseline["model"]["sha256"] == json.loads((MODELS / "1/metadata.json").read_text())["sha256"]


def test_rows_of_the_data_set_itself_drift_nowhere(plain, baseline_file, capsys):
    capture_dir, _ = plain
    document = report(capsys, "--captures", str(capture_dir), "--baseline", str(baseline_file))
    assert document["status"] == "ok" and document["records"] == ROWS and document["rows"] == ROWS
    assert document["drifted_features"] == [] and len(document["features"]) == 30
    assert all(result["method"] == "ks" and not result["drift"] for result in document["features"].values())
    assert not document["prediction_drift"] and document["model_versions"][0]["version"] == "1"


def test_a_shifted_feature_is_flagged_and_the_others_are_not(monitor_folder, data_set, baseline_file, capsys):
    names = data_set[0]
    rows, _ = sample(data_set, seed=2)
    rows[:, names.index(SHIFTED)] *= 1.25
    capture_dir, _ = capture(monitor_folder / "shifted", rows)
    page = monitor_folder / "shifted/report.html"
    document = report(capsys, "--captures", str(capture_dir), "--baseline", str(baseline_file), "--html", str(page))
    assert document["drifted_features"] == [SHIFTED]
    assert next(iter(document["features"])) == SHIFTED  # drifted first
    assert document["features"][SHIFTED]["p_value"] < document["features"][SHIFTED]["threshold"]

    html = page.read_text()
    first = html.index('<section class="column')
    assert html[first:].startswith(f'<section class="column drifted" id="feature-1" data-name="{SHIFTED}">')
    assert "<svg" in html[first:html.index("</section>", first)]  # its plot beside its numbers
    drifted_predictions = sum(result["drift"] for result in document["prediction"].values())
    assert html.count('class="column drifted"') == 1 + drifted_predictions
    # Self-contained: nothing to fetch (the only URLs are SVG's namespace names, which no browser loads).
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert {url for url in re.findall(r'(?:href|src)="([^"#][^"]*)"', html)} == set()


def test_binary_tensor_captures_are_decoded_as_their_json_twins(monitor_folder, data_set, plain, baseline_file, capsys):
    rows, _ = sample(data_set, seed=1)
    binary_dir, _ = capture(monitor_folder / "binary", rows, binary=True)
    as_binary = report(capsys, "--captures", str(binary_dir), "--baseline", str(baseline_file))
    as_json = report(capsys, "--captures", str(plain[0]), "--baseline", str(baseline_file))
    assert as_binary["records"] == ROWS and as_binary["skipped"] == {}
    for name, result in as_json["features"].items():
        assert as_binary["features"][name]["statistic"] == pytest.approx(result["statistic"]), name


def test_ground_truth_is_joined_by_inference_id(monitor_folder, data_set, plain, baseline_file, capsys):
    """Labels of every V2 request (one request in four flipped, so that the scores are not all 1), scored against the
    answers the server gave, counted here by hand."""
    capture_dir, answered = plain
    _, truth = sample(data_set, seed=1)
    labels = {f"req-{index}": int(label) ^ (index % 8 == 0) for index, label in enumerate(truth)}
    ground_truth = monitor_folder / "ground-truth/example/2026/12/05/10"
    ground_truth.mkdir(parents=True)
    (ground_truth / "labels.jsonl").write_text("".join(
        json.dumps({"inferenceId": request_id, "groundTruth": labels[request_id]}) + "\n" for request_id in answered))
    document = report(capsys, "--captures", str(capture_dir), "--baseline", str(baseline_file),
                      "--ground-truth", str(monitor_folder / "ground-truth"))
    quality = document["quality"]
    pairs = [(labels[request_id], label) for request_id, (label, _) in answered.items()]
    true_positive = sum(actual == predicted == 1 for actual, predicted in pairs)
    precision = true_positive / sum(predicted == 1 for _, predicted in pairs)
    recall = true_positive / sum(actual == 1 for actual, _ in pairs)
    positives = [answered[request_id][1] for request_id in answered if labels[request_id] == 1]
    negatives = [answered[request_id][1] for request_id in answered if labels[request_id] == 0]
    auc = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives) / (len(positives) * len(negatives))
    assert quality["joined"] == len(answered) == ROWS // 2 and quality["unjoined"] == ROWS // 2  # /predict: no id
    assert quality["problem"] == "classification"
    accuracy = sum(actual == predicted for actual, predicted in pairs) / len(pairs)
    assert quality["accuracy"] == pytest.approx(accuracy) and accuracy < 1
    assert quality["precision"] == pytest.approx(precision) and quality["recall"] == pytest.approx(recall)
    assert quality["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert quality["auc"] == pytest.approx(auc)  # the V2 answers carry the probabilities


def test_a_window_without_captures_reports_no_data(monitor_folder, baseline_file, capsys):
    empty = monitor_folder / "empty"
    empty.mkdir()
    document = report(capsys, "--captures", str(empty), "--baseline", str(baseline_file))
    assert document["status"] == "no data" and document["records"] == 0 and document["notes"]


def test_a_version_without_a_baseline_is_described_by_completeness_and_ranges(plain, capsys):
    document = report(capsys, "--captures", str(plain[0]))
    assert document["status"] == "no baseline" and document["baseline"] is None
    described = document["features"]["input[0]"]
    assert described["drift"] is None and described["missing"] == 0 and described["min"] <= described["max"]
    assert any("no baseline" in note for note in document["notes"])


def test_malformed_capture_lines_are_skipped_and_counted(monitor_folder, plain, baseline_file, capsys):
    copy = monitor_folder / "malformed"
    shutil.copytree(plain[0], copy)
    first = next(path for path in sorted(copy.rglob("*.jsonl")))
    with first.open("ab") as handle:
        handle.write(b"not json at all\n{\"captureData\": 1}\n")
    document = report(capsys, "--captures", str(copy), "--baseline", str(baseline_file))
    assert document["records"] == ROWS and document["skipped"] == {"not a capture record": 2}


def test_bad_input_is_one_line_naming_the_fix(monitor_folder, data_csv, capsys):
    assert main(["baseline", "--data", str(data_csv), "--model", str(MODELS / "1"), "--out",
                 str(monitor_folder / "x.json")]) == 2
    assert "drop label or id columns with --drop COLUMN" in capsys.readouterr().err
    assert main(["report", "--captures", str(monitor_folder / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_the_scheduled_task_reports_each_variant_to_s3_and_publishes_metrics(plain, baseline_file, monkeypatch):
    """`python -m pipeline.monitor run` against moto: the window's exported captures, the version's baseline from the
    model bucket, a report per variant (the one without captures: "no data"), metrics read back from CloudWatch."""
    import boto3
    from moto import mock_aws

    from pipeline.monitor.task import MonitorSettings, run

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    capture_dir, _ = plain
    with mock_aws():
        s3, cloudwatch = boto3.client("s3"), boto3.client("cloudwatch")
        for bucket in ("captures", "models"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        hours = set()
        for path in capture_dir.rglob("*.jsonl"):  # as the export task lays them out
            relative = path.relative_to(capture_dir).as_posix()
            hours.add(datetime.strptime("/".join(relative.split("/")[2:6]), "%Y/%m/%d/%H").replace(tzinfo=UTC))
            s3.put_object(Bucket="captures", Key=f"captures/{relative}", Body=path.read_bytes())
        s3.put_object(Bucket="models", Key="example/1/baseline.json", Body=baseline_file.read_bytes())
        settings = MonitorSettings(endpoint="example", environment="staging", capture_bucket="captures",
                                   capture_prefix="captures/", model_bucket="models", model_prefix="example/",
                                   variants="main,challenger", window_hours=len(hours) + 1)
        results = run(settings, s3, cloudwatch, max(hours) + timedelta(hours=1, minutes=20))

        assert [(result.variant, result.status, result.records) for result in results] == [
            ("main", "ok", ROWS), ("challenger", "no data", 0)]
        report_json = json.loads(s3.get_object(Bucket="captures", Key=results[0].report_key)["Body"].read())
        assert report_json["drifted_features"] == [] and report_json["model_version"] == "1"
        assert results[0].report_key.startswith("monitoring/example/main/")
        html = s3.get_object(Bucket="captures", Key=results[0].report_key.replace(".json", ".html"))
        assert html["ContentType"].startswith("text/html") and b"<svg" in html["Body"].read()

        def published(name: str, variant: str) -> float:
            points = cloudwatch.get_metric_statistics(
                Namespace="EcsMlops/Monitor", MetricName=name, StartTime=datetime.now(UTC) - timedelta(hours=1),
                EndTime=datetime.now(UTC) + timedelta(hours=1), Period=3600, Statistics=["Maximum"],
                Dimensions=[{"Name": "Environment", "Value": "staging"}, {"Name": "Endpoint", "Value": "example"},
                            {"Name": "Variant", "Value": variant}])["Datapoints"]
            return points[0]["Maximum"]

        assert published("RecordsAnalysed", "main") == ROWS and published("NoData", "main") == 0
        assert published("NoData", "challenger") == 1 and published("FeaturesDrifted", "main") == 0
        scores = cloudwatch.list_metrics(Namespace="EcsMlops/Monitor", MetricName="DriftScore")["Metrics"]
        assert len(scores) == 30


def test_a_parquet_data_set_gives_the_baseline_its_csv_twin_gives(monitor_folder, data_csv, baseline_file):
    import pyarrow as arrow
    import pyarrow.parquet as parquet

    from pipeline.monitor.dataset import read_csv

    table = read_csv(data_csv)
    parquet.write_table(arrow.table(dict(zip(table.names, table.columns, strict=True))),
                        monitor_folder / "breast_cancer.parquet")
    out = monitor_folder / "from-parquet.json"
    assert main(["baseline", "--data", str(monitor_folder / "breast_cancer.parquet"), "--model", str(MODELS / "1"),
                 "--out", str(out), "--drop", "target"]) == 0
    from_parquet, from_csv = json.loads(out.read_text()), json.loads(baseline_file.read_text())
    assert from_parquet["features"] == from_csv["features"]
    assert from_parquet["predictions"] == from_csv["predictions"]
