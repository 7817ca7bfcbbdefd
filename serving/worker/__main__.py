"""`python -m serving.worker`: an asynchronous endpoint's queue worker, configured by `WORKER_*` variables
(serving/worker/settings.py) and the server's `SERVING_*` model, capture and metrics variables.

`python -m serving.worker --manifest s3://bucket/key.json`: a batch run's share instead (serving/worker/batch.py),
started by `python -m pipeline.batch` with the same task definition and variables.

A bad or unknown setting exits with one line per variable, like the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from serving.settings import ServingSettings, SettingsError, read_settings
from serving.worker.settings import WorkerSettings


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", help="answer the objects a batch manifest lists (s3://bucket/key.json), then "
                                           "exit, instead of taking requests from the queue")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(sys.argv[1:] if argv is None else argv)
    if arguments.manifest is not None and not arguments.manifest.startswith("s3://"):
        print(f"--manifest {arguments.manifest!r}: an s3://bucket/key URI", file=sys.stderr)
        return 2
    try:
        serving = read_settings(ServingSettings, os.environ)
        settings = read_settings(WorkerSettings, os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    import boto3
    from botocore.config import Config

    from serving.logs import configure_logging
    from serving.service import assemble

    configure_logging(serving.log_level)
    config = Config(retries={"mode": "standard"}, max_pool_connections=max(10, 2 * settings.concurrency + 2))
    s3 = boto3.client("s3", config=config)
    service = assemble(serving, capture_max_request_bytes=settings.capture_max_request_bytes)
    if arguments.manifest is not None:
        return _batch(arguments.manifest, s3, service, settings)
    from serving.worker.answering import Answerer, Destination
    from serving.worker.queue import QueueWorker

    sqs, sns = (boto3.client(name, config=config) for name in ("sqs", "sns"))
    destination = Destination(settings.bucket, settings.output_prefix, settings.failure_prefix,
                              settings.success_topic_arn, settings.error_topic_arn)
    answerer = Answerer(service.plane, s3, sns, destination, settings.max_request_bytes)
    return asyncio.run(QueueWorker(settings, service, sqs, answerer).run())


def _batch(uri: str, s3, service, settings: WorkerSettings) -> int:
    import logging

    from botocore.exceptions import BotoCoreError, ClientError

    from serving.contract import BatchManifest
    from serving.worker.batch import BatchAnswerer, BatchRunner, destination_of

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        manifest = BatchManifest.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, BotoCoreError, ValueError) as exc:
        logging.getLogger("serving.worker.batch").error("cannot read the manifest", extra={"fields": {
            "manifest": uri, "error": str(exc)}})
        return 2
    answerer = BatchAnswerer(service.plane, s3, None, destination_of(manifest), settings.max_request_bytes,
                             batch_size=manifest.batch_size)
    return asyncio.run(BatchRunner(service, answerer, manifest).run())


if __name__ == "__main__":
    sys.exit(main())
