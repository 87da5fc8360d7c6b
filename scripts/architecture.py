"""The code's shape, checked like lint (scripts/test runs it): no import cycle between modules,
nothing outside the local platform imports it, no module over 400 lines, no data-plane
function over 60. Prints each breach and exits 1, or prints nothing and exits 0."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# The guardrail catalogue reads best as one table.
LONG_MODULES_ALLOWED = {"hdsctl.policies.rules"}
DATA_PLANE = ("hdsctl.dicom", "hdsctl.fhir", "hdsctl.events", "hdsctl.emulator", "hdsctl.capacity",
              "hdsctl.tags")
LOCAL_PLATFORM = "hdsctl.emulator"
# The CLI registers the local platform's command; nothing else outside it may import it.
LOCAL_PLATFORM_IMPORTERS = {"hdsctl.cli": {"hdsctl.emulator.commands"}}


def modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        name = ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules a module imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports the module; `from module import name`, the module
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                     for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter[0]
                    counter[0] += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def breaches() -> list[str]:
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    found = [f"import cycle: {' <-> '.join(component)}" for component in cycles(graph)]
    for name, targets in sorted(graph.items()):
        if name == LOCAL_PLATFORM or name.startswith(LOCAL_PLATFORM + "."):
            continue
        reaching = {t for t in targets if t == LOCAL_PLATFORM or t.startswith(LOCAL_PLATFORM + ".")}
        if reaching - LOCAL_PLATFORM_IMPORTERS.get(name, set()):
            found.append(f"{name} imports the local platform ({', '.join(sorted(reaching))})")
    for name, path in sorted(known.items()):
        text = path.read_text()
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES and name not in LONG_MODULES_ALLOWED:
            found.append(f"{path.relative_to(SOURCE.parent)}: {lines} lines (at most {MAX_MODULE_LINES})")
        if not name.startswith(DATA_PLANE):
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    where = f"{path.relative_to(SOURCE.parent)}:{node.lineno}"
                    found.append(f"{where}: {node.name} is {length} lines (at most {MAX_FUNCTION_LINES} in the "
                                 "data plane)")
    return found


if __name__ == "__main__":
    problems = breaches()
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(1 if problems else 0)
