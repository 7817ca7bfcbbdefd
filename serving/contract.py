"""What the programs of this project must agree on, written once.

The endpoint stacks start the server and the model sync with these variables and mounts; the server and the sync
read them; the delivery steps write the model store that the sync copies and the server serves. Each side imports
this module instead of spelling a name again, and `tests/infra/test_task_contract.py` holds the task definitions to
the programs' settings.

Standard library only: the stacks, the delivery steps (which must not load the model runtime) and the server all
import it, and `tests/test_dependencies.py` keeps it that way.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# --- the container ------------------------------------------------------------------------------------------------

SERVER_CONTAINER = "model-server"
"""The container of an endpoint's service task; the delivery steps read its image to see which commit runs."""
SYNC_CONTAINER = "model-sync"
SERVER_PROGRAM = ("python", "-m", "serving")
"""The serving image's ENTRYPOINT: what a task runs when it names no entry point of its own."""
SYNC_ENTRY_POINT = ("python", "-m", "serving.sync")
"""The model sync's entry point: it replaces the image's, never appends to it."""
EXPORT_CONTAINER = "capture-export"
EXPORT_ENTRY_POINT = ("python", "-m", "serving.capture_export")
"""The capture export's entry point (a scheduled task, like the sync)."""

MODELS_MOUNT = "/mnt/models"
"""The endpoint's model store on EFS: read-only for the server, read-write for the sync."""
DATA_MOUNT = "/mnt/data"
"""Captured requests on EFS (read-write for the server)."""
SCRATCH_MOUNT = "/tmp"  # noqa: S108 - the root file system is read-only; the server writes temporary files here only
"""The only writable path of the server's otherwise read-only root file system."""

LIVENESS_PATH = "/v2/health/live"
"""Answers 200 while the process runs (also before the first model): the container health check."""
READINESS_PATH = "/v2/health/ready"
"""Answers 200 once a model is live and the server is not draining: the load balancer's default health check."""


# --- the variables a task sets ---------------------------------------------------------------------------------------

SERVER_VARIABLE_PREFIX = "SERVING_"
SYNC_VARIABLE_PREFIX = "SYNC_"
EXPORT_VARIABLE_PREFIX = "EXPORT_"


class ServerVariable:
    """Variables the endpoint stack sets for the server (fields of `serving.settings.ServingSettings`)."""

    MODEL_NAME = "SERVING_MODEL_NAME"
    MODELS_DIR = "SERVING_MODELS_DIR"
    CAPTURE_DIR = "SERVING_CAPTURE_DIR"
    PORT = "SERVING_PORT"
    HEALTH_PATH = "SERVING_HEALTH_PATH"
    ROUTE_PREFIX = "SERVING_ROUTE_PREFIX"
    CAPTURE_SAMPLE_PERCENT = "SERVING_CAPTURE_SAMPLE_PERCENT"
    KEEP_ALIVE_SECONDS = "SERVING_KEEP_ALIVE_SECONDS"
    DRAIN_SECONDS = "SERVING_DRAIN_SECONDS"
    WORKERS = "SERVING_WORKERS"
    IMAGE_TAG = "SERVING_IMAGE_TAG"
    ENVIRONMENT = "SERVING_ENVIRONMENT"
    VARIANT = "SERVING_VARIANT"
    MODEL_VERSION = "SERVING_MODEL_VERSION"
    SHADOW_URL = "SERVING_SHADOW_URL"
    SHADOW_PERCENT = "SERVING_SHADOW_PERCENT"
    API_KEYS = "SERVING_API_KEYS"
    """Set from the key set secret through ECS `secrets`, never as a plain variable."""
    API_KEYS_SECRET = "SERVING_API_KEYS_SECRET"  # noqa: S105 - a variable name, not a secret
    CONCURRENCY_METRIC_SECONDS = "SERVING_CONCURRENCY_METRIC_SECONDS"


SERVING_METRICS_NAMESPACE = "EcsMlops/Serving"
"""Where the server's Embedded Metric Format metrics go (dimensions Model and Environment)."""
CONCURRENCY_METRIC = "ConcurrentRequests"
"""Requests in progress in one server process, averaged over time, every `SERVING_CONCURRENCY_METRIC_SECONDS` at
one-second storage resolution (dimensions Model, Environment and Variant): what `scale_on: concurrency` tracks."""


