"""The `docker` the rehearsal puts on PATH (this machine has the client, no engine): `build` records what would be
built, `tag` remembers names, `push` puts an image into the emulated ECR the way `docker push` leaves one there (the
layers uploaded, then the manifest under the tag). The image's config carries the Dockerfile's entry point,
environment, working directory and user; its layer holds the files the Dockerfile's final stage copies from the
build context, `.dockerignore` applied (tests/support/build_context.py). `login` accepts the password on stdin."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from tests.rehearsal.tasks import REQUIREMENTS_LABEL
from tests.support.build_context import image_files
from tests.support.container_image import read_dockerfile
from tests.support.paths import PROJECT_ROOT
from tests.support.registry import BlobStore, layer_of

TAGS_FILE_VARIABLE = "REHEARSAL_DOCKER_TAGS"


def _tags() -> dict[str, str]:
    path = Path(os.environ[TAGS_FILE_VARIABLE])
    return json.loads(path.read_text()) if path.exists() else {}


def _save(tags: dict[str, str]) -> None:
    Path(os.environ[TAGS_FILE_VARIABLE]).write_text(json.dumps(tags))


def _image_layer(dockerfile: Path) -> bytes:
    """The files the final stage copies from the build context, `.dockerignore` applied."""
    return layer_of(image_files(PROJECT_ROOT, dockerfile))


def _requirements_of(dockerfile: Path) -> str:
    """The requirements file the Dockerfile's build stage copies in (and installs into /venv)."""
    found = re.findall(r"^COPY\s+(\S+requirements\.txt)\s", dockerfile.read_text(), flags=re.MULTILINE)
    if len(found) != 1:
        raise SystemExit(f"[docker stand-in] {dockerfile}: expected one requirements file copied in, found {found}")
    return found[0]


def main(arguments: list[str]) -> int:
    command, rest = arguments[0], arguments[1:]
    if command == "build":
        tag = rest[rest.index("-t") + 1]
        dockerfile = rest[rest.index("-f") + 1] if "-f" in rest else "Dockerfile"
        _save({**_tags(), tag: dockerfile})
        print(f"[docker stand-in] {tag}: image from {dockerfile} (entry point, environment, copied files)")
    elif command == "login":
        sys.stdin.read()
        print("Login Succeeded")
    elif command == "tag":
        tags = _tags()
        _save({**tags, rest[1]: tags[rest[0]]})
    elif command == "push":
        import boto3

        reference = rest[0]
        registry_and_repository, tag = reference.rsplit(":", 1)
        repository = registry_and_repository.split("/", 1)[1]
        dockerfile = PROJECT_ROOT / _tags()[reference]
        image = read_dockerfile(dockerfile)
        config = {"architecture": "amd64", "os": "linux", "config": {
            "Entrypoint": list(image.entrypoint), "Cmd": list(image.cmd) or None,
            "Env": [f"{key}={value}" for key, value in image.env.items()], "WorkingDir": image.workdir,
            "User": image.user, "Labels": {REQUIREMENTS_LABEL: _requirements_of(dockerfile)}}}
        BlobStore().push(boto3.client("ecr"), repository, tag, config, [_image_layer(dockerfile)])
        print(f"[docker stand-in] pushed {reference}")
    else:
        print(f"[docker stand-in] {command} is not emulated", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
