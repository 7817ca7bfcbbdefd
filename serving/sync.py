"""Copy one endpoint's model versions from the model bucket into its EFS models location, safely.

S3 layout (written by `python -m pipeline.models promote`): `<prefix><version>/model.onnx`,
`<prefix><version>/metadata.json` and `<prefix>LIVE`, the version to serve. This runs as a short-lived ECS task
(`python -m serving.sync`, the serving image, the models access point mounted read-write) on every change of LIVE
and on a schedule, and in tests against moto and a local folder.

Guarantees: a version is downloaded into a hidden temporary folder on the target volume, its checksum verified
against its metadata, then renamed into place in one step, so the server never sees half a version. The local LIVE
pointer moves last, after the version it names is complete. Runs are idempotent and may overlap (each writes its own
temporary folder; a rename that finds the version already there discards its copy). Old versions beyond the
configured count are pruned, never the live one, the one before it or a version a variant is pinned to (those are
copied too). Any failure leaves the live version as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.contract import (
    LIVE_POINTER,
    METADATA_FILE,
    MODEL_FILE,
    MODELS_MOUNT,
    SYNC_VARIABLE_PREFIX,
    StoredVersion,
    live_object_key,
    local_complete_versions,
    read_remote_store,
    version_key,
)
from serving.settings import SettingsError, read_settings

log = logging.getLogger("serving.sync")
STALE_TEMPORARY_SECONDS = 3600  # temporary folders of crashed runs older than this are removed


class SyncError(Exception):
    """The sync cannot make the remote live version live here; the message says why."""


@dataclass
class SyncResult:
    live: str | None = None
    previous: str | None = None
    downloaded: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


def previous_version(versions: list[str], live: str) -> str | None:
    ordered = sorted(versions, key=version_key)
    index = ordered.index(live)
    return ordered[index - 1] if index > 0 else None


def _local_sha(folder: Path) -> str | None:
    try:
        return json.loads((folder / METADATA_FILE).read_text()).get("sha256")
    except (OSError, ValueError):
        return None


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _download(s3: Any, bucket: str, remote: StoredVersion, models_dir: Path) -> bool:
    """Place one version; True when this run placed it, False when it was already there."""
    target = models_dir / remote.version
    expected = remote.metadata.get("sha256")
    if target.is_dir() and _local_sha(target) == expected and (target / MODEL_FILE).is_file():
        return False
    temporary = models_dir / f".{remote.version}.{uuid.uuid4().hex}.partial"
    temporary.mkdir(parents=True)
    try:
        digest = hashlib.sha256()
        model_path = temporary / remote.model_key.rsplit("/", 1)[1]
        with model_path.open("wb") as handle:
            for chunk in s3.get_object(Bucket=bucket, Key=remote.model_key)["Body"].iter_chunks(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != expected:
            raise SyncError(f"version {remote.version}: the model file's sha256 is {digest.hexdigest()}, its "
                            f"metadata says {expected}; the upload is corrupt or incomplete")
        (temporary / METADATA_FILE).write_text(json.dumps(remote.metadata, indent=2, sort_keys=True) + "\n")
        _fsync_directory(temporary)
        if target.exists():
            if _local_sha(target) == expected:  # an overlapping run placed it meanwhile: keep theirs
                shutil.rmtree(temporary, ignore_errors=True)
                return False
            _remove(target, models_dir)  # a stale or different copy: move it aside, then replace it
        try:
            temporary.rename(target)
        except OSError:
            if _local_sha(target) == expected:  # an overlapping run placed it first
                shutil.rmtree(temporary, ignore_errors=True)
                return False
            raise
        _fsync_directory(models_dir)
        return True
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _remove(folder: Path, models_dir: Path) -> None:
    """Rename out of sight first, so a half-deleted version never looks complete."""
    doomed = models_dir / f".{folder.name}.{uuid.uuid4().hex}.deleting"
    try:
        folder.rename(doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _point_live(models_dir: Path, version: str) -> None:
    pointer = models_dir / LIVE_POINTER
    if pointer.is_file() and pointer.read_text().strip() == version:
        return
    temporary = models_dir / f".{LIVE_POINTER}.{uuid.uuid4().hex}"
    temporary.write_text(version + "\n")
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, pointer)
    _fsync_directory(models_dir)


def _clean_stale(models_dir: Path) -> None:
    """Remove what crashed runs left behind. An overlapping run may rename or remove an entry meanwhile."""
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    for entry in models_dir.iterdir():
        if not entry.name.startswith("."):
            continue
        try:
            if entry.stat().st_mtime >= cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


def sync(s3: Any, bucket: str, prefix: str, models_dir: Path, keep_versions: int = 5,
         pinned_versions: tuple[str, ...] = ()) -> SyncResult:
    """Make the remote live version (and the one before it) complete here, move LIVE, copy the pinned versions,
    prune. Raises SyncError; a pinned version that is not in the bucket fails the run after LIVE has moved."""
    if keep_versions < 2:
        raise SyncError("keep_versions must be at least 2: the live version and the one before it")
    models_dir.mkdir(parents=True, exist_ok=True)
    store = read_remote_store(s3, bucket, prefix)
    versions, live = store.versions, store.live
    if live is None:
        raise SyncError(f"s3://{bucket}/{prefix} holds no complete model version")
    if live not in versions:
        raise SyncError(f"s3://{bucket}/{live_object_key(prefix)} names version {live}, which has no complete upload")
    result = SyncResult(live=live, previous=previous_version(list(versions), live))
    if _download(s3, bucket, versions[live], models_dir):
        result.downloaded.append(live)
    _point_live(models_dir, live)
    if result.previous is not None:
        try:
            if _download(s3, bucket, versions[result.previous], models_dir):
                result.downloaded.append(result.previous)
        except SyncError as exc:  # a broken older version must not fail the sync of a good live one
            log.warning("previous version not copied", extra={"fields": {"reason": str(exc)}})
    missing_pins = [version for version in pinned_versions if version not in versions]
    for version in pinned_versions:
        if version in versions and _download(s3, bucket, versions[version], models_dir):
            result.downloaded.append(version)
    protected = {live, result.previous, *pinned_versions}
    local = [v for v in local_complete_versions(models_dir) if v not in protected]
    while len(local) + len(protected - {None}) > keep_versions and local:
        oldest = local.pop(0)
        _remove(models_dir / oldest, models_dir)
        result.pruned.append(oldest)
    _clean_stale(models_dir)
    if missing_pins:
        raise SyncError(f"pinned version(s) {', '.join(missing_pins)} have no complete upload under s3://{bucket}/"
                        f"{prefix}; the variants pinned to them cannot start (live {live} is in place)")
    return result


class SyncSettings(BaseSettings):
    """The sync task's settings, from `SYNC_*` variables (the endpoint stack sets them; see serving/contract.py)."""

    model_config = SettingsConfigDict(env_prefix=SYNC_VARIABLE_PREFIX, extra="forbid", frozen=True)

    bucket: str
    """The environment's model bucket."""
    prefix: str
    """The endpoint's folder in it, e.g. `a/`."""
    models_dir: Path = Path(MODELS_MOUNT)
    """Where versions are placed: the endpoint's models access point, mounted read-write."""
    keep_versions: int = Field(default=5, ge=2)
    """Versions kept on the volume; never the live one, the one before it or a pinned one."""
    pinned_versions: str = ""
    """Versions the endpoint's variants are pinned to, comma-separated: copied and never pruned."""
    log_level: str = "INFO"


def main() -> int:
    """The ECS task's entry point."""
    import boto3

    from serving.logs import configure_logging

    try:
        settings = read_settings(SyncSettings, os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        pins = tuple(version.strip() for version in settings.pinned_versions.split(",") if version.strip())
        result = sync(boto3.client("s3"), settings.bucket, settings.prefix, settings.models_dir,
                      settings.keep_versions, pins)
    except SyncError as exc:
        log.error("model sync failed; the live version is unchanged", extra={"fields": {"reason": str(exc)}})
        return 1
    log.info("model sync done", extra={"fields": {"live": result.live, "previous": result.previous,
                                                   "downloaded": result.downloaded, "pruned": result.pruned}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
