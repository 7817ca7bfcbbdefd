"""`python -m serving.probe` as the probe task runs it (a process with the variables the endpoint stack sets), against
a real server: its exit code, its last log line (which the Smoke step reads), and never the key in its output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from serving.contract import PROBE_RESULT_PREFIX, key_set_document, new_api_key, stored_api_key
from tests.support.paths import PROJECT_ROOT
from tests.support.serving_data import EXAMPLE_MODELS
from tests.support.serving_process import Server

KEY = new_api_key()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    shutil.copytree(EXAMPLE_MODELS, root / "models")
    keyed = Server(root / "models", root / "capture", SERVING_MODEL_NAME="fraud", SERVING_ROUTE_PREFIX="/fraud",
                   SERVING_IMAGE_TAG="0a1b2c3", SERVING_API_KEYS=key_set_document([stored_api_key(KEY)]))
    open_server = Server(root / "models", root / "capture-open", SERVING_MODEL_NAME="fraud",
                         SERVING_ROUTE_PREFIX="/fraud", SERVING_IMAGE_TAG="0a1b2c3")
    try:
        keyed.wait_ready()
        open_server.wait_ready()
        yield keyed, open_server
    finally:
        keyed.stop()
        open_server.stop()


def probe(server: Server | None, **variables: str) -> tuple[int, list[str]]:
    environment = {"PATH": os.environ["PATH"], "PROBE_ENDPOINT": "fraud", "PROBE_AUTH": "api_key",
                   "PROBE_IMAGE_TAG": "0a1b2c3", "PROBE_ATTEMPTS": "2", "PROBE_WAIT_SECONDS": "0.05",
                   **({"PROBE_ROOT": f"http://127.0.0.1:{server.port}/fraud"} if server else {}), **variables}
    completed = subprocess.run([sys.executable, "-m", "serving.probe"], cwd=PROJECT_ROOT, env=environment,
                               capture_output=True, text=True, timeout=60, check=False)
    return completed.returncode, (completed.stdout + completed.stderr).splitlines()


def result(lines: list[str]) -> dict:
    assert lines[-1].startswith(PROBE_RESULT_PREFIX), lines
    return json.loads(lines[-1][len(PROBE_RESULT_PREFIX):])


def test_the_probe_passes_with_the_smoke_key_and_checks_that_no_key_is_refused(servers):
    keyed, _ = servers
    code, lines = probe(keyed, PROBE_CREDENTIALS=json.dumps({"key": KEY}))
    assert code == 0, lines
    assert lines[:-1] == ["fraud: ready, image 0a1b2c3 and model version 1 answer",
                          "fraud: a call without credentials is refused (401)"]
    assert result(lines) == {"passed": True, "image_tag": "0a1b2c3", "model_version": "1"}
    assert KEY not in "\n".join(lines)


def test_a_wrong_key_an_open_endpoint_or_another_image_fail_the_probe(servers):
    keyed, open_server = servers
    code, lines = probe(keyed, PROBE_CREDENTIALS=json.dumps({"key": new_api_key()}))
    assert code == 1 and result(lines) == {"passed": False,
                                           "error": "endpoint fraud did not answer a prediction at "
                                                    f"http://127.0.0.1:{keyed.port}/fraud"}
    assert lines[0] == "fraud: attempt 1: status 401"
    code, lines = probe(open_server, PROBE_CREDENTIALS=json.dumps({"key": KEY}))
    assert code == 1 and "answered a call without credentials with 200, not 401" in result(lines)["error"]
    code, lines = probe(keyed, PROBE_CREDENTIALS=json.dumps({"key": KEY}), PROBE_IMAGE_TAG="9f9f9f9")
    assert code == 1 and result(lines)["error"].startswith("endpoint fraud answers from image 0a1b2c3, not from "
                                                           "9f9f9f9")


def test_an_endpoint_without_auth_is_called_without_credentials(servers):
    _, open_server = servers
    code, lines = probe(open_server, PROBE_AUTH="none")
    assert code == 0 and result(lines)["passed"] is True and len(lines) == 2


def test_a_misconfigured_probe_exits_2_naming_the_variable(servers):
    keyed, _ = servers
    code, lines = probe(None)
    assert code == 2 and result(lines) == {"passed": False, "error": "PROBE_ROOT: Field required (the endpoint "
                                                                     "stack's probe task definition sets them)"}
    code, lines = probe(keyed, PROBE_ROOTS="http://x")  # a misspelled variable is named, never ignored
    assert code == 2 and "PROBE_ROOTS" in result(lines)["error"]
    code, lines = probe(keyed)  # keyed, but ECS handed it no credentials
    assert code == 2 and result(lines)["error"].startswith("no smoke credentials in PROBE_CREDENTIALS for an "
                                                           "endpoint with auth.type api_key")
    code, lines = probe(keyed, PROBE_CREDENTIALS="not json")
    assert code == 2 and result(lines)["error"] == ("PROBE_CREDENTIALS does not hold JSON: store the smoke "
                                                    "credentials again")
