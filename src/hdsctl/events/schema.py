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


@dataclass(frozen=True)
class IndexingFilter:
    """The Blob events a DICOM service indexes: what the program's storage-indexing subscription
    lets through, and what the local platform, standing in for Event Grid, applies the same way."""

    prefixes: tuple[str, ...]  # subject begins with one of these (one subscription each)
    suffix: str
    event_types: tuple[str, ...]
    own_writes: str  # data.clientRequestId of the service's own writes begins with this

    def admits(self, event_type: str, subject: str, client_request_id: str = "") -> bool:
        return (event_type in self.event_types and subject.endswith(self.suffix)
                and any(subject.startswith(prefix) for prefix in self.prefixes)
                and not client_request_id.startswith(self.own_writes))


def indexing_filter(file_system: str, workspace: str, service: str, partitions=()) -> IndexingFilter:
    prefixes = tuple(naming.indexing_subject_prefix(file_system, workspace, service, partition)
                     for partition in (partitions or [None]))
    return IndexingFilter(prefixes, ".dcm", naming.BLOB_EVENT_TYPES,
                          naming.dicom_own_writes_tag(workspace, service))


def blob_subject(file_system: str, blob: str) -> str:
    return f"/blobServices/default/containers/{file_system}/blobs/{blob}"
