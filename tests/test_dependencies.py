"""The lock file's categories agree with each other, and the container's requirements are the lock's."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.paths import PROJECT_ROOT

LOCK = json.loads((PROJECT_ROOT / "Pipfile.lock").read_text())


def test_no_package_is_locked_at_two_versions_across_categories():
    """The development environment installs every category into one virtual environment."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for category in ("default", "serving", "monitor", "develop"):
        for name, entry in LOCK[category].items():
            if name in seen and seen[name][1] != entry["version"]:
                clashes.append(f"{name}: {seen[name][0]} {seen[name][1]}, {category} {entry['version']}")
            seen.setdefault(name, (category, entry["version"]))
    assert not clashes, clashes


@pytest.mark.parametrize("requirements, category", [("serving/requirements.txt", "serving"),
                                                     ("pipeline/monitor/requirements.txt", "monitor")])
def test_container_requirements_are_their_lock_category(requirements, category):
    text = (PROJECT_ROOT / requirements).read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[a-z,]+\])?==([^;\s]+)", text, flags=re.MULTILINE))
    locked = {name: entry["version"].lstrip("=") for name, entry in LOCK[category].items()}
    assert pinned == locked, f"run `make {requirements}` after changing the Pipfile"
    assert "--hash=sha256:" in text
