"""The rehearsal's own world: a copy of the repository (so synth output, state files and Terraform folders never
touch the checkout), the emulated account's process, and the environment every step runs with (the rehearsal's
`terraform` and `docker` first on PATH, AWS pointed at the emulated account)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.rehearsal import terraform
from tests.support.repository_copy import copy_repository, free_port

REGION = "eu-west-1"


@dataclass
class Workspace:
    root: Path
    """Everything of this run: `repo/` (the copy), `bin/`, Terraform's configuration and plugin cache, logs."""
    endpoint: str = ""
    env: dict[str, str] = field(default_factory=dict)
    emulator: subprocess.Popen | None = None
    provider_version: str = ""

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def authorization_log(self) -> Path:
        """Every authorization decision of the emulated account, one JSON line each."""
        return self.root / "authorization.jsonl"

    @property
    def dropped_log(self) -> Path:
        return self.root / "dropped-attributes.log"

    def prepare(self) -> None:
        if subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False).returncode != 0:
            raise terraform.SetupMissing("the rehearsal starts each task in its own mount namespace (read-only "
                                         "mounts, as ECS gives them): run it as root, e.g. in a container, or with "
                                         "CAP_SYS_ADMIN (`unshare --mount true` fails here)")
        mirror, self.provider_version = terraform.find_mirror(os.environ.get(terraform.MIRROR_SETTING))
        real_terraform = terraform.find_terraform()
        copy_repository(self.repo)
        bin_dir = self.root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        for tool, command in (("terraform", "tests.rehearsal.terraform"), ("docker", "tests.rehearsal.docker"),
                              ("curl", "tests.rehearsal.downloads curl"),
                              ("install", "tests.rehearsal.downloads install")):
            script = bin_dir / tool
            script.write_text(f'#!/bin/sh\nPYTHONPATH="{self.repo}" exec "{python}" -m {command} "$@"\n')
            script.chmod(0o755)
        (self.root / "plugin-cache").mkdir(exist_ok=True)
        cli_config = self.root / "terraform.rc"
        cli_config.write_text(terraform.cli_configuration(mirror, self.root / "plugin-cache"))
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "CI": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "20",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
            terraform.ENDPOINT_VARIABLE: self.endpoint,
            terraform.REAL_TERRAFORM_VARIABLE: real_terraform,
            terraform.VERSION_VARIABLE: self.provider_version,
            terraform.DROPS_VARIABLE: str(self.dropped_log),
            terraform.MIRROR_PATH_VARIABLE: str(mirror),
            "REHEARSAL_PLUGIN_CACHE": str(self.root / "plugin-cache"),
            "REHEARSAL_CODEBUILD_ROOT": str(self.root / "codebuild"),
            "PYTHONPATH": str(self.repo),
        }
        for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            self.env.pop(variable, None)
        self.env[terraform.SCHEMA_VARIABLE] = str(terraform.provider_schema(
            real_terraform, self.provider_version, self.root / "provider-schema", self.env))
        self.start_emulator(port)

    def start_emulator(self, port: int) -> None:
        log = open(self.root / "emulated-aws.log", "w")  # noqa: SIM115 - open for the process's lifetime
        environment = {**self.env, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
                       "REHEARSAL_AUTHORIZATION_LOG": str(self.authorization_log)}
        self.emulator = subprocess.Popen([sys.executable, "-m", "tests.rehearsal.emulated_aws", "--port", str(port)],
                                         cwd=self.repo, env=environment, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.emulator.poll() is not None:
                raise RuntimeError(f"the emulated account exited: {(self.root / 'emulated-aws.log').read_text()}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/_rehearsal/ready", timeout=2).read()  # noqa: S310
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the emulated account did not answer within 60 s")

    def stop(self) -> None:
        if self.emulator is not None and self.emulator.poll() is None:
            self.emulator.terminate()
            self.emulator.wait(timeout=10)

    def dropped_attributes(self) -> list[str]:
        if not self.dropped_log.exists():
            return []
        return sorted(set(self.dropped_log.read_text().splitlines()))
