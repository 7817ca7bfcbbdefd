"""`make doctor` (`python -m pipeline.doctor`): what is ready for the next step, and what is missing, with the fix.

Local tools first (Python, Node, make, Terraform, the installed packages, graphviz for `make diagram`), then, with
AWS credentials, the caller, each environment's account (through its deploy role), the bootstrap's state bucket, the
pipeline and its source connection, and per environment its platform, its endpoints and their live model versions.
Without credentials the local half is still reported, and what could not be checked says so.

Each line: `ready`, `missing` (blocks the next step), `not yet` (the next step makes it), `unknown` (could not be
checked) or `optional` (only some commands need it). The exit code is 0 only when nothing is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from configuration import ConfigError, MlopsConfig, load_config
from configuration.naming import endpoint_stack, pipeline_stack, platform_stack, state_key
from pipeline import preflight
from pipeline.commands import PROJECT_ROOT
from pipeline.preflight import PreflightFailed

READY, MISSING, NOT_YET, UNKNOWN, OPTIONAL = "ready", "missing", "not yet", "unknown", "optional"


@dataclass(frozen=True)
class Item:
    status: str
    what: str
    detail: str


def _version(command: list[str]) -> str | None:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = re.search(r"(\d+)\.(\d+)(\.\d+)?", completed.stdout + completed.stderr)
    return match.group(0) if completed.returncode == 0 and match else None


def tools(config: MlopsConfig) -> list[Item]:
    items = []
    python = ".".join(map(str, sys.version_info[:3]))
    items.append(Item(READY if sys.version_info >= (3, 11) else MISSING, "python",
                      python if sys.version_info >= (3, 11) else f"{python}; Python 3.11 is needed"))
    node = _version(["node", "--version"])
    major = int(node.split(".")[0]) if node else 0
    items.append(Item(READY if major >= 20 else MISSING, "node",
                      node if major >= 20 else f"{node or 'not on PATH'}; Node 20 or later is needed (the cdktf CLI)"))
    make = _version(["make", "--version"])
    items.append(Item(READY if make else MISSING, "make", make or "not on PATH; install GNU make"))
    try:
        items.append(Item(READY, "terraform", preflight.terraform(config)))
    except PreflightFailed as exc:
        items.append(Item(MISSING, "terraform", str(exc)))
    installed = (PROJECT_ROOT / ".venv").is_dir() and (PROJECT_ROOT / "node_modules" / ".bin" / "cdktf").exists()
    items.append(Item(READY if installed else MISSING, "packages",
                      "installed (.venv, node_modules)" if installed else "not installed; run `make install`"))
    dot = _version(["dot", "-V"])
    items.append(Item(READY if dot else OPTIONAL, "graphviz",
                      dot or "not on PATH; needed only by `make diagram` (apt-get install graphviz)"))
    return items


def _state(config: MlopsConfig, s3: Any, stack: str) -> dict[str, Any] | None:
    """A stack's remote state when it holds resources, else None."""
    try:
        body = s3.get_object(Bucket=config.state_bucket_name, Key=state_key(stack))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    state = json.loads(body)
    return state if any(r.get("mode") == "managed" for r in state.get("resources", [])) else None


def _output(state: dict[str, Any], name: str) -> Any:
    outputs = state.get("outputs", {})
    for key in (name, name.replace("-", "_")):
        if key in outputs:
            return outputs[key].get("value")
    return None


def aws(config: MlopsConfig, session: Any, environment_session: Callable[[str], Any]) -> list[Item]:
    from serving.contract import read_remote_store

    try:
        who = preflight.caller(session, config.region)
    except PreflightFailed as exc:
        return [Item(MISSING, "aws identity", str(exc)),
                Item(UNKNOWN, "aws", "accounts, bootstrap, pipeline and environments not checked without it")]
    items = [Item(READY, "aws identity", f"{who.arn} (account {who.account}, region {config.region})")]
    reachable = []
    for environment in config.environments:
        try:
            account = preflight.environment_account(config, environment, session, who)
            items.append(Item(READY, f"{environment}: account", account))
            reachable.append(environment)
        except PreflightFailed as exc:
            items.append(Item(MISSING, f"{environment}: account", str(exc)))
    s3 = session.client("s3", region_name=config.region)
    try:
        preflight.bootstrap_state(config, s3)
    except PreflightFailed as exc:
        items.append(Item(NOT_YET, "bootstrap", f"{exc}"))
        return items
    items.append(Item(READY, "bootstrap", f"state bucket {config.state_bucket_name}"))
    items.extend(_pipeline(config, session, s3))
    for environment in reachable:
        items.extend(_environment(config, environment, s3, environment_session(environment), read_remote_store))
    return items


def _pipeline(config: MlopsConfig, session: Any, s3: Any) -> list[Item]:
    if config.pipeline is None:
        return [Item(READY, "pipeline", "none configured (no `pipeline` section)")]
    state = _state(config, s3, pipeline_stack(config.project))
    if state is None:
        return [Item(NOT_YET, "pipeline", f"stack {pipeline_stack(config.project)} not deployed; `make bootstrap`")]
    items = [Item(READY, "pipeline", f"{_output(state, 'pipeline-name')} deployed")]
    arn = config.pipeline.connection_arn or _output(state, "github-connection-arn")
    try:
        status = session.client("codestar-connections", region_name=config.region).get_connection(
            ConnectionArn=arn)["Connection"]["ConnectionStatus"]
    except Exception as exc:  # noqa: BLE001 - reported, never raised: doctor checks what it can
        return [*items, Item(UNKNOWN, "source connection", f"{arn}: {preflight.aws_error_line(exc) or exc}")]
    if status == "AVAILABLE":
        return [*items, Item(READY, "source connection", f"{arn} available")]
    return [*items, Item(MISSING, "source connection", f"{arn} is {status}: authorize it once in the console "
                                                       "(Developer Tools > Settings > Connections > Update pending "
                                                       "connection)")]


def _environment(config: MlopsConfig, environment: str, s3: Any, session: Any, read_store: Any) -> list[Item]:
    project = config.project
    if _state(config, s3, platform_stack(project, environment)) is None:
        return [Item(NOT_YET, f"{environment}: platform", "not deployed; the pipeline's Deploy stage creates it")]
    items = [Item(READY, f"{environment}: platform", f"{platform_stack(project, environment)} deployed")]
    models = session.client("s3", region_name=config.region)
    for endpoint in config.endpoints:
        if _state(config, s3, endpoint_stack(project, environment, endpoint)) is None:
            items.append(Item(NOT_YET, f"{environment}: endpoint {endpoint}", "not deployed"))
            continue
        try:
            live = read_store(models, config.model_bucket_name(environment), f"{endpoint}/").live
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            live = f"unknown ({preflight.aws_error_line(exc) or exc})"
        items.append(Item(READY, f"{environment}: endpoint {endpoint}", f"deployed, live model version {live}"))
    return items


def report(items: list[Item]) -> str:
    width = max(len(item.what) for item in items)
    return "\n".join(f"{item.status:<8} {item.what:<{width}}  {item.detail}" for item in items)


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    from pipeline.aws import environment_session, pipeline_session

    items = tools(config)
    items += aws(config, pipeline_session(config), lambda environment: environment_session(config, environment))
    print(report(items))
    missing = [item.what for item in items if item.status == MISSING]
    print(f"\n{'not ready: ' + ', '.join(missing) if missing else 'ready for the next step'}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
