"""What the remote state says is deployed: which stacks of an environment still hold resources.

Reads the state bucket the bootstrap stack created (the pipeline's account); never the Terraform lock.
"""

from __future__ import annotations

import json
from typing import Any

from configuration import MlopsConfig
from configuration.naming import endpoint_stack, platform_stack, state_key


def _holds_resources(config: MlopsConfig, key: str, s3: Any) -> bool:
    """A destroyed stack keeps an empty state object: only managed resources count."""
    state = json.loads(s3.get_object(Bucket=config.state_bucket_name, Key=key)["Body"].read())
    return any(resource.get("mode") == "managed" for resource in state.get("resources", []))


def deployed_stacks(config: MlopsConfig, prefix: str, s3: Any) -> list[str]:
    """Stacks whose name starts with `prefix` and whose state holds resources."""
    stacks = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.state_bucket_name, Prefix=prefix):
        for item in page.get("Contents", []):
            stack = item["Key"].split("/")[0]
            # Lock files and anything else beside the state are not stacks.
            if item["Key"] == state_key(stack) and _holds_resources(config, item["Key"], s3):
                stacks.append(stack)
    return sorted(stacks)


def deployed_endpoint_stacks(config: MlopsConfig, environment: str, s3: Any) -> list[str]:
    return deployed_stacks(config, endpoint_stack(config.project, environment, ""), s3)


def environment_deployed(config: MlopsConfig, environment: str, s3: Any) -> bool:
    """Whether any stack of the environment (its platform, an endpoint, a former endpoint) holds resources."""
    platform = platform_stack(config.project, environment)
    return platform in deployed_stacks(config, platform, s3) or bool(deployed_endpoint_stacks(config, environment, s3))


def orphan_endpoints(config: MlopsConfig, environment: str, s3: Any) -> list[str]:
    """Endpoints deployed in the environment that the configuration no longer declares."""
    prefix = endpoint_stack(config.project, environment, "")
    return [stack[len(prefix):] for stack in deployed_endpoint_stacks(config, environment, s3)
            if stack[len(prefix):] not in config.endpoints]
