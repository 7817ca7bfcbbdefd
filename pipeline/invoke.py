"""`python -m pipeline.invoke --async --env E --endpoint N FILE`: ask an asynchronous endpoint, as a client would.

Uploads FILE under the endpoint's input prefix (its name is the inference id: `--id`, or a new UUID), then waits for
the answer under the output prefix, or the failure record, and prints it; `--no-wait` prints the inference id and
where the answer will be, at once. FILE is Open Inference Protocol JSON, the `/predict` form, or binary tensors
(`--header-length N`: the JSON header's length in bytes, the data after it). A binary answer is written to `--out`.

Exit codes: 0 answered; 1 the endpoint recorded a failure, or AWS refused; 2 a mistake in the command or the
configuration; 3 not answered within `--timeout` (the request stays queued; its answer will appear later).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configuration import MlopsConfig, load_config
from pipeline.commands import run_operator_command
from serving.contract import (
    BINARY_ANSWER_SUFFIX,
    HEADER_LENGTH_METADATA,
    answer_keys,
    async_prefixes,
    find_outcome,
)

NOT_ANSWERED_IN_TIME = 3


class InvokeError(Exception):
    """A mistake in the command: the endpoint, the file, the inference id."""


class NotAnswered(Exception):
    """The timeout passed first; the request is still queued."""


@dataclass(frozen=True)
class AsyncEndpointAddress:
    endpoint: str
    bucket: str
    input_prefix: str
    output_prefix: str
    failure_prefix: str


@dataclass(frozen=True)
class Outcome:
    answered: bool
    location: str
    body: bytes
    metadata: dict[str, str]


def address_of(config: MlopsConfig, environment: str, endpoint: str) -> AsyncEndpointAddress:
    """Where an asynchronous endpoint of `environment` takes requests; InvokeError for anything else."""
    if environment not in config.environments:
        raise InvokeError(f"unknown environment {environment!r}; configured: {', '.join(config.environments)}")
    if endpoint not in config.endpoints:
        raise InvokeError(f"unknown endpoint {endpoint!r}; configured: {', '.join(config.endpoints) or 'none'}")
    if config.endpoint_for(environment, endpoint).mode != "async":
        raise InvokeError(f"endpoint {endpoint} is a real-time endpoint in {environment}: call it over HTTPS "
                          "(docs/access.md); this is for endpoints with mode: async")
    return AsyncEndpointAddress(endpoint, config.async_bucket_name(environment, endpoint),
                                *async_prefixes(endpoint))


def check_inference_id(value: str) -> str:
    if not value or value.startswith("/") or value.endswith("/") or ".." in value.split("/") or "." in \
            value.rsplit("/", 1)[-1]:
        raise InvokeError(f"--id {value!r}: a name without an extension (the inference id), optionally in folders "
                          "(team/2026/r1); no leading or trailing '/', no '..'")
    return value


def submit(s3: Any, address: AsyncEndpointAddress, request: Path, inference: str,
           header_length: int | None) -> str:
    """Upload the request under its inference id; refuses an id already answered (the old answer would stand)."""
    if not request.is_file():
        raise InvokeError(f"{request}: no such file")
    existing = find_outcome(s3, address.bucket, address.output_prefix, address.failure_prefix, inference)
    if existing:
        raise InvokeError(f"inference id {inference!r} was answered before (s3://{address.bucket}/{existing}); a "
                          "request under the same id would find that answer and not run: give another --id")
    if header_length is not None:
        if not 0 < header_length <= request.stat().st_size:
            raise InvokeError(f"--header-length {header_length}: between 1 and the file's {request.stat().st_size} "
                              "bytes")
        suffix, extra = ".bin", {"ContentType": "application/octet-stream",
                                 "Metadata": {HEADER_LENGTH_METADATA: str(header_length)}}
    else:
        suffix, extra = ".json", {"ContentType": "application/json"}
    key = f"{address.input_prefix}{inference}{suffix}"
    s3.upload_file(str(request), address.bucket, key, ExtraArgs=extra)  # multipart for large files
    return f"s3://{address.bucket}/{key}"


def wait_for_outcome(s3: Any, address: AsyncEndpointAddress, inference: str, timeout_seconds: float,
                     poll_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> Outcome:
    deadline = clock() + timeout_seconds
    while True:
        key = find_outcome(s3, address.bucket, address.output_prefix, address.failure_prefix, inference)
        if key is not None:
            stored = s3.get_object(Bucket=address.bucket, Key=key)
            return Outcome(key.startswith(address.output_prefix), f"s3://{address.bucket}/{key}",
                           stored["Body"].read(), dict(stored.get("Metadata") or {}))
        if clock() >= deadline:
            json_key, _, failure_key = answer_keys(address.output_prefix, address.failure_prefix, inference)
            raise NotAnswered(f"inference {inference} not answered within {timeout_seconds:g} s; it stays queued: "
                              f"its answer will be at s3://{address.bucket}/{json_key} (or a failure at "
                              f"s3://{address.bucket}/{failure_key}). An endpoint at zero tasks starts one first.")
        sleep(poll_seconds)


def show(outcome: Outcome, out: Path | None) -> str:
    """The answer (JSON, indented), or a binary answer's header with where its bytes went."""
    length = outcome.metadata.get(HEADER_LENGTH_METADATA)
    if outcome.location.endswith(BINARY_ANSWER_SUFFIX) and length is not None:
        header = json.loads(outcome.body[:int(length)])
        if out is None:
            return json.dumps({**header, "binary_bytes": len(outcome.body) - int(length),
                               "note": "binary outputs not printed; give --out FILE"}, indent=2)
        out.write_bytes(outcome.body)
        return json.dumps({**header, "written_to": str(out), "header_length": int(length)}, indent=2)
    if out is not None:
        out.write_bytes(outcome.body)
    return json.dumps(json.loads(outcome.body), indent=2)


