"""Build the target environment's next stack file: its own environment-specific values, the
source's promotable parts. Plan first (a new document and its diff), write only when asked.

Both environments are read through the spec model, so what is compared is the effective
value (defaults applied), whatever spelling the files use. The target file is then edited
with ruamel.yaml's round-trip mode, key by key, so its comments, key order, quoting and
`secure:` values stay as they were outside the keys that change. The printed changes are
computed from the edited document itself, so they are always what would be written.

What promotion never does on its own: change network exposure (it is the environment's),
change a creation-time setting (that replaces the service: --allow-replace), remove what the
target has and the source lacks (--prune), or remove the deployer's own grant.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdsctl.environment.access import DEPLOYER_ALIAS
from hdsctl.environment.dicom import DicomService
from hdsctl.environment.fhir import FhirService
from hdsctl.environment.fields import is_creation_time
from hdsctl.environment.load import (
    NAMESPACE,
    Environment,
    environment_from_config,
    environment_from_stack_file,
    read_stack_file,
)
from hdsctl.environment.model import EnvironmentSpec
from hdsctl.errors import SpecError
from hdsctl.promotion.diff import (
    INDEXING_LABEL,
    Change,
    alias,
    key_field,
    promotable_indexing,
    promotable_settings,
    semantic_diff,
)
from hdsctl.promotion.text import StackText, flow_items, plain, set_key, yaml_node

AREAS = ("services", "tags", "roles", "events")
TAGS_KEY = "extendedQueryTags"
ROLES_KEY = f"{NAMESPACE}:roleAssignments"
EVENTS_KEY = f"{NAMESPACE}:events"
SUBSCRIPTIONS_KEY = "subscriptions"
# (label, model, field of EnvironmentSpec) of each promoted list of services.
SERVICE_LISTS = (("dicom", DicomService, "dicom_services"), ("fhir", FhirService, "fhir_services"))


@dataclass
class Promotion:
    source: Environment
    target: Environment
    areas: tuple[str, ...]
    text: str = ""  # the new target stack file
    changes: list[Change] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # in the target only; removed only with --prune
    held: list[str] = field(default_factory=list)  # creation-time differences
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # problems the target has today
    result: Environment | None = None

    @property
    def accepted(self) -> bool:
        return not self.refusals

    def to_json(self) -> dict:
        return {"from": self.source.name, "to": self.target.name, "areas": list(self.areas),
                "accepted": self.accepted, "changes": [c.to_json() for c in self.changes],
                "kept": self.kept, "notPromoted": self.held, "notes": self.notes,
                "refusals": self.refusals, "alreadyPresent": self.already}


@dataclass(frozen=True)
class Options:
    areas: tuple[str, ...] = AREAS
    prune: bool = False
    allow_replace: bool = False


def plan_promotion(source_path: Path, target_path: Path, areas: tuple[str, ...] = AREAS, *,
                   prune: bool = False, allow_replace: bool = False,
                   check_policy: bool = True) -> Promotion:
    options = Options(areas, prune, allow_replace)
    source_file = read_stack_file(source_path)
    source = environment_from_stack_file(source_file)
    target_file = read_stack_file(target_path)
    target = environment_from_stack_file(target_file)
    stack_text = StackText.read(target_path)
    stack_text.refuse_references_in([*_service_keys(), ROLES_KEY, EVENTS_KEY])
    config = stack_text.document["config"]
    raw = source_file.namespaced()
    promotion = Promotion(source, target, areas)

    for label, model, spec_field in SERVICE_LISTS:
        key = alias(EnvironmentSpec, spec_field)
        _promote_services(promotion, options, config, label, model, spec_field, raw.get(key) or [])
    if "roles" in areas:
        _promote_bindings(promotion, options, config, raw.get("roleAssignments") or [])
    if "events" in areas:
        _promote_subscriptions(promotion, options, config, raw.get("events") or {})

    promotion.text = stack_text.dump()
    _check(promotion, target_path, target_file.config, stack_text.text, check_policy)
    return promotion


def _service_keys() -> list[str]:
    return [f"{NAMESPACE}:{alias(EnvironmentSpec, spec_field)}" for _, _, spec_field in SERVICE_LISTS]


def _promote_services(promotion: Promotion, options: Options, config, label: str, model,
                      spec_field: str, source_raw: list) -> None:
    full_key = f"{NAMESPACE}:{alias(EnvironmentSpec, spec_field)}"
    name_key = alias(model, key_field(model))
    source_services = {s.name: s for s in getattr(promotion.source.spec, spec_field)}
    target_services = {s.name: s for s in getattr(promotion.target.spec, spec_field)}
    raw_by_name = {item[name_key]: item for item in source_raw}
    nodes = config.get(full_key)
    node_by_name = {item[name_key]: item for item in (nodes or [])}

    for name, wanted in source_services.items():
        where = f"{label} {name}"
        if name not in target_services:
            if "services" not in options.areas:
                promotion.notes.append(f"{where} exists only in {promotion.source.name}: promote "
                                       "services first; its tags were not carried")
                continue
            if nodes is None:
                nodes = config[full_key] = yaml_node([], flow=False)
            nodes.append(_new_service(promotion, model, name_key, wanted, raw_by_name[name], options))
            promotion.notes.append(f"new {where}: give it {promotion.target.name}'s own environment-specific "
                                   "settings (keys, identity, CORS, network access) before deploying")
            continue
        node, current = node_by_name[name], target_services[name]
        if "services" in options.areas:
            _promote_settings(promotion, options, where, model, wanted, current, raw_by_name[name], node)
            if model is DicomService:
                _promote_indexing(promotion, options, where, wanted, current, node)
        if "tags" in options.areas and model is DicomService:
            _promote_tags(promotion, options, where, wanted, current, raw_by_name[name], node)
    for name in target_services:
        if name not in source_services:
            promotion.notes.append(f"{label} {name} exists only in {promotion.target.name}: promotion "
                                   "never removes a service (it holds data); it is kept")


def _new_service(promotion: Promotion, model, name_key: str, wanted, raw: dict, options: Options):
    """A service the target lacks: the source's promotable settings (and tags), and the
    target's network exposure, never the source's."""
    values = {name_key: wanted.name}
    for name in promotable_settings(model):
        raw_value = _raw(raw, model, name)
        if raw_value is not None:
            values[alias(model, name)] = raw_value
    if promotion.target.spec.workspace.public_network_access == "Disabled":
        values[alias(model, "public_network_access")] = "Disabled"
    if "tags" in options.areas and model is DicomService and raw.get(TAGS_KEY):
        values[TAGS_KEY] = raw[TAGS_KEY]
    return yaml_node(values, flow=False)


def _promote_settings(promotion: Promotion, options: Options, where: str, model, wanted, current,
                      raw: dict, node) -> None:
    for name in promotable_settings(model):
        before, after = plain(getattr(current, name)), plain(getattr(wanted, name))
        if before == after:
            continue
        label = alias(model, name)
        if is_creation_time(model, name) and not options.allow_replace:
            promotion.held.append(f"{where}: {label} {before!r} → {after!r} not promoted: would replace the "
                                  "service and lose its data")
            promotion.refusals.append(
                f"{where}: {label} differs ({before!r} in {promotion.target.name}, {after!r} in "
                f"{promotion.source.name}) and is fixed at creation; promoting it replaces the service with "
                "a new, empty one. Align the source, or pass --allow-replace (prod's protection still "
                "refuses the replacement at deploy time)")
            continue
        if after is None:  # the source leaves it unset: taking it away is a removal
            if options.prune:
                _delete(node, model, name)
            else:
                promotion.kept.append(f"{where}: {label} = {before!r} (not set in {promotion.source.name}; "
                                      "--prune removes it)")
            continue
        raw_value = _raw(raw, model, name)
        set_key(node, _existing_key(node, model, name), after if raw_value is None else plain(raw_value))


def _promote_indexing(promotion: Promotion, options: Options, where: str, wanted, current, node) -> None:
    """Indexing on or off, and what it covers, from the source; the queue, dead-letter container and
    system topic stay the target's own (a target turning it on takes the source's names)."""
    before, after = promotable_indexing(current), promotable_indexing(wanted)
    if before == after:
        return
    storage = node.get("storage")
    if after is None:
        if options.prune:
            del storage["indexing"]
        else:
            promotion.kept.append(f"{where}: {INDEXING_LABEL} (not in {promotion.source.name}; --prune removes "
                                  "it)")
        return
    if current.storage is None or storage is None:
        promotion.notes.append(f"{where}: {INDEXING_LABEL} not promoted: the service has no Data Lake "
                               f"(storage) in {promotion.target.name}")
        return
    merged = plain(storage.get("indexing")) or {}
    if before is None:  # turned on here: the source's own names as a start, to review
        merged = {key: value for key, value in plain(wanted.storage.indexing).items() if key not in after}
        promotion.notes.append(f"{where}: {INDEXING_LABEL} is turned on with {promotion.source.name}'s queue "
                               "and dead-letter container names; they are made in this environment's own "
                               "account")
    merged.update({key: value for key, value in after.items() if value not in ([], None)})
    merged = {key: value for key, value in merged.items() if key not in after or after[key] not in ([], None)}
    set_key(storage, "indexing", merged)


def _promote_tags(promotion: Promotion, options: Options, where: str, wanted, current, raw: dict,
                  node) -> None:
    def keyed(service) -> list[_Keyed]:
        definitions = [tag.definition() for tag in service.extended_query_tags]
        return [_Keyed(d.path, d, f"extended query tag {_tag_label(d)}") for d in definitions]

    _merge_list(promotion, options, where, node, TAGS_KEY, keyed(current), keyed(wanted),
                raw.get(TAGS_KEY) or [])


def _tag_label(definition) -> str:
    return f"{definition.path} {definition.keyword or definition.private_creator or ''}".strip()


def _promote_bindings(promotion: Promotion, options: Options, config, source_raw: list) -> None:
    def keyed(spec) -> list[_Keyed]:
        return [_Keyed((a.role.lower(), a.principal, a.scope), a, f"{a.role} for {a.principal} on {a.scope}",
                       never_pruned=a.principal == DEPLOYER_ALIAS) for a in spec.role_assignments]

    _merge_list(promotion, options, "roleAssignments", config, ROLES_KEY, keyed(promotion.target.spec),
                keyed(promotion.source.spec), source_raw)


def _promote_subscriptions(promotion: Promotion, options: Options, config, source_raw: dict) -> None:
    """Event subscriptions (types, filters, retry, dead-lettering) are promoted; the destinations
    they name are each environment's own, so a destination the target lacks refuses the promotion
    when the result is validated."""
    def keyed(env) -> list[_Keyed]:
        subscriptions = env.spec.events.subscriptions if env.spec.events else []
        return [_Keyed(s.name.lower(), s, f"subscription {s.name}") for s in subscriptions]

    current, wanted = keyed(promotion.target), keyed(promotion.source)
    if not current and not wanted:
        return
    container = config.get(EVENTS_KEY)
    if container is None:
        container = config[EVENTS_KEY] = yaml_node({}, flow=False)
    _merge_list(promotion, options, "events", container, SUBSCRIPTIONS_KEY, current, wanted,
                source_raw.get(SUBSCRIPTIONS_KEY) or [])


@dataclass(frozen=True)
class _Keyed:
    """One item of a promoted list: what identifies it across environments, its effective value."""

    key: Any
    value: Any
    label: str
    never_pruned: bool = False


def _merge_list(promotion: Promotion, options: Options, where: str, container, list_key: str,
                current: list[_Keyed], wanted: list[_Keyed], wanted_raw: list) -> None:
    """Make the target's list hold the source's items: unchanged ones keep their nodes (and
    comments), changed ones take the source's spelling, new ones are appended in its order,
    and the target's own are kept unless --prune."""
    existing = container.get(list_key)
    flow = flow_items(existing)
    by_key = {item.key: (item, raw) for item, raw in zip(wanted, wanted_raw, strict=True)}
    items = []
    for node, item in zip(existing or [], current, strict=True):
        if item.key in by_key:
            source_item, raw = by_key[item.key]
            items.append(node if source_item.value == item.value else yaml_node(raw, flow=flow))
        elif item.never_pruned or not options.prune:
            why = "the deployer's own grant is never pruned" if item.never_pruned else "--prune removes it"
            promotion.kept.append(f"{where}: {item.label} (not declared in {promotion.source.name}; {why})")
            items.append(node)
    present = {item.key for item in current}
    items += [yaml_node(raw, flow=flow) for key, (_, raw) in by_key.items() if key not in present]
    if _same_nodes(items, existing):
        return
    if not items:
        container.pop(list_key, None)
    elif existing is None:
        container[list_key] = yaml_node(items, flow=False)
    else:
        existing[:] = items


