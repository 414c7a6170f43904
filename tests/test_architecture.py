"""The package's shape (issue 18): layers import downward only, and ``stpipe.__all__`` is the lazy exports.

Rooms are the subpackage folders and the top-level modules of ``stpipe/``. Every ``import`` counts, including the
ones inside functions — except the registry's lazy class imports (``importlib.import_module`` of a class path, not
an ``import`` statement) and ``stpipe/__init__``'s lazy exports. No cycle of two or more rooms may exist.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stpipe

PKG = Path(stpipe.__file__).parent

#: room edges allowed to close a cycle (none: every circle is broken; add one only with the reason beside it)
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "stpipe" or len(parts) < 2:
        return None
    return parts[1]


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            yield from (n for b in node.orelse for n in ast.walk(b))
            continue
        yield node
        yield from _runtime_nodes(node)


def room_graph() -> dict[str, dict[str, list[str]]]:
    """room → {room it imports: [the files that do]} (self-edges left out)."""
    graph: dict[str, dict[str, list[str]]] = {}
    for file in sorted(PKG.rglob("*.py")):
        rel = file.relative_to(PKG)
        if rel.parts == ("__init__.py",):
            continue  # the lazy exports
        src_room = rel.parts[0].removesuffix(".py")
        pkg_parts = ["stpipe", *rel.parts[:-1]]
        edges = graph.setdefault(src_room, {})
        for node in _runtime_nodes(ast.parse(file.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg_parts[: len(pkg_parts) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
                if mod == "stpipe":
                    targets = [f"stpipe.{a.name}" for a in node.names]
            for t in targets:
                dst = _room(t)
                if dst and dst != src_room and ((PKG / dst).is_dir() or (PKG / f"{dst}.py").is_file()):
                    edges.setdefault(dst, []).append(str(rel))
    return graph


def cycles(graph: dict[str, dict[str, list[str]]], ignore: set[tuple[str, str]] = frozenset()) -> list[list[str]]:
    """The strongly connected components of two or more rooms (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if (v, w) in ignore:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_rooms():
    graph = room_graph()
    found = cycles(graph, KNOWN_EXCEPTIONS)
    detail = [
        {room: {dst: files for dst, files in graph[room].items() if dst in comp} for room in comp} for comp in found
    ]
    assert not found, f"import cycles between rooms: {detail}"


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}, "d": {"a": ["w"]}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ["x"]}, "b": {}}) == []


def test_all_matches_the_lazy_exports():
    """Every name in ``__all__`` is a lazy export (or the version), and every lazy export is public and resolves."""
    assert set(stpipe.__all__) == set(stpipe._EXPORTS) | {"__version__"}
    assert len(stpipe.__all__) == len(set(stpipe.__all__))
    for name in stpipe._EXPORTS:
        assert getattr(stpipe, name) is not None
