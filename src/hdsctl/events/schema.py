"""The DICOM events Azure's DICOM service publishes through Event Grid, in one place: the names
of their data fields, and which of a stack's subscriptions deliver a service's DICOM events to
which destination. Read by the local platform (which publishes them), `events tail` and
`fhir link --from-queue` (which read them). Event type names: `naming.DICOM_EVENT_TYPES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdsctl import naming

# The fields of a DicomImageCreated/Updated/Deleted event's data.
PARTITION, STUDY, SERIES, INSTANCE = (
    "partitionName", "imageStudyInstanceUid", "imageSeriesInstanceUid", "imageSopInstanceUid")
HOST, SEQUENCE = "serviceHostName", "sequenceNumber"


def dicom_data(*, partition: str, study: str, series: str, instance: str, host: str, sequence: int) -> dict:
    """An event's data as Azure documents it."""
    return {PARTITION: partition, STUDY: study, SERIES: series, INSTANCE: instance, HOST: host,
            SEQUENCE: sequence}


def is_dicom_data(data: dict) -> bool:
    return INSTANCE in data


@dataclass(frozen=True)
class DicomRoute:
    """A subscription that delivers a DICOM service's events, and where to."""

    subscription: str
    destination: object  # hdsctl.environment.events.EventDestination
    event_types: frozenset[str]  # the DICOM ones it asks for
    schema: str

    @property
    def storage_queue(self):
        return self.destination.storage_queue


def dicom_routes(env, service_name: str, subscription_name: str | None = None) -> list[DicomRoute]:
    """The stack's subscriptions that ask for DICOM events and take this service (every service
    when they name none), optionally only the one named."""
    events = env.spec.events
    if events is None:
        return []
    destinations = {d.name: d for d in events.destinations}
    routes = []
    for subscription in events.subscriptions:
        wanted = frozenset(t for t in subscription.event_types if t in naming.DICOM_EVENT_TYPES)
        if not wanted or (subscription.services and service_name not in subscription.services):
            continue
        if subscription_name is not None and subscription.name != subscription_name:
            continue
        routes.append(DicomRoute(subscription.name, destinations[subscription.destination], wanted,
                                 subscription.schema_))
    return routes
