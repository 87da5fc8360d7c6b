"""Build the target environment's next stack file: its own environment-specific values, the
source's promotable parts. Plan first (a new document and its diff), write only when asked.

The target file is edited with ruamel.yaml's round-trip mode, key by key, so its comments,
key order and `secure:` values stay as they were outside the keys that change.
"""

from __future__ import annotations

import copy
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hdsctl.errors import SpecError
from hdsctl.promotion.diff import Change, alias, key_field, promotable_settings, semantic_diff
from hdsctl.spec.load import (
    NAMESPACE,
    Environment,
    environment_from_config,
    environment_from_stack_file,
    load_environment,
    read_stack_file,
)
from hdsctl.spec.model import DicomService, FhirService, Workspace

AREAS = ("services", "tags", "roles")


@dataclass
class Promotion:
    source: Environment
    target: Environment
    areas: tuple[str, ...]
    text: str  # the new target stack file
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    result: Environment | None = None

    @property
    def accepted(self) -> bool:
        return not self.refusals

    def to_json(self) -> dict:
        return {"from": self.source.name, "to": self.target.name, "areas": list(self.areas),
                "accepted": self.accepted, "changes": [c.to_json() for c in self.changes],
                "notes": self.notes, "refusals": self.refusals}


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments, order, quoting and flow style survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def plan_promotion(source_path: Path, target_path: Path, areas: tuple[str, ...] = AREAS,
                   *, check_policy: bool = True) -> Promotion:
    source_file = read_stack_file(source_path)
    source = environment_from_stack_file(source_file)
    target = load_environment(target_path)
    yaml = _yaml()
    document = yaml.load(target_path.read_text(encoding="utf-8"))
    config = document["config"]
    src = source_file.namespaced()
    promotion = Promotion(source, target, areas, "")

    if "services" in areas:
        _merge(config, f"{NAMESPACE}:workspace", src.get("workspace") or {}, Workspace, areas)
    for key, model in (("dicomServices", DicomService), ("fhirServices", FhirService)):
        _merge_services(config, key, src.get(key) or [], model, areas, promotion)
    if "roles" in areas:
        _set(config, f"{NAMESPACE}:roleAssignments", src.get("roleAssignments"))

    buffer = io.StringIO()
    yaml.dump(document, buffer)
    promotion.text = buffer.getvalue()
    _check(promotion, config, target_path, check_policy)
    return promotion


def _merge_services(config, key, source_services, model, areas, promotion: Promotion) -> None:
    name_key = alias(model, key_field(model))
    full_key = f"{NAMESPACE}:{key}"
    target_services = config.get(full_key)
    by_name = {item[name_key]: item for item in (target_services or [])}
    for service in source_services:
        name = service[name_key]
        if name in by_name:
            _merge(by_name[name], None, service, model, areas)
        elif "services" in areas:
            from ruamel.yaml.comments import CommentedMap

            created = CommentedMap({name_key: name})
            _merge(created, None, service, model, areas)
            if target_services is None:
                from ruamel.yaml.comments import CommentedSeq

                target_services = CommentedSeq()
                config[full_key] = target_services
            target_services.append(created)
            promotion.notes.append(f"new {model.__name__} {name!r}: give it the target's own "
                                   "environment-specific settings (keys, identity, CORS) before deploying")
        else:
            promotion.notes.append(f"{model.__name__} {name!r} exists only in {promotion.source.name}: "
                                   "promote services first; its tags were not carried")
    source_names = {service[name_key] for service in source_services}
    for name in by_name:
        if name not in source_names:
            promotion.notes.append(f"{model.__name__} {name!r} exists only in {promotion.target.name}: "
                                   "promotion never removes a service (it holds data); it is kept")


def _merge(container, key, source_values: dict, model, areas) -> None:
    """Copy the promotable keys of one item; `key` names it inside `container` (None: it is one)."""
    if key is not None:
        if container.get(key) is None:
            from ruamel.yaml.comments import CommentedMap

            if not any(alias(model, n) in source_values for n in promotable_settings(model)):
                return
            container[key] = CommentedMap()
        container = container[key]
    names = promotable_settings(model) if "services" in areas else []
    if "tags" in areas and "extended_query_tags" in model.model_fields:
        names = [*names, "extended_query_tags"]
    for name in names:
        _set(container, alias(model, name), source_values.get(alias(model, name)))


def _set(mapping, key: str, value) -> None:
    """Change one key only where its value differs, reusing the original nodes (and with them
    their flow or block style and comments) for every part that stays the same."""
    if value is None:
        if key in mapping:
            del mapping[key]
        return
    current = mapping.get(key)
    if _plain(current) == value:
        return
    if isinstance(current, dict) and isinstance(value, dict):
        for name in [name for name in current if name not in value]:
            del current[name]
        for name, inner in value.items():
            _set(current, name, inner)
    elif isinstance(current, list) and isinstance(value, list):
        current[:] = _reuse_items(current, value)
    else:
        mapping[key] = _node(value, flow=False)


def _reuse_items(current: list, wanted: list) -> list:
    unused = list(current)
    flow = any(getattr(item, "fa", None) is not None and item.fa.flow_style() for item in current)
    items = []
    for value in wanted:
        match = next((item for item in unused if _plain(item) == value), None)
        if match is not None:
            unused.remove(match)
            items.append(match)
        else:
            items.append(_node(value, flow=flow))
    return items


def _node(value, *, flow: bool):
    """A new YAML node for a plain value, in flow style when its siblings use it."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        node = CommentedMap((k, _node(v, flow=False)) for k, v in value.items())
    elif isinstance(value, list):
        node = CommentedSeq(_node(v, flow=False) for v in value)
    else:
        return copy.deepcopy(value)
    if flow:
        node.fa.set_flow_style()
    return node


def _plain(value):
    import json

    return None if value is None else json.loads(json.dumps(value))


def _check(promotion: Promotion, config, target_path: Path, check_policy: bool) -> None:
    prefix = f"{NAMESPACE}:"
    namespaced = {k[len(prefix):]: _plain(v) for k, v in config.items() if k.startswith(prefix)}
    principals = namespaced.get("principals") or {}
    unmapped = sorted({binding.get("principal") for binding in namespaced.get("roleAssignments") or []
                       if binding.get("principal") not in principals})
    for name in unmapped:
        promotion.refusals.append(
            f"principal alias {name!r} is not mapped in {target_path}: add hdsctl:principals.{name} "
            f"with {promotion.target.name}'s own object id and type")
    if unmapped:
        return
    try:
        promotion.result = environment_from_config(promotion.target.name, namespaced, str(target_path))
    except SpecError as err:
        promotion.refusals += [f"the promoted stack would not validate: {p}" for p in err.problems]
        return
    promotion.changes = semantic_diff(promotion.target.spec, promotion.result.spec)
    if check_policy and promotion.changes:
        _check_policies(promotion, target_path)


def _check_policies(promotion: Promotion, target_path: Path) -> None:
    from hdsctl.policies.evaluate import evaluate
    from hdsctl.preview import run_preview

    with tempfile.TemporaryDirectory() as folder:
        candidate = Path(folder) / target_path.name
        candidate.write_text(promotion.text, encoding="utf-8")
        report = evaluate(run_preview(candidate))
    promotion.refusals += [
        f"{promotion.target.name} ({report.tier}) would fail mandatory policy {v.policy}: {v.message}"
        for v in report.mandatory
    ]
