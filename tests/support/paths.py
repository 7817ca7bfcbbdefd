"""Where things are: the repository, its shipped configuration, the test fixtures."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "mlops.yaml"
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
