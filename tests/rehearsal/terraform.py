"""Real Terraform against the emulated account.

The machine carries a Terraform CLI and an AWS provider (5.x) in a filesystem mirror; the stacks pin the bindings'
provider (6.25.0). The rehearsal never edits the product: `terraform` on its PATH is `python -m
tests.rehearsal.terraform`, which adapts the synthesized JSON in the folder it is about to run in (its own copy of
the repository), then runs the real CLI:
- the AWS provider's version constraint becomes the mirror's;
- an attribute or block the mirror's provider does not know (read from its own schema) is dropped only when it is in
  REVIEWED_DROPS, which says what the rehearsal then does not prove; any other unknown attribute stops Terraform
  with an error naming it (a 6.x-only attribute must be reviewed before the rehearsal may pass without it);
- the provider, the S3 backend and every `terraform_remote_state` talk to the emulated account, with the
  credentials of whoever runs Terraform (the administrator at bootstrap, a deploy project's role in the pipeline).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

MIRROR_SETTING = "REHEARSAL_TF_MIRROR"
PROVIDER_DIR = Path("registry.terraform.io") / "hashicorp" / "aws"
MIRROR_SEARCH_ROOTS = ("/opt", "/usr/local/share/terraform", "/usr/share/terraform", str(Path.home() / ".terraform.d"))

# Every service the stacks' resources call, pointed at the emulated account.
SERVICES = ("acm", "applicationautoscaling", "cloudwatch", "cloudwatchlogs", "codebuild", "codepipeline",
            "codestarconnections", "codestarnotifications", "dynamodb", "ec2", "ecr", "ecs", "efs", "elbv2",
            "events", "iam", "kms", "route53", "s3", "scheduler", "sns", "sts", "wafv2")
BACKEND_SETTINGS = {"use_path_style": True, "skip_credentials_validation": True, "skip_requesting_account_id": True,
                    "skip_metadata_api_check": True, "skip_region_validation": True}

# Environment the wrapper reads (set by the rehearsal for every process it starts).
ENDPOINT_VARIABLE = "REHEARSAL_AWS_ENDPOINT"
REAL_TERRAFORM_VARIABLE = "REHEARSAL_TERRAFORM"
SCHEMA_VARIABLE = "REHEARSAL_PROVIDER_SCHEMA"
VERSION_VARIABLE = "REHEARSAL_PROVIDER_VERSION"
DROPS_VARIABLE = "REHEARSAL_DROPPED_LOG"
MIRROR_PATH_VARIABLE = "REHEARSAL_MIRROR_PATH"


REVIEWED_DROPS = {
    "aws_ecs_service.deployment_configuration":
        "ECS's own canary and linear strategies (provider 6.x): production's default canary runs as a rolling "
        "update here; the canary is proven by synth tests only",
    "aws_ecs_service.load_balancer.advanced_configuration":
        "the alternate target group and listener rule a canary shifts traffic with (provider 6.x): not rehearsed",
    "aws_scheduler_schedule.action_after_completion":
        "the one-time model sync schedule deleting itself once run (provider 6.x): it stays until teardown here",
}
"""`<resource type>.<attribute path>` the rehearsal may drop for the mirror's older provider, each with what that
costs. Reviewed: adding an entry is a decision about what the rehearsal no longer proves."""


class SetupMissing(RuntimeError):
    """What the machine lacks for the rehearsal, and how to provide it."""


def find_mirror(setting: str | None = None) -> tuple[Path, str]:
    """(mirror root, provider version): from REHEARSAL_TF_MIRROR, else searched for."""
    if setting:
        root = Path(setting)
        candidates = sorted((root / PROVIDER_DIR).glob("*/linux_amd64/terraform-provider-aws*"))
        if not candidates:
            raise SetupMissing(f"{MIRROR_SETTING}={setting} holds no {PROVIDER_DIR}/<version>/linux_amd64/"
                               "terraform-provider-aws_*: point it at a filesystem mirror's root")
        return root, candidates[-1].parent.parent.name
    for search_root in MIRROR_SEARCH_ROOTS:
        found = sorted(Path(search_root).glob(f"**/{PROVIDER_DIR}/*/linux_amd64/terraform-provider-aws*"))
        if found:
            provider = found[-1]
            return provider.parents[5], provider.parent.parent.name
    raise SetupMissing(f"no AWS provider in a Terraform filesystem mirror under {', '.join(MIRROR_SEARCH_ROOTS)}; "
                       f"set {MIRROR_SETTING} to a mirror root holding {PROVIDER_DIR}/<version>/linux_amd64/ "
                       "(terraform providers mirror <dir> makes one where the registry is reachable)")


def find_terraform() -> str:
    from shutil import which

    path = which("terraform")
    if path is None:
        raise SetupMissing("no `terraform` on PATH: install the Terraform CLI (>= 1.10) to rehearse")
    return path


def cli_configuration(mirror: Path, plugin_cache: Path) -> str:
    """Providers from the mirror only (the public registry is out of reach), each unpacked once."""
    return (f'plugin_cache_dir = "{plugin_cache}"\n'
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
            '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n')


def provider_schema(terraform: str, version: str, folder: Path, env: dict[str, str]) -> Path:
    """The mirror provider's schema (resource attributes and blocks), read once."""
    target = folder / "schema.json"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.tf.json").write_text(json.dumps(
        {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": version}}}}))
    for command in (["init", "-input=false", "-no-color"], ["providers", "schema", "-json"]):
        completed = subprocess.run([terraform, f"-chdir={folder}", *command], capture_output=True, env=env,
                                   check=False)
        if completed.returncode != 0:
            raise SetupMissing(f"terraform {' '.join(command)} with the mirror failed: "
                               f"{completed.stderr.decode()[-2000:]}")
    schema = json.loads(completed.stdout)["provider_schemas"]
    (aws,) = [value for key, value in schema.items() if key.endswith("/aws")]
    target.write_text(json.dumps({kind: {name: entry["block"] for name, entry in aws[kind].items()}
                                  for kind in ("resource_schemas", "data_source_schemas")}))
    return target


def _drop_unknown(body: dict[str, Any], block: dict[str, Any], where: str, dropped: list[str]) -> None:
    known = set(block.get("attributes", {})) | set(block.get("block_types", {}))
    for key in list(body):
        if key in ("//", "depends_on", "lifecycle", "provider", "count", "for_each", "provisioner", "connection"):
            continue
        if key not in known:
            dropped.append(f"{where}.{key}")
            del body[key]
            continue
        nested = block.get("block_types", {}).get(key)
        if nested is not None:
            items = body[key] if isinstance(body[key], list) else [body[key]]
            for item in items:
                if isinstance(item, dict):
                    _drop_unknown(item, nested["block"], f"{where}.{key}", dropped)


def adapt(document: dict[str, Any], endpoint: str, version: str, schema: dict[str, Any]) -> list[str]:
    """Make a synthesized stack (or a state-only module) run against the emulated account; returns the attributes
    dropped for the older provider. Idempotent."""
    terraform = document.setdefault("terraform", {})
    providers = terraform.get("required_providers", {})
    if "aws" in providers:
        providers["aws"]["version"] = version
    endpoints = {service: endpoint for service in SERVICES}
    for provider in document.get("provider", {}).get("aws", []):
        provider.update({"endpoints": [endpoints], "s3_use_path_style": True, "skip_credentials_validation": True,
                         "skip_metadata_api_check": True, "skip_requesting_account_id": False, "max_retries": 3})
    backend_endpoints = {"endpoints": {name: endpoint for name in ("s3", "dynamodb", "sts", "iam")},
                         **BACKEND_SETTINGS}
    if "s3" in terraform.get("backend", {}):
        terraform["backend"]["s3"].update(backend_endpoints)
    for remote in document.get("data", {}).get("terraform_remote_state", {}).values():
        if remote.get("backend") == "s3":
            remote["config"].update(backend_endpoints)
    dropped: list[str] = []
    for kind, schemas in (("resource", schema["resource_schemas"]), ("data", schema["data_source_schemas"])):
        for resource_type, resources in document.get(kind, {}).items():
            if resource_type not in schemas:
                continue  # terraform_remote_state and other built-ins
            for name, body in resources.items():
                _drop_unknown(body, schemas[resource_type], f"{resource_type}.{name}", dropped)
    return dropped


def kind_of(dropped: str) -> str:
    """`<type>.<name>.<attribute path>` as `<type>.<attribute path>`."""
    resource_type, _, rest = dropped.partition(".")
    return f"{resource_type}.{rest.partition('.')[2]}"


def unreviewed(dropped: list[str]) -> list[str]:
    return [item for item in dropped if kind_of(item) not in REVIEWED_DROPS]


def _working_folder(arguments: list[str]) -> Path:
    for argument in arguments:
        if argument.startswith("-chdir="):
            return Path(argument[len("-chdir="):])
    return Path.cwd()


def main(arguments: list[str]) -> int:
    """The `terraform` the rehearsal puts on PATH."""
    folder = _working_folder(arguments)
    for name in ("cdk.tf.json", "main.tf.json"):
        path = folder / name
        if path.exists() and os.environ.get(ENDPOINT_VARIABLE):
            document = json.loads(path.read_text())
            schema = json.loads(Path(os.environ[SCHEMA_VARIABLE]).read_text())
            dropped = adapt(document, os.environ[ENDPOINT_VARIABLE], os.environ[VERSION_VARIABLE], schema)
            refused = unreviewed(dropped)
            if refused:
                print(f"error: the rehearsal's provider {os.environ[VERSION_VARIABLE]} does not know "
                      f"{', '.join(refused)} ({folder.name}); dropping it would rehearse something else than what "
                      "deploys. Review it: add it with what it costs to REVIEWED_DROPS in "
                      "tests/rehearsal/terraform.py, or use a mirror with a newer provider.", file=sys.stderr)
                return 1
            path.write_text(json.dumps(document, indent=2))
            if dropped and os.environ.get(DROPS_VARIABLE):
                with open(os.environ[DROPS_VARIABLE], "a") as log:
                    log.writelines(f"{folder.name}: {item}\n" for item in dropped)
    if "providers" in arguments and "lock" in arguments and os.environ.get(MIRROR_PATH_VARIABLE):
        # cdktf locks providers for linux_amd64 from their origin registry, out of reach here: use the mirror.
        position = arguments.index("lock") + 1
        arguments = [*arguments[:position], f"-fs-mirror={os.environ[MIRROR_PATH_VARIABLE]}", *arguments[position:]]
    real = os.environ[REAL_TERRAFORM_VARIABLE]
    os.execv(real, [real, *arguments])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
