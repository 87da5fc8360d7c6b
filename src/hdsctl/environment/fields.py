"""Building blocks of the environment model: field types checked where they are declared
(names, GUIDs, ARM ids), the base model, and the promotion class of every field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)
from pydantic.alias_generators import to_camel

from hdsctl import naming

Tier = Literal["dev", "test", "prod"]
Access = Literal["Enabled", "Disabled"]
PrincipalType = Literal["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"]


def matches(pattern, what: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


def _arm_id(*segments: str):
    """An ARM resource id whose provider path contains the given segments."""

    def check(value: str) -> str:
        lowered = value.lower()
        if not lowered.startswith("/subscriptions/") or not all(
            f"/{segment.lower()}/" in lowered for segment in segments
        ):
            example = "/subscriptions/<guid>/resourceGroups/<rg>/providers/" + "/".join(
                f"{segment}/<name>" for segment in segments
            )
            raise ValueError(f"{value!r} is not a resource id of the form {example}")
        return value

    return AfterValidator(check)


Guid = Annotated[str, matches(naming.GUID, "GUID (8-4-4-4-12 hex digits)")]
WorkspaceName = Annotated[
    str, matches(naming.WORKSPACE_NAME, "workspace name (3-24 lowercase letters and digits)")
]
ServiceName = Annotated[
    str,
    matches(
        naming.SERVICE_NAME,
        "service name (3-24 lowercase letters, digits and hyphens, "
        "starting and ending with a letter or digit)",
    ),
]
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s/]+(/\S*)?$")]
Location = Annotated[str, matches(naming.LOCATION, "Azure location (e.g. westeurope)")]
SubnetId = Annotated[str, _arm_id("Microsoft.Network/virtualNetworks", "subnets")]
VnetId = Annotated[str, _arm_id("Microsoft.Network/virtualNetworks")]
PrivateZoneId = Annotated[str, _arm_id("Microsoft.Network/privateDnsZones")]
LogAnalyticsId = Annotated[str, _arm_id("Microsoft.OperationalInsights/workspaces")]
StorageAccountId = Annotated[str, _arm_id("Microsoft.Storage/storageAccounts")]
UserIdentityId = Annotated[str, _arm_id("Microsoft.ManagedIdentity/userAssignedIdentities")]
ServiceBusQueueId = Annotated[str, _arm_id("Microsoft.ServiceBus/namespaces", "queues")]
EventHubId = Annotated[str, _arm_id("Microsoft.EventHub/namespaces", "eventhubs")]
SystemTopicId = Annotated[str, _arm_id("Microsoft.EventGrid/systemTopics")]
# Storage queue and blob container names: 3-63 lowercase letters, digits and single hyphens.
StorageChildName = Annotated[str, matches(
    naming.STORAGE_CHILD_NAME, "queue or container name (3-63 lowercase letters, digits and single hyphens)")]
StorageAccountName = Annotated[str, matches(
    naming.STORAGE_ACCOUNT_NAME, "storage account name (3-24 lowercase letters and digits)")]


# Promotion classes: what belongs to one environment, what is carried to the next, and what
# identifies an item (a service) across environments. Promotion reads these and nothing else.
ENVIRONMENT, PROMOTED, KEY = "environment", "promoted", "key"


def _classified(promotion: str, default, kwargs, creation_time: bool = False):
    extra = {"promotion": promotion, "creation_time": creation_time}
    if "default_factory" in kwargs:
        return Field(json_schema_extra=extra, **kwargs)
    return Field(default, json_schema_extra=extra, **kwargs)


def env(default=None, **kwargs):
    return _classified(ENVIRONMENT, default, kwargs)


def promoted(default=None, *, creation_time: bool = False, **kwargs):
    """`creation_time`: fixed when the service is created; changing it replaces the service
    (a new, empty one), so promotion never changes it on its own."""
    return _classified(PROMOTED, default, kwargs, creation_time)


def key():
    return Field(json_schema_extra={"promotion": KEY})


def promotion_class(model: type[BaseModel], name: str) -> str | None:
    extra = model.model_fields[name].json_schema_extra
    return extra.get("promotion") if isinstance(extra, dict) else None


def is_creation_time(model: type[BaseModel], name: str) -> bool:
    extra = model.model_fields[name].json_schema_extra
    return bool(isinstance(extra, dict) and extra.get("creation_time"))


class Model(BaseModel):
    """Stack files use camelCase keys; unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )
