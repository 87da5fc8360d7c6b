"""Pulumi components that build one environment from its spec."""
