"""Dependencies run one way: configuration -> resolved values -> stacks -> modules; the delivery steps import neither
the stacks nor the server's runtime; what programs share is in serving/contract.py, which imports nothing of ours,
and serving/endpoint_check.py (the smoke test's checks), which imports only the contract.

Read from the source (every import statement, also those inside functions), plus one import of the delivery steps
in a clean interpreter to catch what they load indirectly.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import PROJECT_ROOT

STDLIB = set(sys.stdlib_module_names) | {"__future__"}
CONTRACT = "serving.contract"
ENDPOINT_CHECK = "serving.endpoint_check"
"""The smoke test's checks, run by the pipeline's Smoke step and by the probe task in the serving image."""
SHARED = (CONTRACT, ENDPOINT_CHECK)

# Package -> what its modules may import besides the standard library and themselves.
ALLOWED: dict[str, set[str]] = {
    "configuration": {"pydantic", "yaml", CONTRACT},
    "modules": {"cdktf", "constructs", "cdktf_cdktf_provider_aws", CONTRACT},
    "stacks": {"cdktf", "constructs", "cdktf_cdktf_provider_aws", "configuration", "modules", CONTRACT},
    "pipeline": {"configuration", "boto3", "botocore", "onnx", "yaml", CONTRACT, ENDPOINT_CHECK},
    # Read from the synthesized JSON, never from the stacks' code; `make diagram` draws with `diagrams`;
    # `make cost PRICES=live` reads the AWS Price List Query API.
    "preview": {"diagrams", "configuration", "boto3", "botocore", CONTRACT},
    "serving": {"fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings", "numpy", "onnxruntime",
                "orjson", "httptools", "boto3", "botocore", "skl2onnx", "sklearn"},
}


# Modules allowed more than their package, and why.
EXCEPTIONS: dict[str, set[str]] = {
    # `replay --local` runs a candidate version with the server's own data plane and runtime, by design; it imports
    # them inside the function that needs them, so importing the delivery steps still loads none of it (below).
    "pipeline/replay.py": {"serving"},
}
FOLDER_EXCEPTIONS: dict[str, set[str]] = {
    # The model monitor runs from its own image (Pipfile's `monitor` category): its statistics, report and model
    # libraries are its own, and no delivery step imports it.
    "pipeline/monitor/": {"numpy", "scipy", "sklearn", "matplotlib", "jinja2", "pyarrow", "onnxruntime", "pydantic",
                          "pydantic_settings"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def allowed(package: str, module: str, allowances: set[str]) -> bool:
    top = module.split(".")[0]
    if top in STDLIB or top == package and module != CONTRACT or module == CONTRACT:
        return True
    return any(module == name or module.startswith(name + ".") for name in allowances)


def violations(package: str, allowances: set[str]) -> list[str]:
    found = []
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        extra = EXCEPTIONS.get(relative, set()).union(
            *(allowances for folder, allowances in FOLDER_EXCEPTIONS.items() if relative.startswith(folder)))
        for module in sorted(imports_of(path)):
            if not allowed(package, module, allowances | extra):
                found.append(f"{path.relative_to(PROJECT_ROOT)} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_its_layer_allows(package):
    assert not violations(package, ALLOWED[package])


@pytest.mark.parametrize("shared", SHARED)
def test_what_programs_share_imports_the_standard_library_and_the_contract_only(shared):
    outside = [module for module in imports_of(PROJECT_ROOT / (shared.replace(".", "/") + ".py"))
               if module.split(".")[0] not in STDLIB and module != CONTRACT]
    assert not outside


def test_the_checker_sees_a_wrong_way_import(tmp_path, monkeypatch):
    """The rule above is only as good as the checker: a module importing the configuration schema is caught."""
    package = tmp_path / "modules"
    package.mkdir()
    (package / "thing.py").write_text("def build():\n    from configuration.model import ScheduledScaling\n")
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_ROOT", tmp_path)
    assert violations("modules", ALLOWED["modules"]) == ["modules/thing.py imports configuration.model"]


def test_the_delivery_steps_load_neither_the_stacks_nor_the_model_runtime():
    """Importing every delivery step, as CodeBuild does, loads no provider bindings, stack, construct or server
    runtime module."""
    steps = sorted(f"pipeline.{path.stem}" for path in (PROJECT_ROOT / "pipeline").glob("*.py")
                   if path.stem != "__init__")
    program = ("import importlib, json, sys\n"
               f"for name in {steps!r}: importlib.import_module(name)\n"
               "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", program], cwd=PROJECT_ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    forbidden = [name for name in loaded if name.split(".")[0] in {"stacks", "modules", "cdktf",
                                                                   "cdktf_cdktf_provider_aws", "onnxruntime"}
                 or name.startswith("serving.") and name not in SHARED]
    assert not forbidden
