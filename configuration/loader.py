"""Read the YAML configuration file into a validated `MlopsConfig`, or fail with every problem at once."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from configuration.errors import ConfigError, Problem
from configuration.model import MlopsConfig
from configuration.rules import check_all

DEFAULT_CONFIG_PATH = Path("config/mlops.yaml")
CONFIG_ENV_VAR = "MLOPS_CONFIG"


def config_path_from_env() -> Path:
    """`$MLOPS_CONFIG` when set, else `config/mlops.yaml`."""
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys: PyYAML would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [Problem("", None, "configuration file not found; create it or point "
                                           f"{CONFIG_ENV_VAR} at an existing file")]) from None
    except OSError as exc:
        raise ConfigError(source, [Problem("", None, f"cannot read the file: {exc.strerror}")]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(source, [Problem(line, None, f"invalid YAML: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [Problem("", None, f"invalid YAML: {exc}")]) from None


def _allowed_keys(location: tuple[Any, ...]) -> str:
    """Allowed keys for the mapping that holds the unknown key at `location`."""
    parent = location[:-1]
    owner: Any = MlopsConfig
    index = 0
    while index < len(parent):
        field = owner.model_fields.get(str(parent[index])) if owner else None
        if field is None:
            return ""
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            index += 1  # skip the user's key (an environment or endpoint name)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        owner = annotation if isinstance(annotation, type) else (args[0] if args else None)
        index += 1
    if isinstance(owner, type) and issubclass(owner, BaseModel):
        return ", ".join(owner.model_fields)
    return ""


def _problem_from_pydantic(error: Any) -> Problem:
    location = tuple(error["loc"])
    path = ".".join(str(part) for part in location)
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(location)
        return Problem(path, error["input"], f"unknown key; allowed here: {allowed}" if allowed else "unknown key")
    if kind == "missing":
        return Problem(path, None, "is required")
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return Problem(path, error.get("input"), message[:1].lower() + message[1:])


def parse_config(data: Any, source: str) -> MlopsConfig:
    """Validate already-parsed data; raises ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", type(data).__name__,
                                           "the file must hold a mapping with project, region, environments ...")])
    try:
        config = MlopsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_problem_from_pydantic(e) for e in exc.errors()]) from None
    problems = check_all(config)
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: Path | str | None = None) -> MlopsConfig:
    """Load and validate the configuration file (default: `$MLOPS_CONFIG` or `config/mlops.yaml`)."""
    config_path = Path(path) if path is not None else config_path_from_env()
    return parse_config(_read_yaml(config_path), str(config_path))
