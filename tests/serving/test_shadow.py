"""Shadow traffic between two real server processes: the serving variant answers every request itself (its version,
its answers) while a copy of its configured share reaches the shadow, which serves its pinned version and captures
the copies under its own variant. The mirror's queue is bounded: a shadow that cannot keep up costs dropped copies,
counted, never requests."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from serving.shadow import ShadowMirror
from tests.support.repository_copy import free_port
from tests.support.serving_data import add_version, infer_body
from tests.support.serving_process import Server

REQUESTS = 400
SHARE = 25


def captured(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def test_the_shadow_receives_its_share_and_the_answers_are_unchanged(models_dir: Path, tmp_path: Path):
    add_version(models_dir, "2")
    (models_dir / "LIVE").write_text("1")
    shadow = Server(models_dir, tmp_path / "capture", SERVING_VARIANT="shadowed", SERVING_MODEL_VERSION="2",
                    SERVING_INSTANCE_ID="shadow")
    serving = None
    try:
        shadow.wait_ready()
        serving = Server(models_dir, tmp_path / "capture", SERVING_VARIANT="current", SERVING_INSTANCE_ID="serving",
                         SERVING_SHADOW_URL=f"http://127.0.0.1:{shadow.port}", SERVING_SHADOW_PERCENT=str(SHARE))
        serving.wait_ready()
        answers = [serving.request("POST", "/v2/models/example/infer", infer_body(id=f"r{n}"))
                   for n in range(REQUESTS)]
        assert {(status, answer["model_version"]) for status, answer in answers} == {(200, "1")}
        assert [answer["id"] for _, answer in answers] == [f"r{n}" for n in range(REQUESTS)]
        deadline = time.monotonic() + 10
        mirror = serving.request("GET", "/status")[1]["shadow"]
        while mirror["sent"] + mirror["failed"] < mirror["offered"] and time.monotonic() < deadline:
            time.sleep(0.05)
            mirror = serving.request("GET", "/status")[1]["shadow"]
        # Binomial(400, 0.25): mean 100, standard deviation 8.7; the bounds are more than five deviations away.
        assert 50 <= mirror["offered"] <= 150, mirror
        assert mirror["sent"] == mirror["offered"] and mirror["failed"] == mirror["dropped"] == 0
        assert shadow.request("GET", "/status")[1]["pinned_version"] == "2"
    finally:
        for server in (serving, shadow):
            if server is not None:
                server.stop()
    shadow_records = captured(tmp_path / "capture" / "example" / "shadowed")
    served_records = captured(tmp_path / "capture" / "example" / "current")
    assert len(served_records) == REQUESTS and len(shadow_records) == mirror["sent"]
    assert {r["eventMetadata"]["modelVersion"] for r in shadow_records} == {"2"}
    assert {r["eventMetadata"]["variantName"] for r in shadow_records} == {"shadowed"}
    served_ids = {r["eventMetadata"]["inferenceId"] for r in served_records}
    assert {r["eventMetadata"]["inferenceId"] for r in shadow_records} <= served_ids


def test_a_full_queue_drops_and_counts_copies_without_waiting():
    mirror = ShadowMirror(f"http://127.0.0.1:{free_port()}", 100, "current", queue_size=2)

    async def scenario() -> float:
        mirror.start()
        started = time.perf_counter()
        for _ in range(5):  # no await in between: the senders have taken nothing yet
            mirror.offer("/predict", b"{}")
        elapsed = time.perf_counter() - started
        await mirror.close()
        return elapsed

    assert asyncio.run(scenario()) < 0.05
    assert (mirror.offered, mirror.dropped) == (5, 3)
    # Nobody listens on that port: the two queued copies fail, and nothing is left waiting.
    assert mirror.failed == 2 and mirror.sent == 0


def test_the_shadow_url_is_checked():
    with pytest.raises(ValueError, match=r"shadow URL must be http://host\[:port\]\[/prefix\], got 'ftp://x'"):
        ShadowMirror("ftp://x", 10, "current")