def _same_nodes(items: list, existing) -> bool:
    existing = list(existing or [])
    return len(items) == len(existing) and all(a is b for a, b in zip(items, existing, strict=True))


def _spelled(mapping, model, name: str) -> str | None:
    """The key a file uses for a field (camelCase or the field name), if it writes it."""
    return next((key for key in (alias(model, name), name) if key in mapping), None)


def _existing_key(node, model, name: str) -> str:
    return _spelled(node, model, name) or alias(model, name)


def _raw(raw: dict, model, name: str) -> Any:
    """The source file's own spelling of a field's value, when it writes one."""
    key = _spelled(raw, model, name)
    return None if key is None else raw[key]


def _delete(node, model, name: str) -> None:
    key = _spelled(node, model, name)
    if key is not None:
        del node[key]


def _check(promotion: Promotion, target_path: Path, target_config: dict, target_text: str,
           check_policy: bool) -> None:
    """Read the new text back the way every command reads a stack file, so what is checked and
    printed is what would be written; and prove nothing outside the promoted keys moved."""
    from hdsctl.environment.yaml_text import parse_yaml

    config = (parse_yaml(promotion.text.removeprefix("\ufeff"), str(target_path)) or {}).get("config") or {}
    edited = {*_service_keys(), ROLES_KEY, EVENTS_KEY}
    moved = sorted(key for key in set(config) | set(target_config)
                   if key not in edited and config.get(key) != target_config.get(key))
    if moved:
        promotion.refusals.append(f"rewriting {target_path} would change {', '.join(moved)}, which promotion "
                                  "never touches; nothing was written (please report this file's layout)")
        return
    prefix = f"{NAMESPACE}:"
    namespaced = {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}
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
        _check_policies(promotion, target_path, target_text)


def _check_policies(promotion: Promotion, target_path: Path, target_text: str) -> None:
    """Refuse what the promotion introduces; what the target fails today is listed apart."""
    before = _mandatory_findings(target_text, target_path.name)
    after = _mandatory_findings(promotion.text, target_path.name)
    tier = promotion.result.spec.tier
    for finding in after:
        if finding in before:
            promotion.already.append(f"{finding[0]}: {finding[2]}")
        else:
            promotion.refusals.append(f"{promotion.target.name} ({tier}) would fail mandatory policy "
                                      f"{finding[0]}: {finding[2]}")


def _mandatory_findings(text: str, file_name: str) -> list[tuple[str, str, str]]:
    from hdsctl.policies.evaluate import evaluate
    from hdsctl.preview import run_preview

    with tempfile.TemporaryDirectory() as folder:
        candidate = Path(folder) / file_name
        candidate.write_text(text, encoding="utf-8")
        report = evaluate(run_preview(candidate))
    return [(v.policy, v.resource or "", v.message) for v in report.mandatory]
