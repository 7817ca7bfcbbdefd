"""Paths of the rehearsal that once passed by doing nothing now run or fail: an action of a category it cannot run,
every buildspec phase, DISABLED rules and schedules, downloads other than the pinned Terraform, an image the
registry does not hold."""

from __future__ import annotations

import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.rehearsal import downloads
from tests.rehearsal.ecs_agent import EcsAgent
from tests.rehearsal.pipeline_run import StageFailed, buildspec_script, run_pipeline


def test_an_action_of_a_category_the_rehearsal_cannot_run_fails_it(tmp_path):
    pipeline = {"stages": [{"name": "Invoke", "actions": [
        {"name": "lambda", "actionTypeId": {"category": "Invoke", "provider": "Lambda"}, "configuration": {}}]}]}

    class Pipelines:
        def get_pipeline(self, name):
            return {"pipeline": pipeline}

    with pytest.raises(StageFailed, match="category Invoke .*cannot run it"):
        run_pipeline("p", lambda service: Pipelines(), tmp_path, {}, "c0ffee", tmp_path, lambda name, work: work(),
                     lambda log: None, skip_projects=(), assume=lambda *a: {})


def test_every_phase_runs_in_codebuild_s_order_and_an_unknown_phase_is_refused():
    script = buildspec_script({"phases": {"post_build": {"commands": ["echo 4"]}, "build": {"commands": ["echo 3"]},
                                          "install": {"commands": ["echo 1"]},
                                          "pre_build": {"commands": ["echo 2"]}}})
    assert [line for line in script.splitlines() if line.startswith("echo ") and "phase" not in line] == [
        "echo 1", "echo 2", "echo 3", "echo 4"]
    assert script.splitlines()[0] == "set -e"  # a failing command ends the build
    with pytest.raises(ValueError, match="finally"):
        buildspec_script({"phases": {"build": {"commands": ["true"]}, "finally": {"commands": ["true"]}}})


def test_disabled_rules_and_schedules_fire_nothing():
    with mock_aws():
        events = boto3.client("events", region_name="eu-west-1")
        events.put_rule(Name="on", ScheduleExpression="rate(1 hour)")
        events.put_rule(Name="off", ScheduleExpression="rate(1 hour)", State="DISABLED")
        agent = EcsAgent.__new__(EcsAgent)
        agent.client = lambda service: boto3.client(service, region_name="eu-west-1")
        assert agent.schedule_rules() == ["on"]


def test_curl_serves_only_the_pinned_terraform_release_of_this_machine(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "terraform"
    fake.write_text("#!/bin/sh\necho 'Terraform v1.11.4'\n")
    fake.chmod(0o755)
    monkeypatch.setenv(downloads.REAL_TERRAFORM_VARIABLE, str(fake))
    target = tmp_path / "terraform.zip"
    url = "https://releases.hashicorp.com/terraform/{0}/terraform_{0}_linux_amd64.zip"
    assert downloads.curl(["-fsSL", "-o", str(target), url.format("1.11.4")]) == 0
    with zipfile.ZipFile(target) as archive:
        assert archive.read("terraform") == fake.read_bytes()
    assert downloads.curl(["-fsSL", "-o", str(target), url.format("1.9.0")]) == 22  # another version: not here
    assert downloads.curl(["-fsSL", "-o", str(target), "https://example.com/tool.zip"]) == 6
    assert "serves only the pinned Terraform release" in capsys.readouterr().err


def test_install_into_usr_local_bin_lands_in_the_rehearsal_s_folder(tmp_path, monkeypatch):
    source = tmp_path / "tool"
    source.write_text("x")
    monkeypatch.setenv(downloads.INSTALL_ROOT_VARIABLE, str(tmp_path / "codebuild"))
    assert downloads.install(["-m", "0755", str(source), "/usr/local/bin/rehearsal-tool"]) == 0
    assert (tmp_path / "codebuild/usr/local/bin/rehearsal-tool").read_text() == "x"
    assert not Path("/usr/local/bin/rehearsal-tool").exists()


def test_an_image_the_registry_does_not_hold_cannot_be_pulled(emulator, tmp_path):
    from tests.rehearsal.tasks import Image

    url, _ = emulator
    ecr = boto3.client("ecr", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="testing",
                       aws_secret_access_key="x")
    ecr.create_repository(repositoryName="team/server")
    with pytest.raises(LookupError, match="CannotPullContainerError"):
        Image.pull(ecr, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/server:missing", tmp_path,
                   lambda _: tmp_path)
    assert not list(tmp_path.glob("*/config.json"))
