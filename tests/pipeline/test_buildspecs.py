"""Buildspecs stay thin and safe: every phase aborts on failure, Node 22, Terraform pinned and checksum-verified,
and every command of substance is one of our entry points or make targets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.paths import PROJECT_ROOT

BUILDSPECS = sorted((PROJECT_ROOT / "pipeline" / "buildspecs").glob("*.yml"))


def test_the_four_buildspecs_exist():
    assert [path.name for path in BUILDSPECS] == ["build.yml", "deploy.yml", "smoke.yml", "test.yml"]


@pytest.mark.parametrize("path", BUILDSPECS, ids=lambda p: p.name)
def test_every_phase_aborts_on_failure_and_runs_under_strict_bash(path: Path):
    spec = yaml.safe_load(path.read_text())
    assert spec["version"] == 0.2 and spec["env"]["shell"] == "bash"
    for name, phase in spec["phases"].items():
        assert phase["on-failure"] == "ABORT", f"{path.name}: phase {name}"
        assert phase["commands"][0] == "set -euo pipefail", f"{path.name}: phase {name}"
    runtimes = spec["phases"]["install"]["runtime-versions"]
    assert runtimes == {"python": 3.11, "nodejs": 22}
    assert spec["cache"]["paths"], "pip/npm caches"


@pytest.mark.parametrize("path", BUILDSPECS, ids=lambda p: p.name)
def test_commands_are_make_targets_or_our_entry_points(path: Path):
    spec = yaml.safe_load(path.read_text())
    allowed_prefixes = ("set -euo pipefail", "make ", ".venv/bin/python -m pipeline.", "curl ", "unzip ", "echo ",
                        "install ", "terraform version", "mkdir ")
    for phase in spec["phases"].values():
        for command in phase["commands"]:
            assert command.startswith(allowed_prefixes), f"{path.name}: {command!r} belongs in a Python entry point"


def test_deploy_installs_the_pinned_terraform_and_checks_its_sha256():
    spec = yaml.safe_load((PROJECT_ROOT / "pipeline" / "buildspecs" / "deploy.yml").read_text())
    commands = spec["phases"]["install"]["commands"]
    download = next(c for c in commands if c.startswith("curl "))
    assert "${TERRAFORM_VERSION}" in download and download.index("curl") < commands.index(
        next(c for c in commands if "sha256sum --check" in c))
    check = next(c for c in commands if "sha256sum --check" in c)
    assert "${TERRAFORM_SHA256}" in check
    install = next(c for c in commands if c.startswith("install "))
    assert commands.index(check) < commands.index(install), "verify before installing"
    variables = spec["env"]["variables"]
    assert variables["TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE"] == "true"
    assert (variables["CI"], variables["TF_IN_AUTOMATION"], variables["CHECKPOINT_DISABLE"]) == ("1", "1", "1")
    assert spec["phases"]["build"]["commands"][-1] == '.venv/bin/python -m pipeline.deploy --env "$DEPLOY_ENV"'


def test_test_stage_runs_the_readme_command():
    spec = yaml.safe_load((PROJECT_ROOT / "pipeline" / "buildspecs" / "test.yml").read_text())
    assert "make test" in spec["phases"]["build"]["commands"]
    assert "make test" in (PROJECT_ROOT / "README.md").read_text()
