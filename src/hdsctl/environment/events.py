"""Event delivery as a stack file declares it: destinations, dead letters and subscriptions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    model_validator,
)
from pydantic.alias_generators import to_snake

from hdsctl import naming, roles
from hdsctl.environment.fields import (
    EventHubId,
    Model,
    ServiceBusQueueId,
    StorageAccountId,
    StorageAccountName,
    StorageChildName,
    SystemTopicId,
    env,
    key,
    matches,
    promoted,
)


class StorageQueueDestination(Model):
    queue: StorageChildName
    # Default: the environment's events storage account, created with the topic.
    account_id: StorageAccountId | None = None


class EventDestination(Model):
    """Where a subscription delivers: exactly one of a Storage queue, a Service Bus queue or an
    Event Hub. The last two are existing resources, named by id."""

    name: Annotated[str, matches(naming.SERVICE_NAME, "destination name (3-24 lowercase letters, digits "
                                                       "and hyphens)")]
    storage_queue: StorageQueueDestination | None = None
    service_bus_queue_id: ServiceBusQueueId | None = None
    event_hub_id: EventHubId | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self):
        given = [kind for kind in ("storageQueue", "serviceBusQueueId", "eventHubId")
                 if getattr(self, to_snake(kind)) is not None]
        if len(given) != 1:
            raise ValueError("a destination is exactly one of storageQueue, serviceBusQueueId or eventHubId"
                             + (f" (given: {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> str:
        """The role table's scope kind of this destination (storage-queue, service-bus-queue, event-hub)."""
        if self.storage_queue is not None:
            return roles.STORAGE_QUEUE
        return roles.SERVICE_BUS_QUEUE if self.service_bus_queue_id is not None else roles.EVENT_HUB

    @property
    def existing_id(self) -> str | None:
        """The id of a Service Bus queue or Event Hub destination (a Storage queue has none of its own)."""
        return self.service_bus_queue_id or self.event_hub_id


class DeadLetterContainer(Model):
    container: StorageChildName = "event-dead-letters"
    # Default: the environment's events storage account.
    account_id: StorageAccountId | None = None


def _full_event_type(value):
    full = f"{naming.HEALTH_EVENT_PREFIX}{value}" if isinstance(value, str) and "." not in value else value
    if full not in naming.HEALTH_EVENT_TYPES:
        short = ", ".join(t.removeprefix(naming.HEALTH_EVENT_PREFIX) for t in naming.HEALTH_EVENT_TYPES)
        raise ValueError(f"unknown event type {value!r}; Health Data Services publishes {short}")
    return full


class EventSubscription(Model):
    name: Annotated[str, matches(naming.EVENT_SUBSCRIPTION_NAME,
                                  "subscription name (3-64 letters, digits and hyphens)")] = key()
    # Short (DicomImageCreated) or full (Microsoft.HealthcareApis.DicomImageCreated) names.
    event_types: list[Annotated[str, BeforeValidator(_full_event_type)]] = promoted(..., min_length=1)
    # Services whose events are delivered (by host name in the subject). Default: every
    # service of this environment of the kinds the event types are about.
    services: list[str] = promoted(default_factory=list)
    # A destination's name under hdsctl:events.destinations; each environment has its own.
    destination: str = promoted(...)
    schema_: Literal["CloudEventSchemaV1_0", "EventGridSchema"] = promoted(
        "CloudEventSchemaV1_0", alias="schema")
    max_delivery_attempts: int = promoted(30, ge=1, le=30)
    event_time_to_live_minutes: int = promoted(1440, ge=1, le=1440)
    # Undeliverable events go to the dead-letter container instead of being dropped.
    dead_letter: bool = promoted(True)


class Events(Model):
    # Only one system topic can exist per workspace: one made outside hdsctl is adopted by id.
    system_topic_id: SystemTopicId | None = env()
    # The account made for queues and dead letters that name no account of their own.
    storage_account_name: StorageAccountName | None = env()
    destinations: list[EventDestination] = env(default_factory=list)
    dead_letter: DeadLetterContainer = env(default_factory=DeadLetterContainer)
    subscriptions: list[EventSubscription] = promoted(default_factory=list)
