"""Events of a workspace: its Event Grid system topic, the queue and dead-letter container the
events go to, the topic identity's grants on them, and one subscription per declared one.

Order matters both ways. Subscriptions exist before the DICOM and FHIR services (the program
makes the services depend on them), so the first image stored has its event: Event Grid does
not backfill. On deletion the same dependencies remove the services first, then the
subscriptions, then the topic and the workspace, the order Microsoft documents.
"""

from __future__ import annotations

import pulumi

from hdsctl import naming, roles
from hdsctl.components.azure import package
from hdsctl.components.shared import Placement, grant, storage_account_security
from hdsctl.environment.events import EventDestination, EventSubscription
from hdsctl.environment.load import Environment
from hdsctl.environment.references import event_kinds

eventgrid = package("eventgrid", "system_topic", "system_topic_event_subscription")
storage = package("storage", "storage_account", "blob_container", "queue")

# Delivery and dead-lettering use the topic's own managed identity: no keys, no SAS.
SYSTEM_IDENTITY = "SystemAssigned"
# Queue messages never expire on their own: a consumer that is down for a week loses nothing.
QUEUE_MESSAGE_TTL_FOREVER = -1


def subject_prefixes(env: Environment, subscription: EventSubscription) -> list[str]:
    """The subject of a health event starts with the service's host name: one prefix per service
    whose events this subscription delivers."""
    wanted = event_kinds(subscription.event_types)
    named = set(subscription.services)
    prefixes = []
    if roles.DICOM in wanted:
        prefixes += [naming.host_of(naming.dicom_url(env.workspace_name, s.name)) + "/"
                     for s in env.spec.dicom_services if not named or s.name in named]
    if roles.FHIR in wanted:
        prefixes += [naming.host_of(naming.fhir_url(env.workspace_name, s.name)) + "/"
                     for s in env.spec.fhir_services if not named or s.name in named]
    return prefixes


