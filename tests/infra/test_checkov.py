"""checkov on every synthesized stack: zero findings that lack a reviewed reason in checkov_allowlist.yaml."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ALLOWLIST = Path(__file__).with_name("checkov_allowlist.yaml")
CHECKOV = Path(sys.executable).with_name("checkov")


def findings(stack_dir: Path) -> set[tuple[str, str]]:
    """(check id, resource address) of every failed check in one stack, scanned offline."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    completed = subprocess.run(
        [str(CHECKOV), "-d", str(stack_dir), "--framework", "terraform_json", "--skip-download", "--quiet",
         "--output", "json"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert completed.returncode in (0, 1), f"checkov failed to run on {stack_dir}:\n{completed.stderr[-3000:]}"
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports, f"checkov scanned nothing in {stack_dir}"
    found = set()
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, f"checkov could not parse {stack_dir}"
        assert report["summary"]["passed"] > 0, f"checkov checked nothing in {stack_dir}"
        found |= {(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]}
    return found


@pytest.fixture(scope="module")
def allowlist() -> list[dict]:
    entries = yaml.safe_load(ALLOWLIST.read_text())
    for entry in entries:
        assert {"check", "resource", "reason"} <= set(entry) <= {"check", "resource", "reason", "stacks"}, entry
        assert len(entry["reason"].strip()) > 20, f"{entry['check']} {entry['resource']}: write the reason out"
    return entries


def covers(entry: dict, stack: str, check: str, resource: str) -> bool:
    return (entry["check"] == check and entry["resource"] == resource
            and any(fnmatch.fnmatchcase(stack, pattern) for pattern in entry.get("stacks", ["*"])))


@pytest.fixture(scope="module")
def all_findings(default_synth, options_synth) -> dict[str, set[tuple[str, str]]]:
    stacks = {name: default_synth.stack_dir(name) for name in default_synth.stacks}
    stacks |= {name: options_synth.stack_dir(name) for name in options_synth.stacks}
    # One checkov process per stack, two at a time (one per core): each is single-threaded.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = dict(zip(stacks, pool.map(findings, stacks.values()), strict=True))
    return results


def test_every_finding_is_allowlisted(all_findings, allowlist):
    unreviewed = sorted(f"{stack}: {check} {resource}" for stack, found in all_findings.items()
                        for check, resource in found
                        if not any(covers(entry, stack, check, resource) for entry in allowlist))
    assert not unreviewed, "checkov findings without a reviewed reason (fix them or add them, with the reason, to " \
                           f"{ALLOWLIST.name}):\n" + "\n".join(unreviewed)


def test_every_allowlist_entry_still_matches(all_findings, allowlist):
    stale = sorted(f"{entry['check']} {entry['resource']}" for entry in allowlist
                   if not any(covers(entry, stack, check, resource)
                              for stack, found in all_findings.items() for check, resource in found))
    assert not stale, f"entries in {ALLOWLIST.name} that match no finding any more (remove them):\n" + "\n".join(stale)
