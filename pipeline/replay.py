"""Replay captured requests against a candidate model version and report how its answers agree with what was
answered: `python -m pipeline.models replay`.

Captures come from the environment's capture bucket (`<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, what the export
task writes) or, with `--captures DIR`, from a capture folder on disk (a server's SERVING_CAPTURE_DIR, e.g. what
`make serve` wrote). The candidate runs locally with the server's own data plane and runtime (`--local`; the version
from the model bucket, or from `--models DIR`), or is a running server reached at `--url` (a variant, from inside
the VPC, or `make serve`).

Agreement, per output: for labels (integer and boolean outputs) the share of equal values; for numeric outputs the
largest and the mean absolute difference. Latency percentiles of the candidate beside those captured.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import math
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from serving.contract import METADATA_FILE, MODEL_FILE, capture_hours, is_sealed_capture, version_object_key

LABEL_TYPES = {"BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BYTES"}
PREDICTIONS = "predictions"
"""The output name a `/predict` answer is compared under."""


class ReplayError(Exception):
    """A clear, one-line reason the replay cannot go on."""


@dataclass(frozen=True)
class Captured:
    request: bytes
    response: bytes
    latency_ms: float
    moment: datetime
    variant: str
    model_version: str
    is_predict: bool
    """A `/predict` request (`{"instances": ...}`), else an Open Inference Protocol one."""


# --- reading captures -------------------------------------------------------------------------------------------------

def _parse_lines(lines: Iterable[bytes], since: datetime, until: datetime) -> Iterator[Captured]:
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        metadata = record["eventMetadata"]
        moment = datetime.strptime(metadata["inferenceTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        if not since <= moment < until:
            continue
        data = record["captureData"]
        request = json.loads(data["endpointInput"]["data"])
        yield Captured(_json_answers(request), data["endpointOutput"]["data"].encode(),
                       float(metadata.get("latencyMs", 0.0)), moment, metadata.get("variantName", "main"),
                       str(metadata.get("modelVersion")), "instances" in request)


def _json_answers(request: dict[str, Any]) -> bytes:
    """The request, asking for its outputs in JSON: a client of the binary extension (tritonclient) asked for them
    in binary, and replay compares JSON answers."""
    parameters = request.get("parameters")
    if isinstance(parameters, dict):
        parameters.pop("binary_data_output", None)
    for output in request.get("outputs") or []:
        if isinstance(output, dict) and isinstance(output.get("parameters"), dict):
            output["parameters"].pop("binary_data", None)
    return json.dumps(request).encode()


def local_captures(root: Path, endpoint: str, since: datetime, until: datetime) -> list[Captured]:
    """Sealed and still-open capture files under `<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/`."""
    folder = root / endpoint
    if not folder.is_dir():
        raise ReplayError(f"no capture folder {folder}: give the server's SERVING_CAPTURE_DIR and the model name")
    hours = set(capture_hours(since, until)) if (until - since) <= timedelta(days=31) else None
    records: list[Captured] = []
    for path in sorted(folder.glob("*/*/*/*/*/*")):
        hour_path = "/".join(path.relative_to(folder).parts[1:5])
        readable = is_sealed_capture(path.name) or path.name.endswith(".jsonl.open")
        if path.is_file() and readable and (hours is None or hour_path in hours):
            records.extend(_parse_lines(path.read_bytes().splitlines(), since, until))
    return sorted(records, key=lambda record: record.moment)


def s3_captures(s3: Any, bucket: str, endpoint: str, since: datetime, until: datetime) -> list[Captured]:
    """Exported capture files under `s3://<bucket>/<endpoint>/` whose hour falls in the range."""
    hours = set(capture_hours(since, until)) if (until - since) <= timedelta(days=31) else None
    records: list[Captured] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{endpoint}/"):
        for item in page.get("Contents", []):
            parts = item["Key"].split("/")
            if len(parts) != 7 or not is_sealed_capture(parts[-1]):
                continue
            if hours is not None and "/".join(parts[2:6]) not in hours:
                continue
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            records.extend(_parse_lines(body.splitlines(), since, until))
    return sorted(records, key=lambda record: record.moment)


# --- the candidate ----------------------------------------------------------------------------------------------------

class Candidate(Protocol):
    description: str

    def signature(self) -> dict[str, Any]: ...

    def answer_all(self, records: list[Captured], model_name: str) -> list[tuple[bytes | None, float]]: ...


def _path(record: Captured, model_name: str) -> str:
    return "/predict" if record.is_predict else f"/v2/models/{model_name}/infer"


class LocalCandidate:
    """The version run in this process by the server's own data plane and runtime (ONNX Runtime)."""

    def __init__(self, models_dir: Path, version: str):
        from serving.repository import ModelManager

        if not (models_dir / version).is_dir():
            raise ReplayError(f"version {version!r} is not in {models_dir}")
        self.manager = ModelManager(models_dir, pinned_version=version)
        self.manager.poll_once()
        if self.manager.current is None:
            reason = self.manager.failed[version].reason if version in self.manager.failed else "not loadable"
            raise ReplayError(f"version {version} cannot be served: {reason}")
        self.version = version
        self.description = f"version {version}, run locally (the server's data plane and runtime)"

    def signature(self) -> dict[str, Any]:
        current = self.manager.current
        assert current is not None
        return {"inputs": [spec.as_dict() for spec in current.inputs],
                "outputs": [spec.as_dict() for spec in current.outputs]}

    def answer_all(self, records: list[Captured], model_name: str) -> list[tuple[bytes | None, float]]:
        from serving.capture import CaptureWriter
        from serving.dataplane import DataPlane
        from serving.errors import ServingError
        from serving.metrics import Metrics

        with tempfile.TemporaryDirectory() as scratch:
            plane = DataPlane(model_name, self.manager, CaptureWriter(Path(scratch), model_name, "replay",
                                                                      enabled=False),
                              Metrics("Replay", model_name, "replay", io.StringIO()))

            async def run() -> list[tuple[bytes | None, float]]:
                answers: list[tuple[bytes | None, float]] = []
                for record in records:
                    started = time.perf_counter()
                    try:
                        if record.is_predict:
                            body: bytes | None = await plane.predict(record.request)
                        else:
                            body = (await plane.infer(model_name, None, record.request)).payload
                    except ServingError:
                        body = None
                    answers.append((body, (time.perf_counter() - started) * 1000.0))
                return answers

            return asyncio.run(run())


