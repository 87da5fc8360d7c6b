"""Who may be granted what: principals by alias, and the role assignments that bind them."""

from __future__ import annotations

from hdsctl.environment.fields import Guid, Model, PrincipalType


class Principal(Model):
    object_id: Guid
    type: PrincipalType


class RoleAssignment(Model):
    role: str
    principal: str
    # "workspace", or the name of a DICOM or FHIR service of this environment.
    scope: str = "workspace"
    description: str | None = None
