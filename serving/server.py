"""Run the app under uvicorn, with the shutdown ECS expects.

On SIGTERM: readiness fails at once; requests keep being served for `unready_delay_seconds`; then uvicorn stops
accepting, lets in-flight requests finish for up to `drain_seconds`, and the app's shutdown writes every captured
record. Keep-alive outlasts the load balancer's idle timeout, so the load balancer closes idle connections, not us.
"""

from __future__ import annotations

import threading
from types import FrameType
from typing import Any

import uvicorn

from serving.app import create_app
from serving.logs import configure_logging
from serving.settings import ServingSettings


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, dataplane: Any, unready_delay_seconds: float):
        super().__init__(config)
        self.dataplane = dataplane
        self.unready_delay_seconds = unready_delay_seconds
        self._signalled = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.dataplane is not None:
            self.dataplane.begin_shutdown()
        if self._signalled or self.unready_delay_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self._signalled = True
        timer = threading.Timer(self.unready_delay_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def _dataplane_of(app: Any) -> Any:
    while not hasattr(app, "state") and hasattr(app, "app"):
        app = app.app
    return app.state.dataplane


def run(settings: ServingSettings) -> None:
    configure_logging(settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="uvloop", http="httptools", lifespan="on",
        timeout_keep_alive=settings.keep_alive_seconds, timeout_graceful_shutdown=int(settings.drain_seconds) or None,
        access_log=settings.access_log, log_config=None, server_header=False, date_header=True,
        limit_max_requests=None, backlog=2048)
    DrainingServer(config, _dataplane_of(app), settings.unready_delay_seconds).run()
