"""Offline: principal alias × role × scope across environments, from the specs alone."""

from __future__ import annotations

import json

from hdsctl.environment.load import Environment


def build(environments: list[Environment]) -> dict:
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for env in environments:
        for assignment in env.spec.role_assignments:
            principal = env.spec.principals[assignment.principal]
            key = (assignment.principal, assignment.role, assignment.scope)
            rows.setdefault(key, {})[env.name] = principal.type
    return {
        "environments": [env.name for env in environments],
        "rows": [
            {"principal": alias, "role": role, "scope": scope, "grantedIn": granted}
            for (alias, role, scope), granted in sorted(rows.items())
        ],
    }


def render(matrix: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(matrix, indent=2)
    names = matrix["environments"]
    header = ["principal", "role", "scope", *names]
    body = [[row["principal"], row["role"], row["scope"],
             *[row["grantedIn"].get(name, "-") for name in names]] for row in matrix["rows"]]
    if fmt == "markdown":
        from hdsctl.audit.report import markdown_cell

        lines = ["| " + " | ".join(map(markdown_cell, header)) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(map(markdown_cell, cells)) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(str(cells[i])) for cells in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                     for cells in [header, *body])
