"""The synthesized stacks as data: every stack's Terraform JSON from `cdktf.out/`, and the references between
resources followed, within a stack (`${aws_lb.x.arn}`) and across stacks (an endpoint stack reads its platform's
outputs through `terraform_remote_state`).

Standard library only: reading what `cdktf synth` wrote needs neither the provider bindings nor the stacks' code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}")
REMOTE_OUTPUT = re.compile(r"\$\{data\.terraform_remote_state\.([^.]+)\.outputs\.([^}.]+)\}")


class SynthesisMissing(Exception):
    """No synthesized stacks where they were looked for."""


@dataclass(frozen=True)
class Address:
    """One resource: its stack, type and logical ID."""

    stack: str
    type: str
    logical_id: str

    def __str__(self) -> str:
        return f"{self.stack}/{self.type}.{self.logical_id}"


@dataclass(frozen=True)
class Resource:
    address: Address
    body: dict[str, Any]

    @property
    def path(self) -> str:
        """The construct path, e.g. `mlops-staging-endpoint-a/routing/target-group`."""
        return str(self.body.get("//", {}).get("metadata", {}).get("path", self.address.logical_id))

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)


class Synthesized:
    """Every stack of one synth. `refs(resource, value)` gives the resources a value refers to, across stacks."""

    def __init__(self, stacks: dict[str, dict[str, Any]]):
        self.stacks = stacks
        self._remote_stack = {
            (stack, name): str(body.get("config", {}).get("key", "")).split("/")[0]
            for stack, document in stacks.items()
            for name, body in document.get("data", {}).get("terraform_remote_state", {}).items()}

    @classmethod
    def read(cls, outdir: Path) -> Synthesized:
        manifest_path = outdir / "manifest.json"
        if not manifest_path.is_file():
            raise SynthesisMissing(f"no synthesized stacks in {outdir} (no manifest.json): run `make synth` first")
        manifest = json.loads(manifest_path.read_text())
        return cls({name: json.loads((outdir / entry["synthesizedStackPath"]).read_text())
                    for name, entry in manifest["stacks"].items()})

    def resources(self, resource_type: str, stack: str | None = None) -> Iterator[Resource]:
        for name, document in self.stacks.items():
            if stack is not None and name != stack:
                continue
            for logical_id, body in document.get("resource", {}).get(resource_type, {}).items():
                yield Resource(Address(name, resource_type, logical_id), body)

    def resource(self, address: Address) -> Resource:
        return Resource(address, self.stacks[address.stack]["resource"][address.type][address.logical_id])

    def refs(self, resource: Resource | Address, value: Any) -> list[Address]:
        """The resources `value` (a string, or anything holding strings) refers to, from `resource`'s stack."""
        stack = resource.address.stack if isinstance(resource, Resource) else resource.stack
        found: list[Address] = []
        for text in _strings(value):
            found.extend(self._refs_in(stack, text))
        return list(dict.fromkeys(found))

    def _refs_in(self, stack: str, text: str) -> Iterator[Address]:
        for remote, output in REMOTE_OUTPUT.findall(text):
            other = self._remote_stack.get((stack, remote))
            exported = self.stacks.get(other or "", {}).get("output", {}).get(output, {}).get("value")
            if other and exported is not None:
                yield from self._refs_in(other, str(exported))
        for resource_type, logical_id, _ in REFERENCE.findall(text):
            if resource_type != "data" and logical_id in self.stacks[stack].get("resource", {}).get(resource_type,
                                                                                                      {}):
                yield Address(stack, resource_type, logical_id)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
