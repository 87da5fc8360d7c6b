"""Workspace events: reading what Event Grid delivered (events tail)."""
