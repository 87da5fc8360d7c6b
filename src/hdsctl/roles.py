"""The one table of Azure built-in roles this project knows.

Every other module (spec validation, the Pulumi components, policies, the role audit) reads
role names and GUIDs from here.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKSPACE, DICOM, FHIR = "workspace", "dicom", "fhir"
ALL_SCOPES = frozenset({WORKSPACE, DICOM, FHIR})
# Where event delivery is granted: the program grants these to the workspace's Event Grid
# topic; a stack file does not declare them.
STORAGE_QUEUE, BLOB_CONTAINER, SERVICE_BUS_QUEUE, EVENT_HUB = (
    "storage-queue", "blob-container", "service-bus-queue", "event-hub")
# A DICOM service's own Data Lake account: the program grants its writer identity there.
STORAGE_ACCOUNT = "storage-account"


@dataclass(frozen=True)
class BuiltinRole:
    name: str
    guid: str
    # Which kinds of scope the role means something at.
    scopes: frozenset[str]
    # Can manage the resource or grant access, rather than only use the data.
    privileged: bool = False
    # May be declared in a stack file (the audit still recognises the others).
    declarable: bool = True


BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("DICOM Data Owner", "58a3b984-7adf-4c20-983a-32417c86fbc8", frozenset({WORKSPACE, DICOM})),
    BuiltinRole("DICOM Data Reader", "e89c7a3c-2f64-4fa1-a847-3e4c9ba4283a", frozenset({WORKSPACE, DICOM})),
    BuiltinRole("FHIR Data Contributor", "5a1fc7df-4bf1-4951-a576-89034ee01acd", frozenset({WORKSPACE, FHIR})),
    BuiltinRole("FHIR Data Reader", "4c8d0bbc-75d3-4935-991f-5f3c56d81508", frozenset({WORKSPACE, FHIR})),
    BuiltinRole("FHIR Data Writer", "3f88fce4-5892-4214-ae73-ba5294559913", frozenset({WORKSPACE, FHIR})),
    BuiltinRole("FHIR Data Exporter", "3db33094-8700-4567-8da5-1501d4e7e843", frozenset({WORKSPACE, FHIR})),
    BuiltinRole("FHIR Data Importer", "4465e953-8ced-4406-a58e-0f6e3f3b530b", frozenset({WORKSPACE, FHIR})),
    BuiltinRole("FHIR SMART User", "4ba50f17-9666-485c-a643-ff00808643f0", frozenset({WORKSPACE, FHIR})),
    BuiltinRole("FHIR Data Converter", "a1705bd2-3a8f-45a5-8683-466fcfd5cc24", frozenset({WORKSPACE, FHIR})),
    BuiltinRole("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", ALL_SCOPES, privileged=True),
    BuiltinRole("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c", ALL_SCOPES, privileged=True),
    BuiltinRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7", ALL_SCOPES),
    BuiltinRole("Storage Queue Data Message Sender", "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
                frozenset({STORAGE_QUEUE}), declarable=False),
    BuiltinRole("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                frozenset({BLOB_CONTAINER, STORAGE_ACCOUNT}), declarable=False),
    # Storage indexing: the DICOM service dequeues Blob events and re-queues what it breaks down.
    BuiltinRole("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
                frozenset({STORAGE_QUEUE}), declarable=False),
    BuiltinRole("Azure Service Bus Data Sender", "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
                frozenset({SERVICE_BUS_QUEUE}), declarable=False),
    BuiltinRole("Azure Event Hubs Data Sender", "2b629674-e913-4c01-ae53-ef4638d8f975",
                frozenset({EVENT_HUB}), declarable=False),
    BuiltinRole(
        "User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", ALL_SCOPES,
        privileged=True, declarable=False,
    ),
    BuiltinRole(
        "Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        ALL_SCOPES, privileged=True, declarable=False,
    ),
)

_BY_NAME = {role.name.lower(): role for role in BUILTIN_ROLES}
_BY_GUID = {role.guid: role for role in BUILTIN_ROLES}

DECLARABLE_ROLE_NAMES = tuple(role.name for role in BUILTIN_ROLES if role.declarable)


def role_by_name(name: str) -> BuiltinRole | None:
    """Look a role up by its display name, ignoring case."""
    return _BY_NAME.get(name.strip().lower())


def sender_role(destination_kind: str) -> BuiltinRole:
    """The least role that lets a managed identity deliver to a destination of this kind."""
    return next(role for role in BUILTIN_ROLES if destination_kind in role.scopes and not role.privileged)


def role_by_guid(guid: str) -> BuiltinRole | None:
    return _BY_GUID.get(guid.strip().lower())


def role_definition_id(subscription_id: str, role: BuiltinRole) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization"
        f"/roleDefinitions/{role.guid}"
    )
