"""Stand-ins for what a buildspec's `install` phase fetches or installs on CodeBuild's disposable machine, each
named and checked:
- `curl` (`python -m tests.rehearsal.downloads curl ...`): serves exactly one download, the pinned Terraform release
  zip (`releases.hashicorp.com/terraform/<v>/terraform_<v>_linux_amd64.zip`), zipped from this machine's own
  Terraform CLI when it is that version. The buildspec then checks the executable against its pinned SHA-256 itself,
  so a wrong version or binary fails the build as it would on CodeBuild. Any other URL fails like an unreachable
  host (exit 6).
- `install` (`python -m tests.rehearsal.downloads install ...`): a destination under /usr/local/bin (CodeBuild's
  machine; here the host's) goes to the rehearsal's own folder instead; everything else is the real `install`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

TERRAFORM_RELEASE = re.compile(r"^https://releases\.hashicorp\.com/terraform/([0-9.]+)/terraform_\1_linux_amd64\.zip$")
INSTALL_ROOT_VARIABLE = "REHEARSAL_CODEBUILD_ROOT"
REAL_TERRAFORM_VARIABLE = "REHEARSAL_TERRAFORM"


def _terraform_version(executable: str) -> str:
    output = subprocess.run([executable, "version"], capture_output=True, text=True, check=False,
                            env={**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"}).stdout
    match = re.search(r"Terraform v([0-9.]+)", output)
    return match.group(1) if match else ""


def curl(arguments: list[str]) -> int:
    url = next((a for a in arguments if a.startswith(("http://", "https://"))), "")
    output = arguments[arguments.index("-o") + 1] if "-o" in arguments else ""
    match = TERRAFORM_RELEASE.match(url)
    if not match or not output:
        print(f"curl: (6) Could not resolve host: the rehearsal serves only the pinned Terraform release ({url})",
              file=sys.stderr)
        return 6
    executable = os.environ[REAL_TERRAFORM_VARIABLE]
    have = _terraform_version(executable)
    if have != match.group(1):
        print(f"curl: (22) The requested URL returned error: 404 (this machine has Terraform {have}, the buildspec "
              f"asks for {match.group(1)})", file=sys.stderr)
        return 22
    with zipfile.ZipFile(output, "w") as archive:
        info = zipfile.ZipInfo("terraform")
        info.external_attr = 0o755 << 16
        archive.writestr(info, Path(executable).read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    print(f"[curl stand-in] {url}: this machine's Terraform {have}, zipped (the buildspec checks its SHA-256)",
          file=sys.stderr)
    return 0


def install(arguments: list[str]) -> int:
    root = os.environ.get(INSTALL_ROOT_VARIABLE)
    destination = arguments[-1] if arguments else ""
    if root and destination.startswith("/usr/local/bin/"):
        target = Path(root) / destination.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        arguments = [*arguments[:-1], str(target)]
        print(f"[install stand-in] {destination} -> {target} (the host's /usr/local/bin is not CodeBuild's)",
              file=sys.stderr)
    real = shutil.which("install", path="/usr/bin:/bin") or "/usr/bin/install"
    return subprocess.run([real, *arguments], check=False).returncode


def main(arguments: list[str]) -> int:
    tool, rest = arguments[0], arguments[1:]
    return {"curl": curl, "install": install}[tool](rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
