"""The environment model: one typed description of an environment, validated once, read by
every capability. Slices: `fields` (types, promotion classes), `workspace`, `services`,
`dicom`, `storage`, `fhir`, `principals`, `events`; `model` joins them as EnvironmentSpec.
`load` reads stack files, `references` checks what spans fields, `access` resolves grants."""

from hdsctl.environment.model import EnvironmentSpec

__all__ = ["EnvironmentSpec"]
