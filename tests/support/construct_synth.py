"""One construct in one stack, synthesized on its own: cheap (tens of milliseconds once the provider bindings are
loaded), so each construct's defaults, options and props validations get tests of their own."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cdktf import TerraformStack, Testing

ARN = "arn:aws:{service}:eu-west-1:111111111111:{resource}"


def synth_stack(build: Callable[[TerraformStack], Any]) -> dict[str, Any]:
    """The Terraform JSON (resources, data sources) of a stack that `build` fills."""
    stack = TerraformStack(Testing.app(), "construct-under-test")
    build(stack)
    return json.loads(Testing.synth(stack))


def arn(service: str, resource: str) -> str:
    return ARN.format(service=service, resource=resource)
