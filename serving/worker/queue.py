"""Taking requests from the queue: receive, keep invisible while working, delete once the outcome is written.

- A message is deleted only after its outcome (answer or failure) is in S3: the object is the record of completion.
- Messages being worked on are made invisible again every `heartbeat_seconds` by a thread, not a coroutine: a model
  call holds the event loop for its whole length, and a long one must not let its message reappear.
- A message that names no request goes to the dead-letter queue with the reason at once; a request that fails on the
  server's side is tried again after `retry_delay_seconds`, and on its last receive (`max_receives`, the queue's
  redrive count) is recorded as failed and its message moved to the dead-letter queue with the error.
- On SIGTERM no message is taken any more; the ones being worked on get `drain_seconds` to finish, and the rest are
  made visible again at once, for another worker. Nothing taken is lost; what was answered stays answered.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from serving.service import ModelService
from serving.worker.answering import Answerer, Outcome, Result
from serving.worker.messages import Unreadable, jobs_of
from serving.worker.settings import WorkerSettings

log = logging.getLogger("serving.worker")
SQS_BATCH = 10
"""The most messages one receive or one batch call handles."""
ERROR_ATTRIBUTE_CHARACTERS = 1000


def _batches(items: list[Any], size: int = SQS_BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class VisibilityKeeper:
    """Extends the visibility of every message held, every `interval` seconds, from its own thread."""

    def __init__(self, sqs: Any, queue_url: str, timeout_seconds: int, interval_seconds: float):
        self.sqs = sqs
        self.queue_url = queue_url
        self.timeout_seconds = timeout_seconds
        self.interval_seconds = interval_seconds
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.extensions = 0

    def hold(self, message_id: str, receipt_handle: str) -> None:
        with self._lock:
            self._held[message_id] = receipt_handle

    def release(self, message_id: str) -> None:
        with self._lock:
            self._held.pop(message_id, None)

    def held(self) -> dict[str, str]:
        with self._lock:
            return dict(self._held)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="visibility-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            held = self.held()
            for batch in _batches(list(held.items())):
                try:
                    response = self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                        {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": self.timeout_seconds}
                        for index, (_, handle) in enumerate(batch)])
                except (ClientError, BotoCoreError) as exc:
                    log.error("could not extend visibility", extra={"fields": {"error": str(exc)}})
                    continue
                self.extensions += len(response.get("Successful", []))
                for failed in response.get("Failed", []):
                    log.error("could not extend visibility", extra={"fields": {
                        "message_id": batch[int(failed["Id"])][0], "error": failed.get("Message", failed["Code"])}})


class QueueWorker:
    def __init__(self, settings: WorkerSettings, service: ModelService, sqs: Any, answerer: Answerer):
        self.settings = settings
        self.service = service
        self.sqs = sqs
        self.answerer = answerer
        self.keeper = VisibilityKeeper(sqs, settings.queue_url, settings.visibility_timeout_seconds,
                                       settings.heartbeat_seconds)
        self._working: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self.dead_lettered = 0
        self.returned = 0

    def stop(self) -> None:
        """Take no more messages (SIGTERM)."""
        if not self._stopping.is_set():
            log.info("stopping: no more messages are taken", extra={"fields": {"working": len(self._working)}})
            self._stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        await self.service.start()
        self.keeper.start()
        receiving: asyncio.Task[list[dict[str, Any]]] | None = None
        try:
            if await self._model_loaded():
                log.info("taking requests", extra={"fields": {"queue": self.settings.queue_url,
                                                              "concurrency": self.settings.concurrency}})
            while not self._stopping.is_set():
                free = self.settings.concurrency - len(self._working)
                if free <= 0:
                    await self._first_of(asyncio.wait(self._working, return_when=asyncio.FIRST_COMPLETED))
                    continue
                receiving = asyncio.create_task(asyncio.to_thread(self._receive, min(free, SQS_BATCH)))
                await self._first_of(asyncio.shield(receiving))
                if not receiving.done():
                    break  # stopping; the receive in flight is settled below
                messages, receiving = receiving.result(), None
                for message in messages:
                    self.keeper.hold(message["MessageId"], message["ReceiptHandle"])
                    task = asyncio.create_task(self._work(message))
                    self._working.add(task)
                    task.add_done_callback(self._working.discard)
        finally:
            await self._drain(receiving)
            self.keeper.stop()
            self.service.plane.begin_shutdown()
            await self.service.stop()
            log.info("worker stopped", extra={"fields": {
                **{outcome.value: count for outcome, count in self.answerer.counts.items()},
                "dead_lettered": self.dead_lettered, "returned": self.returned,
                "visibility_extensions": self.keeper.extensions}})
        return 0

    async def _first_of(self, awaitable: Any) -> None:
        """Wait for `awaitable` or for stop(), whichever comes first."""
        stopping = asyncio.create_task(self._stopping.wait())
        other = asyncio.ensure_future(awaitable)
        await asyncio.wait({stopping, other}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not other.done():
            other.cancel()

    async def _model_loaded(self) -> bool:
        """No message is taken before a model version is live (it would only come back)."""
        while not self.service.plane.ready():
            if self._stopping.is_set():
                return False
            await self._first_of(asyncio.sleep(0.2))
        return True

    def _receive(self, count: int) -> list[dict[str, Any]]:
        try:
            response = self.sqs.receive_message(
                QueueUrl=self.settings.queue_url, MaxNumberOfMessages=count,
                WaitTimeSeconds=self.settings.wait_seconds,
                VisibilityTimeout=self.settings.visibility_timeout_seconds,
                AttributeNames=["ApproximateReceiveCount"])
        except (ClientError, BotoCoreError) as exc:
            log.error("could not receive messages", extra={"fields": {"error": str(exc)}})
            time.sleep(1.0)  # an unreachable queue is not asked again at once
            return []
        return list(response.get("Messages", []))

    async def _work(self, message: dict[str, Any]) -> None:
        message_id = message["MessageId"]
        try:
            try:
                jobs = jobs_of(message["Body"], self.settings.bucket, self.settings.input_prefix)
            except Unreadable as exc:
                await asyncio.to_thread(self._dead_letter, message, str(exc))
                return
            receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            final = receives >= self.settings.max_receives
            results: list[Result] = []
            for job in jobs:
                try:
                    results.append(await self.answerer.answer(job, final))
                except Exception as exc:  # a bug must not lose the message: it is tried again, then dead-lettered
                    log.exception("answering failed unexpectedly", extra={"fields": {"request": job.location}})
                    results.append(Result(Outcome.RETRY, error=f"{type(exc).__name__}: {exc}"))
            unfinished = [result for result in results if not result.finished]
            if not unfinished:
                await asyncio.to_thread(self._delete, message)
            elif final:
                await asyncio.to_thread(self._dead_letter, message, "; ".join(r.error for r in unfinished))
            else:
                await asyncio.to_thread(self._make_visible, message, self.settings.retry_delay_seconds)
        finally:
            self.keeper.release(message_id)

    async def _drain(self, receiving: asyncio.Task[list[dict[str, Any]]] | None) -> None:
        """Let the messages being worked on finish for `drain_seconds`; return the rest, and whatever a receive
        still in flight brings, to the queue."""
        if self._working:
            await asyncio.wait(set(self._working), timeout=self.settings.drain_seconds)
        unfinished = self.keeper.held()
        for task in list(self._working):
            task.cancel()
        if receiving is not None:
            try:
                late = await receiving
            except Exception:  # noqa: BLE001 - nothing was received
                late = []
            unfinished.update({message["MessageId"]: message["ReceiptHandle"] for message in late})
        for message_id, handle in unfinished.items():
            self.keeper.release(message_id)
            await asyncio.to_thread(self._make_visible, {"MessageId": message_id, "ReceiptHandle": handle}, 0)
            self.returned += 1
        if unfinished:
            log.info("returned unfinished messages to the queue", extra={"fields": {"returned": len(unfinished)}})

    # --- queue calls -----------------------------------------------------------------------------------------------

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.settings.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (ClientError, BotoCoreError) as exc:  # it comes back, finds its outcome and is deleted then
            log.error("could not delete a finished message", extra={"fields": {
                "message_id": message["MessageId"], "error": str(exc)}})

    def _make_visible(self, message: dict[str, Any], after_seconds: int) -> None:
        try:
            self.sqs.change_message_visibility(QueueUrl=self.settings.queue_url,
                                               ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=after_seconds)
        except (ClientError, BotoCoreError) as exc:  # it becomes visible when its timeout ends
            log.error("could not return a message", extra={"fields": {
                "message_id": message["MessageId"], "error": str(exc)}})

    def _dead_letter(self, message: dict[str, Any], error: str) -> None:
        """Move a message to the dead-letter queue with its error; it leaves the queue only once it is there."""
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
        try:
            self.sqs.send_message(QueueUrl=self.settings.dead_letter_queue_url, MessageBody=message["Body"],
                                  MessageAttributes={
                                      "error": {"DataType": "String",
                                                "StringValue": error[:ERROR_ATTRIBUTE_CHARACTERS] or "unknown"},
                                      "source-message-id": {"DataType": "String", "StringValue": message["MessageId"]},
                                      "receive-count": {"DataType": "Number", "StringValue": str(receives)}})
        except (ClientError, BotoCoreError) as exc:  # left in the queue: SQS's redrive moves it after max receives
            log.error("could not move a message to the dead-letter queue", extra={"fields": {
                "message_id": message["MessageId"], "error": str(exc), "reason": error}})
            return
        self.dead_lettered += 1
        log.error("message moved to the dead-letter queue", extra={"fields": {
            "message_id": message["MessageId"], "reason": error, "receive_count": receives}})
        self._delete(message)
