"""Where a token may go: the data-plane hosts of the Azure clouds, loopback, and nothing else
unless a stack file names it in `hdsctl:trustedHosts` (reviewed like every other change).

The spec's validation and every client use these same rules, so a URL that `validate` accepts
is one the client will talk to, and the other way round.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# DICOM data-plane host suffix → the token resource of that cloud.
DICOM_CLOUDS = {
    ".dicom.azurehealthcareapis.com": "https://dicom.healthcareapis.azure.com",  # public cloud
    ".dicom.azurehealthcareapis.us": "https://dicom.healthcareapis.azure.us",  # Azure Government
}
PUBLIC_DICOM_RESOURCE = DICOM_CLOUDS[".dicom.azurehealthcareapis.com"]


class EndpointRefused(ValueError):
    """A URL a token must not be sent to, or that is not a URL at all."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dicom_resource(host: str) -> str | None:
    """The token resource for an Azure DICOM host, or None for any other host."""
    host = host.lower().rstrip(".")
    return next((resource for suffix, resource in DICOM_CLOUDS.items()
                 if host.endswith(suffix) and len(host) > len(suffix)), None)


def _parts(url: str, what: str):
    """The URL's parts, once it is an http(s) URL without user information."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError as err:
        raise EndpointRefused(f"{url!r} is not a valid URL ({err})") from None
    if parts.scheme not in {"http", "https"} or not host:
        raise EndpointRefused(f"{url!r} is not an http(s) URL of a {what}")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("a URL with user information (user:password@) is refused; credentials "
                              "come from the environment, never from a URL")
    if parts.scheme == "http" and not is_loopback(host):
        raise EndpointRefused(f"refusing plain http to {host}: a token would travel unencrypted. Use "
                              "https, or http only for a local emulator on 127.0.0.1/localhost")
    return parts, host


def check_dicom_url(url: str, trusted_hosts: tuple[str, ...] | list[str] = ()) -> tuple[str, str | None]:
    """(host, token resource) for a DICOM data-plane URL hdsctl may use; the resource is None
    for plain http on loopback, where no token is sent. Raises EndpointRefused with the reason."""
    parts, host = _parts(url, "DICOM service")
    if parts.scheme == "http":
        return host, None
    resource = dicom_resource(host)
    if resource:
        return host, resource
    if is_loopback(host) or host.lower() in {h.lower() for h in trusted_hosts}:
        return host, PUBLIC_DICOM_RESOURCE
    clouds = ", ".join(f"*{suffix}" for suffix in DICOM_CLOUDS)
    raise EndpointRefused(f"{host} is not a DICOM service host of an Azure cloud ({clouds}) nor "
                          "loopback, so the DICOM token will not be sent there; if it really fronts "
                          "your DICOM service, list it under hdsctl:trustedHosts in the stack file")


FHIR_SUFFIXES = (".fhir.azurehealthcareapis.com", ".fhir.azurehealthcareapis.us")


def check_fhir_url(url: str, trusted_hosts: tuple[str, ...] | list[str] = ()) -> str | None:
    """The token scope for a FHIR service URL hdsctl may use (its audience is the service URL
    itself), or None for plain http on loopback, where no token is sent."""
    parts, host = _parts(url, "FHIR service")
    if parts.scheme == "http":
        return None
    trusted = {h.lower() for h in trusted_hosts}
    if not (host.lower().endswith(FHIR_SUFFIXES) or is_loopback(host) or host.lower() in trusted):
        raise EndpointRefused(f"{host} is not a FHIR service host of an Azure cloud "
                              f"({', '.join(FHIR_SUFFIXES)}) "
                              "nor loopback; list it under hdsctl:trustedHosts if it fronts your FHIR service")
    return f"{parts.scheme}://{parts.netloc}/.default"


# Storage account host suffixes of the Azure clouds (blob, queue, dfs, ... endpoints).
STORAGE_SUFFIXES = (".core.windows.net", ".core.usgovcloudapi.net", ".core.chinacloudapi.cn")


def check_storage_url(url: str, trusted_hosts: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether a Storage token may go to this account URL (False: loopback, where Azurite's
    published key is used instead). Refuses any other host unless the stack trusts it."""
    parts, host = _parts(url, "Storage account")
    if is_loopback(host):
        return False
    if parts.query:
        raise EndpointRefused(f"{url}: give the account URL alone, without a SAS or other query")
    trusted = {h.lower() for h in trusted_hosts}
    if not (host.lower().endswith(STORAGE_SUFFIXES) or host.lower() in trusted):
        raise EndpointRefused(f"{host} is not a Storage account host of an Azure cloud "
                              f"({', '.join('*' + s for s in STORAGE_SUFFIXES)}) nor loopback, so the Storage "
                              "token will not be sent there; list it under hdsctl:trustedHosts if it really "
                              "fronts your account")
    return True


def same_origin(url: str, base: str) -> bool:
    """`url` is on the scheme, host and port of `base`: where a client's token was meant to go."""
    first, second = urlsplit(url), urlsplit(base)
    return (first.scheme.lower(), (first.hostname or "").lower(), first.port) == (
        second.scheme.lower(), (second.hostname or "").lower(), second.port)
