"""Storage indexing (preview) for a DICOM service's own Data Lake: the queue and `<queue>-poison`
in the account, an Event Grid system topic on the account (adopted when one exists: an account
has one), its identity's grant to send to the queue, and one subscription per covered folder
with Microsoft's filters (the service's folder, `.dcm`, case-sensitive, BlobCreated/Deleted, never
the service's own writes), in CloudEvents, delivered and dead-lettered with the topic identity.
The service's writer identity may dequeue from both queues.

Everything here exists before the service is told to read the queue (StorageIndexingQueue in
storage_indexing_config.py): Event Grid does not backfill, so files written before the
subscription would never be indexed.
"""

from __future__ import annotations

import pulumi

from hdsctl import naming, roles
from hdsctl.components.azure import package
from hdsctl.components.shared import Placement, grant
from hdsctl.environment.storage import StorageIndexing
from hdsctl.events.schema import IndexingFilter, indexing_filter

eventgrid = package("eventgrid", "system_topic", "system_topic_event_subscription")
storage = package("storage", "blob_container", "queue")

# Microsoft's template: a week on the queue, 30 tries over a day.
QUEUE_MESSAGE_TTL_SECONDS = 604_800
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TTL_MINUTES = 1_440
SYSTEM_IDENTITY = "SystemAssigned"


class StorageIndexingEvents(pulumi.ComponentResource):
    def __init__(self, label: str, spec: StorageIndexing, *, account_id: pulumi.Input[str],
                 account_name: pulumi.Input[str], account_resource_group: pulumi.Input[str],
                 file_system: str, workspace_name: str, service_name: str, reader_principal_id,
                 placement: Placement, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hdsctl:storage:StorageIndexingEvents", f"{label}-indexing", None, opts)
        self._label, self._spec, self._placement = f"{label}-indexing", spec, placement
        self._account_id, self._account_name = account_id, account_name
        self._resource_group = account_resource_group
        queues = [self._queue(spec.queue, "queue"), self._queue(f"{spec.queue}-poison", "poison")]
        dead_letters = (self._container(spec.dead_letter.container) if spec.dead_letter else None)
        self.topic = self._topic()
        sender = self.topic.identity.apply(lambda identity: identity.principal_id)
        delivery = [grant(self, f"{self._label}-sender", queues[0].id, sender, "ServicePrincipal",
                          roles.sender_role(roles.STORAGE_QUEUE), placement.subscription_id,
                          "Event Grid delivers the Data Lake's Blob events for indexing")]
        if dead_letters is not None:
            delivery.append(grant(self, f"{self._label}-dead-letters-writer", dead_letters.id, sender,
                                  "ServicePrincipal", roles.sender_role(roles.BLOB_CONTAINER),
                                  placement.subscription_id, "Event Grid writes undeliverable Blob events"))
        self.readers = [grant(self, f"{self._label}-{kind}-reader", queue.id, reader_principal_id,
                              "ServicePrincipal", roles.role_by_name("Storage Queue Data Contributor"),
                              placement.subscription_id, "the DICOM service indexes from its queues")
                        for kind, queue in zip(("queue", "poison"), queues, strict=True)]
        admitted = indexing_filter(file_system, workspace_name, service_name, spec.partitions)
        self.subscriptions = [
            self._subscription(partition, prefix, admitted, service_name,
                               [*delivery, *queues, *([dead_letters] if dead_letters else [])])
            for partition, prefix in zip(spec.partitions or [None], admitted.prefixes, strict=True)]
        self.register_outputs({"queue": spec.queue})

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What the service must not be told to read the queue before."""
        return [*self.subscriptions, *self.readers]

    def _child(self, **options) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **options)

    def _queue(self, name: str, kind: str) -> storage.Queue:
        return storage.Queue(f"{self._label}-{kind}", account_name=self._account_name, queue_name=name,
                             resource_group_name=self._resource_group, opts=self._child())

    def _container(self, name: str) -> storage.BlobContainer:
        return storage.BlobContainer(f"{self._label}-dead-letters", account_name=self._account_name,
                                     container_name=name, public_access="None",
                                     resource_group_name=self._resource_group, opts=self._child())

    def _topic(self) -> eventgrid.SystemTopic:
        adopted = self._spec.system_topic_id
        self._topic_resource_group = adopted.split("/")[4] if adopted else self._resource_group
        return eventgrid.SystemTopic(
            f"{self._label}-topic",
            system_topic_name=(naming.arm_name(adopted) if adopted else
                               pulumi.Output.from_input(self._account_name).apply(naming.storage_system_topic_name)),
            resource_group_name=self._topic_resource_group,
            location=self._placement.location,
            source=self._account_id,
            topic_type=naming.STORAGE_SYSTEM_TOPIC_TYPE,
            identity=eventgrid.IdentityInfoArgs(type=SYSTEM_IDENTITY),
            tags=self._placement.tags,
            opts=self._child(import_=adopted) if adopted else self._child(),
        )

    def _subscription(self, partition: str | None, prefix: str, admitted: IndexingFilter, service_name: str,
                      after: list[pulumi.Resource]) -> eventgrid.SystemTopicEventSubscription:
        identity = eventgrid.EventSubscriptionIdentityArgs(type=SYSTEM_IDENTITY)
        dead_letter = self._spec.dead_letter
        suffix = f"-{partition.lower().replace('.', '-')}" if partition else ""
        return eventgrid.SystemTopicEventSubscription(
            f"{self._label}-subscription{suffix}",
            event_subscription_name=naming.indexing_subscription_name(service_name, partition),
            system_topic_name=self.topic.name,
            resource_group_name=self._topic_resource_group,
            event_delivery_schema="CloudEventSchemaV1_0",
            filter=eventgrid.EventSubscriptionFilterArgs(
                included_event_types=list(admitted.event_types),
                subject_begins_with=prefix,
                subject_ends_with=admitted.suffix,
                is_subject_case_sensitive=True,
                # The service's own writes (STOW) are indexed already: never again from the queue.
                advanced_filters=[eventgrid.StringNotBeginsWithAdvancedFilterArgs(
                    key="data.clientRequestId", operator_type="StringNotBeginsWith",
                    values=[admitted.own_writes])],
            ),
            retry_policy=eventgrid.RetryPolicyArgs(max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
                                                   event_time_to_live_in_minutes=EVENT_TTL_MINUTES),
            delivery_with_resource_identity=eventgrid.DeliveryWithResourceIdentityArgs(
                identity=identity,
                destination=eventgrid.StorageQueueEventSubscriptionDestinationArgs(
                    endpoint_type="StorageQueue", resource_id=self._account_id, queue_name=self._spec.queue,
                    queue_message_time_to_live_in_seconds=QUEUE_MESSAGE_TTL_SECONDS)),
            dead_letter_with_resource_identity=eventgrid.DeadLetterWithResourceIdentityArgs(
                identity=identity,
                dead_letter_destination=eventgrid.StorageBlobDeadLetterDestinationArgs(
                    endpoint_type="StorageBlob", resource_id=self._account_id,
                    blob_container_name=dead_letter.container),
            ) if dead_letter else None,
            opts=self._child(depends_on=after),
        )
