"""The emulated account as a real process, for the tests of its parts (one per test module)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import PROJECT_ROOT
from tests.support.repository_copy import free_port


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("emulator")
    port = free_port()
    log = folder / "decisions.jsonl"
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "REHEARSAL_AUTHORIZATION_LOG": str(log),
           "PYTHONPATH": str(PROJECT_ROOT)}
    with open(folder / "emulator.log", "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "tests.rehearsal.emulated_aws", "--port", str(port)],
                                   cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/_rehearsal/ready", timeout=2).read()  # noqa: S310
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((folder / "emulator.log").read_text()) from None
            time.sleep(0.2)
    yield url, log
    process.terminate()
    process.wait(timeout=10)


