"""ECS tasks as local processes, started the way Docker and ECS would start the container.

The image: the files `serving/Dockerfile` copies (and nothing else) under `image/app`, and a virtual environment
with exactly the packages the image installs (`serving/requirements.txt`, hashes required) under `image/venv`,
built from a system Python as the image's base would be. A task's container runs:
- the command Docker's rules give (image ENTRYPOINT/CMD with the task definition's entryPoint/command);
- with the image's ENV under the task definition's environment (and a RunTask's overrides);
- as the image's USER, in its WORKDIR, in its own mount namespace where each EFS access point is a local folder,
  read-only where the mount point says so, and the image's own files read-only (readonlyRootFilesystem);
- on its own loopback address, as awsvpc gives each task its own network interface (the one thing the emulation adds:
  the server is told to bind that address, `SERVING_HOST`, since all tasks share this machine's network).
Container paths in the command, the environment and the working directory are mapped to those local folders.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.container_image import ImageConfig, effective_command, effective_environment, read_dockerfile

IMAGE_ROOTS = ("/app", "/venv")  # where the serving image keeps its files: the app, and the virtual environment
_addresses = itertools.count(10)


def system_python() -> str:
    """A Python 3.11 outside /root (the container user must be able to run it), as the image's base has."""
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        if Path(candidate).exists():
            return candidate
    return sys.executable


@dataclass
class Image:
    root: Path
    config: ImageConfig

    @classmethod
    def build(cls, repo: Path, root: Path, say: Any) -> Image:
        """The image's files and packages; the virtual environment is kept between runs when its requirements are
        unchanged (installing them takes about a minute)."""
        config = read_dockerfile(repo / "serving" / "Dockerfile")
        app = root / "app"
        shutil.rmtree(app, ignore_errors=True)
        for source, destination in config.copies:
            target = root / destination.lstrip("/")
            origin = repo / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
        requirements = (repo / "serving" / "requirements.txt").read_text()
        venv = root / "venv"
        stamp = venv / ".requirements"
        if not stamp.exists() or stamp.read_text() != requirements:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([system_python(), "-m", "venv", str(venv)], check=True)
            completed = subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
                 "-r", str(repo / "serving" / "requirements.txt")], capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise RuntimeError(f"installing the image's requirements failed: {completed.stderr[-2000:]}")
            stamp.write_text(requirements)
            say(f"image: virtual environment from serving/requirements.txt with {system_python()}")
        for path in (root, *root.rglob("*")):
            path.chmod(path.stat().st_mode | 0o055 if path.is_dir() else path.stat().st_mode | 0o044)
        return cls(root, config)


@dataclass
class Mount:
    container_path: str
    host_path: Path
    read_only: bool


@dataclass
class LocalTask:
    task_id: str
    family: str
    purpose: str
    address: str
    process: subprocess.Popen
    log_path: Path
    container: dict[str, Any]
    command: list[str]
    """The container's command by Docker's rules, as the container sees it."""
    started_at: float = 0.0
    ready_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Launcher:
    def __init__(self, image: Image, root: Path, efs_root: Path, aws_env: dict[str, str]):
        self.image = image
        self.root = root
        self.efs_root = efs_root
        self.aws_env = aws_env
        self.counter = itertools.count(1)

    def access_point_folder(self, file_system_id: str, access_point: dict[str, Any]) -> Path:
        """The access point's root directory on its file system, created as EFS does (owner and permissions from its
        creation info)."""
        root = access_point["RootDirectory"]
        folder = self.efs_root / file_system_id / root["Path"].lstrip("/")
        if not folder.exists():
            folder.mkdir(parents=True)
            info = root.get("CreationInfo")
            if info:
                os.chown(folder, int(info["OwnerUid"]), int(info["OwnerGid"]))
                folder.chmod(int(info["Permissions"], 8))
        return folder

    def mounts(self, task_definition: dict[str, Any], container: dict[str, Any], scratch: Path,
               access_points: dict[str, dict[str, Any]]) -> list[Mount]:
        volumes = {volume["name"]: volume for volume in task_definition.get("volumes", [])}
        mounts = [Mount(path, self.image.root / path.lstrip("/"), True) for path in IMAGE_ROOTS]
        for point in container.get("mountPoints", []):
            volume = volumes[point["sourceVolume"]]
            efs = volume.get("efsVolumeConfiguration")
            if efs is not None:
                access_point = access_points[efs["authorizationConfig"]["accessPointId"]]
                host = self.access_point_folder(efs["fileSystemId"], access_point)
            else:
                host = scratch / volume["name"]
                host.mkdir(parents=True, exist_ok=True)
                host.chmod(0o777)
            mounts.append(Mount(point["containerPath"], host, bool(point.get("readOnly"))))
        return mounts

    def start(self, task_definition: dict[str, Any], access_points: dict[str, dict[str, Any]], purpose: str,
              credentials: dict[str, str] | None, overrides: dict[str, str] | None = None) -> LocalTask:
        """`credentials`: the task role's session (ECS hands them to the container), None for a task without a
        role (its SDK calls then have no credentials, as on ECS)."""
        import time

        (container,) = task_definition["containerDefinitions"]
        task_id = f"{task_definition['family']}-{next(self.counter)}"
        folder = self.root / task_id
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        mounts = self.mounts(task_definition, container, folder / "volumes", access_points)
        address = f"127.0.0.{next(_addresses)}"

        def host_path(value: str) -> str:
            for mount in sorted(mounts, key=lambda m: -len(m.container_path)):
                if value == mount.container_path or value.startswith(mount.container_path + "/"):
                    return str(mount.host_path) + value[len(mount.container_path):]
            return value

        environment = effective_environment(self.image.config, container, overrides)
        environment = {key: ":".join(host_path(part) for part in value.split(":")) if key == "PATH"
                       else host_path(value) for key, value in environment.items()}
        environment.update({**self.aws_env, "HOSTNAME": task_id, "SERVING_HOST": address})
        if credentials is not None:
            environment.update({"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                                "AWS_SESSION_TOKEN": credentials["SessionToken"]})
        command = effective_command(self.image.config, container)
        argv = [host_path(argument) for argument in command]
        executable = shutil.which(argv[0], path=environment["PATH"]) or argv[0]
        user = self.image.config.user.split(":")
        uid, gid = user[0], user[1] if len(user) > 1 else user[0]
        binds = []
        for mount in mounts:
            if mount.read_only or (container.get("readonlyRootFilesystem") and mount.container_path in IMAGE_ROOTS):
                path = shlex.quote(str(mount.host_path))
                binds.append(f"mount --bind {path} {path} && mount -o remount,bind,ro {path} {path}")
        script = " && ".join([*binds, f"exec setpriv --reuid={uid} --regid={gid} --clear-groups -- "
                              + shlex.join([executable, *argv[1:]])])
        log_path = folder / "container.log"
        log = open(log_path, "w")  # noqa: SIM115 - the process's output, for as long as it runs
        unshare = shutil.which("unshare") or "/usr/bin/unshare"
        process = subprocess.Popen([unshare, "--mount", "--propagation", "private", "sh", "-c", script],
                                   cwd=host_path(self.image.config.workdir), env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        return LocalTask(task_id, task_definition["family"], purpose, address, process, log_path, container, command,
                         started_at=time.monotonic())
