"""What a container started from `serving/Dockerfile` runs, by Docker's and ECS's rules.

Shared by the contract tests (every task definition starts the program it is meant to) and the rehearsal (which
starts tasks as local processes). The rules, from Docker's and ECS's documentation:
- exec form: the process is ENTRYPOINT + CMD;
- a task definition's `command` replaces the image's CMD only;
- its `entryPoint` replaces the image's ENTRYPOINT, and then the image's CMD is not used: only the task's `command`;
- the environment is the image's ENV, overridden by the task definition's `environment`, then by RunTask overrides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

from tests.support.paths import PROJECT_ROOT

SERVING_DOCKERFILE = PROJECT_ROOT / "serving" / "Dockerfile"
# What the base image (python:3.11-slim) sets before the Dockerfile's own ENV extends it.
BASE_IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class ImageConfig:
    """The final stage of a Dockerfile, as far as starting a container goes."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    copies: tuple[tuple[str, str], ...] = ()
    """(source in the build context, destination in the image) of each COPY from the context (not --from)."""


def _exec_form(value: str, instruction: str) -> tuple[str, ...]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(f"{instruction} {value!r} is in shell form; only the exec form (a JSON array) is "
                         "allowed, so SIGTERM reaches the program") from None
    return tuple(parsed)


def read_dockerfile(path: Path = SERVING_DOCKERFILE) -> ImageConfig:
    parser = DockerfileParser(path=str(path), env_replace=True, parent_env=BASE_IMAGE_ENV)
    final_stage: list[dict[str, Any]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            final_stage = []
        final_stage.append(instruction)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir, user, copies = "/", "root", []
    for instruction in final_stage:
        name, value = instruction["instruction"], instruction["value"]
        if name == "ENTRYPOINT":
            entrypoint, cmd = _exec_form(value, name), ()  # a new ENTRYPOINT resets CMD, as in Docker
        elif name == "CMD":
            cmd = _exec_form(value, name)
        elif name == "WORKDIR":
            workdir = value if value.startswith("/") else f"{workdir.rstrip('/')}/{value}"
        elif name == "USER":
            user = value
        elif name == "COPY" and not value.startswith("--from"):
            *sources, destination = value.split()
            copies.extend((source, destination) for source in sources)
    return ImageConfig(entrypoint=entrypoint, cmd=cmd, env={**BASE_IMAGE_ENV, **parser.envs}, workdir=workdir,
                       user=user,
                       copies=tuple(copies))


def effective_command(image: ImageConfig, container: dict[str, Any]) -> list[str]:
    """The argv a container definition runs on this image."""
    if container.get("entryPoint"):
        return [*container["entryPoint"], *container.get("command", [])]
    return [*image.entrypoint, *(container.get("command") or image.cmd)]


def effective_environment(image: ImageConfig, container: dict[str, Any],
                          overrides: dict[str, str] | None = None) -> dict[str, str]:
    environment = dict(image.env)
    environment.update({item["name"]: item["value"] for item in container.get("environment", [])})
    environment.update(overrides or {})
    return environment
