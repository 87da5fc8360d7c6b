"""A DICOM service as a stack file declares it: its extended query tags, retention, link to
FHIR and the settings that belong to each environment."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from hdsctl.dicomtags import TagDefinition, TagRuleError, check_tag
from hdsctl.environment.fields import Access, Model, ServiceName, env, key, promoted
from hdsctl.environment.services import Cors, CustomerManagedKey, Identity
from hdsctl.environment.storage import DicomStorage


class ExtendedQueryTag(Model):
    path: str
    level: str
    vr: str | None = None
    private_creator: str | None = None
    query_enabled: bool = True

    @field_validator("path", mode="before")
    @classmethod
    def _path_read_as_a_number(cls, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"YAML read this tag path as the number {value}; quote it (path: \"00100020\") "
                             "so its 8 hex digits stay as written")
        return value

    @model_validator(mode="after")
    def _valid_for_the_service(self):
        try:
            check_tag(self.path, self.level, self.vr, self.private_creator)
        except TagRuleError as err:
            raise ValueError(str(err)) from None
        return self

    def definition(self) -> TagDefinition:
        """The tag as the service will store and report it."""
        return check_tag(self.path, self.level, self.vr, self.private_creator, self.query_enabled)


class Retention(Model):
    # The shortest time a study is kept: hdsctl dicom expire refuses anything shorter.
    minimum_years: int = Field(ge=1, le=100)


class FhirLink(Model):
    """Where the linker writes this service's studies as ImagingStudy resources."""

    fhir_service: str
    # The Patient identifier system when a study carries no IssuerOfPatientID (0010,0021): the
    # hospital's medical record number system, e.g. urn:oid:<its OID>.
    patient_identifier_system: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] | None = None


class DicomService(Model):
    name: ServiceName = key()
    # Network exposure belongs to each environment: promotion never opens one to the internet.
    public_network_access: Access = env("Enabled")
    # CORS origins name each environment's own viewer hosts.
    cors: Cors | None = env()
    identity: Identity | None = env()
    customer_managed_key: CustomerManagedKey | None = env()
    storage: DicomStorage | None = env()
    # The program marks the ARM side (enableDataPartitions, storageConfiguration) replaceOnChanges.
    data_partitions: bool = promoted(False, creation_time=True)
    extended_query_tags: list[ExtendedQueryTag] = promoted(default_factory=list)
    # Data-plane base URL; defaults to the service's Azure URL. The local stack points it at
    # the local emulator.
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = env()
    fhir_link: FhirLink | None = promoted()
    # A legal minimum, the same in every environment that holds real studies.
    retention: Retention | None = promoted()
