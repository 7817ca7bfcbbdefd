"""One synth per configuration per test session: the default configuration and the all-options fixture."""

from __future__ import annotations

import pytest

from configuration import load_config
from tests.conftest import DEFAULT_CONFIG, FIXTURES
from tests.infra.synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def default_config():
    return load_config(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def default_synth(default_config, tmp_path_factory) -> Synthesized:
    return synthesize(default_config, tmp_path_factory.mktemp("default") / "cdktf.out")


@pytest.fixture(scope="session")
def options_config():
    return load_config(FIXTURES / "all-options.yaml")


@pytest.fixture(scope="session")
def options_synth(options_config, tmp_path_factory) -> Synthesized:
    return synthesize(options_config, tmp_path_factory.mktemp("options") / "cdktf.out")
