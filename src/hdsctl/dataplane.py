"""The one shape of every Azure data-plane client (the azure-sdk-for-python pattern): an
azure-core pipeline with the project's retry policy (one time budget per request), a request
counter, the origin guard (the token reaches the checked host only) and the token policy for
the service's audience; one base error per answer the caller cannot use, each service mapping
statuses to its own kinds. The DICOM and FHIR clients specialise `DataPlaneClient`; the
Storage SDK's clients get the same retry, credential and host rules from `storage_client`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core import PipelineClient
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HttpLoggingPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest, HttpResponse

from hdsctl import __version__
from hdsctl.errors import BadInput, HdsctlError
from hdsctl.retry import Budget, BudgetRetryPolicy, OriginGuard, RequestCounter


class ServiceError(HdsctlError):
    """An answer the caller cannot use: the status, the service's own words, and what to do."""

    label = ""  # the service's name, first in the message where the URL does not say it

    def __init__(self, status: int, message: str, *, method: str, url: str, hint: str = ""):
        self.status, self.server_message, self.method, self.url, self.hint = status, message, method, url, hint
        label = f"{self.label} " if self.label else ""
        text = f"{label}{method} {url} answered {status}: {message or '(no message)'}"
        super().__init__(f"{text}\n  {hint}" if hint else text)


class StorageUrlRefused(BadInput):
    """A Storage request to a host other than the account's checked one (a redirect)."""


class StorageFailed(HdsctlError):
    """Storage refused or did not answer; the message says which and what to check."""


@contextlib.contextmanager
def storage_errors(what: str, needs: str, error: type[HdsctlError] = StorageFailed):
    """Storage's errors inside become one clear message naming what was read or written and the
    role it takes (no traceback)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    try:
        yield
    except ClientAuthenticationError as err:
        raise error(f"{what}: access denied ({err.status_code}): the caller needs {needs} there") from None
    except HttpResponseError as err:
        if err.status_code == 403:
            raise error(f"{what}: access denied (403): the caller needs {needs} there") from None
        if err.status_code == 404:
            raise error(f"{what} does not exist (404): is the stack deployed (or, locally, the emulator "
                        "started with --events)?") from None
        raise error(f"{what}: Storage answered {err.status_code}: {str(err.message).splitlines()[0][:300]}"
                    ) from None
    except (ServiceRequestError, ServiceResponseError) as err:
        raise error(f"{what}: no answer: {str(err).splitlines()[0][:200]}") from None


class DataPlaneClient:
    """Subclasses set `audience` (hdsctl.credentials), `refused` (raised for a URL the token must
    not reach), `unreachable` and `unreachable_hint`, and map failing answers in `_error_for`."""

    audience: Any
    refused: type[Exception]
    unreachable: type[Exception]
    unreachable_hint = "check the URL, and that this network reaches the service"

    def __init__(self, base_url: str, scope: str | None, *, credential=None, budget: Budget | None = None,
                 retry_backoff_factor: float = 0.5, retry_backoff_max: float = 30.0, transport=None):
        self.base_url = base_url
        self.counter = RequestCounter()
        self.retry = BudgetRetryPolicy(budget, backoff_factor=retry_backoff_factor,
                                       backoff_max=retry_backoff_max)
        policies: list[Any] = [UserAgentPolicy(f"hdsctl/{__version__}"), self.retry, self.counter,
                               OriginGuard(base_url, self.refused)]
        if scope is not None:  # None: loopback, where the local platform takes no token
            if credential is None:
                from hdsctl.credentials import credential_for

                credential = credential_for(self.audience, scope)
            policies.append(BearerTokenCredentialPolicy(credential, scope))
        policies.append(HttpLoggingPolicy())
        self._client = PipelineClient(base_url=base_url, policies=policies, transport=transport)

    @property
    def requests(self) -> int:
        """Requests put on the wire, retries included."""
        return self.counter.total

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _exchange(self, request: HttpRequest, ok) -> HttpResponse:
        """Send with retries; the answer when its status is one of `ok`, a typed error if not."""
        try:
            response = self._client.send_request(request)
        except (ServiceRequestError, ServiceResponseError) as err:
            where = f"{self._prefix()}{request.method} {request.url}"
            raise self.unreachable(f"{where} got no answer ({str(err).splitlines()[0][:200]}); "
                                   f"{self.unreachable_hint}") from None
        if response.status_code in ok:
            return response
        raise self._error_for(response, request.method, request.url)

    def _prefix(self) -> str:
        return ""

    def _error_for(self, response: HttpResponse, method: str, url: str) -> ServiceError:
        raise NotImplementedError


class StorageBudgetRetryPolicy(BudgetRetryPolicy):
    """The project's retry policy in a Storage SDK pipeline, which hands its retry policy options
    of its own (secondary hosts and location mode): taken here and left unused, so every request
    goes to the account's primary endpoint, the one the URL check approved."""

    STORAGE_OPTIONS = ("hosts", "location_mode", "retry_to_secondary", "retry_hook")

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        for name in self.STORAGE_OPTIONS:
            options.pop(name, None)
        return super().configure_retries(options)

    def send(self, request):
        response = super().send(request)
        response.http_response.location_mode = "primary"  # Storage's response handlers read it
        return response


def storage_client(kind: type, account_url: str, name: str, *, budget: Budget | None = None, **options):
    """An azure-storage client (QueueClient, ContainerClient, ...) for `name` at `account_url`,
    with the project's retry policy and time budget, and Azurite's key on loopback or an Entra
    token for the Storage audience elsewhere. The URL is checked by the caller
    (endpoints.check_storage_url) before it gets here."""
    from hdsctl.credentials import storage_credential

    # Storage SDK clients take extra policies last, after the token policy: a redirect to
    # another host is refused there, before the transport sends it.
    return kind(account_url, name, credential=storage_credential(account_url),
                retry_policy=StorageBudgetRetryPolicy(budget), connection_timeout=10,
                _additional_pipeline_policies=[OriginGuard(account_url, StorageUrlRefused)], **options)
