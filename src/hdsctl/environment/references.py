"""Rules that span more than one field: names, references between parts, limits."""

from __future__ import annotations

from collections import Counter

from hdsctl import naming, roles
from hdsctl.dicomtags import MAX_EXTENDED_QUERY_TAGS
from hdsctl.environment.model import EnvironmentSpec
from hdsctl.environment.private_dns import STORAGE_ZONES, expected_zone_names
from hdsctl.errors import SpecProblem

WORKSPACE_SCOPE = "workspace"


def check_references(spec: EnvironmentSpec) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    problems += _service_names(spec)
    problems += _extended_query_tags(spec)
    problems += _principals(spec)
    problems += _role_assignments(spec)
    problems += _dns_zones(spec)
    problems += _data_plane_urls(spec)
    problems += _events(spec)
    problems += _fhir_links(spec)
    problems += _storage_indexing(spec)
    return problems


def _storage_indexing(spec: EnvironmentSpec) -> list[SpecProblem]:
    """Partitions an indexing subscription covers exist only on a service with data partitions."""
    problems = []
    for index, service in enumerate(spec.dicom_services):
        indexing = service.storage.indexing if service.storage else None
        if indexing is None:
            continue
        at = f"hdsctl:dicomServices[{index}].storage.indexing"
        if indexing.partitions and not service.data_partitions:
            problems.append(SpecProblem(
                f"{at}.partitions", f"{service.name} has no data partitions (dataPartitions: false): index "
                                    "its whole folder (no partitions), or create the service with "
                                    "dataPartitions: true"))
        problems += [SpecProblem(f"{at}.partitions[{number}]", f"partition {name!r} is listed twice")
                     for number, name in enumerate(indexing.partitions) if name in indexing.partitions[:number]]
    return problems


def _fhir_links(spec: EnvironmentSpec) -> list[SpecProblem]:
    names = [s.name for s in spec.fhir_services]
    return [SpecProblem(f"hdsctl:dicomServices[{index}].fhirLink.fhirService",
                        f"{service.fhir_link.fhir_service!r} is not a FHIR service of this environment "
                        f"(FHIR services: {', '.join(names) or 'none'})")
            for index, service in enumerate(spec.dicom_services)
            if service.fhir_link and service.fhir_link.fhir_service not in names]


def _events(spec: EnvironmentSpec) -> list[SpecProblem]:
    """Subscriptions name declared destinations and services, and can receive what they ask for."""
    if spec.events is None:
        return []
    problems = []
    where = "hdsctl:events"
    problems += _duplicates(f"{where}.destinations", [d.name for d in spec.events.destinations], "destination")
    problems += _duplicates(f"{where}.subscriptions", [s.name.lower() for s in spec.events.subscriptions],
                            "subscription")
    destinations = [d.name for d in spec.events.destinations]
    kinds = {name: kind for name, kind in scope_kinds(spec).items() if name != WORKSPACE_SCOPE}
    for index, subscription in enumerate(spec.events.subscriptions):
        at = f"{where}.subscriptions[{index}]"
        if subscription.destination not in destinations:
            problems.append(SpecProblem(
                f"{at}.destination",
                f"destination {subscription.destination!r} is not declared under {where}.destinations "
                f"(declared: {', '.join(destinations) or 'none'}); each environment declares its own"))
        for service_index, service in enumerate(subscription.services):
            if service not in kinds:
                problems.append(SpecProblem(
                    f"{at}.services[{service_index}]",
                    f"{service!r} is not a DICOM or FHIR service of this environment "
                    f"(services: {', '.join(sorted(kinds)) or 'none'})"))
        for kind in event_kinds(subscription.event_types):
            named = [s for s in subscription.services if kinds.get(s) == kind]
            if not (named if subscription.services else [s for s, k in kinds.items() if k == kind]):
                problems.append(SpecProblem(
                    f"{at}.eventTypes",
                    f"{kind.upper()} events are asked for but " + (
                        f"no {kind.upper()} service is among services" if subscription.services
                        else f"this environment declares no {kind.upper()} service")
                    + ", so none would arrive"))
    return problems


