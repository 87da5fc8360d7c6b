"""Who the spec says may do what where: role bindings with aliases resolved.

Pure data, read by the Pulumi components (to create assignments) and by the role audit
(to compare with what Azure holds).
"""

from __future__ import annotations

from dataclasses import dataclass

from hdsctl import naming, roles
from hdsctl.environment.principals import Principal
from hdsctl.environment.references import WORKSPACE_SCOPE, scope_kinds

# The alias of the identity that runs `pulumi up` (and with it the tag sync): its grants keep
# the deployment itself working, so promotion never prunes them.
DEPLOYER_ALIAS = "deployer"
# The workspace's Event Grid topic: its identity's grants come from hdsctl:events, not from
# hdsctl:roleAssignments, and its object id is known only once it is deployed.
EVENTS_TOPIC_ALIAS = "events-topic"
# The role a DICOM service's Data Lake writer identity holds on the account.
STORAGE_WRITER_ROLE = "Storage Blob Data Contributor"


@dataclass(frozen=True)
class Binding:
    """A role granted to a principal, resolved from aliases to object ids."""

    role: roles.BuiltinRole
    alias: str
    principal: Principal
    description: str | None = None
    index: int = 0  # position in hdsctl:roleAssignments
    declared_at: str | None = None  # where the spec asks for it, when not hdsctl:roleAssignments

    @property
    def where(self) -> str:
        return self.declared_at or f"hdsctl:roleAssignments[{self.index}]"


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


def system_topic_id(env, subscription_id: str) -> str | None:
    """The workspace's Event Grid system topic, when the spec subscribes to its events."""
    events = env.spec.events
    if events is None or not events.subscriptions:
        return None
    return events.system_topic_id or naming.system_topic_id(
        subscription_id, env.resource_group_name, env.workspace_name)


def event_grants(env, subscription_id: str) -> list[tuple[Scope, roles.BuiltinRole]]:
    """Where the topic's identity must be able to deliver, and the least role for each: the
    destinations the subscriptions use, and the dead-letter container when one dead-letters."""
    events = env.spec.events
    if events is None or not events.subscriptions:
        return []
    own_account = naming.storage_account_id(subscription_id, env.resource_group_name,
                                            env.events_storage_account_name)
    used = {s.destination for s in events.subscriptions}
    grants = []
    for destination in events.destinations:
        if destination.name not in used:
            continue
        queue = destination.storage_queue
        scope_id = (naming.queue_id(queue.account_id or own_account, queue.queue) if queue
                    else destination.existing_id)
        grants.append((Scope(f"events:{destination.name}", destination.kind, scope_id),
                       roles.sender_role(destination.kind)))
    if any(s.dead_letter for s in events.subscriptions):
        container = events.dead_letter
        scope_id = naming.container_id(container.account_id or own_account, container.container)
        grants.append((Scope("events:dead-letters", roles.BLOB_CONTAINER, scope_id),
                       roles.sender_role(roles.BLOB_CONTAINER)))
    return grants


def event_bindings(env, subscription_id: str, topic_principal_id: str) -> dict[str, list[Binding]]:
    """The topic's grants as bindings, once its identity's object id is known."""
    principal = Principal(object_id=topic_principal_id, type="ServicePrincipal")
    return {scope.name: [Binding(role, EVENTS_TOPIC_ALIAS, principal, declared_at="hdsctl:events")]
            for scope, role in event_grants(env, subscription_id)}


USER_ASSIGNED, SYSTEM_TOPIC = "user-assigned identity", "system topic"


@dataclass(frozen=True)
class ProgramGrants:
    """Grants the program makes to a managed identity it creates, not declared in
    hdsctl:roleAssignments: audited once the identity's object id can be read."""

    alias: str
    identity_id: str  # the user-assigned identity, or the system topic whose identity it is
    identity_kind: str  # USER_ASSIGNED or SYSTEM_TOPIC
    what: str  # how a report names the identity while it does not exist
    declared_at: str
    grants: tuple[tuple[Scope, roles.BuiltinRole], ...]


def program_grants(env, subscription_id: str) -> list[ProgramGrants]:
    """Per DICOM service with a Data Lake: its writer identity (Blob Data Contributor on the
    account; with indexing also Queue Data Contributor on both queues) and, with indexing, the
    account's system topic (Message Sender on the queue, Blob Data Contributor on its dead letters)."""
    found = []
    for index, service in enumerate(env.spec.dicom_services):
        if service.storage is None:
            continue
        account_id = service.storage.storage_account_id or naming.storage_account_id(
            subscription_id, env.resource_group_name, env.dicom_storage_account_name(service))
        at = f"hdsctl:dicomServices[{index}].storage"
        writes = [(Scope(f"storage:{service.name}", roles.STORAGE_ACCOUNT, account_id),
                   roles.role_by_name(STORAGE_WRITER_ROLE))]
        topic = None
        if service.storage.indexing is not None:
            queue_grants, topic = _indexing_grants(service.name, service.storage.indexing, account_id,
                                                   subscription_id, f"{at}.indexing")
            writes += queue_grants
        identity_id = naming.user_assigned_identity_id(
            subscription_id, env.resource_group_name,
            naming.dicom_storage_identity_name(env.workspace_name, service.name))
        found.append(ProgramGrants(f"{service.name}-storage-writer", identity_id, USER_ASSIGNED,
                                   "Data Lake writer identity", at, tuple(writes)))
        found += [topic] if topic else []
    return found


def _indexing_grants(service: str, indexing, account_id: str, subscription_id: str, at: str):
    """The writer identity's grants on both queues, and the account topic's grants."""
    queues = [Scope(f"indexing:{service}:{kind}", roles.STORAGE_QUEUE, naming.queue_id(account_id, name))
              for kind, name in (("queue", indexing.queue), ("poison", f"{indexing.queue}-poison"))]
    delivers = [(queues[0], roles.sender_role(roles.STORAGE_QUEUE))]
    if indexing.dead_letter is not None:
        delivers.append((Scope(f"indexing:{service}:dead-letters", roles.BLOB_CONTAINER,
                               naming.container_id(account_id, indexing.dead_letter.container)),
                         roles.sender_role(roles.BLOB_CONTAINER)))
    account_group, account = account_id.split("/")[4], naming.arm_name(account_id)
    topic_id = indexing.system_topic_id or naming.system_topic_id_named(
        subscription_id, account_group, naming.storage_system_topic_name(account))
    topic = ProgramGrants(f"{service}-indexing-topic", topic_id, SYSTEM_TOPIC, "Data Lake event topic identity",
                          at, tuple(delivers))
    return [(queue, roles.role_by_name("Storage Queue Data Contributor")) for queue in queues], topic


def program_bindings(owner: ProgramGrants, principal_id: str) -> dict[str, list[Binding]]:
    """The grants as bindings, once the identity's object id is known."""
    principal = Principal(object_id=principal_id, type="ServicePrincipal")
    return {scope.name: [Binding(role, owner.alias, principal, declared_at=owner.declared_at)]
            for scope, role in owner.grants}
