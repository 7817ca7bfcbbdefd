"""ECS tasks as local processes, started the way Docker and ECS would start the container.

The image: what the task definition's `image` names, pulled from the emulated registry as the ECS agent pulls it
(the manifest under that tag, its config and layers: the files Build pushed), unpacked under `images/<digest>`;
and a virtual environment with exactly the packages the image's build stage installs (`serving/requirements.txt`
under `image/venv`, or the monitor's under `image/venv-...`, hashes required), built from a system Python as the
image's base would be. A task's container
runs:
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

from tests.support.container_image import ImageConfig, effective_command, effective_environment

IMAGE_ROOTS = ("/app", "/venv")  # where the serving image keeps its files: the app, and the virtual environment
_addresses = itertools.count(10)


def system_python() -> str:
    """A Python 3.11 outside /root (the container user must be able to run it), as the image's base has."""
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        if Path(candidate).exists():
            return candidate
    return sys.executable


REQUIREMENTS_LABEL = "rehearsal.requirements"
"""The image config label the docker stand-in sets: which requirements file the image's build stage installs into
/venv (a real image carries that virtual environment in a layer; the rehearsal builds it once per file)."""
SERVING_REQUIREMENTS = "serving/requirements.txt"


class PackageSets:
    """The virtual environments images' build stages make, one per requirements file (`serving/requirements.txt`,
    `pipeline/monitor/requirements.txt`, hashes required), each built on first use from a system Python as the
    image's base would, and kept between runs while its requirements are unchanged (about a minute each)."""

    def __init__(self, repo: Path, root: Path, say: Any):
        self.repo, self.root, self.say = repo, root, say

    def __call__(self, requirements_path: str) -> Path:
        requirements = (self.repo / requirements_path).read_text()
        # The server's keeps its old place (image/venv), which stray-process cleanups look for.
        name = "venv" if requirements_path == SERVING_REQUIREMENTS else "venv-" + requirements_path.replace("/", "-")
        venv = self.root / name
        stamp = venv / ".requirements"
        if not stamp.exists() or stamp.read_text() != requirements:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([system_python(), "-m", "venv", str(venv)], check=True)
            completed = subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
                 "-r", str(self.repo / requirements_path)], capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise RuntimeError(f"installing {requirements_path} failed: {completed.stderr[-2000:]}")
            stamp.write_text(requirements)
            self.say(f"image: virtual environment from {requirements_path} with {system_python()}")
        _readable(self.root)
        return venv


def build_packages(repo: Path, root: Path, say: Any) -> PackageSets:
    """The package sets, the server's built now (every run needs it)."""
    packages = PackageSets(repo, root, say)
    packages(SERVING_REQUIREMENTS)
    return packages


def _readable(root: Path) -> None:
    """The container's user (not root) reads everything of the image."""
    for path in (root, *root.rglob("*")):
        path.chmod(path.stat().st_mode | 0o055 if path.is_dir() else path.stat().st_mode | 0o044)


@dataclass
class Image:
    """An image as pulled from the registry: its layers' files under `root`, its config, and the build stage's
    virtual environment (`/venv`, from the pinned requirements)."""

    root: Path
    config: ImageConfig
    venv: Path
    reference: str = ""

    @classmethod
    def pull(cls, ecr: Any, reference: str, images: Path, venv_for: Any) -> Image:
        """What the ECS agent pulls for `<registry>/<repository>:<tag>`: the manifest under that tag, then its config
        and layer blobs (through GetDownloadUrlForLayer), the layers unpacked in order. Raises LookupError when the
        repository holds no such tag (ECS: CannotPullContainerError)."""
        import gzip
        import io
        import json
        import tarfile
        import urllib.request

        repository, _, tag = reference.split("/", 1)[1].rpartition(":")
        found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
        if not found.get("images"):
            raise LookupError(f"CannotPullContainerError: {reference}: not found in the registry")
        manifest = json.loads(found["images"][0]["imageManifest"])

        def blob(digest: str) -> bytes:
            url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest)["downloadUrl"]
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the emulated registry
                return response.read()

        import hashlib

        root = images / hashlib.sha256(found["images"][0]["imageManifest"].encode()).hexdigest()[:16]
        if not root.exists():
            staging = root.with_suffix(".partial")
            shutil.rmtree(staging, ignore_errors=True)
            for layer in manifest["layers"]:
                with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as archive:
                    archive.extractall(staging, filter="data")
            (staging / "config.json").write_bytes(blob(manifest["config"]["digest"]))
            _readable(staging)
            staging.rename(root)
        config = json.loads((root / "config.json").read_text())["config"]
        env = dict(item.split("=", 1) for item in config.get("Env") or [])
        venv = venv_for((config.get("Labels") or {}).get(REQUIREMENTS_LABEL, SERVING_REQUIREMENTS))
        return cls(root, ImageConfig(entrypoint=tuple(config.get("Entrypoint") or ()),
                                     cmd=tuple(config.get("Cmd") or ()), env=env,
                                     workdir=config.get("WorkingDir") or "/", user=config.get("User") or "root"),
                   venv, reference)

    def host_root(self, container_path: str) -> Path:
        return self.venv if container_path == "/venv" else self.root / container_path.lstrip("/")


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


