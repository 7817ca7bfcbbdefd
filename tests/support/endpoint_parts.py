"""The constructs an endpoint's service and model sync are built on (identity, storage, routing), with plain
placeholder inputs, for single-stack tests of the constructs that take them."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformStack

from modules.endpoint_routing import EndpointRouting, EndpointRoutingProps
from modules.model_storage import ModelStorage, ModelStorageProps
from modules.task_identity import TaskIdentity, TaskIdentityProps
from tests.support.construct_synth import arn

KEY = arn("kms", "key/k")
CLUSTER = arn("ecs", "cluster/p-dev")


@dataclass
class EndpointParts:
    identity: TaskIdentity
    storage: ModelStorage
    routing: EndpointRouting


def endpoint_parts(stack: TerraformStack, prefix: str = "p-dev-a") -> EndpointParts:
    identity = TaskIdentity(stack, "identity", TaskIdentityProps(
        name_prefix=prefix, vpc_id="vpc-1", account_id="111111111111", execution_role_name=f"{prefix}-execution",
        task_role_name=f"{prefix}-task", sync_role_name=f"{prefix}-model-sync",
        export_role_name=f"{prefix}-capture-export"))
    storage = ModelStorage(stack, "storage", ModelStorageProps(
        name_prefix=prefix, vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"], kms_key_arn=KEY,
        client_security_group_id=identity.security_group_id, reader_writer_role_arn=identity.task_role.arn,
        model_writer_role_arn=identity.sync_role.arn, model_writer_security_group_id=identity.sync_security_group_id,
        capture_exporter_role_arn=identity.export_role.arn,
        capture_exporter_security_group_id=identity.export_security_group_id))
    routing = EndpointRouting(stack, "routing", EndpointRoutingProps(
        target_group_name=prefix, vpc_id="vpc-1", listener_arn=arn("elasticloadbalancing", "listener/app/lb/1/2"),
        container_port=8080, health_check_path="/v2/health/ready", priority=30499, path="/a/*"))
    return EndpointParts(identity, storage, routing)
