"""Credentials for every Azure client: DefaultAzureCredential, or a token a pipeline holds.

A pipeline that already has a bearer token sets HDSCTL_ACCESS_TOKEN; it is used as it is
and never printed.
"""

from __future__ import annotations

import os
import time

from azure.core.credentials import AccessToken, TokenCredential

ACCESS_TOKEN_ENV = "HDSCTL_ACCESS_TOKEN"


class StaticTokenCredential(TokenCredential):
    """A token fetched by someone else; it cannot be refreshed, so it is assumed to last an hour."""

    def __init__(self, token: str):
        self._token = AccessToken(token, int(time.time()) + 3600)

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return self._token

    def __repr__(self) -> str:  # never show the token
        return "StaticTokenCredential(<redacted>)"


def azure_credential() -> TokenCredential:
    token = os.environ.get(ACCESS_TOKEN_ENV, "").strip()
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def arm_scope(arm_endpoint: str) -> str:
    """The token audience for a Resource Manager endpoint (public or sovereign cloud)."""
    return f"{arm_endpoint.rstrip('/')}/.default"
