"""Promotion: carry the promotable parts of one environment to the next, as a reviewed diff."""