class RemoteCandidate:
    """A running server (a variant, or `make serve`) that serves the version."""

    def __init__(self, url: str, version: str, model_name: str, timeout: float = 10.0, api_key: str | None = None):
        parts = urllib.parse.urlsplit(url)
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if parts.scheme != "http" or not parts.hostname:
            raise ReplayError(f"--url must be http://host[:port][/prefix], got {url!r}")
        self.host, self.port, self.base = parts.hostname, parts.port or 80, parts.path.rstrip("/")
        self.timeout = timeout
        self.version = version
        self.description = f"version {version} at {url}"
        status, metadata = self._get(f"/v2/models/{model_name}")
        if status == 401:
            raise ReplayError(f"{url} needs an API key{' (the one given was refused)' if api_key else ''}: set "
                              "MLOPS_API_KEY to a key of the endpoint (python -m pipeline.keys create)")
        if status != 200:
            raise ReplayError(f"{url} does not serve model {model_name!r} (GET /v2/models/{model_name}: {status})")
        if version not in metadata.get("versions", []):
            raise ReplayError(f"{url} serves version(s) {', '.join(metadata.get('versions', []))} of "
                              f"{model_name!r}, not {version!r}")
        self.metadata = metadata

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _get(self, path: str) -> tuple[int, dict[str, Any]]:
        connection = self._connection()
        try:
            connection.request("GET", self.base + path, headers=self.headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        except OSError as exc:
            raise ReplayError(f"cannot reach http://{self.host}:{self.port}{self.base}: {exc}") from None
        finally:
            connection.close()

    def signature(self) -> dict[str, Any]:
        return {"inputs": self.metadata.get("inputs", []), "outputs": self.metadata.get("outputs", [])}

    def answer_all(self, records: list[Captured], model_name: str) -> list[tuple[bytes | None, float]]:
        connection = self._connection()
        answers: list[tuple[bytes | None, float]] = []
        try:
            for record in records:
                started = time.perf_counter()
                connection.request("POST", self.base + _path(record, model_name), body=record.request,
                                   headers={"Content-Type": "application/json", **self.headers})
                response = connection.getresponse()
                body = response.read()
                answers.append((body if response.status == 200 else None,
                                (time.perf_counter() - started) * 1000.0))
        finally:
            connection.close()
        return answers


# --- agreement ---------------------------------------------------------------------------------------------------

def _outputs(body: bytes) -> dict[str, tuple[str | None, list[Any]]]:
    """Output name -> (datatype, flat values) of an answer (V2 infer or /predict)."""
    answer = json.loads(body)
    if PREDICTIONS in answer:
        return {PREDICTIONS: (None, list(_flatten(answer[PREDICTIONS])))}
    return {output["name"]: (output.get("datatype"), list(_flatten(output.get("data", []))))
            for output in answer.get("outputs", [])}


def _flatten(values: Any) -> Iterator[Any]:
    if isinstance(values, list):
        for value in values:
            yield from _flatten(value)
    else:
        yield values


@dataclass
class OutputAgreement:
    kind: str = "label"
    compared: int = 0
    equal: int = 0
    max_abs_diff: float = 0.0
    sum_abs_diff: float = 0.0
    mismatched_shapes: int = 0

    def add(self, datatype: str | None, answered: list[Any], candidate: list[Any]) -> None:
        if len(answered) != len(candidate):
            self.mismatched_shapes += 1
            return
        label = (datatype in LABEL_TYPES) if datatype is not None else all(
            isinstance(value, (bool, int, str)) for value in answered)
        if not label:
            self.kind = "numeric"
        for old, new in zip(answered, candidate, strict=True):
            self.compared += 1
            self.equal += old == new
            if isinstance(old, (int, float)) and isinstance(new, (int, float)):
                difference = abs(float(new) - float(old))
                self.max_abs_diff = max(self.max_abs_diff, difference)
                self.sum_abs_diff += difference

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"kind": self.kind, "values_compared": self.compared}
        if self.kind == "label":
            summary["agreement"] = round(self.equal / self.compared, 6) if self.compared else None
            summary["equal"] = self.equal
        else:
            summary["max_abs_diff"] = self.max_abs_diff
            summary["mean_abs_diff"] = self.sum_abs_diff / self.compared if self.compared else None
        if self.mismatched_shapes:
            summary["answers_of_another_shape"] = self.mismatched_shapes
        return summary


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 3)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99)}


