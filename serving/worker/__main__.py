"""`python -m serving.worker`: an asynchronous endpoint's queue worker, configured by `WORKER_*` variables
(serving/worker/settings.py) and the server's `SERVING_*` model, capture and metrics variables.

A bad or unknown setting exits with one line per variable, like the server.
"""

from __future__ import annotations

import asyncio
import os
import sys

from serving.settings import ServingSettings, SettingsError, read_settings
from serving.worker.settings import WorkerSettings


def main() -> int:
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
    from serving.worker.answering import Answerer, Destination
    from serving.worker.queue import QueueWorker

    configure_logging(serving.log_level)
    config = Config(retries={"mode": "standard"}, max_pool_connections=max(10, 2 * settings.concurrency + 2))
    sqs, s3, sns = (boto3.client(name, config=config) for name in ("sqs", "s3", "sns"))
    service = assemble(serving, capture_max_request_bytes=settings.capture_max_request_bytes)
    destination = Destination(settings.bucket, settings.output_prefix, settings.failure_prefix,
                              settings.success_topic_arn, settings.error_topic_arn)
    answerer = Answerer(service.plane, s3, sns, destination, settings.max_request_bytes)
    return asyncio.run(QueueWorker(settings, service, sqs, answerer).run())


if __name__ == "__main__":
    sys.exit(main())