class WorkspaceEvents(pulumi.ComponentResource):
    def __init__(self, env: Environment, *, workspace_id: pulumi.Output[str], placement: Placement,
                 private: bool, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hdsctl:events:WorkspaceEvents", f"{env.workspace_name}-events", None, opts)
        self._env, self._placement = env, placement
        spec = env.spec.events
        used = {s.destination for s in spec.subscriptions}
        destinations = [d for d in spec.destinations if d.name in used]
        dead_letters = any(s.dead_letter for s in spec.subscriptions)
        own_account = (any(d.storage_queue and d.storage_queue.account_id is None for d in destinations)
                       or (dead_letters and spec.dead_letter.account_id is None))
        self.account = self._account(private) if own_account else None
        self.topic = self._topic(workspace_id)
        principal_id = self.topic.identity.apply(lambda identity: identity.principal_id)

        grants_by_destination = {d.name: self._deliver_to(d, principal_id) for d in destinations}
        self.dead_letter_grant = self._dead_letter_to(principal_id) if dead_letters else None
        self.subscriptions = [self._subscription(s, next(d for d in destinations if d.name == s.destination),
                                                 grants_by_destination[s.destination])
                              for s in spec.subscriptions]
        self.register_outputs({})

    def _child(self, **options) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **options)

    def _account(self, private: bool) -> storage.StorageAccount:
        """The environment's events account: identity-only access, TLS 1.2, no public blobs; in a
        private environment only trusted Azure services (Event Grid among them) reach it."""
        placement = self._placement
        return storage.StorageAccount(
            f"{self._env.workspace_name}-events-storage",
            account_name=self._env.events_storage_account_name,
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            sku={"name": "Standard_ZRS" if self._env.spec.tier == "prod" else "Standard_LRS"},
            **storage_account_security(private),
            tags=placement.tags,
            opts=self._child(protect=placement.protect),
        )

    def _topic(self, workspace_id: pulumi.Output[str]) -> eventgrid.SystemTopic:
        """One system topic per workspace. One made outside hdsctl is adopted (imported), since a
        second cannot exist for the same workspace."""
        adopted = self._env.spec.events.system_topic_id
        resource_group = (adopted.split("/")[4] if adopted else self._placement.resource_group_name)
        self.topic_resource_group = resource_group
        return eventgrid.SystemTopic(
            f"{self._env.workspace_name}-events-topic",
            system_topic_name=naming.arm_name(adopted) if adopted else naming.system_topic_name(
                self._env.workspace_name),
            resource_group_name=resource_group,
            location=self._placement.location,
            source=workspace_id,
            topic_type=naming.SYSTEM_TOPIC_TYPE,
            identity=eventgrid.IdentityInfoArgs(type=SYSTEM_IDENTITY),
            tags=self._placement.tags,
            opts=self._child(import_=adopted) if adopted else self._child(),
        )

    def _account_id(self, account_id: str | None) -> pulumi.Input[str]:
        return account_id if account_id is not None else self.account.id

    def _deliver_to(self, destination: EventDestination, principal_id) -> list[pulumi.Resource]:
        """The least grant that lets the topic deliver there, and the queue when it is ours to make."""
        label = f"{self._env.workspace_name}-events-{destination.name}"
        made: list[pulumi.Resource] = []
        if destination.storage_queue is not None:
            target = destination.storage_queue
            if target.account_id is None:  # a queue in an account hdsctl made
                queue = storage.Queue(label, account_name=self.account.name, queue_name=target.queue,
                                      resource_group_name=self._placement.resource_group_name,
                                      opts=self._child())
                made.append(queue)
                scope = queue.id
            else:  # an existing account: its queue exists already
                scope = naming.queue_id(target.account_id, target.queue)
        else:
            scope = destination.existing_id
        role = roles.sender_role(destination.kind)
        made.append(grant(self, f"{label}-sender", scope, principal_id, "ServicePrincipal", role,
                          self._placement.subscription_id, "Event Grid delivers workspace events"))
        return made

    def _dead_letter_to(self, principal_id) -> list[pulumi.Resource]:
        target = self._env.spec.events.dead_letter
        label = f"{self._env.workspace_name}-events-dead-letters"
        made: list[pulumi.Resource] = []
        if target.account_id is None:
            container = storage.BlobContainer(label, account_name=self.account.name,
                                              container_name=target.container, public_access="None",
                                              resource_group_name=self._placement.resource_group_name,
                                              opts=self._child())
            made.append(container)
            scope = container.id
        else:
            scope = naming.container_id(target.account_id, target.container)
        made.append(grant(self, f"{label}-writer", scope, principal_id, "ServicePrincipal",
                          roles.sender_role(roles.BLOB_CONTAINER), self._placement.subscription_id,
                          "Event Grid writes undeliverable workspace events"))
        return made

    def _destination_args(self, destination: EventDestination):
        # Typed arguments: the destination is a union, and only a typed value reaches ARM with
        # its property names spelled right.
        if destination.storage_queue is not None:
            return eventgrid.StorageQueueEventSubscriptionDestinationArgs(
                endpoint_type="StorageQueue",
                resource_id=self._account_id(destination.storage_queue.account_id),
                queue_name=destination.storage_queue.queue,
                queue_message_time_to_live_in_seconds=QUEUE_MESSAGE_TTL_FOREVER)
        if destination.service_bus_queue_id is not None:
            return eventgrid.ServiceBusQueueEventSubscriptionDestinationArgs(
                endpoint_type="ServiceBusQueue", resource_id=destination.service_bus_queue_id)
        return eventgrid.EventHubEventSubscriptionDestinationArgs(
            endpoint_type="EventHub", resource_id=destination.event_hub_id)

    def _subscription(self, subscription: EventSubscription, destination: EventDestination,
                      delivery_grants: list[pulumi.Resource]) -> eventgrid.SystemTopicEventSubscription:
        dead_letter = self._env.spec.events.dead_letter
        after = [*delivery_grants, *(self.dead_letter_grant or [] if subscription.dead_letter else [])]
        identity = eventgrid.EventSubscriptionIdentityArgs(type=SYSTEM_IDENTITY)
        return eventgrid.SystemTopicEventSubscription(
            f"{self._env.workspace_name}-events-{subscription.name}",
            event_subscription_name=subscription.name,
            system_topic_name=self.topic.name,
            resource_group_name=self.topic_resource_group,
            event_delivery_schema=subscription.schema_,
            filter=eventgrid.EventSubscriptionFilterArgs(
                included_event_types=list(subscription.event_types),
                # Only this environment's services, by the host name each event's subject starts with.
                advanced_filters=[eventgrid.StringBeginsWithAdvancedFilterArgs(
                    key="subject", operator_type="StringBeginsWith",
                    values=subject_prefixes(self._env, subscription))],
            ),
            retry_policy=eventgrid.RetryPolicyArgs(
                max_delivery_attempts=subscription.max_delivery_attempts,
                event_time_to_live_in_minutes=subscription.event_time_to_live_minutes),
            delivery_with_resource_identity=eventgrid.DeliveryWithResourceIdentityArgs(
                identity=identity, destination=self._destination_args(destination)),
            dead_letter_with_resource_identity=eventgrid.DeadLetterWithResourceIdentityArgs(
                identity=identity,
                dead_letter_destination=eventgrid.StorageBlobDeadLetterDestinationArgs(
                    endpoint_type="StorageBlob", resource_id=self._account_id(dead_letter.account_id),
                    blob_container_name=dead_letter.container),
            ) if subscription.dead_letter else None,
            opts=self._child(depends_on=after),
        )
