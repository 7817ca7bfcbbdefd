"""`python -m pipeline.invoke --async` where it meets the worker: a request submitted with it is answered by a real
worker process through moto's S3, SQS and SNS, and what comes back is printed; and the mistakes it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline import invoke
from serving.contract import HEADER_LENGTH_METADATA
from tests.support.async_endpoint import async_config, create_async_endpoint, notifications, wait_for
from tests.support.serving_data import ROW, infer_body

CONFIG = async_config("mlops")


def test_a_request_submitted_with_invoke_is_answered_and_printed(clients, worker, config, tmp_path):
    s3, sqs, _ = clients
    endpoint, process = worker
    request = tmp_path / "request.json"
    request.write_text(json.dumps(infer_body([ROW, ROW])))
    said: list[str] = []
    printed = invoke.run(["--async", "--env", "staging", "--endpoint", "scorer", str(request), "--id", "first",
                          "--timeout", "60"], s3=s3, config=config, say=said.append)
    answer = json.loads(printed)
    assert answer["model_name"] == "scorer" and answer["outputs"][0]["data"] == [0, 0]
    assert said[0].startswith(f"submitted s3://{endpoint.bucket}/async/scorer/input/first.json")
    told: list[dict] = []  # published right after the answer is written: it may arrive a moment later
    wait_for(lambda: told.extend(notifications(sqs, endpoint.success_inbox_url)) or told, 10, "the topic told",
             process)
    assert [note["inferenceId"] for note in told] == ["first"]
    with pytest.raises(invoke.InvokeError, match="inference id 'first' was answered before"):
        invoke.run(["--async", "--env", "staging", "--endpoint", "scorer", str(request), "--id", "first"],
                   s3=s3, config=config)


def test_a_binary_request_s_answer_is_written_to_out(clients, worker, config, tmp_path):
    s3, _, _ = clients
    rows = np.asarray([ROW] * 3, dtype="<f4")
    header = json.dumps({"inputs": [{"name": "input", "shape": [3, 30], "datatype": "FP32",
                                     "parameters": {"binary_data_size": rows.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    request = tmp_path / "request.bin"
    request.write_bytes(header + rows.tobytes())
    out = tmp_path / "answer.bin"
    printed = json.loads(invoke.run(["--async", "--env", "staging", "--endpoint", "scorer", str(request),
                                     "--header-length", str(len(header)), "--out", str(out), "--timeout", "60"],
                                    s3=s3, config=config, say=lambda _: None))
    assert printed["written_to"] == str(out)
    label = next(output for output in printed["outputs"] if output["name"] == "label")
    assert label["parameters"]["binary_data_size"] == 3 * 8
    body = out.read_bytes()  # the whole answer: its JSON header, then the outputs' bytes in order
    start = printed["header_length"] + sum(output.get("parameters", {}).get("binary_data_size", 0)
                                           for output in printed["outputs"][:printed["outputs"].index(label)])
    assert np.frombuffer(body[start:start + 24], dtype="<i8").tolist() == [0, 0, 0]


def test_a_failed_request_says_why_and_a_slow_one_says_where_its_answer_will_be(clients, worker, config,
                                                                                tmp_path):
    s3, _, _ = clients
    request = tmp_path / "bad.json"
    request.write_text(json.dumps({"inputs": [{"name": "nope", "shape": [1], "datatype": "FP32", "data": [1]}]}))
    with pytest.raises(invoke.AnsweredWithFailure, match="the model has no input 'nope'"):
        invoke.run(["--async", "--env", "staging", "--endpoint", "scorer", str(request), "--timeout", "60"],
                   s3=s3, config=config, say=lambda _: None)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(infer_body()))
    submitted = json.loads(invoke.run(["--async", "--env", "staging", "--endpoint", "scorer", str(good), "--id",
                                       "later", "--no-wait"], s3=s3, config=config))
    assert submitted["output"].endswith("/async/scorer/output/later.json")
    address = invoke.address_of(config, "staging", "scorer")
    with pytest.raises(invoke.NotAnswered, match="it stays queued: its answer will be at"):
        invoke.wait_for_outcome(s3, address, "never-submitted", timeout_seconds=0.1, poll_seconds=0.05)


@pytest.mark.parametrize(("argv", "message"), [
    (["--env", "prod", "--endpoint", "scorer"], "unknown environment 'prod'"),
    (["--env", "staging", "--endpoint", "c"], "unknown endpoint 'c'"),
    (["--env", "staging", "--endpoint", "a"], "endpoint a is a real-time endpoint in staging"),
    (["--env", "staging", "--endpoint", "scorer", "--id", "x.json"], "--id 'x.json': a name without an extension"),
    (["--env", "staging", "--endpoint", "scorer", "--id", "../x"], "no '..'"),
    (["--env", "staging", "--endpoint", "scorer", "--timeout", "0"], "--timeout 0: seconds, above 0"),
])
def test_mistakes_are_named(argv, message, tmp_path):
    request = tmp_path / "r.json"
    request.write_text("{}")
    with pytest.raises(invoke.InvokeError, match=message):
        invoke.run(["--async", *argv, str(request)], s3=object(), config=CONFIG)


def test_a_missing_file_and_a_header_longer_than_the_file_are_named(clients, tmp_path):
    s3, sqs, sns = clients
    endpoint = create_async_endpoint(s3, sqs, sns, endpoint="scorer")
    address = invoke.AsyncEndpointAddress("scorer", endpoint.bucket, endpoint.input_prefix, endpoint.output_prefix,
                                          endpoint.failure_prefix)
    with pytest.raises(invoke.InvokeError, match="no such file"):
        invoke.submit(s3, address, tmp_path / "missing.json", "x", None)
    request = tmp_path / "r.bin"
    request.write_bytes(b"{}")
    with pytest.raises(invoke.InvokeError, match="--header-length 9: between 1 and the file's 2 bytes"):
        invoke.submit(s3, address, request, "x", 9)
    assert HEADER_LENGTH_METADATA == "inference-header-content-length"


def test_the_command_line_exits_2_with_one_line_for_a_mistake(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLOPS_CONFIG", str(Path(__file__).resolve().parents[1] / "fixtures" / "all-options.yaml"))
    request = tmp_path / "r.json"
    request.write_text("{}")
    assert invoke.main(["--async", "--env", "qa", "--endpoint", "churn", str(request)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: endpoint churn is a real-time endpoint in qa") and "Traceback" not in err
