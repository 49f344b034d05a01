"""busi_lib's shape: no import cycle between its modules, no module over 650 lines.

The import graph is read with :mod:`ast` (nothing is imported): every ``import busi_lib.x``,
``from busi_lib import x``, ``from . import x`` and ``from .x import y`` counts, at the top of a
module or inside a function alike, since a function-level import hides a cycle rather than
removing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "busi_lib"
LIB = Path(__file__).resolve().parents[1] / PACKAGE
MAX_LINES = 650



def _modules(lib: Path = LIB) -> dict[str, Path]:
    return {p.stem: p for p in sorted(lib.glob("*.py")) if p.stem != "__init__"}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The busi_lib modules (names in ``known``) that the module at ``path`` imports anywhere."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == PACKAGE and len(parts) > 1:
                    out.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE:
                parts = node.module.split(".")
            elif node.level == 1:
                parts = [PACKAGE] + (node.module.split(".") if node.module else [])
            else:                                    # relative import outside the package
                continue
            if len(parts) > 1:
                out.add(parts[1])                    # from busi_lib.x import y / from .x import y
            else:
                out.update(a.name for a in node.names)   # from busi_lib import x / from . import x
    return {m for m in out if m in known and m != path.stem}


def import_graph(lib: Path = LIB) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over busi_lib's modules (``__init__`` left out)."""
    mods = _modules(lib)
    return {name: imported_modules(path, set(mods)) for name, path in mods.items()}


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


def test_no_import_cycle_between_busi_lib_modules():
    graph = import_graph()
    assert len(graph) > 10, f"found only {sorted(graph)} in {LIB}"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in busi_lib: " + " -> ".join(cycle)


def _lines(name: str) -> int:
    return len(_modules()[name].read_text().splitlines())


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_not_over_650_lines(name):
    n = _lines(name)
    assert n <= MAX_LINES, f"busi_lib/{name}.py has {n} lines; split it (at most {MAX_LINES})"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_says_what_it_makes(name):
    doc = ast.get_docstring(ast.parse(_modules()[name].read_text()))
    assert doc and doc.strip(), f"busi_lib/{name}.py: no module docstring"
    first = doc.strip().split("\n\n")[0]
    assert "\n" not in first, f"busi_lib/{name}.py: the docstring's first paragraph, what the " \
        f"module makes, should be one line, not {first!r}"


def test_the_graph_reader_sees_every_import_form(tmp_path):
    lib = tmp_path / PACKAGE
    lib.mkdir()
    (lib / "__init__.py").write_text("")
    (lib / "a.py").write_text('"""a."""\nfrom . import b\n')
    (lib / "b.py").write_text('"""b."""\ndef f():\n    from .c import g\n    return g\n')
    (lib / "c.py").write_text('"""c."""\nimport busi_lib.a\nfrom busi_lib import d\n')
    (lib / "d.py").write_text('"""d."""\nfrom busi_lib.e import x\nimport os\n')
    (lib / "e.py").write_text('"""e."""\nx = 1\n')
    graph = import_graph(lib)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
