"""The semantic difference of two environments' promotable parts: what a reviewer must see
(tags, settings, bindings, services), not a text diff of YAML."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel

from hdsctl.environment.dicom import DicomService
from hdsctl.environment.fhir import FhirService
from hdsctl.environment.fields import KEY, PROMOTED, promotion_class
from hdsctl.environment.model import EnvironmentSpec
from hdsctl.environment.storage import StorageIndexing
from hdsctl.environment.workspace import Workspace

TAGS_FIELD = "extended_query_tags"


@dataclass(frozen=True)
class Change:
    area: str  # services | settings | tags | bindings | events
    change: str  # added | removed | changed
    where: str  # "workspace", "dicom radiology", "fhir clinical", "roleAssignments"
    subject: str
    before: Any = None
    after: Any = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        mark = {"added": "+", "removed": "-", "changed": "~"}[self.change]
        detail = f": {self.before!r} → {self.after!r}" if self.change == "changed" else ""
        return f"  {mark} [{self.area}] {self.where}: {self.subject}{detail}"


def promotable_settings(model: type[BaseModel]) -> list[str]:
    """Field names of the model that are promoted as settings (tags are their own area)."""
    return [name for name in model.model_fields
            if promotion_class(model, name) == PROMOTED and name != TAGS_FIELD]


INDEXING_LABEL = "storage.indexing"


def promotable_indexing(service) -> dict | None:
    """What promotion carries of a DICOM service's storage indexing: that it is on, and what it
    covers (the queue, dead letters and topic are each environment's own)."""
    indexing = service.storage.indexing if service is not None and service.storage else None
    if indexing is None:
        return None
    return {alias(StorageIndexing, name): _plain(getattr(indexing, name))
            for name in promotable_settings(StorageIndexing)}


def key_field(model: type[BaseModel]) -> str:
    return next(name for name in model.model_fields if promotion_class(model, name) == KEY)


def alias(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def semantic_diff(before: EnvironmentSpec, after: EnvironmentSpec) -> list[Change]:
    """What changes going from `before` to `after`, in the promotable parts only."""
    changes = _settings("workspace", Workspace, before.workspace, after.workspace)
    for label, model, old_list, new_list in (
            ("dicom", DicomService, before.dicom_services, after.dicom_services),
            ("fhir", FhirService, before.fhir_services, after.fhir_services)):
        old = {s.name: s for s in old_list}
        new = {s.name: s for s in new_list}
        for name in sorted(set(old) | set(new)):
            where = f"{label} {name}"
            if name not in old:
                changes.append(Change("services", "added", where, "service"))
            elif name not in new:
                changes.append(Change("services", "removed", where, "service"))
            else:
                changes += _settings(where, model, old[name], new[name])
            if model is DicomService:
                changes += _tags(where, old.get(name), new.get(name))
                if name in old and name in new and (promotable_indexing(old[name])
                                                    != promotable_indexing(new[name])):
                    changes.append(Change("settings", "changed", where, INDEXING_LABEL,
                                          promotable_indexing(old[name]), promotable_indexing(new[name])))
    changes += _bindings(before, after)
    changes += _subscriptions(before, after)
    return changes


def _subscriptions(before: EnvironmentSpec, after: EnvironmentSpec) -> list[Change]:
    def keyed(spec):
        return {s.name.lower(): s for s in (spec.events.subscriptions if spec.events else [])}

    old, new = keyed(before), keyed(after)
    changes = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a is None:
            changes.append(Change("events", "added", "events", f"subscription {b.name}"))
        elif b is None:
            changes.append(Change("events", "removed", "events", f"subscription {a.name}"))
        elif a != b:
            changes.append(Change("events", "changed", "events", f"subscription {b.name}", _plain(a),
                                  _plain(b)))
    return changes


def _plain(value: Any) -> Any:
    return value.model_dump(by_alias=True, exclude_none=True) if isinstance(value, BaseModel) else value


def _settings(where: str, model, old, new) -> list[Change]:
    changes = []
    for name in promotable_settings(model):
        a, b = _plain(getattr(old, name)), _plain(getattr(new, name))
        if a != b:
            changes.append(Change("settings", "changed", where, alias(model, name), a, b))
    return changes


def _tags(where: str, old: DicomService | None, new: DicomService | None) -> list[Change]:
    old_tags = {t.definition().path: t.definition() for t in (old.extended_query_tags if old else [])}
    new_tags = {t.definition().path: t.definition() for t in (new.extended_query_tags if new else [])}
    changes = []
    for path in sorted(set(old_tags) | set(new_tags)):
        a, b = old_tags.get(path), new_tags.get(path)
        label = f"{path} {(b or a).keyword or (b or a).private_creator or ''}".strip()
        if a is None:
            changes.append(Change("tags", "added", where, label, after=f"{b.level} {b.vr}"))
        elif b is None:
            changes.append(Change("tags", "removed", where, label, before=f"{a.level} {a.vr}"))
        elif a != b:
            changes.append(Change("tags", "changed", where, label, _tag_text(a), _tag_text(b)))
    return changes


def _tag_text(tag) -> str:
    text = f"{tag.level} {tag.vr}" + (f" {tag.private_creator}" if tag.private_creator else "")
    return text + ("" if tag.query_enabled else " (query disabled)")


def _bindings(before: EnvironmentSpec, after: EnvironmentSpec) -> list[Change]:
    def keyed(spec):
        return {(a.role.lower(), a.principal, a.scope): f"{a.role} for {a.principal} on {a.scope}"
                for a in spec.role_assignments}

    old, new = keyed(before), keyed(after)
    return ([Change("bindings", "added", "roleAssignments", new[k]) for k in sorted(set(new) - set(old))]
            + [Change("bindings", "removed", "roleAssignments", old[k]) for k in sorted(set(old) - set(new))])
