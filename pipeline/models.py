"""Ship model versions: `python -m pipeline.models promote | list | rollback | replay`.

    promote   upload a model file and its metadata (signature read from the model, sha256 computed) as a new
              version of one endpoint in one environment, then make it live
    list      the versions in the model bucket and which one is live
    rollback  make an earlier version live again (by default the one before the live one)
    replay    run captured requests against a version (locally, or at a server's URL) and report how its answers
              agree with what was answered (pipeline/replay.py)

Making a version live rewrites `<endpoint>/LIVE` in the environment's model bucket; that object's change starts the
endpoint's sync task, which copies the version into the endpoint's EFS models location, where the running servers
pick it up within their polling interval. No redeploy, no bastion host.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from configuration import MlopsConfig, load_config
from pipeline import replay as replay_module
from pipeline.commands import run_operator_command
from pipeline.onnx_signature import NotAModel
from pipeline.onnx_signature import signature_of as read_signature
from serving.contract import (
    BASELINE_FILE,
    METADATA_FILE,
    MODEL_FILE,
    is_version_name,
    live_object_key,
    read_remote_store,
    version_object_key,
)


class CommandError(Exception):
    """A clear, user-facing reason the command cannot go on."""


@dataclass(frozen=True)
class Target:
    bucket: str
    prefix: str
    environment: str
    endpoint: str

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def resolve(config: MlopsConfig, environment: str, endpoint: str) -> Target:
    if environment not in config.environments:
        raise CommandError(f"unknown environment {environment!r}; configured: {', '.join(config.environments)}")
    if endpoint not in config.endpoints:
        raise CommandError(f"unknown endpoint {endpoint!r}; configured: {', '.join(config.endpoints) or 'none'}")
    return Target(config.model_bucket_name(environment), f"{endpoint}/", environment, endpoint)


def signature_of(model_file: Path) -> dict[str, Any]:
    """Inputs and outputs as the server will see them, read from the file without the model runtime."""
    try:
        return read_signature(model_file)
    except NotAModel as exc:
        raise CommandError(str(exc)) from None


def _signature_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    differences = []
    for kind in ("inputs", "outputs"):
        before = [(t["name"], t["datatype"], tuple(t["shape"])) for t in old.get(kind, [])]
        after = [(t["name"], t["datatype"], tuple(t["shape"])) for t in new.get(kind, [])]
        if before != after:
            differences.append(f"{kind}: live {before} -> new {after}")
    return differences


def next_version(existing: list[str]) -> str:
    numbers = [int(v) for v in existing if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def _baseline_for(path: Path, model_sha256: str) -> bytes:
    """The baseline file's bytes, once it is known to be a baseline of this very model file."""
    try:
        document = json.loads(path.read_text())
        baseline_sha256 = document["model"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"--baseline {path}: not a baseline ({type(exc).__name__}); make one with "
                           "`python -m pipeline.monitor baseline --data FILE --model MODEL --out FILE`") from exc
    if baseline_sha256 != model_sha256:
        raise CommandError(f"--baseline {path} was computed for another model file (sha256 {baseline_sha256[:12]}..., "
                           f"this one is {model_sha256[:12]}...); compute it again with --model on this file")
    return path.read_bytes()


def promote(s3: Any, target: Target, model_file: Path, version: str | None = None, name: str | None = None,
            predict_output: str | None = None, force: bool = False, dry_run: bool = False,
            baseline: Path | None = None) -> dict[str, Any]:
    if not model_file.is_file():
        raise CommandError(f"model file {model_file} does not exist")
    signature = signature_of(model_file)
    content = model_file.read_bytes()
    baseline_content = _baseline_for(baseline, hashlib.sha256(content).hexdigest()) if baseline else None
    store = read_remote_store(s3, target.bucket, target.prefix)
    versions, live = store.versions, store.live
    version = version or next_version(list(versions))
    if version in versions or not is_version_name(version):
        raise CommandError(f"version {version!r} already exists in {target.where} or is not a valid name; versions "
                           "are immutable: promote under a new version")
    if live is not None and live in versions:
        differences = _signature_differences(versions[live].metadata, signature)
        if differences and not force:
            raise CommandError(f"the model's signature differs from live version {live}'s ("
                               f"{'; '.join(differences)}); clients would break. Pass --force if that is intended")
    output_names = [t["name"] for t in signature["outputs"]]
    if predict_output is not None and predict_output not in output_names:
        raise CommandError(f"--predict-output {predict_output!r} is not an output; outputs: {', '.join(output_names)}")
    metadata = {
        "name": name or target.endpoint,
        "version": version,
        "framework": "onnx",
        "file": MODEL_FILE,
        "sha256": hashlib.sha256(content).hexdigest(),
        **signature,
        "predict_output": predict_output or output_names[0],
    }
    model_key = version_object_key(target.prefix, version, MODEL_FILE)
    metadata_key = version_object_key(target.prefix, version, METADATA_FILE)
    baseline_key = version_object_key(target.prefix, version, BASELINE_FILE)
    plan = [f"put s3://{target.bucket}/{model_key} ({len(content)} bytes)",
            f"put s3://{target.bucket}/{metadata_key}",
            *([f"put s3://{target.bucket}/{baseline_key}"] if baseline_content else []),
            f"put s3://{target.bucket}/{live_object_key(target.prefix)} = {version} (was {live or 'none'})"]
    if not dry_run:
        # The version is complete (its baseline too) before LIVE names it; LIVE's change starts the sync.
        s3.put_object(Bucket=target.bucket, Key=model_key, Body=content, ChecksumAlgorithm="SHA256")
        s3.put_object(Bucket=target.bucket, Key=metadata_key,
                      Body=json.dumps(metadata, indent=2, sort_keys=True).encode(), ContentType="application/json")
        if baseline_content:
            s3.put_object(Bucket=target.bucket, Key=baseline_key, Body=baseline_content,
                          ContentType="application/json")
        _set_live(s3, target, version)
    return {"version": version, "previous_live": live, "metadata": metadata, "plan": plan, "dry_run": dry_run}


def _set_live(s3: Any, target: Target, version: str) -> None:
    s3.put_object(Bucket=target.bucket, Key=live_object_key(target.prefix), Body=(version + "\n").encode(),
                  ContentType="text/plain")


def list_versions(s3: Any, target: Target) -> dict[str, Any]:
    store = read_remote_store(s3, target.bucket, target.prefix)
    versions, ordered, live = store.versions, store.ordered, store.live
    return {"bucket": target.bucket, "endpoint": target.endpoint, "live": live, "versions": [
        {"version": v, "sha256": versions[v].metadata.get("sha256"), "name": versions[v].metadata.get("name"),
         "live": v == live} for v in ordered]}


