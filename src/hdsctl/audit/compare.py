"""The pure comparison of declared and actual role assignments."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hdsctl import roles
from hdsctl.audit.arm import ActualAssignment, RoleInfo
from hdsctl.environment.access import Binding, Scope

OK, MISSING, UNDECLARED, TYPE_MISMATCH, PRIVILEGED, INHERITED = (
    "ok", "missing", "undeclared", "type-mismatch", "privileged", "inherited")
CATEGORIES = (OK, MISSING, UNDECLARED, TYPE_MISMATCH, PRIVILEGED, INHERITED)
FAILING = frozenset({MISSING, UNDECLARED, TYPE_MISMATCH, PRIVILEGED})


@dataclass
class Finding:
    category: str
    scope: str  # scope name ("workspace", a service) or, for inherited ones, the ARM scope
    scope_id: str
    principal_id: str
    principal_type: str | None
    role: str
    role_definition_id: str
    alias: str | None = None
    declared_type: str | None = None
    assignment_id: str | None = None
    fix: str = ""
    display_name: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def compare(
    env_name: str,
    scopes: list[Scope],
    declared: dict[str, list[Binding]],
    actual: dict[str, list[ActualAssignment]],
    role_info: dict[str, RoleInfo],
    *,
    include_inherited: bool = False,
) -> list[Finding]:
    stack_file = f"stacks/Pulumi.{env_name}.yaml"
    audited = {scope.id.lower() for scope in scopes}
    findings: list[Finding] = []
    inherited_seen: set[str] = set()
    for scope in scopes:
        wanted = {(b.principal.object_id.lower(), b.role.guid): b for b in declared.get(scope.name, [])}
        matched = set()
        for assignment in actual.get(scope.name, []):
            info = role_info.get(assignment.role_definition_id.lower(),
                                 RoleInfo(assignment.role_guid, False, True))
            common = {"principal_id": assignment.principal_id, "principal_type": assignment.principal_type,
                      "role": info.name, "role_definition_id": assignment.role_definition_id,
                      "assignment_id": assignment.id}
            if assignment.scope.lower() != scope.id.lower():
                if (include_inherited and assignment.scope.lower() not in audited
                        and assignment.id.lower() not in inherited_seen):
                    inherited_seen.add(assignment.id.lower())
                    findings.append(Finding(INHERITED, assignment.scope, assignment.scope, **common,
                                            fix="inherited from above: review it where it is assigned"))
                    if info.privileged:
                        findings.append(_privileged(assignment.scope, assignment.scope, common))
                continue
            key = (assignment.principal_id.lower(), assignment.role_guid)
            binding = wanted.get(key)
            if binding is None:
                fix = (_declare_or_remove(stack_file, scope.name, info.name, assignment)
                       if scope.kind in roles.ALL_SCOPES else _remove(scope, assignment))
                findings.append(Finding(UNDECLARED, scope.name, scope.id, **common, fix=fix))
            else:
                matched.add(key)
                declared_type = binding.principal.type
                if assignment.principal_type and assignment.principal_type != declared_type:
                    findings.append(Finding(
                        TYPE_MISMATCH, scope.name, scope.id, **common, alias=binding.alias,
                        declared_type=declared_type,
                        fix=f"the principal is a {assignment.principal_type}: set "
                            f"hdsctl:principals.{binding.alias}.type: {assignment.principal_type} in "
                            f"{stack_file}, or check the object id"))
                else:
                    findings.append(Finding(OK, scope.name, scope.id, **common, alias=binding.alias,
                                            declared_type=declared_type))
            if info.privileged:
                findings.append(_privileged(scope.name, scope.id, common))
        for key, binding in wanted.items():
            if key not in matched:
                findings.append(Finding(
                    MISSING, scope.name, scope.id, binding.principal.object_id, binding.principal.type,
                    binding.role.name, binding.role.guid, alias=binding.alias,
                    declared_type=binding.principal.type,
                    fix=f"declared at {binding.where} of {stack_file} but not in "
                        f"Azure: run `pulumi up --stack {env_name}` (or find who removed it)"))
    return findings


def identity_missing(env_name: str, scope_name: str, resource_id: str, what: str) -> Finding:
    """A grant the program makes to a managed identity cannot be checked: the identity (or the
    resource that holds it) does not exist yet."""
    return Finding(MISSING, scope_name, resource_id, "", None, what, "",
                   fix=f"{resource_id} or its identity does not exist: run `pulumi up --stack {env_name}` "
                       "(its grants are audited once it does)")


def _privileged(scope_name: str, scope_id: str, common: dict) -> Finding:
    return Finding(PRIVILEGED, scope_name, scope_id, **common,
                   fix=f"{common['role']} can change or grant access to patient data services: remove it "
                       f"(az role assignment delete --ids {common['assignment_id']}) and grant a data role")


def _remove(scope: Scope, assignment: ActualAssignment) -> str:
    """Where the program alone grants (event destinations, a DICOM Data Lake), a stack file cannot
    declare more: anyone else holding a role there reaches the data around the services' RBAC."""
    return (f"the program grants only its own identities at this {scope.kind}; this one reaches its data "
            f"outside the services' access control: remove it (az role assignment delete --ids "
            f"{assignment.id}) or record why it must stay")


def _declare_or_remove(stack_file: str, scope: str, role: str, assignment: ActualAssignment) -> str:
    kind = assignment.principal_type or "<User|Group|ServicePrincipal>"
    return (f"not in {stack_file}. Keep it: add hdsctl:principals.<alias>: "
            f"{{objectId: {assignment.principal_id}, type: {kind}}} and hdsctl:roleAssignments: "
            f"- {{role: {role}, principal: <alias>, scope: {scope}}}. Or remove it: "
            f"az role assignment delete --ids {assignment.id}")