@dataclass
class Report:
    endpoint: str
    version: str
    candidate: str
    since: datetime
    until: datetime
    requests: int = 0
    failed: int = 0
    variants: dict[str, int] = field(default_factory=dict)
    answered_versions: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, OutputAgreement] = field(default_factory=dict)
    candidate_latencies: list[float] = field(default_factory=list)
    answered_latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "version": self.version, "candidate": self.candidate,
                "since": self.since.isoformat(), "until": self.until.isoformat(), "requests": self.requests,
                "failed": self.failed, "variants": self.variants, "answered_versions": self.answered_versions,
                "outputs": {name: agreement.as_dict() for name, agreement in self.outputs.items()},
                "latency_ms": {"candidate": percentiles(self.candidate_latencies),
                               "answered": percentiles(self.answered_latencies)}}

    def text(self) -> str:
        answered = ", ".join(f"{version} ({count})" for version, count in self.answered_versions.items())
        lines = [f"replayed {self.requests} captured requests of {self.endpoint} "
                 f"({self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC; answered by version(s) "
                 f"{answered}) against {self.candidate}"]
        width = max((len(name) for name in self.outputs), default=0) + 1
        for name, agreement in self.outputs.items():
            summary = agreement.as_dict()
            if agreement.kind == "label":
                share = summary["agreement"]
                shown = f"{share * 100:.2f}%" if share is not None else "n/a"
                detail = f"agreement {shown} ({agreement.equal} of {agreement.compared} equal)"
            else:
                mean = summary["mean_abs_diff"]
                detail = (f"max |diff| {agreement.max_abs_diff:.6g}, mean |diff| "
                          f"{mean:.6g}" if mean is not None else "no values")
            lines.append(f"  {name + ':':<{width}} {detail}")
        candidate, original = percentiles(self.candidate_latencies), percentiles(self.answered_latencies)
        if candidate and original:
            lines.append(f"  latency ms: candidate p50 {candidate['p50']} p90 {candidate['p90']} p99 "
                         f"{candidate['p99']}; answered p50 {original['p50']} p90 {original['p90']} p99 "
                         f"{original['p99']}")
        if self.failed:
            lines.append(f"  {self.failed} request(s) the candidate refused or failed")
        return "\n".join(lines)


