"""One request object in, one outcome written: the answer under the output prefix, or the failure under the failure
prefix, each written once (S3's conditional write, `If-None-Match: *`), then the topic told. The queue worker and
the batch job both answer through this.

What a request object may be (the server's three forms): Open Inference Protocol JSON; the `/predict` form
`{"instances": [...]}`; binary tensors (the JSON header, then the data, with the object metadata
`inference-header-content-length` saying where the header ends). It is read once, streamed into one buffer of its
size: a 1 GB request costs 1 GB of memory, not two.

Failures are the client's (the request is wrong or gone: recorded at once, never retried) or the server's (model not
ready, model error, S3 unavailable: tried again, recorded only on the last try).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from serving.binary import OCTET_STREAM, Answer, header_length
from serving.contract import HEADER_LENGTH_METADATA, answer_keys, find_outcome
from serving.dataplane import DataPlane
from serving.errors import InvalidRequest, ModelFailed, ModelNotFound, ModelNotReady, PayloadTooLarge
from serving.worker.messages import Job

log = logging.getLogger("serving.worker")
CHUNK_BYTES = 1024 * 1024
PREDICT_FORM = re.compile(rb'\s*\{\s*"instances"\s*:')
"""The `/predict` form starts with its `instances` key; any other JSON is an Open Inference Protocol request."""
CLIENT_ERRORS = (InvalidRequest, ModelNotFound, PayloadTooLarge)


class Retryable(Exception):
    """S3 or SNS did not do what was asked this time (throttled, unavailable, a network error)."""


class Outcome(enum.Enum):
    ANSWERED = "answered"
    """The answer was written now."""
    ALREADY_ANSWERED = "already answered"
    """An answer or failure was already written (a redelivered message, or a duplicate notification)."""
    FAILED = "failed"
    """The client's mistake, recorded under the failure prefix."""
    RETRY = "retry"
    """The server's failure: try again later."""
    GAVE_UP = "gave up"
    """The server's failure on the last try, recorded under the failure prefix."""


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    location: str = ""
    """The answer or failure record (s3://...)."""
    error: str = ""

    @property
    def finished(self) -> bool:
        """Nothing is left to do for this request: its message may be deleted."""
        return self.outcome is not Outcome.RETRY


@dataclass(frozen=True)
class Destination:
    """Where outcomes go."""

    bucket: str
    output_prefix: str
    failure_prefix: str
    success_topic_arn: str = ""
    error_topic_arn: str = ""


