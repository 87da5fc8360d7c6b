"""Read role assignments and custom role definitions through azure-mgmt-authorization.

One list request per scope (and page), with the atScope() filter rather than a
subscription-wide list, and the scopes read concurrently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hdsctl import naming, roles
from hdsctl.environment.access import Scope
from hdsctl.errors import BadInput, HdsctlError

READ_PERMISSION = "Microsoft.Authorization/roleAssignments/read"
# A role that may perform either can grant itself, or anyone, anything.
PRIVILEGED_OPERATIONS = ("Microsoft.Authorization/roleAssignments/write",
                         "Microsoft.Authorization/roleDefinitions/write")


class AuditAccessDenied(BadInput):
    """Resource Manager refused to show the role assignments; the message names the permission."""


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


def authorization_client(subscription_id: str, arm_url: str, credential=None, budget=None):
    from azure.mgmt.authorization import AuthorizationManagementClient

    from hdsctl.credentials import ARM, arm_scope, credential_for
    from hdsctl.retry import BudgetRetryPolicy

    scope = arm_scope(arm_url)
    return AuthorizationManagementClient(
        credential or credential_for(ARM, scope), subscription_id,
        base_url=arm_url, credential_scopes=[scope], retry_policy=BudgetRetryPolicy(budget),
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


SYSTEM_TOPIC_API = "2025-02-15"
IDENTITY_API = "2023-01-31"


def system_topic_principal(client, topic_id: str) -> str | None:
    """The object id of the system topic's identity; None when the topic or its identity does
    not exist (not deployed yet, or made without an identity)."""
    topic = _read_resource(client, topic_id, SYSTEM_TOPIC_API)
    return (topic.get("identity") or {}).get("principalId") or None


def user_assigned_identity_principal(client, identity_id: str) -> str | None:
    """The object id of a user-assigned identity; None when it does not exist (not deployed yet)."""
    identity = _read_resource(client, identity_id, IDENTITY_API)
    return (identity.get("properties") or {}).get("principalId") or None


def _read_resource(client, resource_id: str, api_version: str) -> dict:
    """A resource's ARM body through the authorization client's pipeline; {} when it is absent."""
    from azure.core.rest import HttpRequest

    def read() -> dict:
        url = client._client.format_url(f"{resource_id}?api-version={api_version}")
        response = client._client.send_request(HttpRequest("GET", url))
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        return response.json()

    return _guarded(read, resource_id)


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
        return RoleInfo(definition.role_name or naming.arm_name(definition_id),
                        grants_privilege(definition.permissions or []), True)

    if custom:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(custom)))) as pool:
            for definition_id, info in zip(custom, pool.map(one, custom), strict=True):
                resolved[definition_id.lower()] = info
    return resolved


def grants_privilege(permissions) -> bool:
    """Whether any permission block allows a privileged operation: its `actions` match it by
    Azure's wildcard rules (`*` matches any characters, case-insensitive) and its `notActions`
    do not take it away again."""
    for permission in permissions:
        actions = list(getattr(permission, "actions", None) or [])
        not_actions = list(getattr(permission, "not_actions", None) or [])
        for operation in PRIVILEGED_OPERATIONS:
            allowed = any(_matches(action, operation) for action in actions)
            if allowed and not any(_matches(taken, operation) for taken in not_actions):
                return True
    return False


def _matches(pattern: str, operation: str) -> bool:
    import re

    regex = ".*".join(re.escape(part) for part in pattern.strip().split("*"))
    return re.fullmatch(regex, operation, flags=re.IGNORECASE) is not None


def _guarded(call, where: str):
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        return call()
    except ClientAuthenticationError as err:
        if getattr(err, "status_code", None) in (401, 403):
            raise _denied(where, err) from None
        raise AuditAccessDenied(f"could not get a token for Resource Manager: {err.message}\n"
                                "  sign in (az login), use a managed identity, or set HDSCTL_ARM_TOKEN"
                                ) from None
    except HttpResponseError as err:
        if err.status_code in (401, 403):
            raise _denied(where, err) from None
        raise AuditFailed(f"reading {where} failed ({err.status_code}): {err.message}") from None
    except (ServiceRequestError, ServiceResponseError) as err:
        raise AuditFailed(f"no answer from Resource Manager for {where} within the time budget: "
                          f"{str(err).splitlines()[0][:200]}") from None


def _denied(where: str, err) -> AuditAccessDenied:
    return AuditAccessDenied(
        f"access denied reading {where} ({err.status_code}): {err.message}\n"
        f"  the caller needs {READ_PERMISSION} there (the Reader role grants it)"
    )
