"""Request capture: SageMaker Data Capture records, partitioning, sampling, nothing accepted lost at close,
and a volume that refuses writes stops capture, never predictions."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest

from serving import capture
from serving.capture import CaptureWriter
from serving.capture_records import CaptureItem, capture_record, encode_records
from tests.support.serving_data import ROW, infer_body

MOMENT = 1795790000.123  # 2026-11-27T14:33:20.123Z


def item(index: int = 0, request_id: str | None = None, moment: float = MOMENT) -> CaptureItem:
    return json.dumps({"n": index}).encode(), b'{"predictions":[0]}', request_id, moment, "3", 1.25


def offer(writer: CaptureWriter, entry: CaptureItem) -> None:
    request, response, request_id, moment, version, latency = entry
    writer.offer(request, response, request_id, version, latency, inference_time=moment)


def test_record_is_sagemaker_data_capture_json():
    record = json.loads(capture_record(item(request_id="req-9"), "a"))
    assert record["eventVersion"] == "0"
    assert record["captureData"]["endpointInput"] == {"observedContentType": "application/json", "mode": "INPUT",
                                                      "data": '{"n": 0}', "encoding": "JSON"}
    assert record["captureData"]["endpointOutput"]["data"] == '{"predictions":[0]}'
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    metadata = record["eventMetadata"]
    assert metadata["inferenceId"] == "req-9" and uuid.UUID(metadata["eventId"]).version == 4
    assert metadata["inferenceTime"] == "2026-11-27T14:33:20.123Z"
    assert (metadata["modelName"], metadata["modelVersion"], metadata["latencyMs"]) == ("a", "3", 1.25)


def test_bodies_are_quoted_exactly_and_metadata_escaped():
    # Pretty-printed JSON with escapes and non-ASCII: the captured string must give back the very same bytes.
    body = '{"text": "a \\"quoted\\" \\\\ path \\u00e9 é",\n\t"rows":\r\n [[1, 2]]}'.encode()
    assert orjson.loads(body)["text"] == 'a "quoted" \\ path é é'
    record = json.loads(capture_record((body, b'{"outputs":[]}', 'id "with" \\ quotes', MOMENT, 'v"1', 0.5), "m"))
    assert record["captureData"]["endpointInput"]["data"].encode() == body
    assert record["eventMetadata"]["inferenceId"] == 'id "with" \\ quotes'
    assert record["eventMetadata"]["modelVersion"] == 'v"1'


def test_a_body_that_is_not_utf8_is_captured_with_replacement_characters():
    items = [(b'{"a": 1}', b"{}", None, MOMENT, "1", 1.0), (b'{"a": "\xff"}', b"{}", None, MOMENT, "1", 1.0)]
    (encoded,) = encode_records([field for entry in items for field in entry], "m")
    data = [json.loads(line)["captureData"]["endpointInput"]["data"] for line in encoded.lines.splitlines()]
    assert data == ['{"a": 1}', '{"a": "\ufffd"}']


@pytest.mark.parametrize(("latency_ms", "written"), [
    (0.0, 0.0), (0.0006, 0.001), (1.25, 1.25), (9.9999, 10.0), (1005.0, 1005.0), (123456.7891, 123456.789),
    (5e9, 999999.999),  # longer than the field holds: the largest value it can write
])
def test_latency_is_written_in_milliseconds_to_the_microsecond(latency_ms, written):
    record = json.loads(capture_record((b"{}", b"{}", None, MOMENT, "1", latency_ms), "m"))
    assert record["eventMetadata"]["latencyMs"] == written


def test_a_chunk_gets_distinct_version_4_event_ids_and_its_own_times():
    items = [(b"{}", b"{}", None, MOMENT + index * 0.001, "1", 1.0) for index in range(300)]
    (encoded,) = encode_records([field for entry in items for field in entry], "m")
    records = [json.loads(line)["eventMetadata"] for line in encoded.lines.splitlines()]
    ids = [uuid.UUID(record["eventId"]) for record in records]
    assert len(set(ids)) == 300 and all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(record["inferenceId"] == record["eventId"] for record in records)  # no id given: the event's
    assert records[0]["inferenceTime"] == "2026-11-27T14:33:20.123Z"
    assert records[299]["inferenceTime"] == "2026-11-27T14:33:20.422Z"


def run_writer(writer: CaptureWriter, items: list[CaptureItem]) -> None:
    async def scenario() -> None:
        writer.start()
        for entry in items:
            offer(writer, entry)
        await asyncio.sleep(0.01)
        writer.close()
    asyncio.run(scenario())


def test_records_are_partitioned_by_variant_and_hour_in_one_file_per_instance_and_process(tmp_path: Path):
    writer = CaptureWriter(tmp_path, "a", "task-1", variant="candidate")
    run_writer(writer, [item(i) for i in range(5)] + [item(9, moment=MOMENT + 3600)])
    hours = tmp_path / "a" / "candidate" / "2026" / "11" / "27"
    first = hours / "14" / f"{writer.file_stem}-1.jsonl"
    second = hours / "15" / f"{writer.file_stem}-2.jsonl"
    assert writer.file_stem.startswith(f"task-1-{os.getpid()}-")
    assert sorted(path.name for path in hours.rglob("*")) == sorted(["14", "15", first.name, second.name])
    assert [json.loads(line)["captureData"]["endpointInput"]["data"] for line in first.read_text().splitlines()] \
        == [json.dumps({"n": i}) for i in range(5)]
    assert len(second.read_text().splitlines()) == 1
    assert json.loads(second.read_text())["eventMetadata"]["variantName"] == "candidate"
    assert writer.written == writer.accepted == 6 and writer.dropped == 0


def test_an_idle_writer_seals_its_file_once_the_hour_is_over(tmp_path: Path, monkeypatch):
    writer = CaptureWriter(tmp_path, "a", "t", flush_interval_seconds=0.01)
    monkeypatch.setattr(capture, "SEAL_CHECK_SECONDS", 0.05)
    now = [MOMENT]
    monkeypatch.setattr(capture, "_now", lambda: now[0])

    async def scenario() -> tuple[list[str], list[str]]:
        writer.start()
        writer.offer(b"{}", b"{}", None, "1", 1.0)
        await asyncio.sleep(0.3)
        before = sorted(path.name for path in tmp_path.rglob("*.jsonl*"))
        now[0] = MOMENT + 3600  # the hour is over; no new request arrives
        await asyncio.sleep(0.3)
        after = sorted(path.name for path in tmp_path.rglob("*.jsonl*"))
        writer.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert before == [f".{writer.file_stem}-1.jsonl.open"]
    assert after == [f"{writer.file_stem}-1.jsonl"]


def test_close_writes_everything_accepted_even_in_large_numbers(tmp_path: Path):
    writer = CaptureWriter(tmp_path, "a", "t", queue_size=100_000, flush_interval_seconds=30)
    run_writer(writer, [item(i) for i in range(5000)])
    lines = next(tmp_path.rglob("*.jsonl")).read_text().splitlines()
    assert len(lines) == 5000 and writer.written == 5000


def test_a_full_queue_drops_and_counts(tmp_path: Path):
    writer = CaptureWriter(tmp_path, "a", "t", queue_size=3, flush_interval_seconds=30)
    run_writer(writer, [item(i) for i in range(5)])
    assert (writer.written, writer.dropped_queue_full) == (3, 2)


def test_records_written_free_their_place_in_the_queue(tmp_path: Path):
    async def scenario() -> CaptureWriter:
        writer = CaptureWriter(tmp_path, "a", "t", queue_size=3, flush_interval_seconds=0.01)
        writer.start()
        for index in range(3):
            offer(writer, item(index))
        deadline = time.monotonic() + 10
        while writer.written < 3 and time.monotonic() < deadline:  # a flush encodes them, the writer writes them
            await asyncio.sleep(0.01)
        for index in range(3, 6):
            offer(writer, item(index))
        writer.close()
        return writer
    writer = asyncio.run(scenario())
    assert (writer.accepted, writer.written, writer.dropped) == (6, 6, 0)


def test_a_stalled_volume_bounds_the_queue_and_loses_nothing_accepted(tmp_path: Path):
    # An NFS mount that stops answering blocks write(): records must not pile up in memory behind it.
    volume_back = threading.Event()

    async def scenario() -> CaptureWriter:
        writer = CaptureWriter(tmp_path, "a", "t", queue_size=3, flush_interval_seconds=0.01)
        handle_for = writer._handle_for
        writer._handle_for = lambda hour: (volume_back.wait(10), handle_for(hour))[1]
        writer.start()
        for index in range(10):
            offer(writer, item(index))
            await asyncio.sleep(0.02)  # flushes hand the first records to the stalled writer
        assert (writer.accepted, writer.dropped_queue_full, writer.written) == (3, 7, 0)
        volume_back.set()
        writer.close()
        return writer
    writer = asyncio.run(scenario())
    assert writer.written == 3 and len(next(tmp_path.rglob("*.jsonl")).read_text().splitlines()) == 3


def test_records_offered_while_a_flush_encodes_in_chunks_are_written_in_order(tmp_path: Path):
    async def scenario() -> CaptureWriter:
        writer = CaptureWriter(tmp_path, "a", "t", queue_size=100_000, flush_interval_seconds=0.01)
        writer.start()
        for index in range(3000):  # several chunks: the flush encodes them over several loop turns
            offer(writer, item(index))
            if index % 100 == 0:
                await asyncio.sleep(0.002)  # let flushes and their encoding turns run between requests
        writer.close()
        return writer
    writer = asyncio.run(scenario())
    lines = next(tmp_path.rglob("*.jsonl")).read_text().splitlines()
    numbers = [json.loads(json.loads(line)["captureData"]["endpointInput"]["data"])["n"] for line in lines]
    assert numbers == list(range(3000)) and writer.written == 3000


@pytest.mark.parametrize(("percent", "low", "high"), [(0, 0, 0), (50, 1600, 2400), (100, 4000, 4000)])
def test_sampling(tmp_path: Path, percent, low, high):
    writer = CaptureWriter(tmp_path, "a", "t", sample_percent=percent, queue_size=10_000)
    for index in range(4000):
        offer(writer, item(index))
    assert low <= writer.accepted <= high


def test_an_unwritable_volume_stops_capture_and_counts(tmp_path: Path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the volume should be")  # fails even for root, unlike a chmod
    writer = CaptureWriter(blocked, "a", "t")
    run_writer(writer, [item(i) for i in range(3)])
    assert writer.failed and writer.dropped_write_error == 3 and writer.written == 0
    offer(writer, item(4))
    assert writer.dropped_write_error == 4


@pytest.mark.parametrize("fast_path", [True, False])
def test_app_captures_each_prediction(client_for, tmp_path: Path, fast_path):
    client = client_for(fast_path=fast_path)
    for index in range(3):
        assert client.post("/v2/models/example/infer", json=infer_body(id=f"r{index}")).status_code == 200
    client.post("/predict", json={"instances": [ROW]})
    client.__exit__(None, None, None)  # shutdown flushes
    lines = [json.loads(line) for path in (tmp_path / "capture").rglob("*.jsonl")
             for line in path.read_text().splitlines()]
    assert [line["eventMetadata"]["inferenceId"] for line in lines[:3]] == ["r0", "r1", "r2"]
    assert json.loads(lines[3]["captureData"]["endpointOutput"]["data"])["predictions"] == [0]


def test_predictions_continue_when_the_volume_refuses_writes(client_for, tmp_path: Path):
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    client = client_for(capture_dir=blocked, metrics_interval_seconds=0.05)
    for _ in range(20):
        assert client.post("/predict", json={"instances": [ROW]}).status_code == 200
    end = time.monotonic() + 5
    while not client.get("/status").json()["capture"]["failed"] and time.monotonic() < end:
        time.sleep(0.05)
    status = client.get("/status").json()["capture"]
    assert status["failed"] is True and status["dropped"] >= 1
    assert client.post("/predict", json={"instances": [ROW]}).status_code == 200
