"""Bearer tokens shaped like Microsoft Entra's: a JWT whose claims name an audience."""

from __future__ import annotations

import base64
import json
import time

DICOM_AUDIENCE = "https://dicom.healthcareapis.azure.com"


def _part(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def jwt(audience: str, *, secret: str = "not-a-real-signature") -> str:
    """An unsigned token for `audience` (hdsctl reads only its claims; stand-ins do not verify)."""
    claims = {"aud": audience, "exp": int(time.time()) + 3600, "iss": "https://sts.windows.net/test/"}
    return f"{_part({'typ': 'JWT', 'alg': 'RS256'})}.{_part(claims)}.{secret}"
