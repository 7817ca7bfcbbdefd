"""What the remote state says is deployed: the endpoint stacks of an environment that still hold resources.

Reads the state bucket the bootstrap stack created (the pipeline's account); never the Terraform lock.
"""

from __future__ import annotations

import json
from typing import Any

from configuration import MlopsConfig
from configuration.naming import endpoint_stack, state_key


def deployed_endpoint_stacks(config: MlopsConfig, environment: str, s3: Any) -> list[str]:
    """Endpoint stacks of the environment whose state holds managed resources (a destroyed stack keeps an empty
    state object)."""
    prefix = endpoint_stack(config.project, environment, "")
    stacks = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=config.state_bucket_name, Prefix=prefix):
        for item in page.get("Contents", []):
            stack = item["Key"].split("/")[0]
            if item["Key"] != state_key(stack):  # lock files and anything else beside the state
                continue
            state = json.loads(s3.get_object(Bucket=config.state_bucket_name, Key=item["Key"])["Body"].read())
            if any(resource.get("mode") == "managed" for resource in state.get("resources", [])):
                stacks.append(stack)
    return sorted(stacks)


def orphan_endpoints(config: MlopsConfig, environment: str, s3: Any) -> list[str]:
    """Endpoints deployed in the environment that the configuration no longer declares."""
    prefix = endpoint_stack(config.project, environment, "")
    return [stack[len(prefix):] for stack in deployed_endpoint_stacks(config, environment, s3)
            if stack[len(prefix):] not in config.endpoints]
