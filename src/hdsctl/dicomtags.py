"""Rules for DICOM extended query tags, checked offline against pydicom's data dictionary.

The service's own rules (see the extended-query-tag reference): a path is 8 hex digits or a
case-sensitive keyword, sequences are refused, 18 VRs are supported (DS among them), private tags need a VR
and a private creator, standard tags must not carry one, and tags that are searchable by
default cannot be added.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from hdsctl.dicom import keys

MAX_EXTENDED_QUERY_TAGS = 128

SUPPORTED_VRS = frozenset(
    ["AE", "AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "PN", "SH", "SL", "SS", "TM", "UI", "UL", "US"]
)
LEVELS = ("Study", "Series", "Instance")

# Attributes every DICOM service indexes already (path → keyword).
DEFAULT_SEARCHABLE = {keys.KEYS[keyword]: keyword for keyword in (
    "StudyDate", "StudyInstanceUID", "StudyDescription", "AccessionNumber", "PatientID", "PatientName",
    "ReferringPhysicianName", "PatientBirthDate", "ModalitiesInStudy", "SeriesInstanceUID", "Modality",
    "PerformedProcedureStepStartDate", "ManufacturerModelName", "SOPInstanceUID")}

_HEX_PATH = re.compile(r"^[0-9A-Fa-f]{8}$")
_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


class TagRuleError(ValueError):
    """A tag definition the DICOM service would refuse."""


@dataclass(frozen=True)
class TagDefinition:
    """A tag in the form the service reports it: path as 8 upper-case hex digits."""

    path: str
    vr: str
    level: str
    private_creator: str | None = None
    # Whether queries on the tag should be enabled (the service's queryStatus).
    query_enabled: bool = True

    def same_index(self, other: TagDefinition) -> bool:
        """True when both index the same attribute in the same way (a change means reindex)."""
        return (self.vr, self.level, self.private_creator) == (
            other.vr, other.level, other.private_creator)

    @property
    def keyword(self) -> str | None:
        from pydicom.datadict import keyword_for_tag

        return keyword_for_tag(int(self.path, 16)) or None


def resolve_path(path: str) -> int:
    """Turn a tag path (hex or keyword) into the tag number, or say why it is invalid."""
    from pydicom.datadict import tag_for_keyword

    text = path.strip()
    if "." in text:
        raise TagRuleError(f"sequence paths such as {text!r} are not supported; name one tag")
    if _HEX_PATH.match(text):
        return int(text, 16)
    if _KEYWORD.match(text):
        tag = tag_for_keyword(text)
        if tag is None:
            hint = _keyword_hint(text)
            raise TagRuleError(
                f"{text!r} is not a DICOM keyword{hint} (keywords are case-sensitive; "
                "private tags are named by 8 hex digits)"
            )
        return tag
    raise TagRuleError(f"{text!r} is neither 8 hex digits (e.g. 00180015) nor a DICOM keyword")


def _keyword_hint(text: str) -> str:
    from pydicom.datadict import keyword_dict, tag_for_keyword

    lowered = text.lower()
    for keyword in keyword_dict:
        if keyword.lower() == lowered and tag_for_keyword(keyword) is not None:
            return f"; did you mean {keyword!r}?"
    return ""


@functools.lru_cache(maxsize=4096)  # pure, and asked again by validation, plans and programs
def check_tag(path: str, level: str, vr: str | None = None,
              private_creator: str | None = None, query_enabled: bool = True) -> TagDefinition:
    """Validate one declared tag and return it normalized as the service stores it."""
    from pydicom.datadict import dictionary_has_tag, dictionary_VR

    tag = resolve_path(path)
    hex_path = f"{tag:08X}"
    group, element = tag >> 16, tag & 0xFFFF

    matched_level = next((lv for lv in LEVELS if lv.lower() == level.strip().lower()), None)
    if matched_level is None:
        raise TagRuleError(f"level {level!r} is not one of {', '.join(LEVELS)}")

    if hex_path in DEFAULT_SEARCHABLE:
        raise TagRuleError(
            f"{DEFAULT_SEARCHABLE[hex_path]} ({hex_path}) is already searchable by default; "
            "remove it from extendedQueryTags"
        )

    is_private = group % 2 == 1
    if is_private:
        if 0x0010 <= element <= 0x00FF:
            raise TagRuleError(
                f"{hex_path} is a private creator element; declare the private data element "
                "it reserves instead"
            )
        if element < 0x1000:
            raise TagRuleError(f"{hex_path} is not a private data element (gggg,xxxx with xxxx >= 1000)")
        if not private_creator:
            raise TagRuleError(f"private tag {hex_path} needs privateCreator")
        if not vr:
            raise TagRuleError(f"private tag {hex_path} needs vr (one of {_vr_list()})")
        chosen_vr = vr.strip().upper()
    else:
        if private_creator:
            raise TagRuleError(f"privateCreator is only allowed on private tags, not on {hex_path}")
        if not dictionary_has_tag(tag):
            raise TagRuleError(f"{hex_path} is not in the DICOM data dictionary")
        dictionary_vr = dictionary_VR(tag)
        if dictionary_vr == "SQ":
            raise TagRuleError(f"{path} is a sequence (VR SQ); sequences cannot be indexed")
        chosen_vr = (vr or dictionary_vr).strip().upper()
        if vr and chosen_vr not in dictionary_vr.split(" or "):
            raise TagRuleError(
                f"vr {chosen_vr} does not match the dictionary VR {dictionary_vr} of {path}"
            )
    if chosen_vr not in SUPPORTED_VRS:
        raise TagRuleError(f"VR {chosen_vr} cannot be indexed; supported: {_vr_list()}")
    return TagDefinition(hex_path, chosen_vr, matched_level, private_creator or None, query_enabled)


def _vr_list() -> str:
    return " ".join(sorted(SUPPORTED_VRS))
