"""Request rules of the local service: which DICOMweb routes it serves, paging, the one data
partition, and QIDO filters checked as the Azure service checks them (shared by the tag API and
the DICOMweb front)."""

from __future__ import annotations

from hdsctl import naming
from hdsctl.dicom.web import is_uid
from hdsctl.dicomtags import DEFAULT_SEARCHABLE, TagRuleError, resolve_path
from hdsctl.emulator.store import ApiError, Store

QIDO_LEVELS = {"studies": {"Study"}, "series": {"Study", "Series"},
               "instances": {"Study", "Series", "Instance"}}
QIDO_RESERVED = {"limit", "offset", "includefield", "fuzzymatching"}


def paging(query: dict[str, str], default_limit: int = 100) -> tuple[int, int]:
    """`limit` and `offset` of a query (lower-cased names), checked as the service checks them."""
    try:
        limit = int(query.get("limit", default_limit))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise ApiError(400, "limit and offset must be integers.") from None
    if not 1 <= limit <= 200 or offset < 0:
        raise ApiError(400, "limit must be between 1 and 200 and offset at least 0.")
    return limit, offset


def default_partition(rest: list[str]) -> list[str]:
    """`partitions/Microsoft.Default/studies/...` → `studies/...`: the local service has the one
    partition every service with partitions has; another name is refused rather than mixed in."""
    if len(rest) < 3 or rest[1] != naming.DEFAULT_PARTITION:
        raise ApiError(404, f"The local service has one data partition, {naming.DEFAULT_PARTITION}.")
    return rest[2:]


def qido_filters(store: Store, resource: str, pairs: list[tuple[str, str]], in_path: tuple[str, ...] = ()):
    """The (key, path, value) filters of a QIDO query, checked as the service checks them: an
    attribute must be searchable by default or a ready, enabled extended query tag at a level
    the resource covers, given once (by keyword or by number), and not a UID the path already
    names (`in_path`: the study's, the series' tag). Keys keep their case: DICOM keywords are
    case-sensitive."""
    headers, filters, given = {}, [], set()
    with store.lock:
        for key, value in pairs:
            if key.lower() in QIDO_RESERVED:
                continue
            try:
                path = f"{resolve_path(key):08X}"
            except TagRuleError:
                path = key.upper()
            if path in in_path:
                raise ApiError(400, f"The attribute '{key}' is not allowed: the request path names it already.")
            if path in given:
                raise ApiError(400, f"The attribute '{key}' is specified more than once.")
            given.add(path)
            tag = store.tags.get(path)
            if tag is not None:
                if tag.status != "ready" or tag.level not in QIDO_LEVELS[resource]:
                    raise ApiError(400, f"The query tag '{key}' is not queryable.")
                if not tag.query_enabled:
                    raise ApiError(400, f"Query is disabled on specified attribute '{key}'.")
                if tag.errors:
                    headers["erroneous-dicom-attributes"] = key
            elif path not in DEFAULT_SEARCHABLE:
                raise ApiError(400, f"The query parameter '{key}' is not supported.")
            filters.append((key, path, value))
    return filters, headers


WADO_TAILS = {"metadata", "rendered", "thumbnail", "frames", "bulkdata"}


def dicomweb_route(rest: list[str]) -> bool:
    """studies[/UID[/series[/UID[/instances[/UID]]]]][/metadata|rendered|frames/N,...[/rendered]],
    the top-level series and instances searches, and the change feed: UIDs are digits and dots."""
    if rest[:1] == ["changefeed"]:
        return rest in (["changefeed"], ["changefeed", "latest"])
    if rest in (["series"], ["instances"]):
        return True
    labels = ("studies", "series", "instances")
    index = 0
    while index < len(rest) and index // 2 < len(labels) and rest[index] == labels[index // 2]:
        if index + 1 < len(rest) and not is_uid(rest[index + 1]):
            return rest[index + 1] in {"series", "instances"} and index + 2 == len(rest)
        index += 2
    tail = rest[index:]
    if not tail:
        return bool(rest)
    if tail in (["series"], ["instances"]):
        return index >= 2  # a search inside a study or series
    if tail[0] == "frames":
        frames_ok = len(tail) >= 2 and all(f.isdigit() for f in tail[1].split(","))
        return frames_ok and tail[2:] in ([], ["rendered"])
    return len(tail) == 1 and tail[0] in WADO_TAILS


def is_qido(rest: list[str]) -> bool:
    return (rest in (["studies"], ["series"], ["instances"])
            or (len(rest) == 3 and rest[0] == "studies" and rest[2] in {"series", "instances"})
            or (len(rest) == 5 and rest[0] == "studies" and rest[2] == "series" and rest[4] == "instances"))