def event_kinds(event_types) -> list[str]:
    """The service kinds (dicom, fhir) a list of event types is about."""
    kinds = [roles.DICOM] if any(t in naming.DICOM_EVENT_TYPES for t in event_types) else []
    return kinds + ([roles.FHIR] if any(t in naming.FHIR_EVENT_TYPES for t in event_types) else [])


def _duplicates(where: str, names: list[str], what: str) -> list[SpecProblem]:
    first_at: dict[str, int] = {}
    problems = []
    for index, name in enumerate(names):
        if name in first_at:
            problems.append(SpecProblem(f"{where}[{index}].name",
                                        f"{what} {name!r} is declared twice (also at [{first_at[name]}])"))
        first_at.setdefault(name, index)
    return problems


def _data_plane_urls(spec: EnvironmentSpec) -> list[SpecProblem]:
    """A DICOM or FHIR URL gets that service's token: only Azure's hosts, loopback, or a trusted host."""
    from hdsctl.endpoints import EndpointRefused, check_dicom_url, check_fhir_url

    problems = []
    for kind, services, check in (("dicomServices", spec.dicom_services, check_dicom_url),
                                  ("fhirServices", spec.fhir_services, check_fhir_url)):
        for index, service in enumerate(services):
            if service.url is None:
                continue
            try:
                check(service.url, spec.trusted_hosts)
            except EndpointRefused as err:
                problems.append(SpecProblem(f"hdsctl:{kind}[{index}].url", str(err)))
    return problems


def _service_names(spec: EnvironmentSpec) -> list[SpecProblem]:
    problems = []
    seen: dict[str, str] = {}
    for kind, services in (("dicomServices", spec.dicom_services),
                           ("fhirServices", spec.fhir_services)):
        for index, service in enumerate(services):
            where = f"hdsctl:{kind}[{index}].name"
            if service.name == WORKSPACE_SCOPE:
                problems.append(SpecProblem(where, "'workspace' is reserved for the workspace scope"))
            elif service.name in seen:
                problems.append(SpecProblem(
                    where,
                    f"duplicate service name {service.name!r} (already used at {seen[service.name]}); "
                    "DICOM and FHIR services of one workspace need distinct names",
                ))
            else:
                seen[service.name] = where
    return problems


def _extended_query_tags(spec: EnvironmentSpec) -> list[SpecProblem]:
    problems = []
    for index, service in enumerate(spec.dicom_services):
        where = f"hdsctl:dicomServices[{index}].extendedQueryTags"
        tags = service.extended_query_tags
        if len(tags) > MAX_EXTENDED_QUERY_TAGS:
            problems.append(SpecProblem(
                where, f"{len(tags)} tags declared; a DICOM service holds at most "
                f"{MAX_EXTENDED_QUERY_TAGS}"))
        first_at: dict[str, int] = {}
        for tag_index, tag in enumerate(tags):
            path = tag.definition().path
            if path in first_at:
                problems.append(SpecProblem(
                    f"{where}[{tag_index}].path",
                    f"tag {path} is declared twice (also at [{first_at[path]}]); "
                    "a path can be an extended query tag only once",
                ))
            else:
                first_at[path] = tag_index
    return problems


def _principals(spec: EnvironmentSpec) -> list[SpecProblem]:
    problems = []
    types_by_id: dict[str, tuple[str, str]] = {}
    for alias, principal in spec.principals.items():
        object_id = principal.object_id.lower()
        if object_id in types_by_id and types_by_id[object_id][1] != principal.type:
            other_alias, other_type = types_by_id[object_id]
            problems.append(SpecProblem(
                f"hdsctl:principals.{alias}.type",
                f"object id {principal.object_id} is declared as {principal.type} here and as "
                f"{other_type} for alias {other_alias!r}",
            ))
        types_by_id.setdefault(object_id, (alias, principal.type))
    return problems


