"""A batch run's share: `python -m serving.worker --manifest s3://bucket/key.json`, a one-off task started by
`python -m pipeline.batch`. The same answering as the queue worker (serving/worker/answering.py), reading a
manifest (serving.contract.BatchManifest) instead of the queue, writing no notifications.

Each key's answer goes to `<output prefix><name below the input prefix, without its extension>.json` (`.bin` for
binary answers), its failure to `<output prefix>_failures/<same>.json`; a key already answered is skipped, so a run
started again picks up where it stopped. CSV (`.csv`, numbers, an optional header row) and JSON Lines (`.jsonl`, one
instance a line) objects are answered in requests of `batch_size` rows, into one answer in the `/predict` form:
`{"predictions": [one per row, in order], "model_name", "model_version", "rows"}`.

On SIGTERM (a Spot interruption, a stopped task) the object being answered is finished and the rest left for the
next run.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import signal
from dataclasses import replace
from typing import Any

import orjson

from serving.binary import Answer
from serving.contract import BatchManifest
from serving.errors import InvalidRequest, ModelFailed
from serving.service import ModelService
from serving.worker.answering import Answerer, Destination, Outcome, Request
from serving.worker.messages import Job

log = logging.getLogger("serving.worker.batch")
ROWS_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def rows_format(key: str) -> str | None:
    suffix = key[key.rfind("."):].lower() if "." in key.rsplit("/", 1)[-1] else ""
    return ROWS_FORMATS.get(suffix)


def parse_rows(body: bytes | bytearray, kind: str) -> list[Any]:
    """The instances of a CSV or JSON Lines object; InvalidRequest names the first bad line."""
    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"not UTF-8 text ({exc})") from None
    rows: list[Any] = []
    if kind == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise InvalidRequest(f"line {number} is not JSON: {exc}") from None
        return rows
    for number, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not record or not any(field.strip() for field in record):
            continue
        try:
            rows.append([float(field) for field in record])
        except ValueError:
            if number == 1:
                continue  # a header row
            raise InvalidRequest(f"line {number} has a value that is not a number: {record}") from None
    return rows


def destination_of(manifest: BatchManifest) -> Destination:
    return Destination(manifest.output_bucket, manifest.output_prefix, manifest.failure_prefix)


class BatchAnswerer(Answerer):
    """The queue worker's answering, with rows files answered in requests of `batch_size` rows."""

    def __init__(self, *args: Any, batch_size: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batch_size = batch_size

    def _read(self, job: Job) -> Request:
        kind = rows_format(job.key)
        if kind is None:
            return super()._read(job)
        body, _, _ = self._fetch(job)
        return replace(Request(body, None, False), rows=kind)

    async def _infer(self, request: Request) -> Answer:
        if request.rows is None:
            return await super()._infer(request)
        rows = parse_rows(request.body, request.rows)
        if not rows:
            raise InvalidRequest("no rows")
        predictions: list[Any] = []
        versions: list[str] = []
        for start in range(0, len(rows), self.batch_size):
            answer = orjson.loads(await self.plane.predict(orjson.dumps({"instances": rows[start:start +
                                                                                           self.batch_size]})))
            predictions.extend(answer["predictions"])
            versions.append(answer["model_version"])
        if len(set(versions)) > 1:
            raise ModelFailed(f"the live model version changed while this file was answered ({versions[0]} to "
                              f"{versions[-1]}); run the batch again, or pin a version with --version")
        return Answer(orjson.dumps({"predictions": predictions, "model_name": self.plane.model_name,
                                    "model_version": versions[0], "rows": len(rows)}))


class BatchRunner:
    def __init__(self, service: ModelService, answerer: BatchAnswerer, manifest: BatchManifest,
                 model_timeout_seconds: float = 300.0):
        self.service = service
        self.answerer = answerer
        self.manifest = manifest
        self.model_timeout_seconds = model_timeout_seconds
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        await self.service.start()
        try:
            waited = 0.0
            while not self.service.plane.ready():
                if waited >= self.model_timeout_seconds or self._stopping:
                    log.error("no model version loaded; nothing answered", extra={"fields": {
                        "waited_seconds": waited}})
                    return 1
                await asyncio.sleep(0.2)
                waited += 0.2
            for key in self.manifest.keys:
                if self._stopping:
                    break
                # The last try: a failure is recorded, and the next run tries the object again.
                job = Job(self.manifest.input_bucket, key, self.manifest.inference_id(key))
                await self.answerer.answer(job, final=True)
        finally:
            self.service.plane.begin_shutdown()
            await self.service.stop()
        counts = {outcome.value: count for outcome, count in self.answerer.counts.items() if count}
        log.info("batch share finished", extra={"fields": {
            **counts, "keys": len(self.manifest.keys), "stopped_early": self._stopping}})
        failed = self.answerer.counts[Outcome.FAILED] + self.answerer.counts[Outcome.GAVE_UP]
        return 0 if not failed and not self._stopping else 1
