"""How an endpoint's route maps to the path prefix its server is mounted under (shared by synth and the smoke test,
without importing the provider bindings)."""

from __future__ import annotations


def route_prefix(path: str | None) -> str:
    """`/a/*` -> `/a`; host-only routes serve from `/`."""
    if path is None or not path.endswith("/*"):
        return ""
    return path[:-2]
