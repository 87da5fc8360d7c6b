"""Role audit: who really holds which role, against what the stack file declares."""