@dataclass(frozen=True)
class Request:
    body: bytearray
    header_length: int | None
    predict_form: bool
    rows: str | None = None
    """A batch run's rows file (`csv` or `jsonl`), answered in requests of rows (serving/worker/batch.py)."""


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Answerer:
    def __init__(self, plane: DataPlane, s3: Any, sns: Any, destination: Destination, max_request_bytes: int):
        self.plane = plane
        self.s3 = s3
        self.sns = sns
        self.destination = destination
        self.max_request_bytes = max_request_bytes
        self.counts = {outcome: 0 for outcome in Outcome}

    async def answer(self, job: Job, final: bool = False) -> Result:
        """Answer `job` unless it was answered before. `final`: the last try, so a server-side failure is recorded
        as the request's outcome instead of being left for another try."""
        result = await self._answer(job, final)
        self.counts[result.outcome] += 1
        log.info("request %s", result.outcome.value, extra={"fields": {
            "inference_id": job.inference_id, "request": job.location, "outcome": result.outcome.value,
            "location": result.location, "error": result.error}})
        return result

    async def _answer(self, job: Job, final: bool) -> Result:
        try:
            recorded = await asyncio.to_thread(self._recorded, job)
            if recorded:
                return Result(Outcome.ALREADY_ANSWERED, recorded)
            request = await asyncio.to_thread(self._read, job)
            answer = await self._infer(request)
            del request  # the request's buffer is not needed while the answer is written
            # Written and told in one thread call: once started it finishes even if this coroutine is cancelled
            # (SIGTERM), so an answer is never written without its topic being told.
            location, written = await asyncio.to_thread(self._commit_answer, job, answer)
        except CLIENT_ERRORS as exc:
            return await self._fail(job, exc.message, type(exc).__name__, Outcome.FAILED)
        except (ModelNotReady, ModelFailed, Retryable) as exc:
            reason = exc.message if isinstance(exc, (ModelNotReady, ModelFailed)) else str(exc)
            if final:
                return await self._fail(job, reason, type(exc).__name__, Outcome.GAVE_UP)
            return Result(Outcome.RETRY, error=reason)
        return Result(Outcome.ANSWERED if written else Outcome.ALREADY_ANSWERED, location)

    # --- reading ---------------------------------------------------------------------------------------------------

    def _recorded(self, job: Job) -> str | None:
        """The answer or failure already written for this inference id, if any."""
        destination = self.destination
        try:
            key = find_outcome(self.s3, destination.bucket, destination.output_prefix, destination.failure_prefix,
                               job.inference_id)
        except (ClientError, BotoCoreError) as exc:
            raise Retryable(f"could not look for the outcome of {job.inference_id}: {exc}") from None
        return f"s3://{destination.bucket}/{key}" if key else None

    def _read(self, job: Job) -> Request:
        body, metadata, content_type = self._fetch(job)
        length = header_length(metadata.get(HEADER_LENGTH_METADATA))
        if length is None and content_type == OCTET_STREAM:
            raise InvalidRequest(f"a binary request needs the object metadata {HEADER_LENGTH_METADATA} (the length "
                                 "of its JSON header), set with the upload: x-amz-meta-" + HEADER_LENGTH_METADATA)
        return Request(body, length, length is None and bool(PREDICT_FORM.match(body[:256])))

    def _fetch(self, job: Job) -> tuple[bytearray, dict[str, str], str]:
        """The object's bytes, streamed into one buffer of its size; its metadata (lower-case names) and content
        type."""
        try:
            response = self.s3.get_object(Bucket=job.bucket, Key=job.key)
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise InvalidRequest(f"the request object {job.location} no longer exists") from None
            raise Retryable(f"could not read {job.location}: {exc}") from None
        except BotoCoreError as exc:
            raise Retryable(f"could not read {job.location}: {exc}") from None
        size = int(response["ContentLength"])
        stream = response["Body"]
        if size > self.max_request_bytes:
            stream.close()
            raise PayloadTooLarge(f"the request object is {size} bytes; this endpoint takes up to "
                                  f"{self.max_request_bytes} (async_inference.max_request_bytes)")
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        try:
            for chunk in stream.iter_chunks(CHUNK_BYTES):
                if filled + len(chunk) > size:
                    raise Retryable(f"{job.location} changed while it was read (longer than its {size} bytes)")
                view[filled:filled + len(chunk)] = chunk
                filled += len(chunk)
        except BotoCoreError as exc:
            raise Retryable(f"reading {job.location} failed after {filled} of {size} bytes: {exc}") from None
        finally:
            view.release()
            stream.close()
        if filled != size:
            raise Retryable(f"reading {job.location} ended after {filled} of {size} bytes")
        metadata = {key.lower(): value for key, value in (response.get("Metadata") or {}).items()}
        return buffer, metadata, str(response.get("ContentType") or "").split(";")[0].strip().lower()

    async def _infer(self, request: Request) -> Answer:
        if request.predict_form:
            return Answer(await self.plane.predict(request.body))  # type: ignore[arg-type] - bytes-like
        return await self.plane.infer(self.plane.model_name, None, request.body,  # type: ignore[arg-type]
                                      request.header_length)

    # --- writing ---------------------------------------------------------------------------------------------------

    def _commit_answer(self, job: Job, answer: Answer) -> tuple[str, bool]:
        """Write the answer unless one exists, and tell the success topic when this call wrote it."""
        json_key, binary_key, _ = answer_keys(self.destination.output_prefix, self.destination.failure_prefix,
                                              job.inference_id)
        metadata = {"inference-id": job.inference_id, **self._metadata()}
        if answer.header_length is None:
            location, written = self._put_once(json_key, answer.payload, "application/json", metadata)
        else:
            metadata[HEADER_LENGTH_METADATA] = str(answer.header_length)
            location, written = self._put_once(binary_key, answer.payload, OCTET_STREAM, metadata)
        if written:
            self._notify(self.destination.success_topic_arn, {
                "inferenceId": job.inference_id, "status": "Completed", "requestLocation": job.location,
                "outputLocation": location, **self._served_by(), "completedAt": _now()})
        return location, written

    def _put_once(self, key: str, body: bytes, content_type: str, metadata: dict[str, str]) -> tuple[str, bool]:
        """Write `key` unless it exists; (its location, whether this call wrote it)."""
        location = f"s3://{self.destination.bucket}/{key}"
        try:
            self.s3.put_object(Bucket=self.destination.bucket, Key=key, Body=body, ContentType=content_type,
                               Metadata=metadata, IfNoneMatch="*")
        except ClientError as exc:
            if _error_code(exc) == "PreconditionFailed":
                return location, False
            raise Retryable(f"could not write {location}: {exc}") from None
        except BotoCoreError as exc:
            raise Retryable(f"could not write {location}: {exc}") from None
        return location, True

    async def _fail(self, job: Job, reason: str, error_type: str, outcome: Outcome) -> Result:
        _, _, failure_key = answer_keys(self.destination.output_prefix, self.destination.failure_prefix,
                                        job.inference_id)
        record = {"inferenceId": job.inference_id, "status": "Failed", "requestLocation": job.location,
                  "failureReason": reason, "errorType": error_type,
                  "retried": outcome is Outcome.GAVE_UP, **self._served_by(), "failedAt": _now()}
        try:
            location, written = await asyncio.to_thread(self._commit_failure, failure_key, record)
        except Retryable as exc:
            return Result(Outcome.RETRY, error=f"{reason}; and the failure could not be recorded: {exc}")
        return Result(outcome if written else Outcome.ALREADY_ANSWERED, location, reason)

    def _commit_failure(self, key: str, record: dict[str, Any]) -> tuple[str, bool]:
        location, written = self._put_once(key, json.dumps(record).encode(), "application/json", self._metadata())
        if written:
            self._notify(self.destination.error_topic_arn, {**record, "failureLocation": location})
        return location, written

    def _notify(self, topic_arn: str, document: dict[str, Any]) -> None:
        """Tell the topic; the answer is already written, so a failure here is logged, not retried (a redelivered
        message finds the answer and would not tell anyone either)."""
        if not topic_arn:
            return
        try:
            self.sns.publish(TopicArn=topic_arn, Message=json.dumps(document), MessageAttributes={
                "status": {"DataType": "String", "StringValue": document["status"]}})
        except (ClientError, BotoCoreError) as exc:
            log.error("could not publish the outcome", extra={"fields": {
                "topic": topic_arn, "inference_id": document["inferenceId"], "error": str(exc)}})

    def _served_by(self) -> dict[str, str]:
        current = self.plane.manager.current
        return {"modelName": self.plane.model_name, "variant": self.plane.variant, "imageTag": self.plane.image_tag,
                **({"modelVersion": current.version} if current else {})}

    def _metadata(self) -> dict[str, str]:
        """On every outcome object: the image (the commit) and the model version that answered."""
        current = self.plane.manager.current
        return {"image-tag": self.plane.image_tag, **({"model-version": current.version} if current else {})}
