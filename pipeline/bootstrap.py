"""The first deploy of a project, once, with AWS credentials: `python -m pipeline.bootstrap [--dry-run]`
(`make bootstrap`).

Synthesizes, deploys the bootstrap stack (state bucket and lock table; its own state stays local, in
`terraform.<project>-bootstrap.tfstate`: keep that file), then the pipeline stack (its state already in the new
bucket). What is left for a person: authorizing the GitHub connection once in the console. From then on every push
to the tracked branch goes through the pipeline, which creates the environments.
"""

from __future__ import annotations

import argparse
import json
import sys

from configuration import load_config
from configuration.naming import bootstrap_stack, pipeline_stack
from pipeline.commands import PROJECT_ROOT, Commands, StepFailed, run_step
from pipeline.deploy import AUTOMATION_ENV, CDKTF

OUTPUTS = "cdktf.out/outputs-bootstrap.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bootstrap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="synthesize, and print the deploys")
    args = parser.parse_args(argv)

    def step() -> None:
        config = load_config()
        if config.pipeline is None:
            raise StepFailed("the configuration has no `pipeline` section: deploy the bootstrap stack alone with "
                             f"`cdktf deploy {bootstrap_stack(config.project)}`, then each environment by hand")
        commands = Commands(args.dry_run)
        if not args.dry_run:
            from pipeline import preflight
            from pipeline.aws import pipeline_session

            who = preflight.check(config, pipeline_session(config), needs_terraform=True)
            commands.say(f"bootstrapping {config.project} in account {who.account} ({config.region}) as {who.arn}")
        commands.run([CDKTF, "synth"], also_in_dry_run=True, env=AUTOMATION_ENV)
        for stack in (bootstrap_stack(config.project), pipeline_stack(config.project)):
            commands.run([CDKTF, "deploy", stack, "--auto-approve", "--skip-synth", "--no-color",
                          "--outputs-file", OUTPUTS], env=AUTOMATION_ENV)
        if args.dry_run:
            return
        outputs = json.loads((PROJECT_ROOT / OUTPUTS).read_text())[pipeline_stack(config.project)]
        connection = outputs.get("github-connection-arn") or outputs.get("github_connection_arn")
        commands.say(f"pipeline {outputs.get('pipeline-name', '')} is deployed. Once, in the console "
                     f"(Developer Tools > Settings > Connections): authorize {connection}; then push to "
                     f"{config.pipeline.branch} of {config.pipeline.repository}")

    return run_step(step)


if __name__ == "__main__":
    sys.exit(main())
