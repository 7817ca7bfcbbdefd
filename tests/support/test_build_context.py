"""The build context as Docker reads it: `.dockerignore` rules held to docker-py's own implementation (the Docker SDK
for Python, installed with checkov) on the repository's real context, and the image's files from the Dockerfile."""

from __future__ import annotations

import pytest

from tests.support.build_context import ignored, image_files, read_ignore
from tests.support.paths import PROJECT_ROOT


def test_the_rules_follow_dockers_documented_matching():
    rules = read_ignore(PROJECT_ROOT / ".dockerignore")
    assert ignored("README.md", rules)
    assert not ignored("serving/app.py", rules)
    assert ignored("serving/__pycache__/app.cpython-311.pyc", rules)
    assert ignored("serving/runtime/__pycache__/x.pyc", rules)
    assert ignored("serving/example/train_model.py", rules)
    assert not ignored("serving/example/models/1/model.onnx", rules)
    # the last matching pattern decides; `*` stays within a segment, `**` crosses them
    assert ignored("a/b.txt", [(False, "a"), (True, "a/c.txt")])
    assert not ignored("a/c.txt", [(False, "a"), (True, "a/c.txt")])
    assert not ignored("x/y/z.md", [(False, "*.md")]) and ignored("x/y/z.md", [(False, "**/*.md")])


def test_the_rules_agree_with_docker_py_on_the_repository():
    build = pytest.importorskip("docker.utils.build")
    rules = read_ignore(PROJECT_ROOT / ".dockerignore")
    patterns = [("!" if exception else "") + pattern for exception, pattern in rules]
    theirs = {path for path in build.exclude_paths(str(PROJECT_ROOT), patterns, None)
              if (PROJECT_ROOT / path).is_file()}
    files = [p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "serving").rglob("*") if p.is_file()]
    ours = {path for path in files if not ignored(path, rules)}
    assert ours == {path for path in theirs if path.startswith("serving/")}


def test_the_image_holds_what_the_final_stage_copies_and_nothing_ignored():
    files = image_files(PROJECT_ROOT, PROJECT_ROOT / "serving" / "Dockerfile")
    assert "app/serving/app.py" in files and "app/serving/example/models/1/model.onnx" in files
    assert not any("__pycache__" in name or name.endswith("train_model.py") for name in files)
    assert "app/serving/requirements.txt" in files  # copied with serving/ (the build stage's copy is not in it)
    assert all(name.startswith("app/serving/") for name in files)
