"""Where the endpoint stacks meet the programs they start: every task definition starts the program it is meant to
(its command derived from serving/Dockerfile and the task definition by Docker's rules), and every variable it sets
is one that program reads, and every setting the program requires is set. Both sides are read, not assumed: the
task definitions from the synthesized stacks, the variables from the programs' settings classes."""

from __future__ import annotations

import json

import pytest
from pydantic_settings import BaseSettings

from modules.endpoint_service import CONTAINER_NAME
from modules.model_sync import SYNC_CONTAINER
from pipeline.build import MONITOR_DOCKERFILE
from pipeline.monitor.task import MonitorSettings
from serving.capture_export import ExportSettings
from serving.contract import (
    EXPORT_CONTAINER,
    EXPORT_ENTRY_POINT,
    EXPORT_VARIABLE_PREFIX,
    MONITOR_CONTAINER,
    MONITOR_PROGRAM,
    MONITOR_VARIABLE_PREFIX,
    PROBE_CONTAINER,
    PROBE_PROGRAM,
    PROBE_VARIABLE_PREFIX,
    SERVER_PROGRAM,
    SERVER_VARIABLE_PREFIX,
    SYNC_ENTRY_POINT,
    SYNC_VARIABLE_PREFIX,
    WORKER_PROGRAM,
    WORKER_VARIABLE_PREFIX,
    ExportVariable,
    MonitorVariable,
    ProbeVariable,
    ServerVariable,
    SyncVariable,
    WorkerVariable,
    variables_of,
)
from serving.probe import ProbeSettings
from serving.settings import ServingSettings, required_variable_names, variable_names
from serving.sync import SyncSettings
from serving.worker.settings import WorkerSettings
from tests.infra.synth import resources
from tests.support.container_image import ImageConfig, effective_command, effective_environment, read_dockerfile
from tests.support.paths import PROJECT_ROOT
from tests.test_layering import imports_of

# The programs each container may run: an endpoint's service runs the server, or an asynchronous endpoint's worker.
PROGRAMS_OF_CONTAINER = {CONTAINER_NAME: (SERVER_PROGRAM, WORKER_PROGRAM), SYNC_CONTAINER: (SYNC_ENTRY_POINT,),
                         EXPORT_CONTAINER: (EXPORT_ENTRY_POINT,), PROBE_CONTAINER: (PROBE_PROGRAM,),
                         MONITOR_CONTAINER: (MONITOR_PROGRAM,)}
# What each program reads its settings with, and the prefix of the variables each settings class owns.
SETTINGS_OF_PROGRAM: dict[tuple[str, ...], tuple[tuple[type[BaseSettings], str], ...]] = {
    SERVER_PROGRAM: ((ServingSettings, SERVER_VARIABLE_PREFIX),),
    WORKER_PROGRAM: ((ServingSettings, SERVER_VARIABLE_PREFIX), (WorkerSettings, WORKER_VARIABLE_PREFIX)),
    SYNC_ENTRY_POINT: ((SyncSettings, SYNC_VARIABLE_PREFIX),),
    EXPORT_ENTRY_POINT: ((ExportSettings, EXPORT_VARIABLE_PREFIX),),
    PROBE_PROGRAM: ((ProbeSettings, PROBE_VARIABLE_PREFIX),),
    MONITOR_PROGRAM: ((MonitorSettings, MONITOR_VARIABLE_PREFIX),),
}


def containers(synthesized):
    for stack_name, stack in synthesized.stacks.items():
        for task_id, task in resources(stack, "aws_ecs_task_definition").items():
            for container in json.loads(task["container_definitions"]):
                yield f"{stack_name}/{task_id}/{container['name']}", container


def image_of(container: dict) -> ImageConfig:
    """The image a container runs: the monitor's own, or the server's."""
    return read_dockerfile(PROJECT_ROOT / MONITOR_DOCKERFILE) if container["name"] == MONITOR_CONTAINER \
        else read_dockerfile()


@pytest.mark.parametrize("synth_fixture", ["default_synth", "options_synth"])
def test_every_container_runs_its_own_program(synth_fixture, request):
    seen = set()
    for where, container in containers(request.getfixturevalue(synth_fixture)):
        assert container["name"] in PROGRAMS_OF_CONTAINER, f"{where}: no known program for this container"
        program = tuple(effective_command(image_of(container), container))
        assert program in PROGRAMS_OF_CONTAINER[container["name"]], where
        seen.add(program)
    every = {program for programs in PROGRAMS_OF_CONTAINER.values() for program in programs}
    # The all-options fixture has an asynchronous endpoint; the shipped configuration has none.
    assert seen == every if synth_fixture == "options_synth" else seen == every - {WORKER_PROGRAM}


