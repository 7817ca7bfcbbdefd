"""`python -m serving`: the model server, configured by `SERVING_*` environment variables (see settings.py).

A bad setting exits with one line naming the variable, the value and what is allowed; an unknown `SERVING_*`
variable (a misspelled one would silently leave its setting at the default) exits naming the closest known one.
"""

from __future__ import annotations

import os
import sys

from pydantic import ValidationError

from serving.contract import SERVER_VARIABLE_PREFIX
from serving.settings import ServingSettings, refuse_unknown_variables, settings_problems


def main() -> int:
    try:
        refuse_unknown_variables(ServingSettings, os.environ)
        settings = ServingSettings()
    except ValidationError as exc:
        for line in settings_problems(exc, SERVER_VARIABLE_PREFIX):
            print(line, file=sys.stderr)
        return 2
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    from serving.server import run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
