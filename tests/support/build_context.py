"""The files an image holds from its build context: each `COPY` of the Dockerfile's final stage (not `--from`),
after `.dockerignore`, as Docker's documentation defines it:
- one pattern a line, `#` comments, leading and trailing slashes and `./` dropped;
- Go's `filepath.Match` (`*` and `?` within one path segment, `[...]` classes) plus `**` for any number of
  directories; a pattern matches a path or any directory above it;
- `!` makes an exception; the last pattern that matches a path decides.
Used by the rehearsal's `docker` stand-in to build the layer it pushes, so a task runs what the image would hold.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from tests.support.container_image import read_dockerfile


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    parts = []
    index = 0
    while index < len(text):
        if text.startswith("**", index):
            parts.append(".*")
            index += 2
            if text.startswith("/", index):  # `**/` also matches no directory at all
                parts[-1] = "(?:.*/)?"
                index += 1
            continue
        char = text[index]
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[":
            end = text.find("]", index)
            parts.append(text[index:end + 1] if end != -1 else re.escape(char))
            index = end if end != -1 else index
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts))


def read_ignore(path: Path) -> list[tuple[bool, str]]:
    """(is an exception, pattern) for each line of a .dockerignore; none when there is no file."""
    if not path.exists():
        return []
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line[1:].strip() if exception else line
        pattern = pattern.removeprefix("./").strip("/")
        rules.append((exception, pattern))
    return rules


def ignored(relative: str, rules: list[tuple[bool, str]]) -> bool:
    """Whether a context path (relative, `/`-separated) is left out of the build context."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    decision = False
    for exception, pattern in rules:
        if any(_pattern(pattern).fullmatch(candidate) for candidate in candidates):
            decision = not exception
    return decision


def image_files(context: Path, dockerfile: Path) -> dict[str, bytes]:
    """Destination path in the image (without the leading `/`) -> content, for every file the final stage copies
    from the build context."""
    rules = read_ignore(context / ".dockerignore")
    files: dict[str, bytes] = {}
    for source, destination in read_dockerfile(dockerfile).copies:
        origin = context / source
        if origin.is_file():
            paths = [origin]
            target_of = {origin: Path(destination.lstrip("/")) / origin.name if destination.endswith("/")
                         else Path(destination.lstrip("/"))}
        else:
            paths = sorted(p for p in origin.rglob("*") if p.is_file())
            target_of = {p: Path(destination.lstrip("/")) / p.relative_to(origin) for p in paths}
        for path in paths:
            if not ignored(path.relative_to(context).as_posix(), rules):
                files[target_of[path].as_posix()] = path.read_bytes()
    return files
