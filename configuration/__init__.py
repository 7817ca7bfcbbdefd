"""Typed, validated configuration for ecs-mlops: load it with `load_config`."""

from configuration.errors import ConfigError, Problem
from configuration.loader import DEFAULT_CONFIG_PATH, config_path_from_env, load_config
from configuration.model import EndpointConfig, EnvironmentConfig, MlopsConfig, StateConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ConfigError",
    "EndpointConfig",
    "EnvironmentConfig",
    "MlopsConfig",
    "Problem",
    "StateConfig",
    "config_path_from_env",
    "load_config",
]
