"""The local service's change events, delivered into Azurite's queues the way Event Grid
delivers a workspace's events to a Storage queue: one message per event, its JSON base64-encoded,
in the subscription's schema (CloudEvents 1.0 by default).

Routes come from the stack's `hdsctl:events`: every subscription that asks for DICOM events,
takes this service, and delivers to a Storage queue. Delivery runs on its own thread, after
the store or delete has answered, as Event Grid's does (about a second later in Azure).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass

from hdsctl import naming
from hdsctl.events import schema as event_schema

log = logging.getLogger("hdsctl.emulator.events")

CREATED, _, DELETED = naming.DICOM_EVENT_TYPES  # the local service stores and deletes; it never updates
# The local workspace the events say they come from (there is no ARM id on loopback).
LOCAL_WORKSPACE_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
                      "/providers/Microsoft.HealthcareApis/workspaces/local")


@dataclass(frozen=True)
class Route:
    subscription: str
    queue: str
    event_types: frozenset[str]
    schema: str = "CloudEventSchemaV1_0"


@dataclass(frozen=True)
class Change:
    event_type: str
    study: str
    series: str
    instance: str
    sequence: int  # the change feed's sequence number, which the event carries too
    partition: str = naming.DEFAULT_PARTITION


def routes_of(env, service_name: str) -> tuple[list[Route], list[str]]:
    """The queue routes of a stack's subscriptions for one DICOM service, and notes on the
    subscriptions that cannot be delivered locally."""
    if env.spec.events is None:
        return [], ["the stack declares no hdsctl:events: no events are published"]
    routes, notes = [], []
    for route in event_schema.dicom_routes(env, service_name):
        if route.storage_queue is None:
            notes.append(f"subscription {route.subscription} delivers to {route.destination.name}, not a "
                         "Storage queue: not delivered locally")
            continue
        routes.append(Route(route.subscription, route.storage_queue.queue, route.event_types, route.schema))
    return routes, notes


def event_body(change: Change, host: str, sequence: int, schema: str, now: datetime.datetime) -> dict:
    """One event as Azure documents it for DicomImage* (data fields, subject, source)."""
    partition = "" if change.partition == naming.DEFAULT_PARTITION else f"/partitions/{change.partition}"
    subject = (f"{host}/v1{partition}/studies/{change.study}/series/{change.series}"
               f"/instances/{change.instance}")
    data = event_schema.dicom_data(partition=change.partition, study=change.study, series=change.series,
                                   instance=change.instance, host=host, sequence=sequence)
    time = now.isoformat().replace("+00:00", "Z")
    if schema == "CloudEventSchemaV1_0":
        return {"id": str(uuid.uuid4()), "source": LOCAL_WORKSPACE_ID, "specversion": "1.0",
                "type": change.event_type, "subject": subject, "time": time, "data": data}
    return {"id": str(uuid.uuid4()), "topic": LOCAL_WORKSPACE_ID, "subject": subject, "data": data,
            "eventType": change.event_type, "dataVersion": "1", "metadataVersion": "1", "eventTime": time}


class EventPublisher:
    """`publish(changes)` from the service's threads; `stop()` delivers what is pending."""

    def __init__(self, connection_string: str, routes: list[Route], host: str, dead_letter_container: str):
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContainerClient
        from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

        self.host = host
        self.routes = routes
        self._clients = {route.queue: QueueClient.from_connection_string(
            connection_string, route.queue, message_encode_policy=BinaryBase64EncodePolicy())
            for route in routes}
        # The queues and the dead-letter container exist before the first event, as the
        # deployment makes them in Azure.
        with ContainerClient.from_connection_string(connection_string, dead_letter_container) as container:
            creators = [client.create_queue for client in self._clients.values()] + [container.create_container]
            for create in creators:
                with contextlib.suppress(ResourceExistsError):  # made by an earlier run: kept as it is
                    create()
        self._pending: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._deliver, daemon=True)
        self._worker.start()

    def publish(self, changes: list[Change]) -> None:
        now = datetime.datetime.now(datetime.UTC)
        for change in changes:
            self._pending.put((change, change.sequence, now))

    def _deliver(self) -> None:
        while (item := self._pending.get()) is not None:
            change, sequence, now = item
            for route in self.routes:
                if change.event_type in route.event_types:
                    body = json.dumps(event_body(change, self.host, sequence, route.schema, now)).encode()
                    try:
                        self._clients[route.queue].send_message(body)
                    except Exception as err:  # a lost event is reported, and the service keeps serving
                        log.error("event %s for %s not delivered to queue %s: %s", sequence, change.instance,
                                  route.queue, err)

    def stop(self) -> None:
        self._pending.put(None)
        self._worker.join(timeout=30)
        for client in self._clients.values():
            client.close()
