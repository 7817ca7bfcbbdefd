"""One run of the delivery pipeline as the emulated account holds it: its stages in the order the applied
CodePipeline defines, each CodeBuild action running its project's buildspec (the `build` phase's commands, in one
bash session as CodeBuild runs them) with the project's and the action's environment variables; the install phase
is what `make install` already did here. Source is the commit being rehearsed; approvals are granted; Test may be
skipped (`make test` ran before the rehearsal)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

COMMIT_VARIABLE = "#{SourceVariables.CommitId}"


class StageFailed(RuntimeError):
    def __init__(self, stage: str, detail: str):
        super().__init__(f"stage {stage} failed: {detail}")
        self.stage = stage


def action_environment(project: dict[str, Any], action: dict[str, Any], commit: str) -> dict[str, str]:
    variables = {v["name"]: v["value"] for v in project["environment"].get("environmentVariables", [])}
    for variable in json.loads(action["configuration"].get("EnvironmentVariables", "[]")):
        variables[variable["name"]] = variable["value"].replace(COMMIT_VARIABLE, commit)
    return variables


def role_environment(credentials: dict[str, str]) -> dict[str, str]:
    """What CodeBuild gives a build's commands: the project's role session, and no other key."""
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]}


def run_buildspec(repo: Path, buildspec_path: str, variables: dict[str, str], env: dict[str, str],
                  log: Path) -> int:
    buildspec = yaml.safe_load((repo / buildspec_path).read_text())
    environment = {**env, **{k: str(v) for k, v in buildspec.get("env", {}).get("variables", {}).items()},
                   **variables}
    environment.pop("TF_PLUGIN_CACHE_DIR", None)  # the rehearsal's Terraform configuration has its own cache
    script = "\n".join(buildspec["phases"]["build"]["commands"])
    with open(log, "a") as output:
        output.write(f"\n$ # {buildspec_path}, build phase, with {sorted(variables)}\n{script}\n")
        output.flush()
        return subprocess.run(["bash", "-c", script], cwd=repo, env=environment, stdout=output,
                              stderr=subprocess.STDOUT, check=False).returncode


def run_pipeline(pipeline_name: str, clients: Callable[[str], Any], repo: Path, env: dict[str, str], commit: str,
                 logs: Path, step: Callable[[str, Callable[[], str]], None], highlights: Callable[[Path], None],
                 skip_projects: tuple[str, ...], assume: Callable[[str, str, str], dict[str, str]]) -> None:
    """`step(name, work)` times and prints one stage; `work` returns a one-line outcome or raises StageFailed;
    `highlights(log)` prints what matters of a stage's log; `assume(role_arn, service, source_arn)` is a service
    assuming a role (each project's commands run as its service role, as CodeBuild runs them)."""
    pipeline = clients("codepipeline").get_pipeline(name=pipeline_name)["pipeline"]
    for stage in pipeline["stages"]:
        for action in stage["actions"]:
            category = action["actionTypeId"]["category"]
            name = stage["name"]
            if category == "Source":
                step(f"pipeline {name}", lambda: f"commit {commit[:12]} (the working tree being rehearsed)")
            elif category == "Approval":
                step(f"pipeline {name}", lambda: "approved (manual approval, granted by the rehearsal)")
            elif category == "Build":
                project_name = action["configuration"]["ProjectName"]
                project = clients("codebuild").batch_get_projects(names=[project_name])["projects"][0]
                if project_name.endswith(skip_projects):
                    step(f"pipeline {name}", lambda p=project_name: f"{p}: skipped in the rehearsal (make test ran)")
                    continue
                variables = action_environment(project, action, commit)
                log = logs / f"{name}.log"
                credentials = role_environment(assume(project["serviceRole"], "codebuild.amazonaws.com",
                                                      project["arn"]))

                def work(project: dict[str, Any] = project, variables: dict[str, str] = variables,
                         log: Path = log, name: str = name, credentials: dict[str, str] = credentials) -> str:
                    code = run_buildspec(repo, project["source"]["buildspec"], variables, {**env, **credentials},
                                         log)
                    highlights(log)
                    if code != 0:
                        raise StageFailed(name, f"{project['name']} ({project['source']['buildspec']}) exited with "
                                                f"{code}; log: {log}")
                    return (f"{project['name']}: {project['source']['buildspec']} with {', '.join(variables)}, as "
                            f"role {project['serviceRole'].rsplit('/', 1)[-1]}")

                step(f"pipeline {name}", work)
