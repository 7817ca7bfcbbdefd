"""One run of the delivery pipeline as the emulated account holds it: its stages in the order the applied
CodePipeline defines, each CodeBuild action running its project's buildspec as CodeBuild runs it (every phase,
`install`, `pre_build`, `build`, `post_build`, in order, in one bash session; a failing phase ends the build) with the
project's and the action's environment variables and the project's role. `runtime-versions` name CodeBuild's image
runtimes: this machine's Python 3.11 and Node stand in. Downloads in `install` go to named, checked stand-ins
(tests/rehearsal/curl.py: the pinned Terraform release, whose SHA-256 the buildspec itself checks). Source is the
commit being rehearsed; approvals are granted; the Test project runs `make test` like any other, except in CI, where
`.ci/run` ran it just before (said so in the output). An action of any other category fails the rehearsal: nothing
passes by being skipped."""

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


PHASES = ("install", "pre_build", "build", "post_build")
PLUGIN_CACHE_VARIABLE = "REHEARSAL_PLUGIN_CACHE"


def buildspec_script(buildspec: dict[str, Any]) -> str:
    """Every phase's commands, in CodeBuild's order, as one bash session (state carries across phases); each phase
    announced, the first failing command ending the build."""
    lines = ["set -e"]
    for phase in PHASES:
        commands = buildspec.get("phases", {}).get(phase, {}).get("commands", [])
        if commands:
            lines.append(f"echo '[codebuild] phase {phase}'")
            lines.extend(commands)
    unknown = set(buildspec.get("phases", {})) - set(PHASES)
    if unknown:
        raise ValueError(f"phases CodeBuild does not run: {sorted(unknown)}")
    return "\n".join(lines)


def run_buildspec(repo: Path, buildspec_path: str, variables: dict[str, str], env: dict[str, str],
                  log: Path) -> int:
    buildspec = yaml.safe_load((repo / buildspec_path).read_text())
    environment = {**env, **{k: str(v) for k, v in buildspec.get("env", {}).get("variables", {}).items()},
                   **variables}
    if PLUGIN_CACHE_VARIABLE in env:  # the rehearsal's provider mirror fills its own cache, not the machine's
        environment["TF_PLUGIN_CACHE_DIR"] = env[PLUGIN_CACHE_VARIABLE]
    script = buildspec_script(buildspec)
    with open(log, "a") as output:
        output.write(f"\n$ # {buildspec_path}, every phase, with {sorted(variables)}\n{script}\n")
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
                    step(f"pipeline {name}", lambda p=project_name: f"{p}: not run again: .ci/run ran `make lint` "
                                                                    "and `make test` on this commit just before")
                    continue
                variables = action_environment(project, action, commit)
                log = logs / f"{name}.log"
                credentials = role_environment(assume(project["serviceRole"], "codebuild.amazonaws.com",
                                                      project["arn"]))

                def work(project: dict[str, Any] = project, variables: dict[str, str] = variables,
                         log: Path = log, name: str = name, credentials: dict[str, str] = credentials) -> str:
                    environment = {**env, **credentials}
                    if project["name"].endswith("-test"):  # its tests emulate AWS themselves; no account to reach
                        for variable in ("AWS_ENDPOINT_URL", "http_proxy", "HTTP_PROXY"):
                            environment.pop(variable, None)
                    code = run_buildspec(repo, project["source"]["buildspec"], variables, environment, log)
                    highlights(log)
                    if code != 0:
                        raise StageFailed(name, f"{project['name']} ({project['source']['buildspec']}) exited with "
                                                f"{code}; log: {log}")
                    return (f"{project['name']}: {project['source']['buildspec']} with {', '.join(variables)}, as "
                            f"role {project['serviceRole'].rsplit('/', 1)[-1]}")

                step(f"pipeline {name}", work)
            else:
                raise StageFailed(name, f"action {action['name']} of category {category} "
                                        f"({action['actionTypeId'].get('provider')}): the rehearsal cannot run it")
