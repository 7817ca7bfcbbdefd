"""What a queue message asks for: the request objects an S3 event notification names.

S3 sends `{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": ..},
"object": {"key": .., "size": ..}}}]}` with the key URL-encoded (a space as '+'), and one `s3:TestEvent` when the
notification is configured. Anything else is not a request: the worker moves it to the dead-letter queue with the
reason (`Unreadable`), never retries it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from serving.contract import inference_id


class Unreadable(Exception):
    """A message that names no request: it goes to the dead-letter queue with this reason."""


@dataclass(frozen=True)
class Job:
    """One request to answer: the object, and the inference id its answer is written under."""

    bucket: str
    key: str
    inference_id: str

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def jobs_of(body: str, bucket: str, input_prefix: str) -> list[Job]:
    """The requests a message names (none for S3's test event). Raises Unreadable for anything else, and for an
    object outside the endpoint's input (a notification configured elsewhere must not make this worker read it)."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise Unreadable(f"the message is not JSON ({exc}); requests are S3 event notifications") from None
    if not isinstance(message, dict):
        raise Unreadable("the message is not a JSON object; requests are S3 event notifications")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list) or not records:
        raise Unreadable("the message has no Records; requests are S3 event notifications")
    jobs = []
    for index, record in enumerate(records):
        try:
            source, event = record["eventSource"], record["eventName"]
            record_bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError):
            raise Unreadable(f"Records[{index}] is not an S3 event record (eventSource, eventName, s3.bucket.name, "
                             "s3.object.key)") from None
        if source != "aws:s3" or not str(event).startswith("ObjectCreated:"):
            raise Unreadable(f"Records[{index}] is {source} {event}, not an S3 object created")
        if record_bucket != bucket or not key.startswith(input_prefix) or key == input_prefix:
            raise Unreadable(f"Records[{index}] names s3://{record_bucket}/{key}, outside this endpoint's input "
                             f"s3://{bucket}/{input_prefix}")
        jobs.append(Job(record_bucket, key, inference_id(input_prefix, key)))
    return jobs
