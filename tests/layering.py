"""Import graph of the mdfs source tree, built with ``ast`` (no import is executed).

``pipeline/`` is installed as ``mdfs.pipeline`` and ``classifiers/`` as ``mdfs.classifiers``
(pyproject's package-dir), so relative imports are resolved against that layout.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGES = {"mdfs.pipeline": "pipeline", "mdfs.classifiers": "classifiers"}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported module, dotted
    names: tuple[str, ...]  # names taken with ``from x import a, b``
    module_level: bool  # False for an import inside a function or method
    line: int


def modules(root: Path, packages: dict[str, str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the mapped folders."""
    found: dict[str, Path] = {}
    for dotted, folder in packages.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((dotted, *parts))] = path
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _function_level(tree: ast.AST) -> set[int]:
    """ids of import nodes that sit inside a function body."""
    inner: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inner.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return inner


def edges(root: Path, packages: dict[str, str] = PACKAGES) -> list[Edge]:
    """Every import from one module of the tree to another (external imports are left out)."""
    known = modules(root, packages)
    out: list[Edge] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        inner = _function_level(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node)
                targets = []
                for alias in node.names:
                    # ``from pkg import mod`` imports the submodule, not a name of pkg
                    sub = f"{base}.{alias.name}"
                    targets.append((sub, ()) if sub in known else (base, (alias.name,)))
            else:
                continue
            for target, names in targets:
                if target in known and target != module:
                    out.append(Edge(module, target, names, id(node) not in inner, node.lineno))
    return out


def cycles(graph_edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    adjacency: dict[str, set[str]] = {}
    for e in graph_edges:
        adjacency.setdefault(e.source, set()).add(e.target)
        adjacency.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(adjacency[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(adjacency):
        if v not in index:
            visit(v)
    return sorted(found)


def private_imports(graph_edges: list[Edge]) -> list[Edge]:
    """Imports of a ``_name`` (dunder names excepted) from another module."""
    return [e for e in graph_edges
            if any(n.startswith("_") and not n.startswith("__") for n in e.names)]


def climbing_imports(root: Path, packages: dict[str, str] = PACKAGES) -> list[str]:
    """Relative imports that leave their own installed package (``from ..classifiers``
    in ``mdfs.pipeline``): they resolve only through pyproject's package-dir mapping
    and change meaning when a module moves a level; ``mdfs.classifiers`` says it."""
    found = []
    for module, path in modules(root, packages).items():
        own = next(p for p in packages if module == p or module.startswith(p + "."))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = _resolve(module, path.name == "__init__.py", node)
                if not (target == own or target.startswith(own + ".")):
                    found.append(f"{module}:{node.lineno} from {'.' * node.level}{node.module or ''}")
    return found
