"""Guardrails for imaging environments, as a Pulumi CrossGuard policy pack."""
