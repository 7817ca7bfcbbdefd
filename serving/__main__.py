"""`python -m serving`: the model server, configured by `SERVING_*` environment variables (see settings.py).

A bad setting exits with one line naming the variable, the value and what is allowed; an unknown `SERVING_*`
variable (a misspelled one would silently leave its setting at the default) exits naming the closest known one.
"""

from __future__ import annotations

import os
import sys

from serving.settings import ServingSettings, SettingsError, read_settings


def main() -> int:
    try:
        settings = read_settings(ServingSettings, os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    from serving.server import run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
