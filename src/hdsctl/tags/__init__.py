"""Extended query tags as code: plan, apply, report."""
