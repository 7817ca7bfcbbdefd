"""Synthesize every stack of the configuration (`$MLOPS_CONFIG`, default `config/mlops.yaml`) into cdktf.out/.

The configuration is validated before the (slow) provider bindings are imported: a bad file fails in a second with
one line per problem and leaves no output behind.
"""

from __future__ import annotations

import sys

from configuration import ConfigError, load_config
from configuration.image_tag import image_tag_from_env
from configuration.rules import advisories


def main() -> int:
    try:
        config = load_config()
        image_tag = image_tag_from_env()
    except ConfigError as error:
        print(f"configuration error ({len(error.problems)} problem(s)):", file=sys.stderr)
        for line in error.lines():
            print(f"  {line}", file=sys.stderr)
        return 2
    for line in advisories(config):
        print(f"warning: {line}", file=sys.stderr)
    from stacks.app import build_app  # imported here: importing the AWS provider bindings takes seconds

    build_app(config, image_tag).synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
