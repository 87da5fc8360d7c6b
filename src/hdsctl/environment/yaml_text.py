"""Stack files parsed strictly: what a YAML library lets pass silently is a problem here.

Refused, each with its line: a key given twice (never "last one wins"), a key that is not
text, nesting deeper than any stack file needs, aliases that expand the document beyond
reason (the "billion laughs"), and files larger than a stack file can sensibly be.
"""

from __future__ import annotations

from typing import Any

import yaml

from hdsctl.errors import SpecError, SpecProblem

MAX_BYTES = 1 << 20
MAX_DEPTH = 40
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class _Refused(Exception):
    def __init__(self, line: int | None, message: str):
        self.line = line
        self.message = message


class _StrictLoader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark.line + 1,
                               f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, _ in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG:
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                    shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                    raise _Refused(line, f"the key {shown!r} is not text; quote it (\"{shown}\": ...)")
                if key_node.value in first_line:
                    raise _Refused(line, f"the key {key_node.value!r} is given twice (lines "
                                         f"{first_line[key_node.value]} and {line}); keep one")
                first_line[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str) -> Any:
    """The document in `text`, or a SpecError naming the file, the line and what is wrong."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise SpecError(source, [SpecProblem("", f"larger than {MAX_BYTES} bytes; a stack file is not")])
    loader = None
    try:
        loader = _StrictLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except _Refused as refused:
        raise SpecError(source, [SpecProblem(f"line {refused.line}" if refused.line else "",
                                             refused.message)]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(err, "problem", None) or str(err)
        raise SpecError(source, [SpecProblem(where, f"not valid YAML: {reason}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root) -> None:
    """Count the values the document holds once every alias is expanded, without expanding."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise _Refused(node.start_mark.line + 1, "an alias refers to the node that contains it")
        in_progress.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1
        in_progress.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise _Refused(node.start_mark.line + 1, f"aliases expand this document to more than "
                                                     f"{MAX_EXPANDED_NODES} values; write it out plainly")
        return total

    size(root)