def mapped_loopback_in(argument: str, addresses: dict[str, str]) -> str:
    for loopback, address in addresses.items():
        argument = argument.replace(f"//{loopback}:", f"//{address}:")
    return argument


class Launcher:
    def __init__(self, root: Path, efs_root: Path, aws_env: dict[str, str]):
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
               access_points: dict[str, dict[str, Any]], image: Image) -> list[Mount]:
        volumes = {volume["name"]: volume for volume in task_definition.get("volumes", [])}
        mounts = [Mount(path, image.host_root(path), True) for path in IMAGE_ROOTS]
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
              credentials: dict[str, str] | None, image: Image, overrides: dict[str, str] | None = None) -> LocalTask:
        """`credentials`: the task role's session (ECS hands them to the container), None for a task without a
        role (its SDK calls then have no credentials, as on ECS)."""
        import time

        (container,) = task_definition["containerDefinitions"]
        task_id = f"{task_definition['family']}-{next(self.counter)}"
        folder = self.root / task_id
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        mounts = self.mounts(task_definition, container, folder / "volumes", access_points, image)
        address = f"127.0.0.{next(_addresses)}"

        def host_path(value: str) -> str:
            for mount in sorted(mounts, key=lambda m: -len(m.container_path)):
                if value == mount.container_path or value.startswith(mount.container_path + "/"):
                    return str(mount.host_path) + value[len(mount.container_path):]
            return value

        environment = effective_environment(image.config, container, overrides)
        environment = {key: ":".join(host_path(part) for part in value.split(":")) if key == "PATH"
                       else host_path(value) for key, value in environment.items()}
        environment.update({**self.aws_env, "HOSTNAME": task_id, "SERVING_HOST": address})
        if credentials is not None:
            environment.update({"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                                "AWS_SESSION_TOKEN": credentials["SessionToken"]})
        command = effective_command(image.config, container)
        argv = [host_path(argument) for argument in command]
        executable = shutil.which(argv[0], path=environment["PATH"]) or argv[0]
        user = image.config.user.split(":")
        uid, gid = user[0], user[1] if len(user) > 1 else user[0]
        binds = []
        for mount in mounts:
            if mount.read_only or (container.get("readonlyRootFilesystem") and mount.container_path in IMAGE_ROOTS):
                path = shlex.quote(str(mount.host_path))
                binds.append(f"mount --bind {path} {path} && mount -o remount,bind,ro {path} {path}")
        script = " && ".join([*binds, f"exec setpriv --reuid={uid} --regid={gid} --clear-groups -- "
                              + shlex.join([executable, *argv[1:]])])
        mapped_loopback = {"127.0.0.1": address, "localhost": address}
        run = {"environment": environment, "cwd": host_path(image.config.workdir), "uid": uid, "gid": gid,
               "argv": lambda command: [mapped_loopback_in(host_path(a), mapped_loopback) for a in command]}
        log_path = folder / "container.log"
        log = open(log_path, "w")  # noqa: SIM115 - the process's output, for as long as it runs
        unshare = shutil.which("unshare") or "/usr/bin/unshare"
        process = subprocess.Popen([unshare, "--mount", "--propagation", "private", "sh", "-c", script],
                                   cwd=host_path(image.config.workdir), env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        task = LocalTask(task_id, task_definition["family"], purpose, address, process, log_path, container, command,
                         started_at=time.monotonic())
        task.extra["run"] = run
        return task

    def probe(self, task: LocalTask, command: list[str], timeout: float) -> int:
        """A container health check command (`CMD`, exec form, or `CMD-SHELL`) run as the container would run it:
        its user, environment and working directory, its paths mapped as the task's, and its loopback address
        (`127.0.0.1`, `localhost`) the task's own, as awsvpc gives each task its own. Returns the exit code."""
        run = task.extra["run"]
        kind, rest = command[0], command[1:]
        argv = run["argv"](rest if kind == "CMD" else ["sh", "-c", " ".join(rest)])
        executable = shutil.which(argv[0], path=run["environment"]["PATH"]) or argv[0]
        try:
            return subprocess.run(["setpriv", f"--reuid={run['uid']}", f"--regid={run['gid']}", "--clear-groups",
                                   "--", executable, *argv[1:]], cwd=run["cwd"], env=run["environment"],
                                  capture_output=True, timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            return 124
