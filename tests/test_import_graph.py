"""The import graph of segdil/, read from the source: its top-level parts form layers, and no private crosses a module.

Every ``import`` counts, those inside functions too (a lazy import delays a dependency, it does not remove it);
``from x import y`` counts as an import of the module ``x.y`` where there is one, else of ``x``; relative imports
are resolved against the importing file. The graph is collapsed to segdil's top-level parts (``segdil.models``,
``segdil.checkpoint``, ...; ``segdil`` itself is the package's ``__init__``), which must have no cycle
(docs/architecture.md, "Dependency direction"). A module may use its own private names (``_name``), no other's.
"""

from __future__ import annotations

import ast
from collections import deque
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "segdil"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SOURCES}


def part(module: str) -> str:
    """The top-level part a module belongs to: ``segdil.models.hdc.model`` -> ``segdil.models``."""
    return ".".join(module.split(".")[:2])


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _ours(name: str) -> bool:
    return name == "segdil" or name.startswith("segdil.")


def _from_base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_in(module: str, tree: ast.Module, is_package: bool = False) -> list[tuple[int, str, str | None]]:
    """(line, module, name) for each segdil import anywhere in ``tree``; ``name``: what a ``from`` import takes
    from a module (None when the import names a module)."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names if _ours(alias.name)]
        elif isinstance(node, ast.ImportFrom) and _ours(base := _from_base(module, is_package, node)):
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub, None) if sub in MODULES else (node.lineno, base, alias.name))
    return found


def imports(path: Path) -> list[tuple[int, str, str | None]]:
    return imports_in(module_name(path), _tree(path), path.name == "__init__.py")


def part_edges() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) -> the ``file:line`` places that make the edge."""
    edges: dict[tuple[str, str], set[str]] = {}
    for path in SOURCES:
        source = part(module_name(path))
        for line, target, _ in imports(path):
            if part(target) != source:
                edges.setdefault((source, part(target)), set()).add(f"{_rel(path)}:{line}")
    return {edge: sorted(places, key=lambda p: (p.split(":")[0], int(p.split(":")[1]))) for edge, places in edges.items()}


def _shortest_cycle(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """The shortest path start -> ... -> start, by breadth-first search."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def cycles(edges) -> list[list[str]]:
    """The shortest cycle through each node that is on one, each cycle listed once."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    found: dict[frozenset, list[str]] = {}
    for start in sorted(graph):
        cycle = _shortest_cycle(start, graph)
        if cycle:
            found.setdefault(frozenset(zip(cycle, cycle[1:])), cycle)
    return list(found.values())


def _module_names(module: str, tree: ast.Module, is_package: bool) -> dict[str, str]:
    """Local name -> segdil module, for the names imports bind to modules (``import segdil.x`` binds ``segdil``)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _ours(alias.name):
                    bound[alias.asname or "segdil"] = alias.name if alias.asname else "segdil"
        elif isinstance(node, ast.ImportFrom) and _ours(base := _from_base(module, is_package, node)):
            bound.update({alias.asname or alias.name: f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES})
    return bound


def _named_module(node: ast.expr, bound: dict[str, str]) -> str | None:
    """The segdil module an expression such as ``io`` or ``segdil.data.io`` names, if it names one."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute) and (base := _named_module(node.value, bound)):
        return f"{base}.{node.attr}" if f"{base}.{node.attr}" in MODULES else None
    return None


def private_uses_in(module: str, tree: ast.Module, is_package: bool = False) -> list[str]:
    """Private names of other segdil modules that ``tree`` imports or reads as module attributes."""
    found = []
    for line, target, name in imports_in(module, tree, is_package):
        if target != module and (is_private(name or "") or is_private(target.rpartition(".")[2])):
            found.append(f"line {line}: {target}{'.' + name if name else ''}")
    bound = _module_names(module, tree, is_package)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and (owner := _named_module(node.value, bound)) and owner != module:
            found.append(f"line {node.lineno}: {owner}.{node.attr}")
    return found


def test_the_reader_sees_every_kind_of_import():
    """In-function and relative imports count, ``from pkg import module`` names the module, cycles are found."""
    tree = ast.parse("from . import io\nfrom .check import CheckResult\n\n\ndef f():\n    from segdil.models import MODELS\n    import segdil.rf.analysis\n")
    assert imports_in("segdil.data.folder", tree) == [(1, "segdil.data.io", None), (2, "segdil.data.check", "CheckResult"), (6, "segdil.models", "MODELS"), (7, "segdil.rf.analysis", None)]
    assert imports_in("segdil.data", ast.parse("from .io import load_image"), is_package=True) == [(1, "segdil.data.io", "load_image")]
    assert ("segdil", "segdil.api") in part_edges()  # the lazy import in segdil/__init__.py
    assert cycles({("a", "b"): [], ("b", "c"): [], ("c", "a"): [], ("c", "d"): []}) == [["a", "b", "c", "a"]]


def test_the_reader_sees_private_names_of_other_modules():
    source = (
        "from segdil.data import io\nfrom segdil.data.check import _values, check_dataset\n\n\n"
        "def f():\n    import segdil.data.voc\n    import segdil.data.io as dio\n\n"
        "    return io._open, dio._open, segdil.data.io._open, io.load_image, _own, check_dataset.__doc__\n"
    )
    found = private_uses_in("segdil.data.formats", ast.parse(source))
    assert sorted(found) == ["line 2: segdil.data.check._values", "line 9: segdil.data.io._open", "line 9: segdil.data.io._open", "line 9: segdil.data.io._open"]
    assert private_uses_in("segdil.data.io", ast.parse("import segdil.data.io\nsegdil.data.io._open")) == []  # its own


def test_the_top_level_parts_have_no_cycle():
    edges = part_edges()
    found = cycles(edges)
    explained = [
        " -> ".join(cycle) + "\n" + "\n".join(f"    {a} -> {b}: {', '.join(edges[a, b])}" for a, b in zip(cycle, cycle[1:]))
        for cycle in found
    ]
    assert not found, "import cycles between segdil's top-level parts (move the function to the layer it belongs in):\n" + "\n".join(explained)


def test_no_module_uses_another_modules_private_names():
    found = [f"{_rel(path)} {use}" for path in SOURCES for use in private_uses_in(module_name(path), _tree(path), path.name == "__init__.py")]
    assert not found, "private names used across modules (make them public, or keep them in their module):\n" + "\n".join(found)


def module_edges(within: str) -> dict[tuple[str, str], list[str]]:
    """(importing module, imported module) -> ``file:line`` places, for the modules of the part ``within``."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in SOURCES:
        source = module_name(path)
        if part(source) != within:
            continue
        for line, target, _ in imports(path):
            if target != source and target in MODULES and part(target) == within:
                edges.setdefault((source, target), []).append(f"{_rel(path)}:{line}")
    return edges


def test_the_modules_of_data_and_compare_have_no_cycle():
    """Inside a part too, no module imports one that imports it back (lazy imports included): segdil.data's
    io and synth, and compare's report and its sections, once did."""
    for within in ("segdil.data", "segdil.compare"):
        edges = module_edges(within)
        found = cycles(edges)
        explained = [" -> ".join(cycle) + "\n" + "\n".join(f"    {a} -> {b}: {', '.join(edges[a, b])}" for a, b in zip(cycle, cycle[1:])) for cycle in found]
        assert not found, f"import cycles between the modules of {within}:\n" + "\n".join(explained)
