"""A FHIR R4 client on azure-core: the service URL as token audience, the project's one retry
policy, and typed errors that say what to do."""

from __future__ import annotations

from azure.core.rest import HttpRequest, HttpResponse

from hdsctl.dataplane import DataPlaneClient, ServiceError
from hdsctl.endpoints import EndpointRefused, check_fhir_url
from hdsctl.errors import EXIT_BAD_INPUT, BadInput, HdsctlError
from hdsctl.retry import Budget

FHIR_JSON = "application/fhir+json"


class FhirError(ServiceError):
    label = "FHIR"


class FhirAccessDenied(FhirError):
    exit_code = EXIT_BAD_INPUT


class FhirVersionConflict(FhirError):
    """412: the resource changed since it was read (If-Match), or a condition matched several."""


class FhirUnreachable(HdsctlError):
    pass


class FhirUrlRefused(BadInput):
    pass


class FhirClient(DataPlaneClient):
    refused = FhirUrlRefused
    unreachable = FhirUnreachable

    def __init__(self, service_url: str, *, credential=None, trusted_hosts: tuple[str, ...] = (),
                 budget: Budget | None = None, retry_backoff_factor: float = 0.5):
        from hdsctl.credentials import FHIR

        self.audience = FHIR
        base_url = service_url.rstrip("/")
        try:
            scope = check_fhir_url(base_url, trusted_hosts)
        except EndpointRefused as err:
            raise FhirUrlRefused(str(err)) from None
        super().__init__(base_url, scope, credential=credential, budget=budget,
                         retry_backoff_factor=retry_backoff_factor)

    def search(self, kind: str, **params: str) -> list[dict]:
        """Every match (following `next` links, only on this service's own origin)."""
        found, url, query = [], f"{self.base_url}/{kind}", params
        while url:
            bundle = self._send("GET", url, params=query).json()
            found += [entry["resource"] for entry in bundle.get("entry") or [] if "resource" in entry]
            links = bundle.get("link") or []
            url = next((link["url"] for link in links if link.get("relation") == "next"), None)
            query = None
        return found

    def transaction(self, bundle: dict) -> dict:
        return self._send("POST", self.base_url, json_body=bundle).json()

    def _send(self, method: str, url: str, *, params=None, json_body=None) -> HttpResponse:
        headers = {"Accept": FHIR_JSON, **({"Content-Type": FHIR_JSON} if json_body else {})}
        return self._exchange(HttpRequest(method, url, params=params, json=json_body, headers=headers),
                              ok=range(200, 300))

    def _prefix(self) -> str:
        return "FHIR "

    def _error_for(self, response: HttpResponse, method: str, url: str) -> FhirError:
        return _error_for(response, method, url)


def _error_for(response: HttpResponse, method: str, url: str) -> FhirError:
    status = response.status_code
    message = _diagnostics(response)
    if status in (401, 403):
        return FhirAccessDenied(status, message, method=method, url=url,
                                hint="the linker's identity needs FHIR Data Contributor on the FHIR service "
                                     "(declared for the 'imaging-linker' alias in the shipped stacks); new "
                                     "role assignments can take minutes to apply")
    if status == 412:
        return FhirVersionConflict(status, message, method=method, url=url)
    return FhirError(status, message, method=method, url=url)


def _diagnostics(response: HttpResponse) -> str:
    try:
        outcome = response.json()
    except ValueError:
        return (response.text() or "").strip()[:300]
    issues = outcome.get("issue") or [] if isinstance(outcome, dict) else []
    return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues)[:300] or str(outcome)[:300]
