"""Optional display names from Microsoft Graph. The audit works without them."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

PUBLIC_GRAPH = "https://graph.microsoft.com"
# Names are a convenience: the audit does not wait long for them.
GRAPH_BUDGET_SECONDS = 60.0

log = logging.getLogger("hdsctl.audit")


def display_names(
    object_ids: set[str], graph_url: str = PUBLIC_GRAPH, credential=None
) -> dict[str, str] | None:
    """Object id → display name, or None when Graph cannot be read (no rights, no token)."""
    if not object_ids or urlsplit(graph_url).scheme != "https":
        return None
    from azure.core import PipelineClient
    from azure.core.exceptions import AzureError
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy
    from azure.core.rest import HttpRequest

    from hdsctl.credentials import GRAPH, CredentialProblem, credential_for
    from hdsctl.retry import Budget, BudgetRetryPolicy

    scope = f"{graph_url.rstrip('/')}/.default"
    try:
        credential = credential or credential_for(GRAPH, scope)
    except CredentialProblem as err:  # names are optional: say why they are missing, go on
        log.warning("display names not resolved: %s", err)
        return None
    client = PipelineClient(graph_url, policies=[
        BudgetRetryPolicy(Budget(per_request=GRAPH_BUDGET_SECONDS)),
        BearerTokenCredentialPolicy(credential, scope),
    ])
    names: dict[str, str] = {}
    ids = sorted(object_ids)
    try:
        for start in range(0, len(ids), 1000):  # getByIds takes up to 1,000 ids
            request = HttpRequest("POST", f"{graph_url.rstrip('/')}/v1.0/directoryObjects/getByIds",
                                  json={"ids": ids[start:start + 1000],
                                        "types": ["user", "group", "servicePrincipal"]})
            response = client.send_request(request)
            if response.status_code != 200:
                return None
            for item in response.json().get("value", []):
                if item.get("id") and item.get("displayName"):
                    names[item["id"].lower()] = item["displayName"]
    except (AzureError, CredentialProblem) as err:
        log.warning("display names not resolved: %s", str(err).splitlines()[0][:300])
        return None
    finally:
        client.close()
    return names
