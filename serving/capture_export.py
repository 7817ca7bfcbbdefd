"""Copy one endpoint's sealed capture files from its data volume to S3, in SageMaker Data Capture's layout.

Runs as a short-lived ECS task on a schedule (`python -m serving.capture_export`, the serving image, the endpoint's
data access point mounted read-write), and in tests against moto and a local folder. For every variant folder
under `<capture dir>/<endpoint>/`, every sealed file (serving/contract.py: its server will never write to it again)
is uploaded to `<prefix><endpoint>/<variant>/yyyy/mm/dd/hh/<file name>` with its MD5 checked by S3, then removed
from the volume; emptied hour folders go too.

Each record reaches S3 exactly once: files are named once, so a run that stopped between an upload and the removal
uploads the same bytes to the same key next time. A file a server left open because it died (never sealed) is
taken once it has been untouched for `orphan_after_seconds`, without a torn last line. Nothing is removed that was
not uploaded; a failed upload leaves the file for the next run and fails the task.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.contract import (
    CAPTURE_SUFFIX,
    DATA_MOUNT,
    EXPORT_VARIABLE_PREFIX,
    OPEN_CAPTURE_SUFFIX,
    capture_object_key,
    is_sealed_capture,
    sealed_capture_name,
)
from serving.settings import SettingsError, read_settings

log = logging.getLogger("serving.capture_export")
CONTENT_TYPE = "application/jsonlines"


class ExportSettings(BaseSettings):
    """The export task's settings, from `EXPORT_*` variables (the endpoint stack sets them; serving/contract.py)."""

    model_config = SettingsConfigDict(env_prefix=EXPORT_VARIABLE_PREFIX, extra="forbid", frozen=True)

    bucket: str
    """The environment's capture bucket."""
    prefix: str = ""
    """Key prefix in it, before `<endpoint>/<variant>/...` (empty or ending in `/`)."""
    endpoint: str
    """The endpoint whose captures this task exports: `<capture_dir>/<endpoint>/`."""
    capture_dir: Path = Path(DATA_MOUNT)
    orphan_after_seconds: float = Field(default=7200.0, ge=60)
    """An unsealed file untouched this long belongs to a server that died: export what it holds."""
    log_level: str = "INFO"


@dataclass
class ExportResult:
    exported: list[str] = field(default_factory=list)
    """The S3 keys written."""
    records: int = 0
    orphans: int = 0
    failed: list[str] = field(default_factory=list)
    """Files left on the volume for the next run, with the reason."""


def _upload(s3: Any, bucket: str, key: str, body: bytes) -> None:
    digest = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - S3's integrity check, not security
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=digest, ContentType=CONTENT_TYPE)


def _whole_lines(body: bytes) -> bytes:
    """A file cut short by a dying writer: its complete records only."""
    end = body.rfind(b"\n")
    return body[:end + 1] if end >= 0 else b""


def _candidates(variant_dir: Path, now: float, orphan_after_seconds: float) -> list[tuple[Path, str, bool]]:
    """(file, the name it is exported under, is an orphan) for every file ready to go, oldest hour first."""
    found = []
    for path in sorted(variant_dir.glob("*/*/*/*/*")):
        if not path.is_file():
            continue
        if is_sealed_capture(path.name):
            found.append((path, path.name, False))
        elif (path.name.startswith(".") and path.name.endswith(CAPTURE_SUFFIX + OPEN_CAPTURE_SUFFIX)
              and now - path.stat().st_mtime >= orphan_after_seconds):
            found.append((path, sealed_capture_name(path.name), True))
    return found


def export(s3: Any, bucket: str, prefix: str, capture_dir: Path, endpoint: str,
           orphan_after_seconds: float = 7200.0, now: float | None = None) -> ExportResult:
    """Upload and remove every sealed capture file of the endpoint (and every orphan)."""
    result = ExportResult()
    now = time.time() if now is None else now
    root = capture_dir / endpoint
    if not root.is_dir():
        return result
    for variant_dir in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")):
        for path, name, orphan in _candidates(variant_dir, now, orphan_after_seconds):
            hour_path = "/".join(path.relative_to(variant_dir).parts[:4])
            key = capture_object_key(prefix, endpoint, variant_dir.name, hour_path, name)
            try:
                body = path.read_bytes()
                if orphan:
                    body = _whole_lines(body)
                if body:
                    _upload(s3, bucket, key, body)
                    result.exported.append(key)
                    result.records += body.count(b"\n")
                    result.orphans += orphan
                path.unlink()
            except Exception as exc:  # one file's trouble (S3 or NFS) must not stop the others
                result.failed.append(f"{path}: {type(exc).__name__}: {exc}")
                log.error("capture file not exported; it stays for the next run",
                          extra={"fields": {"file": str(path), "error": str(exc)}})
        _remove_empty_folders(variant_dir)
    return result


def _remove_empty_folders(variant_dir: Path) -> None:
    for depth in (4, 3, 2, 1):  # hh, dd, mm, yyyy
        for folder in sorted(variant_dir.glob("/".join(["*"] * depth))):
            try:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            except OSError:
                pass  # a server created a file meanwhile: the folder is in use again


def main() -> int:
    """The ECS task's entry point."""
    import boto3

    from serving.logs import configure_logging

    try:
        settings = read_settings(ExportSettings, os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    result = export(boto3.client("s3"), settings.bucket, settings.prefix, settings.capture_dir, settings.endpoint,
                    settings.orphan_after_seconds)
    log.info("capture export done", extra={"fields": {
        "files": len(result.exported), "records": result.records, "orphans": result.orphans,
        "failed": len(result.failed), "bucket": settings.bucket}})
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
