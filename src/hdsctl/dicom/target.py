"""Which DICOM service of a stack a command acts on, and its client: shared by every command
that talks to the DICOM data plane (dicom, fhir link, capacity --measure)."""

from __future__ import annotations

from hdsctl import naming
from hdsctl.errors import BadInput


class DicomUsageError(BadInput):
    """The data-plane commands were asked for something they cannot do."""


def service_of(env, name: str | None):
    services = env.spec.dicom_services
    if name:
        match = [s for s in services if s.name == name]
        if not match:
            names = ", ".join(s.name for s in services) or "none"
            raise DicomUsageError(f"stack {env.name} has no DICOM service {name!r} (services: {names})")
        return match[0]
    if len(services) != 1:
        raise DicomUsageError(f"stack {env.name} declares {len(services)} DICOM services: "
                              "name one with --service")
    return services[0]


def client_for(env, service, url: str | None, budget, partition: str | None = None):
    """The DICOM client of `service` (at `url` when given), retrying within `budget`, in
    `partition` (the default one of a service with data partitions when not given)."""
    from hdsctl.dicom.client import DicomClient

    return DicomClient(url or env.dicom_url(service.name), trusted_hosts=tuple(env.spec.trusted_hosts),
                       budget=budget, partition=partition_of(env, service, partition))


def partition_of(env, service, partition: str | None) -> str | None:
    """The data partition to use: only a service with data partitions has any."""
    if partition is None:
        return naming.DEFAULT_PARTITION if service.data_partitions else None
    if not service.data_partitions:
        raise DicomUsageError(f"--partition {partition}: {service.name} has no data partitions "
                              f"(dataPartitions: false in {env.source})")
    if not naming.PARTITION_NAME.fullmatch(partition):
        raise DicomUsageError(f"--partition {partition!r}: a partition name is 1-64 letters, digits, '.', '-' "
                              "or '_'")
    return partition
