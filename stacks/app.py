"""Build the cdktf App for one configuration: every stack, as a direct child of the App (a stack nested in a
wrapper construct loses its cross-stack dependencies)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdktf import App

from configuration import MlopsConfig
from configuration.naming import bootstrap_stack, endpoint_stack, pipeline_stack, platform_stack
from configuration.resolved import resolve_environment
from stacks.bootstrap import BootstrapStack
from stacks.endpoint import EndpointStack
from stacks.pipeline import PipelineStack
from stacks.platform import PlatformStack

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cdktf_context() -> dict[str, Any]:
    """The feature flags of cdktf.json, so a direct `python main.py` or a test synthesizes exactly what
    `cdktf synth` does."""
    return dict(json.loads((PROJECT_ROOT / "cdktf.json").read_text())["context"])


def build_app(config: MlopsConfig, image_tag: str = "latest", outdir: str | None = None) -> App:
    """Every stack of the configuration; endpoint containers run `<serving repository>:<image_tag>`."""
    app = App(context=cdktf_context(), outdir=outdir) if outdir else App(context=cdktf_context())
    BootstrapStack(app, bootstrap_stack(config.project), config)
    for environment in config.environments:
        resolved = resolve_environment(config, environment)
        platform = PlatformStack(app, platform_stack(config.project, environment), config, resolved)
        for endpoint in resolved.endpoints.values():
            EndpointStack(app, endpoint_stack(config.project, environment, endpoint.name), config, endpoint,
                          platform, image_tag)
    if config.pipeline is not None:
        PipelineStack(app, pipeline_stack(config.project), config)
    return app
