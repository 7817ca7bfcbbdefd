"""The model server as a real process (`python -m serving` on a free loopback port) and client threads that load
it, shared by the serving, sync and delivery-step tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.support.paths import PROJECT_ROOT
from tests.support.repository_copy import free_port
from tests.support.serving_data import infer_body


class Server:
    def __init__(self, models_dir: Path, capture_dir: Path, **env: str):
        self.port = free_port()
        self.env = {**os.environ, "SERVING_MODELS_DIR": str(models_dir), "SERVING_CAPTURE_DIR": str(capture_dir),
                    "SERVING_MODEL_NAME": "example", "SERVING_PORT": str(self.port), "SERVING_HOST": "127.0.0.1",
                    "SERVING_POLL_INTERVAL_SECONDS": "0.2", "SERVING_INSTANCE_ID": "proc", **env}
        # A file, not a pipe: a chatty server (access log, debug) must never block on a full pipe buffer.
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "serving"], cwd=PROJECT_ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:
        return self.exchange(method, path, body, headers)[:2]

    def exchange(self, method: str, path: str, body: dict | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict, dict[str, str]]:
        """Status, JSON body and headers (lower-case names) of one request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=payload,
                               headers={"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            return (response.status, json.loads(response.read() or b"{}"),
                    {name.lower(): value for name, value in response.getheaders()})
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 30.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.process.poll() is None, self.output()
            try:
                if self.request("GET", "/v2/health/ready")[0] == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        """What the server printed so far."""
        self._log.seek(0)
        return self._log.read().decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Load:
    """Client threads sending V2 requests over keep-alive connections until stopped (or 60 s at most)."""

    def __init__(self, server: Server, threads: int = 4, headers: dict[str, str] | None = None):
        self.server = server
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.versions: list[str] = []
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(index,), daemon=True) for index in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        deadline = time.monotonic() + 60
        sent = 0
        while not self.stopping.is_set() and time.monotonic() < deadline:
            request_id = f"t{index}-{sent}"
            sent += 1
            try:
                connection.request("POST", "/v2/models/example/infer", body=json.dumps(infer_body(id=request_id)),
                                   headers=self.headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
                if self.server.process.poll() is not None:
                    return
                time.sleep(0.01)
                continue
            with self.lock:
                self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
                if response.status == 200:
                    self.versions.append(json.loads(body)["model_version"])
                    self.acknowledged.append(request_id)
        connection.close()

    def wait_for(self, condition, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if condition():
                    return True
            time.sleep(0.05)
        return False
