"""Every stack but bootstrap keeps its state in the bootstrap's bucket under its own key, locked as configured."""

from __future__ import annotations

import json

import cdktf

from configuration.loader import parse_config
from stacks.common import use_remote_state
from tests.infra.synth import by_path_suffix, resources

REMOTE_STACKS = ["mlops-staging-platform", "mlops-staging-endpoint-a", "mlops-staging-endpoint-b",
                 "mlops-prod-platform", "mlops-prod-endpoint-a", "mlops-prod-endpoint-b"]


def bootstrap_names(synth) -> tuple[str, str]:
    stack = synth.stack("mlops-bootstrap")
    _, bucket = by_path_suffix(stack, "aws_s3_bucket", "state/bucket/bucket")
    (table,) = resources(stack, "aws_dynamodb_table").values()
    return bucket["bucket"], table["name"]


def test_backends_use_the_bootstraps_bucket_and_table(default_synth):
    bucket, table = bootstrap_names(default_synth)
    for name in REMOTE_STACKS:
        backend = default_synth.stack(name)["terraform"]["backend"]["s3"]
        assert backend["bucket"] == bucket, name
        assert backend["dynamodb_table"] == table, name
        assert backend["region"] == "eu-west-1"
        assert "use_lockfile" not in backend  # DynamoDB locking is the default
        assert "encrypt" not in backend  # the bucket's default KMS encryption applies


def test_each_stack_has_its_own_state_key(default_synth):
    keys = [default_synth.stack(name)["terraform"]["backend"]["s3"]["key"] for name in REMOTE_STACKS]
    assert keys == [f"{name}/terraform.tfstate" for name in REMOTE_STACKS]


def test_endpoint_stacks_read_the_platform_from_its_remote_state(default_synth):
    platform_backend = default_synth.stack("mlops-staging-platform")["terraform"]["backend"]["s3"]
    for name in ("mlops-staging-endpoint-a", "mlops-staging-endpoint-b"):
        (remote,) = default_synth.stack(name)["data"]["terraform_remote_state"].values()
        assert remote["backend"] == "s3"
        assert remote["config"] == platform_backend


def test_migration_locking_uses_both(options_synth):
    backend = options_synth.stack("acme-ml-qa-platform")["terraform"]["backend"]["s3"]
    assert backend["bucket"] == "acme-ml-terraform-state"
    assert backend["dynamodb_table"] == "acme-ml-locks"
    assert backend["use_lockfile"] is True


def _backend_for(locking: str) -> dict:
    config = parse_config({"project": "p", "region": "eu-west-1", "state": {"locking": locking},
                           "environments": {"dev": {"vpc_cidr": "10.0.0.0/16"}}}, "inline")
    stack = cdktf.TerraformStack(cdktf.App(), "p-dev-platform")
    use_remote_state(stack, config, "p-dev-platform")
    return json.loads(cdktf.Testing.synth(stack))["terraform"]["backend"]["s3"]


def test_s3_native_locking_drops_the_table():
    backend = _backend_for("s3")
    assert backend["use_lockfile"] is True
    assert "dynamodb_table" not in backend


def test_dynamodb_locking_has_no_lockfile():
    backend = _backend_for("dynamodb")
    assert backend["dynamodb_table"] == "p-tfstate-locks"
    assert "use_lockfile" not in backend
