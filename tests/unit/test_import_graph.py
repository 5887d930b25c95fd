"""No import cycles among mediaserver modules (DESIGN §2: imports go downward only).

import-linter's layers contract only sees imports between layers; a cycle inside one layer
(a verb handler importing the executor that imports it, a module and its helper) needs this
test. Imports under `TYPE_CHECKING` count: a cycle that only the type checker sees is still a
cycle in the design. Importing `a.b.c` also runs the package `a.b`'s `__init__`, so an importer
outside a package also depends on that package (that is how `kernel/recording.py`, importing
`kernel/verbs/taps.py`, used to come back to itself through `kernel/verbs/__init__.py`).
"""

from __future__ import annotations

import grimp

# Cycles known and owned elsewhere, each as the sorted module names of its component.
ALLOWED: set[tuple[str, ...]] = set()


def _graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("mediaserver")  # TYPE_CHECKING imports included
    modules = {m for m in graph.modules if m.startswith("mediaserver")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for importer in modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported not in modules:
                continue
            edges[importer].add(imported)
            # The packages above `imported` run their __init__ first (unless the importer is inside them).
            parts = imported.split(".")
            for n in range(2, len(parts)):
                package = ".".join(parts[:n])
                if package in modules and not importer.startswith(package + "."):
                    edges[importer].add(package)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(component: list[str], edges: dict[str, set[str]]) -> str:
    inside = set(component)
    arrows = [f"    {a} -> {b}" for a in component for b in sorted(edges[a] & inside)]
    return " <-> ".join(component) + "\n" + "\n".join(arrows)


def test_the_cycle_finder_finds_a_cycle_and_its_members() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_mediaserver_has_no_import_cycle() -> None:
    edges = _graph()
    cycles = [c for c in _cycles(edges) if tuple(c) not in ALLOWED]
    assert not cycles, "import cycles (break each with a protocol defined below the importer):\n" + "\n".join(
        _describe(c, edges) for c in cycles
    )