PROBE_VARIABLE_PREFIX = "PROBE_"


class ProbeVariable:
    """Variables of the smoke probe task (`python -m serving.probe`), which the endpoint stack defines for an endpoint
    behind an internal load balancer and the pipeline's Smoke step starts inside the VPC."""

    ENDPOINT = "PROBE_ENDPOINT"
    ROOT = "PROBE_ROOT"
    """The endpoint's base URL, route prefix included."""
    HOST = "PROBE_HOST"
    """The Host header to send; unset to send the URL's own."""
    IMAGE_TAG = "PROBE_IMAGE_TAG"
    """The commit deployed: the image that must answer."""
    AUTH = "PROBE_AUTH"
    """The endpoint's `auth.type`."""
    CREDENTIALS = "PROBE_CREDENTIALS"
    """The smoke credentials secret's value, through ECS `secrets` (never a plain variable)."""
    ATTEMPTS = "PROBE_ATTEMPTS"
    WAIT_SECONDS = "PROBE_WAIT_SECONDS"


PROBE_CONTAINER = "probe"
PROBE_PROGRAM = ("python", "-m", "serving.probe")
PROBE_RESULT_PREFIX = "probe result: "
"""The probe's last log line: this prefix, then JSON (`{"passed": bool, ...}`), which Smoke reads from its log."""


class SyncVariable:
    """Variables the model sync task sets (fields of `serving.sync.SyncSettings`)."""

    BUCKET = "SYNC_BUCKET"
    PREFIX = "SYNC_PREFIX"
    MODELS_DIR = "SYNC_MODELS_DIR"
    KEEP_VERSIONS = "SYNC_KEEP_VERSIONS"
    PINNED_VERSIONS = "SYNC_PINNED_VERSIONS"


class ExportVariable:
    """Variables the capture export task sets (fields of `serving.capture_export.ExportSettings`)."""

    BUCKET = "EXPORT_BUCKET"
    PREFIX = "EXPORT_PREFIX"
    CAPTURE_DIR = "EXPORT_CAPTURE_DIR"
    ENDPOINT = "EXPORT_ENDPOINT"


MONITOR_VARIABLE_PREFIX = "MONITOR_"
MONITOR_CONTAINER = "monitor"
MONITOR_PROGRAM = ("python", "-m", "pipeline.monitor", "run")
"""The scheduled monitor task's command, in the monitor's own image (pipeline/monitor/Dockerfile)."""
MONITOR_IMAGE_SUFFIX = "-monitor"


def monitor_image_tag(image_tag: str) -> str:
    """The monitor's image of a commit: the server's tag and this suffix, in the same repositories."""
    return f"{image_tag}{MONITOR_IMAGE_SUFFIX}"


MONITORING_PREFIX = "monitoring/"
"""Where the monitor writes its reports in the capture bucket: `monitoring/<endpoint>/<variant>/yyyy/mm/dd/hh/`."""
GROUND_TRUTH_PREFIX = "ground-truth/"
"""Where labels are uploaded in the capture bucket: `ground-truth/<endpoint>/yyyy/mm/dd/hh/*.jsonl`."""
MONITOR_METRICS = ("RecordsAnalysed", "NoData", "FeaturesDrifted", "ShareOfFeaturesDrifted", "PredictionDrift",
                   "DriftScore", "Accuracy", "Precision", "Recall", "F1", "AUC", "MAE", "RMSE")
"""What the monitor publishes (in its namespace; Environment, Endpoint, Variant and, for DriftScore, Feature) and
the endpoint stack's alarms read."""


class MonitorVariable:
    """Variables the scheduled monitor task sets (fields of `pipeline.monitor.task.MonitorSettings`)."""

    ENDPOINT = "MONITOR_ENDPOINT"
    ENVIRONMENT = "MONITOR_ENVIRONMENT"
    CAPTURE_BUCKET = "MONITOR_CAPTURE_BUCKET"
    CAPTURE_PREFIX = "MONITOR_CAPTURE_PREFIX"
    MODEL_BUCKET = "MONITOR_MODEL_BUCKET"
    MODEL_PREFIX = "MONITOR_MODEL_PREFIX"
    VARIANTS = "MONITOR_VARIANTS"
    WINDOW_HOURS = "MONITOR_WINDOW_HOURS"
    NAMESPACE = "MONITOR_NAMESPACE"