def rollback(s3: Any, target: Target, to: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    store = read_remote_store(s3, target.bucket, target.prefix)
    versions, ordered, live = store.versions, store.ordered, store.live
    if live is None:
        raise CommandError(f"{target.where} holds no version to roll back from")
    if to is None:
        index = ordered.index(live) if live in ordered else len(ordered)
        if index == 0:
            raise CommandError(f"live version {live} is the oldest in {target.where}; name one with --to")
        to = ordered[index - 1]
    if to not in versions:
        raise CommandError(f"version {to!r} is not in {target.where}; versions: {', '.join(ordered)}")
    if to == live:
        raise CommandError(f"version {to} is already live")
    if not dry_run:
        _set_live(s3, target, to)
    return {"live": to, "previous_live": live, "dry_run": dry_run,
            "plan": [f"put s3://{target.bucket}/{live_object_key(target.prefix)} = {to} (was {live})"]}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    _replay_parser(commands)
    for command in ("promote", "list", "rollback"):
        sub = commands.add_parser(command)
        sub.add_argument("--env", required=True, help="environment, as in the configuration")
        sub.add_argument("--endpoint", required=True, help="endpoint, as in the configuration")
        if command != "list":
            sub.add_argument("--dry-run", action="store_true", help="print what would change in S3, change nothing")
        if command == "promote":
            sub.add_argument("--model-file", type=Path, required=True, help="the ONNX model")
            sub.add_argument("--version", help="version name (default: the next number)")
            sub.add_argument("--name", help="model name in the metadata (default: the endpoint)")
            sub.add_argument("--predict-output", help="output /predict returns (default: the first)")
            sub.add_argument("--force", action="store_true", help="promote even if the signature changes")
            sub.add_argument("--baseline", type=Path, help="the version's monitoring baseline (python -m "
                             "pipeline.monitor baseline), stored beside it")
        if command == "rollback":
            sub.add_argument("--to", help="version to make live (default: the one before the live one)")
    return parser


def _replay_parser(commands: Any) -> None:
    sub = commands.add_parser("replay", description=replay_module.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_argument("--env", help="environment whose capture and model buckets are read (not needed with both "
                                   "--captures and --models)")
    sub.add_argument("--endpoint", required=True, help="endpoint (the model name its servers serve)")
    sub.add_argument("--version", required=True, help="the candidate version")
    sub.add_argument("--since", help="first capture time, UTC (default: 24 hours before --until)")
    sub.add_argument("--until", help="end of the range, UTC (default: now)")
    where = sub.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="run the version here with the server's runtime")
    where.add_argument("--url", help="a server that serves the version, e.g. http://127.0.0.1:8080 (with API keys: "
                       "MLOPS_API_KEY=<key>)")
    sub.add_argument("--captures", type=Path, help="a capture folder (SERVING_CAPTURE_DIR) instead of the bucket")
    sub.add_argument("--models", type=Path, help="a model folder (<dir>/<version>/) instead of the bucket")
    sub.add_argument("--limit", type=int, default=10_000, help="replay at most this many (the newest; default "
                                                                "10000)")
    sub.add_argument("--format", choices=("text", "json"), default="text")


def run_replay(args: argparse.Namespace, s3: Any, config: MlopsConfig | None) -> str | dict[str, Any]:
    until = replay_module.parse_moment(args.until, "--until") if args.until else datetime.now(UTC)
    since = replay_module.parse_moment(args.since, "--since") if args.since else until - timedelta(hours=24)
    if since >= until:
        raise CommandError(f"--since {since:%Y-%m-%dT%H:%M} is not before --until {until:%Y-%m-%dT%H:%M}")
    if args.limit < 1:
        raise CommandError(f"--limit {args.limit}: at least 1")
    needs_aws = args.captures is None or (args.local and args.models is None)
    if needs_aws:
        if args.env is None:
            raise CommandError("--env is required to read the capture or model bucket (or give --captures and "
                               "--models)")
        config = config or load_config()
        resolve(config, args.env, args.endpoint)
        if s3 is None:
            import boto3

            s3 = boto3.client("s3", region_name=config.region)
    if args.captures is not None:
        records = replay_module.local_captures(args.captures, args.endpoint, since, until)
    else:
        assert config is not None
        records = replay_module.s3_captures(s3, config.capture_bucket_name(args.env), args.endpoint, since, until)
    records = records[-args.limit:]
    with tempfile.TemporaryDirectory(prefix="replay-") as scratch:
        if args.url:
            # The key comes from the environment, not the command line (which shells keep in their history).
            candidate: replay_module.Candidate = replay_module.RemoteCandidate(
                args.url, args.version, args.endpoint, api_key=os.environ.get("MLOPS_API_KEY"))
        else:
            models = args.models
            if models is None:
                assert config is not None
                models = replay_module.download_version(s3, config.model_bucket_name(args.env), f"{args.endpoint}/",
                                                        args.version, Path(scratch))
            candidate = replay_module.LocalCandidate(models, args.version)
        report = replay_module.replay(records, candidate, args.endpoint, args.endpoint, args.version, since, until)
    return report.text() if args.format == "text" else report.as_dict()


def run(argv: list[str], s3: Any = None, config: MlopsConfig | None = None) -> dict[str, Any] | str:
    args = _parser().parse_args(argv)
    if args.command == "replay":
        try:
            return run_replay(args, s3, config)
        except replay_module.ReplayError as exc:
            raise CommandError(str(exc)) from None
    config = config or load_config()
    target = resolve(config, args.env, args.endpoint)
    if s3 is None:
        from pipeline import preflight
        from pipeline.aws import environment_session, pipeline_session

        preflight.check(config, pipeline_session(config), [args.env])
        s3 = environment_session(config, args.env).client("s3")  # the model bucket is in the environment's account
    if args.command == "promote":
        return promote(s3, target, args.model_file, args.version, args.name, args.predict_output, args.force,
                       args.dry_run, args.baseline)
    if args.command == "rollback":
        return rollback(s3, target, args.to, args.dry_run)
    return list_versions(s3, target)


def main(argv: list[str] | None = None) -> int:
    def command() -> str:
        result = run(sys.argv[1:] if argv is None else argv)
        return result if isinstance(result, str) else json.dumps(result, indent=2)

    return run_operator_command(command, (CommandError,))


if __name__ == "__main__":
    sys.exit(main())
