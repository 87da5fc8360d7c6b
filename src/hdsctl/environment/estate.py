"""Rules across environments: names that each stack derives on its own must not meet."""

from __future__ import annotations

from collections import defaultdict

from hdsctl.environment.load import Environment


def name_collisions(environments: list[Environment]) -> list[str]:
    """Two environments that would deploy into the same workspace or resource group.

    Workspace names make up the services' public host names, so they collide everywhere;
    resource group names only within one subscription (an unknown subscription may be any).
    """
    problems = []
    workspaces: dict[str, list[str]] = defaultdict(list)
    for env in environments:
        workspaces[env.workspace_name].append(env.source)
    problems += [f"workspace name {name!r} is derived by {' and '.join(sources)}"
                 for name, sources in sorted(workspaces.items()) if len(sources) > 1]
    for i, a in enumerate(environments):
        for b in environments[i + 1:]:
            same_subscription = (a.spec.subscription_id is None or b.spec.subscription_id is None
                                 or a.spec.subscription_id.lower() == b.spec.subscription_id.lower())
            if same_subscription and a.resource_group_name.lower() == b.resource_group_name.lower():
                problems.append(f"resource group {a.resource_group_name!r} is used by {a.source} and "
                                f"{b.source} in the same subscription")
    return problems
