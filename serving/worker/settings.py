"""The worker's settings, read from `WORKER_*` variables (the endpoint stack sets them). The model, capture and
metrics settings are the server's (`SERVING_*`, serving/settings.py): one model service, two ways to reach it."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.contract import WORKER_VARIABLE_PREFIX

GIB = 1024 ** 3


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=WORKER_VARIABLE_PREFIX, extra="forbid", frozen=True)

    queue_url: str
    """The endpoint's request queue (S3 event notifications of the input prefix)."""
    dead_letter_queue_url: str
    """Where a message goes, with its error, when it cannot be answered (unreadable, or failing on its last
    receive)."""
    bucket: str
    """The environment's async bucket: requests, answers and failures."""
    input_prefix: str
    output_prefix: str
    failure_prefix: str
    success_topic_arn: str = ""
    """Told of every answer (empty: nobody is told)."""
    error_topic_arn: str = ""
    """Told of every failure (empty: nobody is told)."""
    max_receives: int = Field(default=3, ge=1, le=1000)
    """The queue's redrive `maxReceiveCount`: a request that still fails on this receive is recorded as failed and
    its message moved to the dead-letter queue with the error, before SQS would move it without one."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Messages worked on at once; small requests that arrive together share model calls (serving/batching.py)."""
    visibility_timeout_seconds: int = Field(default=60, ge=1, le=43_200)
    """How long a message taken stays invisible to other workers; extended while its inference runs."""
    heartbeat_seconds: float = Field(default=20.0, gt=0)
    """How often the messages being worked on are made invisible for another `visibility_timeout_seconds`."""
    retry_delay_seconds: int = Field(default=10, ge=0, le=43_200)
    """A request that failed on the server's side (model not ready, model error, S3 unavailable) is tried again
    after this long."""
    wait_seconds: int = Field(default=20, ge=0, le=20)
    """Long polling: how long one receive waits for a message (fewer empty receives than short polling)."""
    max_request_bytes: int = Field(default=GIB, ge=1024)
    """Larger request objects are refused (recorded as failed); a request is held in memory once, as read."""
    capture_max_request_bytes: int = Field(default=6 * 1024 * 1024, ge=0)
    """Larger requests are answered but not captured."""
    drain_seconds: float = Field(default=90.0, ge=0)
    """After SIGTERM: how long requests being worked on may finish before their messages are returned to the queue;
    inside the task's stop timeout (120 s at most on ECS)."""

    @model_validator(mode="after")
    def _heartbeat_inside_visibility(self) -> WorkerSettings:
        if self.heartbeat_seconds >= self.visibility_timeout_seconds:
            raise ValueError(f"heartbeat_seconds ({self.heartbeat_seconds}) must be shorter than "
                             f"visibility_timeout_seconds ({self.visibility_timeout_seconds}), or a message becomes "
                             "visible to other workers while its inference runs")
        for name in ("input_prefix", "output_prefix", "failure_prefix"):
            value = getattr(self, name)
            if value and not value.endswith("/"):
                raise ValueError(f"{name} must end with '/', got {value!r}")
        if len({self.input_prefix, self.output_prefix, self.failure_prefix}) < 3 or any(
                a != b and b.startswith(a) for a in (self.input_prefix,) for b in (self.output_prefix,
                                                                                   self.failure_prefix)):
            raise ValueError("input_prefix, output_prefix and failure_prefix must be distinct, and answers must not "
                             "land under the input prefix (each answer would be a new request)")
        return self
