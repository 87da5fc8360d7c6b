"""Read role assignments and custom role definitions through azure-mgmt-authorization.

One list request per scope (and page), with the atScope() filter rather than a
subscription-wide list, and the scopes read concurrently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hdsctl import naming, roles
from hdsctl.errors import EXIT_BAD_INPUT, HdsctlError
from hdsctl.spec.access import Scope

READ_PERMISSION = "Microsoft.Authorization/roleAssignments/read"
PRIVILEGED_ACTIONS = ("*", "microsoft.authorization/*/write", "microsoft.authorization/roleassignments/write",
                      "microsoft.authorization/*")


class AuditAccessDenied(HdsctlError):
    exit_code = EXIT_BAD_INPUT


class AuditFailed(HdsctlError):
    pass


@dataclass(frozen=True)
class ActualAssignment:
    id: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str | None

    @property
    def role_guid(self) -> str:
        return naming.arm_name(self.role_definition_id).lower()


@dataclass(frozen=True)
class RoleInfo:
    name: str
    privileged: bool
    custom: bool


def authorization_client(subscription_id: str, arm_url: str, credential=None):
    from azure.mgmt.authorization import AuthorizationManagementClient

    from hdsctl.credentials import arm_scope, azure_credential

    return AuthorizationManagementClient(
        credential or azure_credential(), subscription_id,
        base_url=arm_url, credential_scopes=[arm_scope(arm_url)],
    )


def read_assignments(client, scopes: list[Scope], workers: int = 8) -> dict[str, list[ActualAssignment]]:
    """Scope name → every assignment that applies there (at the scope or inherited from above)."""

    def one(scope: Scope) -> list[ActualAssignment]:
        pages = client.role_assignments.list_for_scope(scope.id, filter="atScope()")
        return [
            ActualAssignment(a.id, a.scope, a.role_definition_id, a.principal_id, a.principal_type)
            for a in _guarded(lambda: list(pages), scope.id)
        ]

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(scopes)))) as pool:
        return dict(zip([s.name for s in scopes], pool.map(one, scopes), strict=True))


def resolve_roles(client, role_definition_ids: set[str], workers: int = 8) -> dict[str, RoleInfo]:
    """Role definition id (lower case) → name and whether it is privileged.

    Built-in roles come from the one table; others (custom roles) from the definitions API.
    """
    resolved, custom = {}, []
    for definition_id in role_definition_ids:
        builtin = roles.role_by_guid(naming.arm_name(definition_id))
        if builtin is not None:
            resolved[definition_id.lower()] = RoleInfo(builtin.name, builtin.privileged, False)
        else:
            custom.append(definition_id)

    def one(definition_id: str) -> RoleInfo:
        definition = _guarded(lambda: client.role_definitions.get_by_id(definition_id), definition_id)
        actions = [action.lower() for permission in definition.permissions or []
                   for action in permission.actions or []]
        return RoleInfo(definition.role_name or naming.arm_name(definition_id),
                        any(action in PRIVILEGED_ACTIONS for action in actions), True)

    if custom:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(custom)))) as pool:
            for definition_id, info in zip(custom, pool.map(one, custom), strict=True):
                resolved[definition_id.lower()] = info
    return resolved


def _guarded(call, where: str):
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    try:
        return call()
    except ClientAuthenticationError as err:
        if getattr(err, "status_code", None) in (401, 403):
            raise _denied(where, err) from None
        raise AuditAccessDenied(f"could not get a token for Resource Manager: {err.message}\n"
                                "  sign in (az login), use a managed identity, or set HDSCTL_ACCESS_TOKEN"
                                ) from None
    except HttpResponseError as err:
        if err.status_code in (401, 403):
            raise _denied(where, err) from None
        raise AuditFailed(f"reading {where} failed ({err.status_code}): {err.message}") from None
    except ServiceRequestError as err:
        raise AuditFailed(f"cannot reach Resource Manager for {where}: {err}") from None


def _denied(where: str, err) -> AuditAccessDenied:
    return AuditAccessDenied(
        f"access denied reading {where} ({err.status_code}): {err.message}\n"
        f"  the caller needs {READ_PERMISSION} there (the Reader role grants it)"
    )
