"""Run, or with --dry-run print, the commands a pipeline step needs. Every command is echoed before it runs, so a
CodeBuild log reads like the shell session it replaces; a failing command fails the step."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from configuration import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StepFailed(Exception):
    """A command exited non-zero; the step stops here."""


class Commands:
    """`run` executes a command; in a dry run it only prints it, unless the command is marked
    `also_in_dry_run` (synth: a dry run must still prove the configuration synthesizes)."""

    def __init__(self, dry_run: bool, out=None):
        self.dry_run = dry_run
        self.out = out or sys.stdout
        self.printed: list[str] = []

    def say(self, line: str) -> None:
        self.printed.append(line)
        print(line, file=self.out, flush=True)

    def run(self, command: Sequence[str], *, also_in_dry_run: bool = False, env: Mapping[str, str] | None = None,
            stdin: bytes | None = None, secret_stdin: bool = False) -> None:
        """Run a command from the project root; a non-zero exit raises StepFailed."""
        shown = shlex.join(command) + (" <<< (secret)" if secret_stdin else "")
        if self.dry_run and not also_in_dry_run:
            self.say(f"would run: {shown}")
            return
        self.say(f"+ {shown}")
        completed = subprocess.run(list(command), cwd=PROJECT_ROOT, env={**os.environ, **(env or {})}, input=stdin,
                                   check=False)
        if completed.returncode != 0:
            raise StepFailed(f"{shown} exited with {completed.returncode}")


def image_tag() -> str:
    """The commit being built: CodeBuild's resolved source version, IMAGE_TAG, or the local HEAD."""
    for variable in ("IMAGE_TAG", "CODEBUILD_RESOLVED_SOURCE_VERSION"):
        if os.environ.get(variable):
            return os.environ[variable]
    completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                               check=False)
    if completed.returncode != 0:
        raise StepFailed("no IMAGE_TAG, no CODEBUILD_RESOLVED_SOURCE_VERSION and not a git checkout")
    return completed.stdout.strip()


def _one_line_failures(work: Callable[[], object], user_errors: tuple[type[Exception], ...], user_code: int,
                       no_credentials_code: int) -> tuple[int, object]:
    """(exit code, result) of `work`, with a bad configuration (2), a mistake the command names (`user_code`) and an
    AWS failure a user can cause or fix (credentials, expiry, network, a refusal: 1) each printed as one line."""
    from botocore.exceptions import NoCredentialsError

    from pipeline.preflight import aws_error_line

    try:
        return 0, work()
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2, None
    except user_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return user_code, None
    except Exception as exc:
        line = aws_error_line(exc)
        if line is None:
            raise  # a bug: its traceback is what a maintainer needs
        print(f"error: {line}", file=sys.stderr)
        return no_credentials_code if isinstance(exc, NoCredentialsError) else 1, None


def run_step(step: Callable[[], object]) -> int:
    """A pipeline step's exit code: a bad configuration exits 2 with one line per problem, a failed command, a failed
    preflight or an AWS failure a user can cause 1 with one line; never a traceback for those."""
    return _one_line_failures(step, (StepFailed,), 1, 1)[0]


def run_operator_command(command: Callable[[], str], user_errors: tuple[type[Exception], ...]) -> int:
    """An operator command's exit code, with what it prints: its output (0); one line for a bad configuration, a
    mistake the command names (`user_errors`), a failed preflight or missing credentials (2); AWS's refusal or an SDK
    failure (1). Never a traceback for a condition a user can cause."""
    from pipeline.preflight import PreflightFailed

    code, printed = _one_line_failures(command, (*user_errors, PreflightFailed), 2, 2)
    if code == 0:
        print(printed)
    return code
