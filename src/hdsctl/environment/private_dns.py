"""Private DNS zone names for Health Data Services private link."""

from __future__ import annotations

PRIVATE_ENDPOINT_GROUP_ID = "healthcareworkspace"

ZONES = (
    "privatelink.workspace.azurehealthcareapis.com",
    "privatelink.fhir.azurehealthcareapis.com",
    "privatelink.dicom.azurehealthcareapis.com",
)
LEGACY_ZONE = "privatelink.azurehealthcareapis.com"


def expected_zone_names(legacy_single_zone: bool) -> tuple[str, ...]:
    return (LEGACY_ZONE,) if legacy_single_zone else ZONES

# A DICOM service's own Data Lake is reached through blob and dfs private endpoints.
STORAGE_ZONES = {"blob": "privatelink.blob.core.windows.net", "dfs": "privatelink.dfs.core.windows.net"}