def check_signature(records: list[Captured], candidate: Candidate, version: str) -> None:
    """The candidate must take the inputs the captured requests carry."""
    wanted = [(spec["name"], spec["datatype"]) for spec in candidate.signature()["inputs"]]
    for record in records:
        if record.is_predict:
            if len(wanted) != 1:
                raise ReplayError(f"version {version} has {len(wanted)} inputs; the captured /predict requests carry "
                                  "one: replay needs the same signature")
            continue
        given = [(entry.get("name"), entry.get("datatype")) for entry in json.loads(record.request)["inputs"]]
        if sorted(given) != sorted(wanted):
            raise ReplayError(f"version {version}'s inputs {wanted} differ from the captured requests' {given}: "
                              "replay needs the same signature")
        return


def replay(records: list[Captured], candidate: Candidate, endpoint: str, model_name: str, version: str,
           since: datetime, until: datetime) -> Report:
    if not records:
        raise ReplayError(f"no captured requests of {endpoint} between {since:%Y-%m-%d %H:%M} and "
                          f"{until:%Y-%m-%d %H:%M} UTC")
    check_signature(records, candidate, version)
    report = Report(endpoint, version, candidate.description, since, until, requests=len(records))
    for record, (body, latency_ms) in zip(records, candidate.answer_all(records, model_name), strict=True):
        report.variants[record.variant] = report.variants.get(record.variant, 0) + 1
        report.answered_versions[record.model_version] = report.answered_versions.get(record.model_version, 0) + 1
        report.answered_latencies.append(record.latency_ms)
        report.candidate_latencies.append(latency_ms)
        if body is None:
            report.failed += 1
            continue
        answered, replayed = _outputs(record.response), _outputs(body)
        for name, (datatype, values) in answered.items():
            if name in replayed:
                report.outputs.setdefault(name, OutputAgreement()).add(datatype, values, replayed[name][1])
    return report


def download_version(s3: Any, bucket: str, prefix: str, version: str, into: Path) -> Path:
    """A version's two files from the model bucket into `<into>/<version>/`; the folder `LocalCandidate` reads."""
    target = into / version
    target.mkdir(parents=True)
    for name in (METADATA_FILE, MODEL_FILE):
        key = version_object_key(prefix, version, name)
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise ReplayError(f"version {version!r} is not in s3://{bucket}/{prefix} (no {name}); "
                              "`python -m pipeline.models list` shows the versions") from None
        (target / name).write_bytes(body)
    return into


def parse_moment(value: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"{what} {value!r} is not a time such as 2026-11-29T07:00 (UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