def scope_kinds(spec: EnvironmentSpec) -> dict[str, str]:
    """Scope name → kind (workspace, dicom, fhir) for every scope of the environment."""
    kinds = {WORKSPACE_SCOPE: roles.WORKSPACE}
    kinds.update({service.name: roles.DICOM for service in spec.dicom_services})
    kinds.update({service.name: roles.FHIR for service in spec.fhir_services})
    return kinds


def _role_assignments(spec: EnvironmentSpec) -> list[SpecProblem]:
    problems = []
    kinds = scope_kinds(spec)
    seen = Counter()
    for index, assignment in enumerate(spec.role_assignments):
        where = f"hdsctl:roleAssignments[{index}]"
        role = roles.role_by_name(assignment.role)
        if role is None or not role.declarable:
            problems.append(SpecProblem(
                f"{where}.role",
                f"unknown role {assignment.role!r}; allowed: {', '.join(roles.DECLARABLE_ROLE_NAMES)}",
            ))
        if assignment.principal not in spec.principals:
            declared = ", ".join(sorted(spec.principals)) or "none declared"
            problems.append(SpecProblem(
                f"{where}.principal",
                f"principal alias {assignment.principal!r} is not declared under hdsctl:principals "
                f"(declared: {declared})",
            ))
        kind = kinds.get(assignment.scope)
        if kind is None:
            problems.append(SpecProblem(
                f"{where}.scope",
                f"scope {assignment.scope!r} is neither 'workspace' nor a service of this "
                f"environment (services: {', '.join(sorted(set(kinds) - {WORKSPACE_SCOPE})) or 'none'})",
            ))
        elif role is not None and kind not in role.scopes:
            problems.append(SpecProblem(
                f"{where}.scope",
                f"role {role.name!r} does not apply to the {kind.upper()} service "
                f"{assignment.scope!r}",
            ))
        key = (assignment.role.lower(), assignment.principal, assignment.scope)
        seen[key] += 1
        if seen[key] == 2:
            problems.append(SpecProblem(where, "the same role, principal and scope are assigned twice"))
    return problems


def needs_storage_endpoints(spec: EnvironmentSpec) -> bool:
    """A Data Lake is created here and the environment is private: it gets blob and dfs endpoints."""
    return (spec.private_networking is not None and spec.workspace.public_network_access == "Disabled"
            and any(s.storage and s.storage.create for s in spec.dicom_services))


def _dns_zones(spec: EnvironmentSpec) -> list[SpecProblem]:
    networking = spec.private_networking
    if networking is None or networking.dns_zones.mode != "existing":
        return []
    zones = networking.dns_zones
    problems = []
    given_storage = {naming.arm_name(z).lower() for z in zones.storage_zone_ids}
    if needs_storage_endpoints(spec) and given_storage != set(STORAGE_ZONES.values()):
        problems.append(SpecProblem(
            "hdsctl:privateNetworking.dnsZones.storageZoneIds",
            f"a DICOM service's Data Lake is created here with private endpoints: give the hub's zones "
            f"{', '.join(sorted(STORAGE_ZONES.values()))} "
            f"(given: {', '.join(sorted(given_storage)) or 'none'})"))
    return problems + _hds_zones(zones)


def _hds_zones(zones) -> list[SpecProblem]:
    expected = set(expected_zone_names(zones.legacy_single_zone))
    given = {zone_id.rstrip("/").rsplit("/", 1)[-1].lower() for zone_id in zones.zone_ids}
    if given != expected:
        return [SpecProblem(
            "hdsctl:privateNetworking.dnsZones.zoneIds",
            f"the zones must be exactly {', '.join(sorted(expected))} "
            f"(given: {', '.join(sorted(given))})",
        )]
    return []
