"""Run the app under uvicorn, with the shutdown ECS expects, in one process or one per vCPU.

On SIGTERM: readiness fails at once; requests keep being served for `unready_delay_seconds`; then uvicorn stops
accepting, lets in-flight requests finish for up to `drain_seconds`, and the app's shutdown writes every captured
record. Keep-alive outlasts the load balancer's idle timeout, so the load balancer closes idle connections, not us.

With `workers` > 1 the parent binds the port and starts that many worker processes on the shared socket, each with
its own model service (its own model copy, capture file and metrics); it passes SIGTERM on to every worker and
waits for them. A worker that dies stops the others and the container, so ECS replaces the task instead of leaving
it serving on fewer cores. uvicorn's own supervisor would start plain `uvicorn.Server`s, without the draining above.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from multiprocessing.connection import wait
from types import FrameType

import uvicorn

from serving.app import create_app
from serving.dataplane import DataPlane
from serving.logs import configure_logging
from serving.service import assemble
from serving.settings import ServingSettings

log = logging.getLogger("serving.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, dataplane: DataPlane, unready_delay_seconds: float):
        super().__init__(config)
        self.dataplane = dataplane
        self.unready_delay_seconds = unready_delay_seconds
        self._signalled = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.dataplane.begin_shutdown()
        if self._signalled or self.unready_delay_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self._signalled = True
        timer = threading.Timer(self.unready_delay_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def _config(settings: ServingSettings, app: object) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="uvloop", http="httptools", lifespan="on",
        timeout_keep_alive=settings.keep_alive_seconds, timeout_graceful_shutdown=int(settings.drain_seconds) or None,
        access_log=settings.access_log, log_config=None, server_header=False, date_header=True,
        limit_max_requests=None, backlog=2048)


def serve(settings: ServingSettings, sockets: list[socket.socket] | None = None) -> None:
    """One server process: its own model service, on `sockets` when a parent bound them."""
    configure_logging(settings.log_level)
    service = assemble(settings)
    server = DrainingServer(_config(settings, create_app(settings, service)), service.plane,
                            settings.unready_delay_seconds)
    server.run(sockets=sockets)


def _supervise(settings: ServingSettings) -> int:
    configure_logging(settings.log_level)
    listener = _config(settings, None).bind_socket()
    context = multiprocessing.get_context("spawn")  # no threads or event loop of the parent's are inherited
    workers = [context.Process(target=serve, args=(settings, [listener]), name=f"worker-{index}")
               for index in range(settings.workers)]
    stopping = threading.Event()

    def stop(signum: int, _: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            for worker in workers:
                if worker.pid is not None and worker.exitcode is None:
                    worker.terminate()  # SIGTERM: each worker drains as above

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    for worker in workers:
        worker.start()
    log.info("workers started", extra={"fields": {"workers": settings.workers, "port": settings.port}})
    running = list(workers)
    failed = False
    while running:
        for sentinel in wait([worker.sentinel for worker in running]):
            worker = next(w for w in running if w.sentinel == sentinel)
            worker.join()
            running.remove(worker)
            if not stopping.is_set():
                failed = True
                log.error("a worker stopped unexpectedly; stopping the others",
                          extra={"fields": {"worker": worker.name, "exit_code": worker.exitcode}})
                stop(signal.SIGTERM, None)
    listener.close()
    # uvicorn re-raises the stop signal once a worker has drained: that exit is a clean one.
    clean = {0, -signal.SIGTERM, -signal.SIGINT}
    return 1 if failed or any(worker.exitcode not in clean for worker in workers) else 0


def run(settings: ServingSettings) -> int:
    if settings.workers == 1:
        serve(settings)
        return 0
    return _supervise(settings)
