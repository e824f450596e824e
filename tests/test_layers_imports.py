"""The pipeline's packages only import downward, and no module imports itself back through
others: every import in mlspec, lazy ones inside functions included, is read from the
source and checked against the layer order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mlspec

PACKAGE_ROOT = Path(mlspec.__file__).parent

# Lowest first. A module may import its own layer's modules and any lower layer's.
LAYERS = (
    ("mlspec.files", "mlspec.version", "mlspec.syntax"),
    ("mlspec.catalog",),
    ("mlspec.semantics",),
    ("mlspec.compiler",),
    ("mlspec.runtime",),
    ("mlspec.editor", "mlspec.cli"),
    ("mlspec", "mlspec.__main__"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imported_modules(name: str) -> set[str]:
    """mlspec modules that `name` imports anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import sub` imports the module pkg.sub where one exists.
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES
                       else origin for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (read by type checkers only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


GRAPH = {name: imported_modules(name) for name in MODULES}


def layer_of(name: str) -> int:
    best = None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{name} belongs to no layer: add it to LAYERS"
    return best[0]


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_look_down(name):
    upward = sorted(t for t in GRAPH[name] if layer_of(t) > layer_of(name))
    assert not upward, f"{name} (layer {layer_of(name)}) imports higher layers: {upward}"


def test_no_import_cycles():
    # Tarjan's strongly connected components; any component of two or more is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_walk_sees_lazy_imports():
    # Result.save imports the run folder's writer inside the method; the walk must see it.
    assert "mlspec.runtime.runs" in GRAPH["mlspec.runtime.results"]
    # What only type checkers read is no import.
    assert "mlspec.syntax.ir" not in GRAPH["mlspec.syntax.printer"]
