"""Typed errors of the DICOM data plane: status, the server's own words, and what to do."""

from __future__ import annotations

from hdsctl.dataplane import ServiceError
from hdsctl.errors import EXIT_BAD_INPUT, BadInput, HdsctlError


class DicomApiError(ServiceError):
    pass


class BadRequest(DicomApiError):
    pass


class AccessDenied(DicomApiError):
    exit_code = EXIT_BAD_INPUT


class NotFound(DicomApiError):
    pass


class ActiveReindex(DicomApiError):
    """Another reindex runs; `operation_id` names it (from the Location header)."""

    def __init__(self, *args, operation_id: str | None, **kwargs):
        self.operation_id = operation_id
        super().__init__(*args, **kwargs)


class TagsAlreadyExist(DicomApiError):
    pass


class ServiceBusy(DicomApiError):
    """Still failing after every retry (429, 5xx)."""


class InsecureUrl(BadInput):
    """A data-plane URL a token must not be sent to."""


class ServiceUnreachable(HdsctlError):
    """No answer at all (connection refused or reset), after every retry."""


class InvalidUid(BadInput):
    """A value where a DICOM UID belongs that is not one: never put into a URL."""