def test_docker_rules_entry_point_replaces_the_image_cmd_and_command_appends_to_the_entry_point():
    image = ImageConfig(entrypoint=("python", "-m", "serving"), cmd=("--default",))
    assert effective_command(image, {}) == ["python", "-m", "serving", "--default"]
    # The defect this file guards against: a `command` alone is appended to the server's entry point.
    assert effective_command(image, {"command": ["python", "-m", "serving.sync"]}) == [
        "python", "-m", "serving", "python", "-m", "serving.sync"]
    assert effective_command(image, {"entryPoint": ["python", "-m", "serving.sync"]}) == [
        "python", "-m", "serving.sync"]
    assert effective_command(image, {"entryPoint": ["sh"], "command": ["-c", "true"]}) == ["sh", "-c", "true"]


def test_the_serving_image_is_read_from_its_final_stage():
    image = read_dockerfile()
    assert image.entrypoint == ("python", "-m", "serving") and image.cmd == ()
    assert image.workdir == "/app" and image.user == "1000:1000"
    assert image.copies == (("serving/", "/app/serving/"),)
    assert image.env["SERVING_PORT"] == "8080" and image.env["PATH"].startswith("/venv/bin:")
    # The task definition's environment wins over the image's ENV.
    assert effective_environment(image, {"environment": [{"name": "SERVING_PORT", "value": "9000"}]})[
        "SERVING_PORT"] == "9000"


def test_the_monitor_image_runs_the_monitor_and_copies_what_it_imports():
    image = read_dockerfile(PROJECT_ROOT / MONITOR_DOCKERFILE)
    assert image.entrypoint == ("python", "-m", "pipeline.monitor") and image.cmd == ("run",)
    assert image.user == "1000:1000" and image.env["MPLCONFIGDIR"].startswith("/tmp/")
    assert set(image.copies) == {("pipeline/__init__.py", "/app/pipeline/__init__.py"),
                                 ("pipeline/monitor/", "/app/pipeline/monitor/"),
                                 ("serving/__init__.py", "/app/serving/__init__.py"),
                                 ("serving/contract.py", "/app/serving/contract.py")}
    ours = {"pipeline", "serving", "configuration", "modules", "stacks", "preview", "tests"}
    imported = {module for path in (PROJECT_ROOT / "pipeline/monitor").glob("*.py") for module in imports_of(path)
                if module.split(".")[0] in ours}
    assert {module for module in imported if not module.startswith("pipeline.monitor")} == {"serving.contract"}


def variable_problems(image: ImageConfig, container: dict, where: str) -> list[str]:
    """Variables of the program's prefix that it does not read, and required settings left unset."""
    program = tuple(effective_command(image, container))
    environment = effective_environment(image, container)
    problems = []
    for settings, prefix in SETTINGS_OF_PROGRAM[program]:
        known = variable_names(settings)
        problems += [f"{where}: sets {name}, which {' '.join(program)} does not read"
                     for name in sorted(environment) if name.startswith(prefix) and name not in known]
        problems += [f"{where}: {' '.join(program)} requires {name}, which is not set"
                     for name in sorted(required_variable_names(settings) - set(environment))]
    return problems


@pytest.mark.parametrize("synth_fixture", ["default_synth", "options_synth"])
def test_every_variable_a_task_sets_is_read_by_its_program_and_every_required_one_is_set(synth_fixture, request):
    problems = [problem for where, container in containers(request.getfixturevalue(synth_fixture))
                for problem in variable_problems(image_of(container), container, where)]
    assert not problems, "\n".join(problems)


def test_a_misspelled_or_missing_variable_is_caught():
    image = read_dockerfile()
    server = {"name": CONTAINER_NAME, "environment": [{"name": "SERVING_MODEL_DIR", "value": "/mnt/models"}]}
    sync = {"name": SYNC_CONTAINER, "entryPoint": list(SYNC_ENTRY_POINT),
            "environment": [{"name": "SYNC_BUCKET", "value": "b"}]}
    assert variable_problems(image, server, "server") == [
        "server: sets SERVING_MODEL_DIR, which python -m serving does not read"]
    assert variable_problems(image, sync, "sync") == [
        "sync: python -m serving.sync requires SYNC_PREFIX, which is not set"]
    worker = {"name": CONTAINER_NAME, "entryPoint": list(WORKER_PROGRAM), "environment": [
        {"name": "WORKER_QUEUE", "value": "q"}, {"name": "SERVING_PORTS", "value": "1"}]}
    problems = variable_problems(image, worker, "worker")
    assert "worker: sets SERVING_PORTS, which python -m serving.worker does not read" in problems
    assert "worker: sets WORKER_QUEUE, which python -m serving.worker does not read" in problems
    assert "worker: python -m serving.worker requires WORKER_QUEUE_URL, which is not set" in problems


@pytest.mark.parametrize("names, settings", [(ServerVariable, ServingSettings), (SyncVariable, SyncSettings),
                                             (ExportVariable, ExportSettings), (ProbeVariable, ProbeSettings),
                                             (MonitorVariable, MonitorSettings), (WorkerVariable, WorkerSettings)])
def test_the_contract_names_only_variables_the_program_reads(names, settings):
    assert set(variables_of(names).values()) <= variable_names(settings)
    # and the attribute says which setting: SERVING_MODELS_DIR is ServerVariable.MODELS_DIR
    prefix = settings.model_config["env_prefix"]
    assert all(value == prefix + attribute for attribute, value in variables_of(names).items())
