"""Settings every data service (DICOM or FHIR) takes: CORS, managed identity, customer-managed key."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from hdsctl.environment.fields import HttpsUrl, Model, UserIdentityId


class Cors(Model):
    origins: list[str] = Field(default_factory=list)
    headers: list[str] = Field(default_factory=list)
    methods: list[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]] = Field(
        default_factory=list
    )
    max_age: int | None = Field(default=None, ge=0, le=99999)
    allow_credentials: bool = False

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self):
        if self.allow_credentials and "*" in self.origins:
            raise ValueError("allowCredentials cannot be combined with the wildcard origin '*'")
        return self


class Identity(Model):
    type: Literal["None", "SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned"]
    user_assigned_identities: list[UserIdentityId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_match_type(self):
        wants_user = "UserAssigned" in self.type
        if wants_user and not self.user_assigned_identities:
            raise ValueError(f"identity type {self.type} needs userAssignedIdentities")
        if not wants_user and self.user_assigned_identities:
            raise ValueError(f"identity type {self.type} takes no userAssignedIdentities")
        return self


class CustomerManagedKey(Model):
    key_url: HttpsUrl
