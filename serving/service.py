"""The model service, assembled in one place: model repository, capture writer, metrics and the data plane, plus the
background work they need (the repository poller, the metrics emitter). The HTTP app receives it; the server starts
and stops it through the app's lifespan, and reaches its data plane directly (readiness on SIGTERM)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from serving.auth import ApiKeys, KeySetRefresher
from serving.capture import CaptureWriter
from serving.concurrency import Concurrency
from serving.contract import read_key_set
from serving.dataplane import DataPlane
from serving.metrics import Metrics
from serving.repository import ModelManager
from serving.settings import ServingSettings
from serving.shadow import ShadowMirror

log = logging.getLogger("serving.service")


@dataclass
class ModelService:
    settings: ServingSettings
    manager: ModelManager
    capture: CaptureWriter
    metrics: Metrics
    plane: DataPlane
    api_keys: ApiKeys | None = None
    """The key set requests are checked against; None: no key needed."""
    key_refresher: KeySetRefresher | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Capture starts accepting; the first model version loads as soon as the poller finds it."""
        self.capture.start()
        if self.plane.shadow is not None:
            self.plane.shadow.start()
        self._tasks = [asyncio.create_task(self._poll(), name="model-poller"),
                       asyncio.create_task(self._emit_metrics(), name="metrics")]
        if self.settings.concurrency_metric_seconds > 0:
            self.plane.concurrency = Concurrency()
            self._tasks.append(asyncio.create_task(self._emit_concurrency(), name="concurrency-metric"))
        if self.key_refresher is not None:
            self._tasks.append(asyncio.create_task(self.key_refresher.run(), name="api-key-refresh"))

    async def stop(self) -> None:
        """After the last request: stop the background work, write every captured record, emit the last metrics."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.plane.shadow is not None:
            await self.plane.shadow.close()
        self.capture.close()
        self._flush_metrics()
        log.info("server stopped", extra={"fields": {"captured": self.capture.written,
                                                     "capture_dropped": self.capture.dropped}})

    def _flush_metrics(self) -> None:
        self.metrics.set_capture_dropped(self.capture.dropped)
        current = self.manager.current
        self.metrics.flush(current.version if current else None)

    async def _poll(self) -> None:
        """Load the first version as soon as possible, then look for a new one every poll interval."""
        while True:
            try:
                await asyncio.to_thread(self.manager.poll_once)
            except Exception:  # a poll must never kill the poller; the next one tries again
                log.exception("model repository poll failed")
            await asyncio.sleep(self.settings.poll_interval_seconds)

    async def _emit_concurrency(self) -> None:
        tracker = self.plane.concurrency
        assert tracker is not None, "set in start()"
        while True:
            await asyncio.sleep(self.settings.concurrency_metric_seconds)
            self.metrics.write_concurrency(*tracker.take(), self.settings.variant)

    async def _emit_metrics(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metrics_interval_seconds)
            self._flush_metrics()


def assemble(settings: ServingSettings, capture_max_request_bytes: int | None = None) -> ModelService:
    """The model service of `settings`; `capture_max_request_bytes` (the queue worker's): larger requests are not
    captured."""
    manager = ModelManager(settings.models_dir, settings.intra_op_threads, settings.model_version)
    capture = CaptureWriter(settings.capture_dir, settings.model_name, settings.instance_id,
                            settings.capture_sample_percent, settings.capture_queue_size, settings.capture_enabled,
                            variant=settings.variant)
    metrics = Metrics(settings.metrics_namespace, settings.model_name, settings.environment)
    shadow = None
    if settings.shadow_url and settings.shadow_percent > 0:
        shadow = ShadowMirror(settings.shadow_url, settings.shadow_percent, settings.variant,
                              settings.shadow_queue_size)
    plane = DataPlane(settings.model_name, manager, capture, metrics, image_tag=settings.image_tag,
                      variant=settings.variant, shadow=shadow, capture_max_request_bytes=capture_max_request_bytes)
    api_keys = refresher = None
    if settings.requires_api_key:
        api_keys = ApiKeys(read_key_set(settings.api_keys) if settings.api_keys else {})
        if settings.api_keys_secret:
            refresher = KeySetRefresher(api_keys, settings.api_keys_secret, settings.api_keys_refresh_seconds,
                                        stopping=lambda: plane.shutting_down)
    return ModelService(settings, manager, capture, metrics, plane, api_keys, refresher)
