"""A baseline's data set: a CSV file with a header, or a Parquet file, read as named columns."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataSetError(Exception):
    """A data set that cannot be read, with what to do about it."""


@dataclass(frozen=True)
class DataSet:
    names: list[str]
    columns: list[np.ndarray]
    """One array per column: float64 where every present value is a number (missing ones NaN), else strings
    (missing ones None)."""

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def without(self, dropped: list[str]) -> DataSet:
        unknown = [name for name in dropped if name not in self.names]
        if unknown:
            raise DataSetError(f"--drop {', '.join(unknown)}: no such column; the columns are {', '.join(self.names)}")
        kept = [index for index, name in enumerate(self.names) if name not in dropped]
        return DataSet([self.names[i] for i in kept], [self.columns[i] for i in kept])


_MISSING = {"", "na", "nan", "null", "none"}


def _column(values: list[str | None]) -> np.ndarray:
    present = [value for value in values if value is not None and value.strip().lower() not in _MISSING]
    try:
        [float(value) for value in present]
    except ValueError:
        return np.array([None if value is None or value.strip().lower() in _MISSING else value for value in values],
                        dtype=object)
    return np.array([float(value) if value is not None and value.strip().lower() not in _MISSING else np.nan
                     for value in values], dtype=np.float64)


def read_csv(path: Path) -> DataSet:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise DataSetError(f"{path}: a header and at least one row are needed, the file has {len(rows)} line(s)")
    header, body = rows[0], rows[1:]
    short = [number for number, row in enumerate(body, start=2) if len(row) != len(header)]
    if short:
        raise DataSetError(f"{path}: line {short[0]} has a different number of fields than the header "
                           f"({len(header)}); {len(short)} such line(s)")
    return DataSet(header, [_column([row[index] for row in body]) for index in range(len(header))])


def read_parquet(path: Path) -> DataSet:
    import pyarrow.parquet as parquet

    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow's errors name the problem; we add the file
        raise DataSetError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from exc
    columns = []
    for name in table.column_names:
        values = table.column(name).to_pylist()
        columns.append(_column([None if value is None else str(value) for value in values]))
    return DataSet(list(table.column_names), columns)


def read_data_set(path: Path) -> DataSet:
    if not path.is_file():
        raise DataSetError(f"--data {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".parquet", ".pq"):
        return read_parquet(path)
    raise DataSetError(f"--data {path}: a .csv (with a header) or a .parquet file is expected")
