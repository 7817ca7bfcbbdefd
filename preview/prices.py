"""AWS list prices from a dated snapshot (`preview/data/aws-list-prices.json`, copied with its provenance from a set
assembled offline: every row names the offer file or page it traces to, where it was read and when).

A price is looked up by region and dimension (`fargate_vcpu_hour`, `alb_hour`, ...): the row marked preferred for
that region, else the one AWS states once for every region (`global`). A dimension the snapshot lacks for a region is
None, never another region's price: the estimate shows it as not priced. Units are kept as the source gives them;
`per` says how many units a row's price is for (`1M read request units` is per 1,000,000).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parent / "data" / "aws-list-prices.json"
STALE_AFTER_DAYS = 180
GLOBAL = "global"

_PER = re.compile(r"^(1M|[0-9][0-9,]*)\s")


class PricesError(Exception):
    """The snapshot cannot price what was asked: says what it covers."""


@dataclass(frozen=True)
class Price:
    dimension: str
    region: str
    usd: float
    """For `per` units."""
    unit: str
    per: float
    source: str
    source_date: str
    quality: str

    @property
    def usd_per_unit(self) -> float:
        return self.usd / self.per


def units_per_price(unit: str) -> float:
    """How many units one price is for: `1M standard queries` 1e6, `10,000 requests` 1e4, `GB-month` 1."""
    match = _PER.match(unit)
    if match is None:
        return 1.0
    count = match.group(1)
    return 1e6 if count == "1M" else float(count.replace(",", ""))


@dataclass(frozen=True)
class PriceBook:
    snapshot_date: str
    rows: tuple[dict[str, Any], ...]
    path: Path = SNAPSHOT

    @classmethod
    def read(cls, path: Path = SNAPSHOT) -> PriceBook:
        try:
            document = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PricesError(f"cannot read the price snapshot {path}: {exc}") from None
        return cls(str(document["snapshot_date"]), tuple(document["prices"]), path)

    @property
    def regions(self) -> list[str]:
        return sorted({row["region"] for row in self.rows if row["region"] != GLOBAL})

    def check_region(self, region: str) -> None:
        if region not in self.regions:
            raise PricesError(f"the price snapshot of {self.snapshot_date} has no prices for region {region}; it "
                              f"covers {', '.join(self.regions)} (refresh it with `make cost PRICES=live`)")

    def price(self, region: str, dimension: str) -> Price | None:
        for wanted in (region, GLOBAL):
            for row in self.rows:
                if row["region"] == wanted and row["dimension"] == dimension and row.get("preferred"):
                    return Price(dimension, wanted, float(row["usd"]), str(row["unit"]), units_per_price(row["unit"]),
                                 str(row.get("source", "")), str(row.get("source_date", "")),
                                 str(row.get("quality", "")))
        return None

    def age_days(self, today: date) -> int:
        return (today - date.fromisoformat(self.snapshot_date)).days

    def staleness_warning(self, today: date) -> str | None:
        age = self.age_days(today)
        if age > STALE_AFTER_DAYS:
            return (f"warning: the price snapshot is from {self.snapshot_date}, {age} days old (over "
                    f"{STALE_AFTER_DAYS}): AWS prices may have changed; refresh it with `make cost PRICES=live`")
        return None
