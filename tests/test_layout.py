"""The package's layout: the method's core never reaches up into the paper's experiments, and the
modules import one another without a cycle (read from the sources, no import executed)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "localmixup"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The localmixup modules ``path`` imports (``from a.b import c`` counts a.b, and a.b.c where that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # statements under `try:` / `if` at module level run at import too
        nodes = [n for stmt in tree.body for n in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef))]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("localmixup")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("localmixup"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_nothing_outside_the_paper_package_imports_it():
    reaching_up = {name: sorted(m for m in _imports(path, top_level_only=False) if m.startswith("localmixup.paper"))
                   for name, path in MODULES.items() if not name.startswith("localmixup.paper")}
    assert not {name: found for name, found in reaching_up.items() if found}


def test_the_module_import_graph_has_no_cycle():
    graph = {name: {m for m in _imports(path, top_level_only=True) if m in MODULES and m != name}
             for name, path in MODULES.items()}
    # a package imports its submodules' names by design; the cycle that matters is between modules
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for child in sorted(graph[name]):
            assert state.get(child) != 1, f"import cycle: {' -> '.join(stack[stack.index(child):] + [child])}"
            if child not in state:
                visit(child)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert len(state) == len(MODULES) > 50
