"""Who the spec says may do what where: role bindings with aliases resolved.

Pure data, read by the Pulumi components (to create assignments) and by the role audit
(to compare with what Azure holds).
"""

from __future__ import annotations

from dataclasses import dataclass

from hdsctl import naming, roles
from hdsctl.spec.model import Principal
from hdsctl.spec.references import WORKSPACE_SCOPE, scope_kinds

# The alias of the identity that runs `pulumi up` (and with it the tag sync): its grants keep
# the deployment itself working, so promotion never prunes them.
DEPLOYER_ALIAS = "deployer"


@dataclass(frozen=True)
class Binding:
    """A role granted to a principal, resolved from aliases to object ids."""

    role: roles.BuiltinRole
    alias: str
    principal: Principal
    description: str | None = None
    index: int = 0  # position in hdsctl:roleAssignments


def bindings_by_scope(env) -> dict[str, list[Binding]]:
    """Role assignments of the spec, grouped by scope name, with aliases resolved."""
    grouped: dict[str, list[Binding]] = {}
    for index, assignment in enumerate(env.spec.role_assignments):
        grouped.setdefault(assignment.scope, []).append(Binding(
            roles.role_by_name(assignment.role), assignment.principal,
            env.spec.principals[assignment.principal], assignment.description, index,
        ))
    return grouped


@dataclass(frozen=True)
class Scope:
    name: str  # "workspace" or a service name
    kind: str  # workspace | dicom | fhir
    id: str


ARM_CHILD_TYPE = {roles.DICOM: naming.DICOM_CHILD_TYPE, roles.FHIR: naming.FHIR_CHILD_TYPE}


def scopes(env, subscription_id: str) -> list[Scope]:
    """The ARM id of every scope the environment assigns roles at."""
    place = (subscription_id, env.resource_group_name, env.workspace_name)
    found = []
    for name, kind in scope_kinds(env.spec).items():
        scope_id = (naming.workspace_id(*place) if name == WORKSPACE_SCOPE
                    else naming.service_id(*place, ARM_CHILD_TYPE[kind], name))
        found.append(Scope(name, kind, scope_id))
    return found
