"""`python -m serving`: the model server, configured by `SERVING_*` environment variables (see settings.py).

A bad setting exits with one line naming the variable, the value and what is allowed.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from serving.settings import ServingSettings


def main() -> int:
    try:
        settings = ServingSettings()
    except ValidationError as exc:
        for error in exc.errors():
            variable = "SERVING_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"{variable}: {error['msg']} (got {error.get('input')!r})", file=sys.stderr)
        return 2
    from serving.server import run

    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
