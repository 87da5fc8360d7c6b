"""Extended query tags as code: plan (pure), apply with the reindex followed to its end, report,
and `hdsctl tags`; inside `pulumi up` the same apply runs as a resource
(hdsctl.components.extended_query_tags)."""
