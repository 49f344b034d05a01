"""Project files agree with each other: environment.yml vs pyproject.toml, README vs CI."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower()


def _yaml_pip_lines() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    out = []
    for line in lines[start + 1:]:
        m = re.match(r"^\s+- (.+)$", line)
        if not m:
            break
        out.append(m.group(1))
    return out


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    py = {_name(d): d.split(";")[0].strip() for d in deps}
    env = {_name(d): d.strip() for d in _yaml_pip_lines() if not d.startswith("-e")}
    assert sorted(py) == sorted(env)
    # same version ranges too
    assert {k: v.replace(" ", "") for k, v in py.items()} == \
        {k: v.replace(" ", "") for k, v in env.items()}


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_jupyter_book_pinned_below_2():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    jb = next(d for d in deps if _name(d) == "jupyter-book")
    assert "<2" in jb
