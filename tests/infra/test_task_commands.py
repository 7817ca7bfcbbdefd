"""Every task definition starts the program it is meant to, on the image `serving/Dockerfile` builds: its command
is derived from the Dockerfile's ENTRYPOINT/CMD and the task definition by Docker's rules, not read off one side."""

from __future__ import annotations

import json

import pytest

from modules.endpoint_service import CONTAINER_NAME
from modules.model_sync import SYNC_CONTAINER
from tests.infra.synth import resources
from tests.support.container_image import ImageConfig, effective_command, effective_environment, read_dockerfile

# The program each container exists to run.
PROGRAM_OF_CONTAINER = {CONTAINER_NAME: ["python", "-m", "serving"], SYNC_CONTAINER: ["python", "-m", "serving.sync"]}


def containers(synthesized):
    for stack_name, stack in synthesized.stacks.items():
        for task_id, task in resources(stack, "aws_ecs_task_definition").items():
            for container in json.loads(task["container_definitions"]):
                yield f"{stack_name}/{task_id}/{container['name']}", container


@pytest.mark.parametrize("synth_fixture", ["default_synth", "options_synth"])
def test_every_container_runs_its_own_program(synth_fixture, request):
    image = read_dockerfile()
    seen = set()
    for where, container in containers(request.getfixturevalue(synth_fixture)):
        assert container["name"] in PROGRAM_OF_CONTAINER, f"{where}: no known program for this container"
        assert effective_command(image, container) == PROGRAM_OF_CONTAINER[container["name"]], where
        seen.add(container["name"])
    assert seen == set(PROGRAM_OF_CONTAINER)


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
