"""A stack file as text to edit in place: what promotion can keep exactly and what it refuses.

Kept: comments, key order, quoting, flow or block style, `secure:` values, a UTF-8 byte order
mark and CRLF line endings. Refused: YAML anchors, aliases and merge keys inside the keys a
promotion edits, because an edit through a reference would change what the printed diff does
not show.
"""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdsctl.errors import SpecError, SpecProblem

BOM = "\ufeff"


@dataclass
class StackText:
    path: Path
    text: str  # without the byte order mark, line endings as \n
    document: Any  # ruamel round-trip document
    bom: bool
    crlf: bool

    @classmethod
    def read(cls, path: Path) -> StackText:
        raw = path.read_bytes().decode("utf-8")
        bom = raw.startswith(BOM)
        raw = raw.removeprefix(BOM)
        crlf = "\r\n" in raw
        text = raw.replace("\r\n", "\n")
        return cls(path, text, _yaml().load(text), bom, crlf)

    def refuse_references_in(self, keys: list[str]) -> None:
        """Refuse anchors, aliases and merge keys inside the blocks of the given top-level
        config keys, naming each line."""
        import yaml

        blocks = self._blocks(keys)
        problems = []
        tokens = list(yaml.scan(self.text))
        for previous, token in zip([None, *tokens], tokens, strict=False):
            line = token.start_mark.line
            kind = None
            if isinstance(token, yaml.AnchorToken):
                kind = f"anchor &{token.value}"
            elif isinstance(token, yaml.AliasToken):
                kind = f"alias *{token.value}"
            elif (isinstance(token, yaml.ScalarToken) and token.value == "<<" and token.plain
                  and isinstance(previous, yaml.KeyToken)):
                kind = "merge key <<"
            owner = next((key for key, lines in blocks.items() if line in lines), None)
            if kind and owner:
                problems.append(SpecProblem(
                    f"line {line + 1}", f"{kind} inside {owner}: promotion edits this key and cannot "
                    "carry YAML references faithfully; write the values out in full"))
        if problems:
            raise SpecError(str(self.path), problems)

    def _blocks(self, keys: list[str]) -> dict[str, range]:
        config = self.document["config"]
        starts = sorted((config.lc.key(key)[0], key) for key in config)
        ends = [line for line, _ in starts[1:]] + [len(self.text.splitlines())]
        return {key: range(line, end) for (line, key), end in zip(starts, ends, strict=True) if key in keys}

    def dump(self) -> str:
        buffer = io.StringIO()
        _yaml().dump(self.document, buffer)
        text = buffer.getvalue()
        if self.crlf:
            text = text.replace("\n", "\r\n")
        return (BOM if self.bom else "") + text


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments, order, quoting and flow style survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def set_key(mapping, key: str, value) -> None:
    """Change one key only where its value differs, reusing the original nodes (and with them
    their flow or block style and comments) for every part that stays the same."""
    current = mapping.get(key)
    if plain(current) == value:
        return
    if isinstance(current, dict) and isinstance(value, dict):
        for name in [name for name in current if name not in value]:
            del current[name]
        for name, inner in value.items():
            set_key(current, name, inner)
    elif isinstance(current, list) and isinstance(value, list):
        unused, flow, items = list(current), flow_items(current), []
        for wanted in value:
            match = next((item for item in unused if plain(item) == wanted), None)
            if match is not None:
                unused.remove(match)
            items.append(match if match is not None else yaml_node(wanted, flow=flow))
        current[:] = items
    else:
        mapping[key] = yaml_node(value, flow=False)


def flow_items(items) -> bool:
    """Whether the items of a list are written in flow style ({a: 1}), so new ones match."""
    return any(getattr(item, "fa", None) is not None and item.fa.flow_style() for item in items or [])


def yaml_node(value, *, flow: bool):
    """A new YAML node for a plain value, in flow style when its siblings use it."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        node = CommentedMap((k, yaml_node(v, flow=False)) for k, v in value.items())
    elif isinstance(value, list):
        node = CommentedSeq(yaml_node(v, flow=False) for v in value)
    else:
        return copy.deepcopy(value)
    if flow:
        node.fa.set_flow_style()
    return node


def plain(value):
    """Plain JSON-like data of a model value or a YAML node, for comparison."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, exclude_none=True)
    return None if value is None else json.loads(json.dumps(value))
