"""A copy of the repository to run programs in, so that what they write (synth output, state files, Terraform
folders) never touches the checkout; and a free loopback port for servers the tests start."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.paths import PROJECT_ROOT

LINKED = (".venv", "node_modules", ".tools")  # installed by `make install`; shared, never written by the rehearsal


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_repository(target: Path) -> None:
    """The tracked files as they are in the working tree (uncommitted changes included), plus links to the
    installed environments."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=PROJECT_ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = PROJECT_ROOT / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read_bytes())
            status = source.stat()
            destination.chmod(status.st_mode)
            # Same times as the checkout: `make install` in the copy (a buildspec's install phase) then finds the
            # linked environments up to date instead of reinstalling them through the links.
            os.utime(destination, ns=(status.st_atime_ns, status.st_mtime_ns))
    for name in LINKED:
        (target / name).symlink_to(PROJECT_ROOT / name)
