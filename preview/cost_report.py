"""`make cost`: what each environment, and the pipeline, costs a month, from the synthesized stacks.

    python -m preview.cost_report [FORMAT=json] [BASE=<config file or git ref>] [PRICES=live] [NAME=value ...]

NAME=value overrides an assumption (preview/cost_assumptions.py, e.g. REQUESTS_PER_MONTH=5000000); the make target
passes its command line's variables through. BASE= estimates another configuration (a file, or the configuration at
a git ref, synthesized with the current code) and prints the difference per line and per environment. PRICES=live
refreshes the price snapshot from the AWS Price List Query API first (credentials needed). Prices: the dated
snapshot preview/data/aws-list-prices.json; a snapshot older than 180 days prints a warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from configuration import ConfigError, load_config
from preview.cost import Bill, Estimate, Line, estimate, region_of
from preview.cost_assumptions import AssumptionError, Assumptions
from preview.prices import SNAPSHOT, PriceBook, PricesError
from preview.synthesized import SynthesisMissing, Synthesized

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OPTIONS = ("FORMAT", "BASE", "PRICES", "SYNTH_DIR")
PASSED_THROUGH = ("MLOPS_CONFIG", "IMAGE_TAG")
"""make's command-line variables that are not the estimate's: they reach it through the environment."""


class CostError(Exception):
    pass


def _money(value: float | None) -> str:
    return "not priced" if value is None else f"{value:,.2f}"


def table(result: Estimate) -> list[str]:
    lines = [f"Monthly cost in USD, {result.region}, list prices of {result.book.snapshot_date} "
             "(no taxes, free tiers, Savings Plans or support)"]
    for bill in [*result.environments.values(), result.pipeline]:
        lines += _bill_table(bill)
    lines.append("")
    lines.append("assumptions (override with NAME=value): " + ", ".join(
        f"{name.upper()}={value:.10g}" if value != int(value) else f"{name.upper()}={int(value)}"
        for name, value in result.assumptions.as_dict().items()))
    return lines


WHAT_WIDTH = 64


def _bill_table(bill: Bill) -> list[str]:
    out = ["", f"{bill.name}:", f"  {'what':<{WHAT_WIDTH}} {'per month':>12} {'unit':<18} {'unit USD':>9} {'USD':>8}"]
    for line in sorted(bill.lines, key=lambda item: -(item.monthly_usd or 0)):
        unit_usd = "-" if line.unit_usd is None else f"{line.unit_usd:.4g}"
        out.append(f"  {_clip(line.what):<{WHAT_WIDTH}} {line.quantity:>12,.2f} {line.unit[:18]:<18} {unit_usd:>9} "
                   f"{'-' if line.monthly_usd is None else f'{line.monthly_usd:,.2f}':>8}")
        if line.unit_usd is None:
            out.append(f"    {line.note}")
    missing = len(bill.not_priced)
    out.append(f"  {'total ' + bill.name:<{WHAT_WIDTH}} {'':>12} {'':<18} {'':>9} {bill.monthly_usd:>8,.2f}"
               + (f"  + {missing} line(s) not priced" if missing else ""))
    return out


def _clip(text: str) -> str:
    return text if len(text) <= WHAT_WIDTH else text[:WHAT_WIDTH - 1] + "~"


def difference(base: Estimate, result: Estimate) -> list[str]:
    """Per line and per environment: what `result` costs more (or less) than `base`."""
    out = [f"Difference in monthly USD: this configuration minus BASE ({result.region}, prices of "
           f"{result.book.snapshot_date})"]
    names = list(dict.fromkeys([*base.environments, *result.environments]))
    pairs = [(name, base.environments.get(name), result.environments.get(name)) for name in names]
    pairs.append(("pipeline", base.pipeline, result.pipeline))
    for name, before, after in pairs:
        old = {line.key: line for line in (before.lines if before else [])}
        new = {line.key: line for line in (after.lines if after else [])}
        changed = []
        for key in dict.fromkeys([*old, *new]):
            change = _line_change(old.get(key), new.get(key))
            if change is not None:
                changed.append(change)
        total = (after.monthly_usd if after else 0.0) - (before.monthly_usd if before else 0.0)
        out.append("")
        out.append(f"{name}: {total:+,.2f} (from {_money(before.monthly_usd if before else 0.0)} to "
                   f"{_money(after.monthly_usd if after else 0.0)})")
        out += [f"  {text}" for _, text in sorted(changed, key=lambda item: -abs(item[0]))] or ["  no change"]
    return out


def _line_change(before: Line | None, after: Line | None) -> tuple[float, str] | None:
    old_usd = before.monthly_usd or 0.0 if before else 0.0
    new_usd = after.monthly_usd or 0.0 if after else 0.0
    if before and after and abs(before.quantity - after.quantity) < 1e-9:
        return None
    line = after or before
    assert line is not None
    delta = new_usd - old_usd
    old_quantity = before.quantity if before else 0.0
    new_quantity = after.quantity if after else 0.0
    return delta, (f"{delta:+10,.2f}  {line.what}: {old_quantity:,.2f} -> {new_quantity:,.2f} {line.unit}"
                   + (" (not priced)" if line.unit_usd is None else ""))


def _estimate_of(synth_dir: Path, config_path: str | None, book: PriceBook, assumptions: Assumptions) -> Estimate:
    """`config_path` None: the configuration `make synth` used (`$MLOPS_CONFIG`, else config/mlops.yaml)."""
    config = load_config(config_path)
    return estimate(Synthesized.read(synth_dir), config.project, list(config.environments), book, assumptions)


def synthesize_base(base: str, work: Path) -> tuple[Path, str]:
    """(synth dir, config file) of BASE: a configuration file, or the configuration file at a git ref."""
    config_file = Path(base)
    if not config_file.is_file():
        current = os.environ.get("MLOPS_CONFIG", "config/mlops.yaml")
        shown = subprocess.run(["git", "show", f"{base}:{current}"], cwd=PROJECT_ROOT, capture_output=True,
                               text=True, check=False)
        if shown.returncode != 0:
            raise CostError(f"BASE={base}: neither a configuration file nor a git ref holding {current} "
                            f"({shown.stderr.strip().splitlines()[-1] if shown.stderr.strip() else 'not found'})")
        config_file = work / "base-config.yaml"
        config_file.write_text(shown.stdout)
    out = work / "cdktf.out"
    completed = subprocess.run([sys.executable, "main.py"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                               env={**os.environ, "MLOPS_CONFIG": str(config_file.resolve()),
                                    "CDKTF_OUTDIR": str(out), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"},
                               check=False)
    if completed.returncode != 0:
        raise CostError(f"BASE={base} does not synthesize:\n{completed.stderr.strip()}")
    return out, str(config_file.resolve())


def run(arguments: dict[str, str], out: Any = sys.stdout, today: date | None = None) -> int:
    options = {name: arguments.pop(name) for name in OPTIONS if name in arguments}
    assumptions = Assumptions().with_overrides(arguments)
    output_format = options.get("FORMAT", "table")
    if output_format not in ("table", "json"):
        raise CostError(f"FORMAT={output_format}: choose table (the default) or json")
    synth_dir = Path(options.get("SYNTH_DIR", PROJECT_ROOT / "cdktf.out"))
    if options.get("PRICES") == "live":
        from preview.price_refresh import refresh

        print(refresh(SNAPSHOT, region_of(Synthesized.read(synth_dir))), file=sys.stderr)
    elif options.get("PRICES"):
        raise CostError(f"PRICES={options['PRICES']}: the only choice is live (refresh the snapshot from AWS)")
    book = PriceBook.read()
    warning = book.staleness_warning(today or date.today())
    if warning:
        print(warning, file=sys.stderr)
    result = _estimate_of(synth_dir, None, book, assumptions)
    if "BASE" in options:
        with tempfile.TemporaryDirectory(prefix="mlops-cost-base-") as work:
            base_dir, base_config = synthesize_base(options["BASE"], Path(work))
            base = _estimate_of(base_dir, base_config, book, assumptions)
        if output_format == "json":
            print(json.dumps({"base": base.as_dict(), "estimate": result.as_dict()}, indent=1), file=out)
        else:
            print("\n".join(difference(base, result)), file=out)
        return 0
    print(json.dumps(result.as_dict(), indent=1) if output_format == "json" else "\n".join(table(result)), file=out)
    return 0


def parse(argv: list[str]) -> dict[str, str]:
    arguments = {}
    for item in argv:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise CostError(f"{item!r}: give NAME=value (e.g. REQUESTS_PER_MONTH=5000000, FORMAT=json, BASE=main)")
        if name.upper() not in PASSED_THROUGH:
            arguments[name.upper()] = value
    return arguments


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse(sys.argv[1:] if argv is None else argv))
    except (CostError, AssumptionError, PricesError, SynthesisMissing, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"configuration error: {'; '.join(error.lines())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
