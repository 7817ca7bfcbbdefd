"""The serving image tag, passed into synth by the pipeline (`IMAGE_TAG`, the commit SHA) or `latest` by default."""

from __future__ import annotations

import os
import re

from configuration.errors import ConfigError, Problem

IMAGE_TAG_ENV_VAR = "IMAGE_TAG"
DEFAULT_IMAGE_TAG = "latest"
# Docker's tag grammar.
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def image_tag_from_env() -> str:
    tag = os.environ.get(IMAGE_TAG_ENV_VAR) or DEFAULT_IMAGE_TAG
    if not TAG_RE.match(tag):
        message = "is not a valid image tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        raise ConfigError(IMAGE_TAG_ENV_VAR, [Problem("", tag, message)])
    return tag
