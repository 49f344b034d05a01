"""busi_lib's shape: layers as sub-packages, imports only downwards, no cycle, short modules.

The import graph is read with :mod:`ast` (nothing is imported): every ``import busi_lib.x.y``,
``from busi_lib.x import y``, ``from busi_lib.x.y import z`` and relative form counts, at the top
of a module or inside a function alike, since a function-level import hides a cycle or a wrong
direction rather than removing it.

The layers, from the bottom up: the root modules (``config``, ``records``, ``errors``), ``data``,
``nn``, ``eval``, ``experiments``, ``analysis``, ``book``. ``serve`` sits beside ``experiments``
and ``analysis``: it imports only ``data``, ``nn``, ``eval`` and the root. Nothing imports
``book``, apart from ``book`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "busi_lib"
LIB = Path(__file__).resolve().parents[1] / PACKAGE
MAX_LINES = 650
ROOT_LAYER = "root"
# what each layer may import (its own layer always)
ALLOWED = {
    "root": set(),
    "data": {"root"},
    "nn": {"root", "data"},
    "eval": {"root", "data", "nn"},
    "experiments": {"root", "data", "nn", "eval"},
    "analysis": {"root", "data", "nn", "eval", "experiments"},
    "serve": {"root", "data", "nn", "eval"},
    "book": {"root", "data", "nn", "eval", "experiments", "analysis", "serve"},
}
#: Modules that may import busi_lib inside a function, with the reason.
LAZY_PACKAGE_IMPORTS = {
    "book.colab": "runs on a fresh Colab runtime before the project's dependencies are installed",
}


def _modules(lib: Path = LIB) -> dict[str, Path]:
    """``{"layer.module" or "module": path}`` for every module but the ``__init__`` files."""
    out = {}
    for p in sorted(lib.rglob("*.py")):
        if p.stem == "__init__" or "__pycache__" in p.parts:
            continue
        rel = p.relative_to(lib).with_suffix("")
        out[".".join(rel.parts)] = p
    return out


def layer(name: str) -> str:
    """The layer of module ``name`` ("data.busi" -> "data"; "config" -> "root")."""
    return name.split(".")[0] if "." in name else ROOT_LAYER


def _resolve(node: ast.ImportFrom, here: str) -> list[str]:
    """Dotted names (below the package) that one ``from ... import ...`` refers to."""
    if node.level == 0:
        if not node.module or node.module.split(".")[0] != PACKAGE:
            return []
        base = node.module.split(".")[1:]
    else:
        pkg = here.split(".")[:-1]
        up = node.level - 1
        if up > len(pkg):
            return []
        base = pkg[:len(pkg) - up] + (node.module.split(".") if node.module else [])
    return [".".join(base + [a.name]) for a in node.names] + ([".".join(base)] if base else [])


def imports_of(path: Path, known: set[str], here: str = "") -> set[str]:
    """The busi_lib modules (names in ``known``) that the module at ``path`` imports anywhere."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        cands: list[str] = []
        if isinstance(node, ast.Import):
            cands = [a.name.split(".", 1)[1] for a in node.names
                     if a.name.split(".")[0] == PACKAGE and "." in a.name]
        elif isinstance(node, ast.ImportFrom):
            cands = _resolve(node, here)
        out.update(c for c in cands if c in known)
    return {m for m in out if m != here}


def import_graph(lib: Path = LIB) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over busi_lib's modules (``__init__`` files left out)."""
    mods = _modules(lib)
    return {name: imports_of(path, set(mods), name) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}          # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b (layer x may not import layer y)"`` for every import against the layer rule."""
    bad = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            la, lb = layer(a), layer(b)
            if la != lb and lb not in ALLOWED[la]:
                bad.append(f"{a} -> {b} ({la} may not import {lb})")
    return bad


def test_every_module_sits_in_a_known_layer():
    mods = _modules()
    assert len(mods) > 10, f"found only {sorted(mods)} in {LIB}"
    unknown = sorted(m for m in mods if layer(m) not in ALLOWED)
    assert not unknown, f"modules outside the layers {sorted(ALLOWED)}: {unknown}"
    roots = sorted(m for m in mods if layer(m) == ROOT_LAYER)
    assert roots == ["config", "errors", "records"], roots


def test_imports_follow_the_layers():
    bad = layer_violations(import_graph())
    assert not bad, "imports against the layer rule:\n" + "\n".join(bad)


def test_no_import_cycle_between_busi_lib_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in busi_lib: " + " -> ".join(cycle)


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(PACKAGE)):
                out.append((node.lineno, node.module or "."))
            elif isinstance(node, ast.Import):
                out.extend((node.lineno, a.name) for a in node.names if a.name.startswith(PACKAGE))
    return out


@pytest.mark.parametrize("name", sorted(set(_modules()) - set(LAZY_PACKAGE_IMPORTS)))
def test_package_imports_sit_at_the_top(name):
    lazy = _function_level_imports(_modules()[name])
    assert not lazy, (f"busi_lib/{name}: busi_lib imported inside a function at lines "
                      f"{[n for n, _ in lazy]}; import it at the top of the module")


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_not_over_650_lines(name):
    n = len(_modules()[name].read_text().splitlines())
    assert n <= MAX_LINES, f"busi_lib/{name}.py has {n} lines; split it (at most {MAX_LINES})"


@pytest.mark.parametrize("name", sorted(_modules()) + ["__init__"])
def test_module_says_what_it_makes(name):
    path = _modules().get(name, LIB / "__init__.py")
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.strip(), f"{path}: no module docstring"
    first = doc.strip().split("\n\n")[0]
    assert "\n" not in first, f"{path}: the docstring's first paragraph, what the " \
        f"module makes, should be one line, not {first!r}"


def test_no_private_name_is_used_across_modules():
    mods = _modules()
    bad = []
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(PACKAGE)):
                bad.extend(f"{name}: from {node.module} import {a.name}" for a in node.names
                           if a.name.startswith("_") and not a.name.startswith("__"))
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


def test_the_graph_reader_sees_every_import_form(tmp_path):
    lib = tmp_path / PACKAGE
    (lib / "data").mkdir(parents=True)
    (lib / "book").mkdir()
    (lib / "__init__.py").write_text("")
    (lib / "config.py").write_text('"""c."""\nfrom busi_lib.data import busi\n')
    (lib / "data" / "busi.py").write_text('"""b."""\ndef f():\n    from ..book import view\n')
    (lib / "data" / "images.py").write_text('"""i."""\nfrom .busi import f\nimport busi_lib.config\n')
    (lib / "book" / "view.py").write_text('"""v."""\nfrom busi_lib.data.images import x\nimport os\n')
    graph = import_graph(lib)
    assert graph == {"config": {"data.busi"}, "data.busi": {"book.view"},
                     "data.images": {"data.busi", "config"}, "book.view": {"data.images"}}
    assert find_cycle(graph) == ["book.view", "data.images", "config", "data.busi", "book.view"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_violations(graph) == ["config -> data.busi (root may not import data)",
                                       "data.busi -> book.view (data may not import book)"]