WORKER_VARIABLE_PREFIX = "WORKER_"
WORKER_PROGRAM = ("python", "-m", "serving.worker")
"""An asynchronous endpoint's worker: the serving image, this entry point (it replaces the server's), in the
service's `SERVER_CONTAINER` (the delivery steps read the commit that runs from it, whichever program it is)."""


class WorkerVariable:
    """Variables an asynchronous endpoint's worker task sets (fields of `serving.worker.settings.WorkerSettings`);
    the worker also reads the server's `SERVING_*` model, capture and metrics variables."""

    QUEUE_URL = "WORKER_QUEUE_URL"
    DEAD_LETTER_QUEUE_URL = "WORKER_DEAD_LETTER_QUEUE_URL"
    BUCKET = "WORKER_BUCKET"
    INPUT_PREFIX = "WORKER_INPUT_PREFIX"
    OUTPUT_PREFIX = "WORKER_OUTPUT_PREFIX"
    FAILURE_PREFIX = "WORKER_FAILURE_PREFIX"
    SUCCESS_TOPIC_ARN = "WORKER_SUCCESS_TOPIC_ARN"
    ERROR_TOPIC_ARN = "WORKER_ERROR_TOPIC_ARN"
    MAX_RECEIVES = "WORKER_MAX_RECEIVES"
    CONCURRENCY = "WORKER_CONCURRENCY"
    VISIBILITY_TIMEOUT_SECONDS = "WORKER_VISIBILITY_TIMEOUT_SECONDS"
    MAX_REQUEST_BYTES = "WORKER_MAX_REQUEST_BYTES"
    DRAIN_SECONDS = "WORKER_DRAIN_SECONDS"


# An asynchronous endpoint's objects, in its environment's async bucket:
#   <input prefix><name>          a request: Open Inference Protocol JSON, the /predict form, or binary tensors
#                                 (Content-Type application/octet-stream, metadata HEADER_LENGTH_METADATA)
#   <output prefix><id>.json      its answer (.bin when binary outputs were asked for): the record of completion
#   <failure prefix><id>.json     why it could not be answered
# The inference id is the request's key below the input prefix without its last extension.
ASYNC_PREFIX = "async/"
BATCH_PREFIX = "batch/"
"""Batch runs' inputs, outputs and manifests in the same bucket (`python -m pipeline.batch`): the worker may read,
list and write here too."""
BATCH_MANIFESTS = f"{BATCH_PREFIX}_manifests/"
HEADER_LENGTH_METADATA = "inference-header-content-length"
"""The object metadata that says where a binary request's (or answer's) JSON header ends."""
JSON_ANSWER_SUFFIX = ".json"
BINARY_ANSWER_SUFFIX = ".bin"


def async_prefixes(endpoint: str) -> tuple[str, str, str]:
    """The input, output and failure prefixes of an asynchronous endpoint in its environment's async bucket."""
    base = f"{ASYNC_PREFIX}{endpoint}/"
    return f"{base}input/", f"{base}output/", f"{base}failure/"


def inference_id(input_prefix: str, key: str) -> str:
    """The inference id of the request at `key`: its name below the input prefix, without its last extension."""
    name = key[len(input_prefix):] if key.startswith(input_prefix) else key
    folder, _, base = name.rpartition("/")
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return f"{folder}/{stem}" if folder else stem


def answer_keys(output_prefix: str, failure_prefix: str, inference: str) -> tuple[str, str, str]:
    """Where an inference's outcome is written: the JSON answer, the binary answer, the failure."""
    return (f"{output_prefix}{inference}{JSON_ANSWER_SUFFIX}", f"{output_prefix}{inference}{BINARY_ANSWER_SUFFIX}",
            f"{failure_prefix}{inference}{JSON_ANSWER_SUFFIX}")


