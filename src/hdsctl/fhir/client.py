"""A FHIR R4 client on azure-core: the service URL as token audience, the project's one retry
policy, and typed errors that say what to do."""

from __future__ import annotations

from typing import Any

from azure.core import PipelineClient
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HttpLoggingPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest, HttpResponse

from hdsctl import __version__
from hdsctl.endpoints import EndpointRefused, check_fhir_url
from hdsctl.errors import EXIT_BAD_INPUT, BadInput, HdsctlError
from hdsctl.retry import Budget, BudgetRetryPolicy, OriginGuard, RequestCounter

FHIR_JSON = "application/fhir+json"


class FhirError(HdsctlError):
    def __init__(self, status: int, message: str, *, method: str, url: str, hint: str = ""):
        self.status, self.method, self.url = status, method, url
        text = f"FHIR {method} {url} answered {status}: {message or '(no message)'}"
        super().__init__(f"{text}\n  {hint}" if hint else text)


class FhirAccessDenied(FhirError):
    exit_code = EXIT_BAD_INPUT


class FhirVersionConflict(FhirError):
    """412: the resource changed since it was read (If-Match), or a condition matched several."""


class FhirUnreachable(HdsctlError):
    pass


class FhirUrlRefused(BadInput):
    pass


class FhirClient:
    def __init__(self, service_url: str, *, credential=None, trusted_hosts: tuple[str, ...] = (),
                 budget: Budget | None = None, retry_backoff_factor: float = 0.5):
        self.base_url = service_url.rstrip("/")
        try:
            scope = check_fhir_url(self.base_url, trusted_hosts)
        except EndpointRefused as err:
            raise FhirUrlRefused(str(err)) from None
        self.counter = RequestCounter()
        policies: list[Any] = [UserAgentPolicy(f"hdsctl/{__version__}"),
                               BudgetRetryPolicy(budget, backoff_factor=retry_backoff_factor), self.counter,
                               OriginGuard(self.base_url, FhirUrlRefused)]
        if scope is not None:
            if credential is None:
                from hdsctl.credentials import FHIR, credential_for

                credential = credential_for(FHIR, scope)
            policies.append(BearerTokenCredentialPolicy(credential, scope))
        policies.append(HttpLoggingPolicy())
        self._client = PipelineClient(base_url=self.base_url, policies=policies)

    @property
    def requests(self) -> int:
        """Requests put on the wire, retries included."""
        return self.counter.total

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
        request = HttpRequest(method, url, params=params, json=json_body, headers=headers)
        try:
            response = self._client.send_request(request)
        except (ServiceRequestError, ServiceResponseError) as err:
            raise FhirUnreachable(f"FHIR {method} {url} got no answer ({str(err).splitlines()[0][:200]}); "
                                  "check the URL and that this network reaches the service") from None
        if response.status_code < 300:
            return response
        raise _error_for(response, method, url)


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
