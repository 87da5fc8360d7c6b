"""The environment spec: one typed description of an environment, validated once."""

from hdsctl.environment.model import EnvironmentSpec

__all__ = ["EnvironmentSpec"]
