"""Shared test settings: quiet jsii, and paths to the shipped configuration and test fixtures."""

import os
from pathlib import Path

# jsii prints a Node end-of-life banner on every start; the Makefile sets the same.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "mlops.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