def find_outcome(s3: Any, bucket: str, output_prefix: str, failure_prefix: str, inference: str) -> str | None:
    """The key of the answer or failure written for an inference id, if any, with an S3 client (passed in). Listed,
    not HEAD: without s3:ListBucket on the whole bucket a missing object answers 403, not 404."""
    candidates = set(answer_keys(output_prefix, failure_prefix, inference))
    for prefix in (output_prefix, failure_prefix):
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{inference}.", MaxKeys=100)
        for entry in listed.get("Contents", []):
            if entry["Key"] in candidates:
                return str(entry["Key"])
    return None


BATCH_FAILURES_FOLDER = "_failures/"
"""A batch run's failure records: `<output prefix>_failures/<inference id>.json`."""


@dataclass(frozen=True)
class BatchManifest:
    """One batch task's share, written by `python -m pipeline.batch`, read by `python -m serving.worker --manifest`:
    JSON `{"input_bucket", "input_prefix", "output_bucket", "output_prefix", "batch_size", "keys": [...]}`."""

    input_bucket: str
    input_prefix: str
    output_bucket: str
    output_prefix: str
    keys: tuple[str, ...]
    batch_size: int = 256

    @classmethod
    def from_json(cls, text: str | bytes) -> BatchManifest:
        try:
            document = json.loads(text)
            manifest = cls(document["input_bucket"], document["input_prefix"], document["output_bucket"],
                           document["output_prefix"], tuple(document["keys"]), int(document.get("batch_size", 256)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a batch manifest ({type(exc).__name__}: {exc}); it needs input_bucket, "
                             "input_prefix, output_bucket, output_prefix and keys") from None
        if manifest.batch_size < 1:
            raise ValueError(f"batch_size {manifest.batch_size}: at least 1")
        outside = [key for key in manifest.keys if not key.startswith(manifest.input_prefix)]
        if outside:
            raise ValueError(f"{len(outside)} key(s) outside the input prefix {manifest.input_prefix!r}, e.g. "
                             f"{outside[0]!r}")
        return manifest

    def as_json(self) -> str:
        return json.dumps({"input_bucket": self.input_bucket, "input_prefix": self.input_prefix,
                           "output_bucket": self.output_bucket, "output_prefix": self.output_prefix,
                           "batch_size": self.batch_size, "keys": list(self.keys)})

    @property
    def failure_prefix(self) -> str:
        return f"{self.output_prefix}{BATCH_FAILURES_FOLDER}"

    def inference_id(self, key: str) -> str:
        return inference_id(self.input_prefix, key)


def variables_of(namespace: type) -> dict[str, str]:
    """Attribute -> variable name of a ServerVariable/SyncVariable-like class."""
    return {key: value for key, value in vars(namespace).items() if key.isupper()}


# --- the model store ------------------------------------------------------------------------------------------------
# One layout in S3 (`<endpoint>/` in the environment's model bucket) and on EFS (the models mount):
#   <version>/model.onnx, <version>/metadata.json   one complete version (name, version, inputs, outputs, sha256)
#   LIVE                                            the version to serve, one line
# Writers put a version's files before LIVE names it. Readers serve the version LIVE names, else the newest complete
# version. A name starting with "." is an in-flight copy and never a version.

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
BASELINE_FILE = "baseline.json"
"""A version's monitoring baseline (python -m pipeline.monitor baseline), beside its files in the model bucket; the
model sync leaves it there (servers do not need it), the monitor reads it."""
LIVE_POINTER = "LIVE"


def version_key(version: str) -> tuple[int, int, str]:
    """Order of versions: numbers sort as numbers and after names; names sort as text."""
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


def is_version_name(name: str) -> bool:
    return bool(name) and not name.startswith(".") and "/" not in name and name != LIVE_POINTER


def live_version(pointer: str | None, complete: Iterable[str]) -> str | None:
    """The version that should be live: the one LIVE names, else the newest complete one (None when there is
    none). Callers decide what a LIVE naming an incomplete version means for them."""
    named = (pointer or "").strip()
    if named:
        return named
    ordered = sorted(complete, key=version_key)
    return ordered[-1] if ordered else None


def version_object_key(prefix: str, version: str, file_name: str) -> str:
    return f"{prefix}{version}/{file_name}"


def live_object_key(prefix: str) -> str:
    return f"{prefix}{LIVE_POINTER}"


def local_complete_versions(models_dir: Path) -> list[str]:
    """Version folders on a volume holding both files, oldest first. Hidden folders (in-flight copies) are not
    versions."""
    if not models_dir.is_dir():
        return []
    found = [entry.name for entry in models_dir.iterdir()
             if entry.is_dir() and is_version_name(entry.name)
             and (entry / METADATA_FILE).is_file() and (entry / MODEL_FILE).is_file()]
    return sorted(found, key=version_key)


def local_live_version(models_dir: Path) -> str | None:
    pointer = models_dir / LIVE_POINTER
    named = pointer.read_text() if pointer.is_file() else None
    return live_version(named, local_complete_versions(models_dir))


@dataclass(frozen=True)
class StoredVersion:
    version: str
    metadata: dict[str, Any]
    model_key: str


@dataclass(frozen=True)
class RemoteStore:
    """One endpoint's model store in S3, as read by `read_remote_store`."""

    versions: dict[str, StoredVersion]
    """Complete versions (metadata readable, model object present), by name."""
    pointer: str | None
    """What LIVE says, if it exists."""

    @property
    def ordered(self) -> list[str]:
        return sorted(self.versions, key=version_key)

    @property
    def live(self) -> str | None:
        return live_version(self.pointer, self.versions)


def read_remote_store(s3: Any, bucket: str, prefix: str) -> RemoteStore:
    """List the store under `prefix` with an S3 client (boto3's, passed in: this module imports no SDK)."""
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(entry["Key"] for entry in page.get("Contents", []))
    versions: dict[str, StoredVersion] = {}
    for key in sorted(keys):
        parts = key[len(prefix):].split("/")
        if len(parts) != 2 or parts[1] != METADATA_FILE or not is_version_name(parts[0]):
            continue
        version = parts[0]
        metadata = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        model_key = version_object_key(prefix, version, str(metadata.get("file", MODEL_FILE)))
        if model_key in keys:
            versions[version] = StoredVersion(version, metadata, model_key)
    pointer = None
    if live_object_key(prefix) in keys:
        pointer = s3.get_object(Bucket=bucket, Key=live_object_key(prefix))["Body"].read().decode().strip() or None
    return RemoteStore(versions, pointer)


# --- variants and captured requests -----------------------------------------------------------------------------------
# Each variant of an endpoint is its own service; its server captures into its own folder on the endpoint's data
# volume, and the export task copies complete files to S3 in SageMaker Data Capture's layout:
#   EFS: <capture dir>/<endpoint>/<variant>/yyyy/mm/dd/hh/<task>-<pid>-<start>-<n>.jsonl
#   S3:  <prefix><endpoint>/<variant>/yyyy/mm/dd/hh/<task>-<pid>-<start>-<n>.jsonl
# A server writes a file under a hidden name (`.<name>.open`) and renames it to `<name>` once it will never write
# to it again (its hour is over, or the server stops): the export takes only such sealed files, and every name is
# used once, so an export repeated after a crash writes the same object again and nothing replaces an exported one.

DEFAULT_VARIANT = "main"
"""The variant an endpoint without `variants` runs: it follows LIVE."""
CAPTURE_HOUR_FORMAT = "%Y/%m/%d/%H"


def capture_hours(since: datetime, until: datetime) -> list[str]:
    """The hour folders (`yyyy/mm/dd/hh`) a time range touches, in order: what the export wrote them under."""
    hour = since.replace(minute=0, second=0, microsecond=0)
    found = []
    while hour < until:
        found.append(hour.strftime(CAPTURE_HOUR_FORMAT))
        hour += timedelta(hours=1)
    return found
CAPTURE_SUFFIX = ".jsonl"
OPEN_CAPTURE_SUFFIX = ".open"


def capture_folder(capture_dir: Path, endpoint: str, variant: str) -> Path:
    """A variant's captures on the data volume; hour folders below it."""
    return capture_dir / endpoint / variant


def open_capture_name(sealed_name: str) -> str:
    """The name a capture file has while its server may still write to it."""
    return f".{sealed_name}{OPEN_CAPTURE_SUFFIX}"


def sealed_capture_name(open_name: str) -> str:
    return open_name.removeprefix(".").removesuffix(OPEN_CAPTURE_SUFFIX)


def is_sealed_capture(name: str) -> bool:
    return name.endswith(CAPTURE_SUFFIX) and not name.startswith(".")


def capture_object_key(prefix: str, endpoint: str, variant: str, hour_path: str, file_name: str) -> str:
    """Where an exported capture file goes (SageMaker Data Capture's layout under the prefix)."""
    return f"{prefix}{endpoint}/{variant}/{hour_path}/{file_name}"


# --- API keys ---------------------------------------------------------------------------------------------------------
# An endpoint with `auth.type: api_key` keeps its key set in Secrets Manager as salted SHA-256 digests, never the keys:
#   {"version": 1, "keys": [{"id": "3f2a9c1b", "salt": <hex>, "sha256": <hex>, "last4": "x9Qz", "name": ...,
#                            "created": <ISO 8601>}]}
# `python -m pipeline.keys` writes it; the server reads it (ECS `secrets` at start, then the secret itself every
# refresh interval). A key is `ek_<id>_<secret>`: the id finds the digest to compare, so a check costs one hash
# whatever the number of keys. Keys are 256-bit random, so one salted SHA-256 is enough (a slow password hash guards
# guessable secrets, and would cost every request).

API_KEY_PREFIX = "ek"
API_KEY_ID_LENGTH = 8
KEY_SET_VERSION = 1


@dataclass(frozen=True)
class StoredApiKey:
    key_id: str
    salt: str
    digest: str
    last4: str
    name: str = ""
    created: str = ""

    def to_json(self) -> dict[str, str]:
        return {"id": self.key_id, "salt": self.salt, "sha256": self.digest, "last4": self.last4, "name": self.name,
                "created": self.created}


def new_api_key() -> str:
    """A fresh key: `ek_<8 hex>_<43 URL-safe characters>`."""
    return f"{API_KEY_PREFIX}_{secrets.token_hex(API_KEY_ID_LENGTH // 2)}_{secrets.token_urlsafe(32)}"


_API_KEY = re.compile(rf"{API_KEY_PREFIX}_([0-9a-f]{{{API_KEY_ID_LENGTH}}})_.+", re.DOTALL)


def api_key_id(key: str) -> str | None:
    """The id inside a key, or None when `key` does not have the key format."""
    match = _API_KEY.fullmatch(key)
    return match.group(1) if match else None


def api_key_digest(salt: str, key: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + key.encode()).hexdigest()


def stored_api_key(key: str, name: str = "", created: str = "") -> StoredApiKey:
    """What the key set keeps of `key`: its id, a fresh salt and the digest, its last four characters."""
    key_id = api_key_id(key)
    if key_id is None:
        raise ValueError(f"not an API key of this project (expected "
                         f"{API_KEY_PREFIX}_<{API_KEY_ID_LENGTH} hex characters>_<secret>)")
    salt = secrets.token_hex(16)
    return StoredApiKey(key_id, salt, api_key_digest(salt, key), key[-4:], name, created)


def key_set_document(keys: Iterable[StoredApiKey]) -> str:
    return json.dumps({"version": KEY_SET_VERSION, "keys": [key.to_json() for key in keys]}, sort_keys=True)


def read_key_set(text: str) -> dict[str, StoredApiKey]:
    """Key id -> stored key; raises ValueError saying what is wrong (never quoting a digest or salt)."""
    try:
        document = json.loads(text)
        if document.get("version") != KEY_SET_VERSION:
            raise ValueError(f"key set version {document.get('version')!r}, expected {KEY_SET_VERSION}")
        keys = {}
        for entry in document["keys"]:
            key = StoredApiKey(str(entry["id"]), str(entry["salt"]), str(entry["sha256"]), str(entry["last4"]),
                               str(entry.get("name", "")), str(entry.get("created", "")))
            bytes.fromhex(key.salt)
            keys[key.key_id] = key
        return keys
    except (AttributeError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a key set document ({type(exc).__name__})") from None
