"""Server settings, read from `SERVING_*` environment variables (the endpoint stack sets them)."""

from __future__ import annotations

import difflib
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.contract import (
    DATA_MOUNT,
    DEFAULT_VARIANT,
    MODELS_MOUNT,
    READINESS_PATH,
    SERVER_VARIABLE_PREFIX,
    SERVING_METRICS_NAMESPACE,
    read_key_set,
)


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=SERVER_VARIABLE_PREFIX, extra="forbid", frozen=True)

    model_name: str = "model"
    """Name the model is served under (`/v2/models/<name>`); the endpoint's name on ECS."""
    models_dir: Path = Path(MODELS_MOUNT)
    """Model repository: `<models_dir>/<version>/` with the model file and `metadata.json`."""
    capture_dir: Path = Path(DATA_MOUNT)
    """Where captured requests go: `<capture_dir>/<model>/<variant>/yyyy/mm/dd/hh/<instance>-<pid>.jsonl`."""
    variant: str = Field(default=DEFAULT_VARIANT, pattern=r"^[a-z0-9][a-z0-9-]*$")
    """The endpoint variant this server runs as: names its capture folder and every record it captures."""
    model_version: str = ""
    """A version to serve instead of the one LIVE names (a pinned variant); empty: follow LIVE."""
    shadow_url: str = ""
    """The shadow variant (`http://host:port`): a copy of `shadow_percent` of the answered requests goes there,
    off the request path. Empty: no shadow."""
    shadow_percent: float = Field(default=0.0, ge=0, le=100)
    shadow_queue_size: int = Field(default=1000, ge=1)
    """Copies waiting for the shadow; beyond this, new copies are dropped and counted."""
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on all its interfaces
    port: int = Field(default=8080, ge=1, le=65535)
    health_path: str = READINESS_PATH
    """The load balancer's health check path (the target group's); answers like `/v2/health/ready`."""
    route_prefix: str = ""
    """Path prefix the load balancer routes by (e.g. `/a`): every route is served with and without it."""
    capture_enabled: bool = True
    capture_sample_percent: float = Field(default=100.0, ge=0, le=100)
    capture_queue_size: int = Field(default=10_000, ge=1)
    """Records accepted and not yet on the volume (a stalled one too); beyond this, new records are dropped and
    counted, never the request."""
    poll_interval_seconds: float = Field(default=10.0, gt=0)
    """How often the repository is checked for a new version (NFS has no cross-client file events)."""
    keep_alive_seconds: int = Field(default=65, ge=1)
    """Idle keep-alive; longer than the load balancer's idle timeout (60 s by default)."""
    drain_seconds: float = Field(default=25.0, ge=0)
    """After SIGTERM: time allowed for in-flight requests before connections close; keep it inside the
    container's stop timeout with room for the capture flush."""
    unready_delay_seconds: float = Field(default=0.0, ge=0)
    """After SIGTERM: keep accepting requests this long while readiness fails, for clients that still route here."""
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    """Larger request bodies get 413."""
    intra_op_threads: int = Field(default=1, ge=1)
    """ONNX Runtime threads per model call. One, without spinning, is fastest for small models on 1-2 vCPU."""
    fast_path: bool = True
    """Serve the inference routes straight from ASGI in front of FastAPI (same data plane, same responses)."""
    workers: int = Field(default=1, ge=1)
    """Server processes on the port, each with its own model copy and capture file; the endpoint stack sets one per
    vCPU of the task (one process serves from one core)."""
    api_keys: str = ""
    """The endpoint's API key set (salted digests, JSON; serving/contract.py), from ECS `secrets`. When this or
    `api_keys_secret` is set, every route but the health checks needs a key of the set."""
    api_keys_secret: str = ""
    """The Secrets Manager secret (ARN or name) holding the key set: read again every `api_keys_refresh_seconds`,
    so a new or revoked key takes effect without a restart. Empty: the set from `api_keys` stays."""
    api_keys_refresh_seconds: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"
    access_log: bool = False
    metrics_interval_seconds: float = Field(default=60.0, gt=0)
    metrics_namespace: str = SERVING_METRICS_NAMESPACE
    concurrency_metric_seconds: float = Field(default=0.0, ge=0, le=60)
    """Publish the requests in progress (time-averaged) this often, at one-second resolution, for autoscaling on
    concurrency; 0: not published (each datapoint is a high-resolution custom metric's cost)."""
    environment: str = "local"
    """Environment name, a metrics dimension."""
    image_tag: str = "local"
    """The tag of the image this server runs (the commit); the endpoint stack sets it. Reported by `GET /status`, so
    the pipeline's smoke test can tell which version answers."""
    instance_id: str = Field(default_factory=socket.gethostname)
    """Names this task's capture files, so concurrent tasks never append to the same file."""

    @field_validator("api_keys")
    @classmethod
    def _key_set(cls, value: str) -> str:
        if value:
            read_key_set(value)  # raises ValueError naming what is wrong
        return value

    @property
    def requires_api_key(self) -> bool:
        return bool(self.api_keys or self.api_keys_secret)

    @property
    def prefix(self) -> str:
        return self.route_prefix.rstrip("/")


Settings = TypeVar("Settings", bound=BaseSettings)


class SettingsError(Exception):
    """Settings a program cannot start with; `lines` name each variable, what is wrong and the value given."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def read_settings(settings: type[Settings], environ: Mapping[str, str]) -> Settings:
    """The program's settings from its variables; raises SettingsError for an unknown, invalid or missing one."""
    try:
        refuse_unknown_variables(settings, environ)
        return settings()
    except ValidationError as exc:
        raise SettingsError(list(settings_problems(exc, str(settings.model_config.get("env_prefix", ""))))) from None
    except ValueError as exc:
        raise SettingsError([str(exc)]) from None


def variable_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads."""
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def required_variable_names(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name, field in settings.model_fields.items() if field.is_required()}


def refuse_unknown_variables(settings: type[BaseSettings], environ: Mapping[str, str]) -> None:
    """A misspelled variable would otherwise be ignored and its setting fall back to the default, silently.
    Raises ValueError naming each unknown variable and the closest known one."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    known = variable_names(settings)
    unknown = sorted(name for name in environ if name.upper().startswith(prefix) and name.upper() not in known)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name.upper(), sorted(known), n=1)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise ValueError(f"unknown setting(s): {', '.join(hints)}; the {prefix}* variables are: "
                         f"{', '.join(sorted(known))}")


def settings_problems(error: ValidationError, prefix: str) -> Iterator[str]:
    """One line per invalid or missing variable: its name, what is wrong, the value given."""
    for problem in error.errors():
        variable = prefix + "_".join(str(part) for part in problem["loc"]).upper()
        if problem["type"] == "missing":
            yield f"{variable}: required, not set"
        else:
            yield f"{variable}: {problem['msg']} (got {problem.get('input')!r})"
