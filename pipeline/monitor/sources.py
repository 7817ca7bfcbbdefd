"""Where the monitor reads from: a local folder or S3 (`s3://bucket/prefix`), for captures, ground truth and
baselines. Locally every sealed capture file under the folder is read (the window, when given, filters records);
in S3 only the objects of the window's hour folders (`<prefix><variant>/yyyy/mm/dd/hh/`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from serving.contract import CAPTURE_HOUR_FORMAT, capture_hours, is_sealed_capture

GROUND_TRUTH_SUFFIX = ".jsonl"


class SourceError(Exception):
    """A folder or S3 location that cannot be read, and what to check."""


@dataclass(frozen=True)
class Window:
    start: datetime | None
    end: datetime | None

    def as_dict(self) -> dict[str, str | None]:
        def text(moment: datetime | None) -> str | None:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
        return {"start": text(self.start), "end": text(self.end)}

    def hours(self) -> list[str]:
        """The hour folders (`yyyy/mm/dd/hh`) the window touches."""
        if self.start is None or self.end is None:
            raise SourceError("reading captures from S3 needs a window: --window START/END or --window 1h")
        return capture_hours(self.start, self.end)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_window(text: str | None, now: datetime) -> Window:
    """`START/END` (ISO 8601, UTC unless it says otherwise) or `<N>h`: the last N full hours before `now`."""
    if not text:
        return Window(None, None)
    try:
        if text.endswith("h") and text[:-1].isdigit():
            end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            return Window(end - timedelta(hours=int(text[:-1])), end)
        start, _, end = text.partition("/")
        window = Window(_moment(start), _moment(end))
    except ValueError:
        window = None
    if window is None or window.start >= window.end:
        raise SourceError(f"--window {text}: expected START/END (ISO 8601, START before END, e.g. "
                          "2026-12-05T10:00Z/2026-12-05T11:00Z) or the last N full hours (e.g. 1h)")
    return window


def split_s3(location: str) -> tuple[str, str]:
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    if not bucket:
        raise SourceError(f"{location}: expected s3://BUCKET/PREFIX")
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _s3_keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]
    except Exception as exc:  # botocore's errors name the refusal; we add where
        raise SourceError(f"s3://{bucket}/{prefix}: cannot list ({type(exc).__name__}: {exc})") from exc


def _s3_folders(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """The `<prefix><name>/` folders directly under a prefix."""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for folder in page.get("CommonPrefixes", []):
                yield folder["Prefix"]
    except Exception as exc:  # botocore's errors name the refusal; we add where
        raise SourceError(f"s3://{bucket}/{prefix}: cannot list ({type(exc).__name__}: {exc})") from exc


def s3_read(s3: Any, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise SourceError(f"s3://{bucket}/{key}: cannot read ({type(exc).__name__}: {exc})") from exc


def capture_files(location: str, window: Window, s3: Any = None) -> Iterator[bytes]:
    """The content of every capture file to read: sealed files under a folder, or the window's objects in S3
    (`<prefix><variant>/yyyy/mm/dd/hh/<file>`)."""
    if location.startswith("s3://"):
        bucket, prefix = split_s3(location)
        hours = window.hours()
        # The variants first (one level down), then only the window's hour folders: a run lists what it reads,
        # however many hours the bucket holds.
        for variant in _s3_folders(s3, bucket, prefix):
            for hour in hours:
                for key in _s3_keys(s3, bucket, f"{variant}{hour}/"):
                    if "/" not in key[len(variant) + len(hour) + 1:] and is_sealed_capture(key.rsplit("/", 1)[-1]):
                        yield s3_read(s3, bucket, key)
        return
    folder = Path(location)
    if not folder.is_dir():
        raise SourceError(f"--captures {location}: no such folder (give a capture folder, e.g. a server's "
                          "SERVING_CAPTURE_DIR, or s3://BUCKET/ENDPOINT/)")
    for path in sorted(folder.rglob("*")):
        if path.is_file() and is_sealed_capture(path.name):
            yield path.read_bytes()


def ground_truth_files(location: str, window: Window, s3: Any = None) -> Iterator[bytes]:
    """Ground truth JSON Lines: every `*.jsonl` under a folder, or in S3 those uploaded from the window's start on
    (`<prefix>yyyy/mm/dd/hh/*.jsonl`: labels arrive after the answers they label)."""
    if location.startswith("s3://"):
        bucket, prefix = split_s3(location)
        first = window.start.strftime(CAPTURE_HOUR_FORMAT) if window.start else ""
        for key in _s3_keys(s3, bucket, prefix):
            hour = "/".join(key[len(prefix):].split("/")[:4])
            if key.endswith(GROUND_TRUTH_SUFFIX) and hour >= first:
                yield s3_read(s3, bucket, key)
        return
    folder = Path(location)
    if not folder.is_dir():
        raise SourceError(f"--ground-truth {location}: no such folder")
    for path in sorted(folder.rglob(f"*{GROUND_TRUTH_SUFFIX}")):
        yield path.read_bytes()


def read_text(location: str, s3: Any = None) -> str:
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return s3_read(s3, bucket, key).decode()
    path = Path(location)
    if not path.is_file():
        raise SourceError(f"{location}: no such file")
    return path.read_text()
