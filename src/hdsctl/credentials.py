"""Tokens for every Azure client, one audience at a time.

By default azure-identity's DefaultAzureCredential (environment variables, workload identity,
managed identity, Azure CLI ...). A pipeline that already holds bearer tokens gives one per
audience: HDSCTL_DICOM_TOKEN, HDSCTL_ARM_TOKEN, HDSCTL_GRAPH_TOKEN. Such a token is checked
before any request: its `aud` claim must name the audience asked for, so a DICOM token is
never sent to Resource Manager or Graph, and the other way round. Tokens are never printed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from dataclasses import dataclass

from azure.core.credentials import AccessToken, TokenCredential

from hdsctl.errors import BadInput

LEGACY_TOKEN_ENV = "HDSCTL_ACCESS_TOKEN"

log = logging.getLogger("hdsctl.credentials")


@dataclass(frozen=True)
class Audience:
    label: str
    variable: str
    # Resources a token for this audience may name in `aud`, besides the scope's own URI
    # (lower case, no trailing slash): ARM's classic URI and the first-party application ids.
    aliases: tuple[str, ...] = ()

    def scope_resources(self, scope: str) -> set[str]:
        return {_normal(scope.removesuffix(".default"))} | set(self.aliases)


DICOM = Audience("the DICOM service", "HDSCTL_DICOM_TOKEN")
ARM = Audience("Azure Resource Manager", "HDSCTL_ARM_TOKEN",
               ("https://management.core.windows.net", "797f4846-ba00-4fd7-ba43-dac1f8f63013"))
GRAPH = Audience("Microsoft Graph", "HDSCTL_GRAPH_TOKEN", ("00000003-0000-0000-c000-000000000000",))
STORAGE = Audience("Azure Storage", "HDSCTL_STORAGE_TOKEN")
FHIR = Audience("the FHIR service", "HDSCTL_FHIR_TOKEN")
STORAGE_SCOPE = "https://storage.azure.com/.default"
# Azurite's published development account (its documentation prints the key): a Storage
# endpoint on loopback is the local emulator, and only there is this key used.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class CredentialProblem(BadInput):
    """No token for an audience, or a token meant for another one."""


class StaticTokenCredential(TokenCredential):
    """A token fetched by someone else, for one scope. It cannot be refreshed: it is used until
    the expiry its claims state (an hour when they state none)."""

    def __init__(self, token: str, scope: str, expires_on: int | None = None):
        self._token = AccessToken(token, expires_on or int(time.time()) + 3600)
        self._scope = scope

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        if scopes and scopes[0] != self._scope:
            raise CredentialProblem(f"a pre-issued token for {self._scope} was asked for {scopes[0]}; "
                                    "it is not sent anywhere else")
        return self._token

    def __repr__(self) -> str:  # never show the token
        return "StaticTokenCredential(<redacted>)"


class _NamedDefaultCredential(TokenCredential):
    """DefaultAzureCredential, whose failure names the audience and the way to give a token."""

    def __init__(self, audience: Audience):
        from azure.identity import DefaultAzureCredential

        self._audience = audience
        self._inner = DefaultAzureCredential()

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            return self._inner.get_token(*scopes, **kwargs)
        except ClientAuthenticationError as err:
            first = (err.message or str(err)).splitlines()[0][:300]
            raise CredentialProblem(
                f"no token for {self._audience.label} ({scopes[0] if scopes else ''}): {first}\n"
                f"  sign in (az login), use workload or managed identity, or set {self._audience.variable}"
            ) from None

    def close(self) -> None:
        self._inner.close()


def credential_for(audience: Audience, scope: str) -> TokenCredential:
    token = _pre_issued(audience)
    if not token:
        return _NamedDefaultCredential(audience)
    claims = _claims(token, audience)
    named = claims.get("aud")
    named = [named] if isinstance(named, str) else list(named or [])
    if not {_normal(value) for value in named} & audience.scope_resources(scope):
        raise CredentialProblem(
            f"{audience.variable} holds a token for {', '.join(map(str, named)) or 'no audience'}, not for "
            f"{audience.label} ({scope.removesuffix('/.default')}); it was not sent. Get a token for that "
            "resource (az account get-access-token --resource ...)")
    expires = claims.get("exp")
    return StaticTokenCredential(token, scope, int(expires) if isinstance(expires, (int, float)) else None)


def _pre_issued(audience: Audience) -> str:
    token = os.environ.get(audience.variable, "").strip()
    if not token and audience is DICOM:
        token = os.environ.get(LEGACY_TOKEN_ENV, "").strip()
        if token:
            log.warning("%s is deprecated and is now only used for the DICOM service: set %s instead",
                        LEGACY_TOKEN_ENV, DICOM.variable)
    return token


def _claims(token: str, audience: Audience) -> dict:
    """The token's claims, read without checking its signature (the service does that): only
    to know where it may go."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        if not isinstance(claims, dict):
            raise ValueError("claims are not an object")
    except (ValueError, binascii.Error) as err:
        raise CredentialProblem(
            f"{audience.variable} is not a JSON Web Token ({err}), so its audience cannot be checked; "
            "it was not sent. Give a Microsoft Entra access token") from None
    return claims


def _normal(resource: str) -> str:
    return resource.strip().rstrip("/").lower()


def arm_scope(arm_endpoint: str) -> str:
    """The token audience for a Resource Manager endpoint (public or sovereign cloud)."""
    return f"{arm_endpoint.rstrip('/')}/.default"


def storage_credential(account_url: str):
    """Azurite's published key for a Storage endpoint on loopback; an Entra token for the Storage
    audience anywhere else."""
    from urllib.parse import urlsplit

    from hdsctl.endpoints import is_loopback

    if is_loopback(urlsplit(account_url).hostname or ""):
        return {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
    return credential_for(STORAGE, STORAGE_SCOPE)
