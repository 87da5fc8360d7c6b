"""hdsctl: config-as-code for Azure Health Data Services imaging platforms."""

__version__ = "0.1.0"
