"""Synthesize an app once and read every stack's Terraform JSON; helpers to follow references between resources."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import Testing

from configuration import MlopsConfig

REFERENCE = re.compile(r"^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}$")


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    stacks: dict[str, dict[str, Any]]

    def stack(self, name: str) -> dict[str, Any]:
        assert name in self.stacks, f"no stack {name}; synthesized: {sorted(self.stacks)}"
        return self.stacks[name]

    def stack_dir(self, name: str) -> Path:
        return self.outdir / "stacks" / name


def synthesize(config: MlopsConfig, outdir: Path, image_tag: str = "latest") -> Synthesized:
    from stacks.app import build_app  # the provider bindings load here, once per process

    build_app(config, image_tag, str(outdir)).synth()
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {name: json.loads((outdir / entry["synthesizedStackPath"]).read_text())
              for name, entry in manifest["stacks"].items()}
    return Synthesized(outdir, stacks)


def resources(stack: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical ID -> resource body for every resource of that type in the stack."""
    return stack.get("resource", {}).get(resource_type, {})


def only(stack: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources(stack, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def ref(resource_type: str, logical_id: str, attribute: str) -> str:
    """The Terraform expression by which one resource refers to another's attribute."""
    return f"${{{resource_type}.{logical_id}.{attribute}}}"


def target(stack: dict[str, Any], expression: str) -> tuple[str, str, dict[str, Any]]:
    """Follow a reference expression to (type, logical ID, body) of the resource it names."""
    match = REFERENCE.match(expression)
    assert match, f"not a plain resource reference: {expression!r}"
    resource_type, logical_id, _ = match.groups()
    body = resources(stack, resource_type).get(logical_id)
    assert body is not None, f"{expression} names no resource in this stack"
    return resource_type, logical_id, body


def by_path_suffix(stack: dict[str, Any], resource_type: str, suffix: str) -> tuple[str, dict[str, Any]]:
    """The one resource of that type whose construct path ends with `suffix` (e.g. 'network/vpc')."""
    matches = [(logical_id, body) for logical_id, body in resources(stack, resource_type).items()
               if body["//"]["metadata"]["path"].endswith("/" + suffix)]
    assert len(matches) == 1, f"{len(matches)} {resource_type} with path ending {suffix!r}"
    return matches[0]


def policy(body: dict[str, Any], field: str = "policy") -> dict[str, Any]:
    return json.loads(body[field])


def assert_has_resource(stack: dict[str, Any], resource_type: str, properties: dict[str, Any]) -> None:
    """cdktf's matcher (objects match as subsets, arrays exactly) with a useful failure: Python only gets a bool."""
    if not Testing.to_have_resource_with_properties(json.dumps(stack), resource_type, properties):
        present = json.dumps(resources(stack, resource_type), indent=1, sort_keys=True)
        raise AssertionError(f"no {resource_type} with {json.dumps(properties)}; the stack has:\n{present}")


REMOTE_OUTPUT = re.compile(r"^\$\{data\.terraform_remote_state\.[^.]+\.outputs\.([^}.]+)\}$")


def across(platform: dict[str, Any], expression: str) -> str:
    """Follow a cross-stack reference in an endpoint stack to the expression the platform stack outputs, e.g.
    `${data.terraform_remote_state....outputs.cross-stack-output-...}` -> `${aws_lb.load-balancer_lb_....arn}`."""
    match = REMOTE_OUTPUT.match(expression)
    assert match, f"not a cross-stack reference: {expression!r}"
    return platform["output"][match.group(1)]["value"]
