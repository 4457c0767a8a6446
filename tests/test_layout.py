"""The house's rules, read from the source: no import circles, stage packages stand alone, the core knows no Qt."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("restoration", "app")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module `name` imports, at the top or inside a function (a lazy import still ties the two)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import sub` depends on pkg.sub; `from pkg import name` on pkg
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_tool_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_a_stage_package_imports_only_the_core():
    graph = import_graph()
    stages = sorted({n.split(".")[2] for n in graph if n.startswith("restoration.stages.")})
    assert set(stages) >= {"dust", "stabilize", "deflicker", "denoise", "color", "sr"}
    for name, targets in graph.items():
        if not name.startswith("restoration.stages."):
            continue
        own = ".".join(name.split(".")[:3])
        for target in targets:
            assert target != "restoration.stages", f"{name} imports the registry"
            if target.startswith("restoration.stages."):
                assert target.startswith(own), f"{name} imports another stage: {target}"
            assert not target.startswith(("restoration.cli", "restoration.render", "restoration.bench", "app")), (
                f"{name} imports a front end: {target}")


# The `filmrestore gui` command hands over to the application; nothing else in the core reaches for it.
FRONT_END_HANDOVER = {("restoration.cli", "app.__main__")}


def test_the_core_never_imports_qt():
    for name, path in modules().items():
        if not name.startswith("restoration"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for imported in names:
                if (name, imported) not in FRONT_END_HANDOVER:
                    assert not imported.startswith(("PySide6", "pyqtgraph", "app")), f"{name} imports {imported}"
