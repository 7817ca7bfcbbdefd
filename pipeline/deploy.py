"""Deploy one environment: `python -m pipeline.deploy --env staging [--dry-run]`.

Synthesizes with IMAGE_TAG set (for real, also with --dry-run: a broken synth must fail here, not in AWS), then one
`cdktf deploy` of the environment's platform and endpoint stacks, which applies them in dependency order against
the S3/DynamoDB remote state, auto-approved. The ECS services wait for steady state, so the step fails when the new
tasks do not become healthy.
"""

from __future__ import annotations

import argparse
import sys

from configuration import MlopsConfig, load_config
from configuration.image_tag import TAG_RE
from configuration.naming import endpoint_stack, platform_stack
from pipeline.commands import PROJECT_ROOT, Commands, StepFailed, image_tag, run_step

CDKTF = str(PROJECT_ROOT / "node_modules" / ".bin" / "cdktf")
AUTOMATION_ENV = {"CI": "1", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
                  "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}


def environment_stacks(config: MlopsConfig, environment: str) -> list[str]:
    return [platform_stack(config.project, environment),
            *(endpoint_stack(config.project, environment, endpoint) for endpoint in config.endpoints)]


def deploy(config: MlopsConfig, environment: str, commands: Commands, tag: str) -> None:
    if environment not in config.environments:
        raise StepFailed(f"unknown environment {environment!r}; configured: {', '.join(config.environments)}")
    if not TAG_RE.match(tag):
        raise StepFailed(f"image tag {tag!r} is not a valid tag")
    env = {**AUTOMATION_ENV, "IMAGE_TAG": tag}
    stacks = environment_stacks(config, environment)
    commands.say(f"deploying {environment} with image tag {tag}: {', '.join(stacks)}")
    commands.run([CDKTF, "synth"], also_in_dry_run=True, env=env)
    commands.run([CDKTF, "deploy", *stacks, "--auto-approve", "--skip-synth", "--no-color",
                  "--outputs-file", f"cdktf.out/outputs-{environment}.json"], env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--dry-run", action="store_true", help="synthesize, and print the deploy instead of running it")
    args = parser.parse_args(argv)
    return run_step(lambda: deploy(load_config(), args.env, Commands(args.dry_run), image_tag()))


if __name__ == "__main__":
    sys.exit(main())
