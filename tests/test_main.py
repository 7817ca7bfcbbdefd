"""`python main.py` on a bad configuration: exit 2, one line per problem, no traceback, no output written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import PROJECT_ROOT


def run_main(config: Path, outdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_CONFIG": str(config), "CDKTF_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, "main.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_bad_configuration_exits_2_with_one_line_per_problem(tmp_path: Path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "project: mlops\nregion: eu-west-1\nenvironments:\n  staging:\n    vpc_cidr: 10.10.0.0/16\n"
        "endpoints:\n  a:\n    cpu: 256\n    memory_mib: 8192\n  b:\n    container_port: 0\n")
    outdir = tmp_path / "cdktf.out"
    completed = run_main(config, outdir)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.splitlines() == [
        "configuration error (1 problem(s)):",
        f"  {config}: endpoints.b.container_port: must be a TCP port between 1 and 65535 (got 0)",
    ]
    assert not outdir.exists()


def test_yaml_error_is_reported_with_its_line(tmp_path: Path):
    config = tmp_path / "broken.yaml"
    config.write_text("project: mlops\n  region: eu-west-1\n")
    completed = run_main(config, tmp_path / "cdktf.out")
    assert completed.returncode == 2
    assert f"{config}: line 2, column 9: invalid YAML: mapping values are not allowed here" in completed.stderr
    assert not (tmp_path / "cdktf.out").exists()