class AnsweredWithFailure(Exception):
    """The endpoint wrote a failure record for the request (exit code 1)."""


def run(argv: list[str], s3: Any = None, config: MlopsConfig | None = None,
        say: Callable[[str], None] | None = None) -> str:
    args = _parser().parse_args(argv)
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    if not args.use_async:
        raise InvokeError("only asynchronous endpoints are invoked here (--async); call a real-time endpoint over "
                          "HTTPS (docs/access.md)")
    if args.timeout <= 0:
        raise InvokeError(f"--timeout {args.timeout:g}: seconds, above 0")
    config = config or load_config()
    address = address_of(config, args.env, args.endpoint)
    inference = check_inference_id(args.id or uuid.uuid4().hex)
    if s3 is None:
        from pipeline import preflight
        from pipeline.aws import environment_session, pipeline_session

        preflight.check(config, pipeline_session(config), [args.env])
        s3 = environment_session(config, args.env).client("s3")
    location = submit(s3, address, args.file, inference, args.header_length)
    json_key, binary_key, failure_key = answer_keys(address.output_prefix, address.failure_prefix, inference)
    if args.no_wait:
        return json.dumps({"inferenceId": inference, "request": location,
                           "output": f"s3://{address.bucket}/{json_key}",
                           "binaryOutput": f"s3://{address.bucket}/{binary_key}",
                           "failure": f"s3://{address.bucket}/{failure_key}"}, indent=2)
    say(f"submitted {location} (inference id {inference}); waiting up to {args.timeout:g} s for the answer")
    outcome = wait_for_outcome(s3, address, inference, args.timeout)
    if not outcome.answered:
        record = json.loads(outcome.body)
        raise AnsweredWithFailure(f"the endpoint could not answer inference {inference}: "
                                  f"{record.get('failureReason')} ({outcome.location})")
    return show(outcome, args.out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.invoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--async", dest="use_async", action="store_true", required=True,
                        help="the endpoint is asynchronous: submit through its bucket and queue")
    parser.add_argument("--env", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("file", type=Path, help="the request: V2 JSON, {\"instances\": ...}, or binary tensors")
    parser.add_argument("--id", help="the inference id (default: a new UUID); its answer is <output prefix><id>.json")
    parser.add_argument("--header-length", type=int, help="a binary request: the length of its JSON header")
    parser.add_argument("--no-wait", action="store_true", help="print where the answer will be and return")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for the answer (default 900: a start from zero tasks takes minutes)")
    parser.add_argument("--out", type=Path, help="write the answer's body here (needed for binary outputs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    def command() -> str:
        return run(sys.argv[1:] if argv is None else argv)

    try:
        return run_operator_command(command, (InvokeError,))
    except NotAnswered as exc:  # raised through: its own exit code
        print(f"error: {exc}", file=sys.stderr)
        return NOT_ANSWERED_IN_TIME
    except AnsweredWithFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
