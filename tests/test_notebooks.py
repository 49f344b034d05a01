"""The book's notebooks: structure and layout (fast) and regression of their outputs with nbval (slow).

Layout: a chapter opens with its findings under its title (``{glue:text}`` roles filled from the
records), set-up cells are tagged ``remove-cell`` (still executed, still checked by nbval), and
provenance sits in the closing section, *How these numbers were made*.

``tests/nbval/`` holds the eight notebooks executed in the ``smoke`` profile
(``make nbval-refresh``); nbval re-executes them and compares every deterministic output
(counts, tables, audit results, parameter counts). Training logs and timings are in cells tagged
``nbval-ignore-output``; stderr is not compared (``tests/nbval/conftest.py``); the smoke records
under ``results/smoke/`` are loaded, not retrained.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
REF_DIR = ROOT / "tests" / "nbval"
NAMES = ["01_eda", "02_ghe", "03_training", "04_baselines", "05_ablations", "06_birads",
         "07_claims_audit", "08_try_model", "09_recipe_and_cost", "10_peers"]
HEAVY = ("experiment_records(", "run_cv(")
HOW_MADE = "## How these numbers were made"
#: ``{glue:text}`key:s``` or ``{glue:text}`/notebooks/<name>.ipynb::key:s```
GLUE_ROLE = re.compile(r"\{glue:text\}`(?:/notebooks/([^`:]+)\.ipynb::)?([A-Za-z0-9_]+)(?::[^`]*)?`")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _code(path: Path) -> list[dict]:
    return [c for c in _cells(path) if c["cell_type"] == "code"]


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_book_lists_the_eight_notebooks():
    from busi_lib.book.build import NOTEBOOKS

    assert list(NOTEBOOKS) == NAMES
    toc = (ROOT / "_toc.yml").read_text()
    for n in NAMES:
        assert (NB_DIR / f"{n}.ipynb").is_file()
        assert f"notebooks/{n}" in toc


@pytest.mark.parametrize("name", NAMES)
def test_notebook_structure(name):
    path = NB_DIR / f"{name}.ipynb"
    code = _code(path)
    assert "colab.setup(" in _src(code[0]), "first code cell must call busi_lib.book.colab.setup()"
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    src = _src(params[0])
    for p in ("profile", "data_dir", "seed"):
        assert f"{p} =" in src and "#" in src.split(f"{p} =")[1].split("\n")[0], \
            f"parameter {p} must be set and documented with a comment"
    for c in code:
        s = _src(c)
        if any(h in s for h in HEAVY):
            tags = c["metadata"].get("tags", [])
            assert "nbval-ignore-output" in tags or "NBVAL_IGNORE_OUTPUT" in s, \
                f"cell that may train must be tagged nbval-ignore-output:\n{s[:200]}"


def _glued(path: Path) -> set[str]:
    """Names glued by an executed notebook (``myst_nb.glue`` outputs)."""
    return {o["metadata"]["scrapbook"]["name"] for c in _code(path) for o in c.get("outputs", [])
            if "scrapbook" in o.get("metadata", {})}


def test_code_is_hidden_in_the_html():
    """Code stays in the notebooks but not on the page: at least 80 % of the code cells are
    tagged remove-input, remove-cell or hide-input (a click shows the latter)."""
    cells = [c for n in NAMES for c in _code(NB_DIR / f"{n}.ipynb")]
    hidden = [c for c in cells if {"remove-input", "remove-cell", "hide-input"}
              & set(c["metadata"].get("tags", []))]
    assert len(hidden) >= 0.8 * len(cells), f"{len(hidden)} of {len(cells)} code cells hidden"


@pytest.mark.parametrize("name", NAMES)
def test_chapter_layout_findings_first_set_up_hidden_provenance_last(name):
    """A chapter opens with its findings (glued from the records) under its title; the set-up
    cells are left out of the HTML; provenance lines sit in the closing section."""
    cells = _cells(NB_DIR / f"{name}.ipynb")
    title = _src(cells[0])
    assert cells[0]["cell_type"] == "markdown" and title.startswith("# "), "first cell: the title"
    assert GLUE_ROLE.search(title), "the title cell must state the findings with {glue:text}"
    code = _code(NB_DIR / f"{name}.ipynb")
    setup = [code[0]] + [c for c in code if "parameters" in c["metadata"].get("tags", [])
                         or "injected-parameters" in c["metadata"].get("tags", [])
                         or "setup_display()" in _src(c)]
    for c in setup:
        tags = c["metadata"].get("tags", [])
        assert "remove-cell" in tags, f"set-up cell not removed from the page:\n{_src(c)[:200]}"
    for c in code:
        if any(h in _src(c) for h in HEAVY):
            assert {"remove-input", "remove-cell"} & set(c["metadata"].get("tags", [])), \
                f"record-loading cell shows its code:\n{_src(c)[:200]}"
    heads = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
             and _src(c).startswith("## ")]
    assert heads and _src(cells[heads[-1]]).startswith(HOW_MADE), \
        f"the last section must be {HOW_MADE!r}"
    for i, c in enumerate(cells[:heads[-1]]):
        if c["cell_type"] == "code":
            assert "provenance(" not in _src(c), f"provenance before {HOW_MADE!r} (cell {i})"


def test_every_glue_reference_is_glued():
    """Each ``{glue:text}`` role of the chapters and the book pages names a value that the
    executed (published) notebook glues: a missing one fails the book build late."""
    glued = {n: _glued(NB_DIR / f"{n}.ipynb") for n in NAMES}
    pages = {f"notebooks/{n}": "".join(_src(c) for c in _cells(NB_DIR / f"{n}.ipynb")
                                       if c["cell_type"] == "markdown") for n in NAMES}
    pages.update({str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "book").glob("*.md")})
    missing = []
    for page, text in pages.items():
        for nb, key in GLUE_ROLE.findall(text):
            nb = nb or page.split("/")[-1]
            if key not in glued.get(nb, set()):
                missing.append(f"{page}: {nb}::{key}")
    assert not missing, f"glue references without a glued value: {missing}"
    assert sum(len(v) for v in glued.values()) > 30


@pytest.mark.parametrize("folder", [NB_DIR, REF_DIR])
def test_no_local_paths_or_errors_in_outputs(folder):
    for path in sorted(folder.glob("*.ipynb")):
        for c in _code(path):
            for out in c.get("outputs", []):
                assert out.get("output_type") != "error", f"{path.name}: stored error output"
                data = {k: v for k, v in out.get("data", {}).items() if k.startswith("text/")}
                text = json.dumps(data) + json.dumps(out.get("text", ""))
                assert "/work/" not in text and "/root/" not in text, \
                    f"{path.name}: a local path leaked into the outputs"


def test_reference_notebooks_are_smoke_runs():
    refs = sorted(p.stem for p in REF_DIR.glob("*.ipynb"))
    assert refs == NAMES, "run `make nbval-refresh` to (re)create tests/nbval"
    for n in NAMES:
        injected = [c for c in _code(REF_DIR / f"{n}.ipynb")
                    if "injected-parameters" in c["metadata"].get("tags", [])]
        assert injected and 'profile = "smoke"' in _src(injected[0])


def _busi_available() -> dict | None:
    env = dict(os.environ)
    if not env.get("BUSI_DATA"):
        shared = ROOT.parent / "shared" / "data" / "BUSI" / "Dataset_BUSI_with_GT"
        if shared.is_dir():
            env["BUSI_DATA"] = str(shared)
    if not env.get("BUSBRA_DATA"):
        shared = ROOT.parent / "shared" / "data" / "BUS-BRA"
        if shared.is_dir():
            env["BUSBRA_DATA"] = str(shared)
    p = env.get("BUSI_DATA")
    if not p and not (ROOT / "data").is_dir():
        return None
    if p and not Path(p).is_dir():
        return None
    return env


@pytest.mark.slow
@pytest.mark.data
def test_notebooks_nbval():
    """Re-execute the smoke reference notebooks and compare their outputs (nbval)."""
    env = _busi_available()
    if env is None:
        pytest.skip("BUSI data not found (set BUSI_DATA)")
    # the committed smoke records and the project's cache, not the per-test folders of
    # tests/conftest.py (the views never train: a missing record shows up as a difference)
    env["BUSI_RESULTS"] = str(ROOT / "results")
    env.pop("BUSI_CACHE", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
           "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
           "--nbval-cell-timeout", "1200", "-W", "ignore::DeprecationWarning", "tests/nbval"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, ("nbval failed (after an intended change: `make nbval-refresh`, "
                               f"then review the diff of tests/nbval):\n{tail}")


def test_strip_stderr_moves_stderr_to_log(tmp_path):
    import nbformat

    from busi_lib.book.build import strip_stderr

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="oneDNN custom operations\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells = [cell]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert strip_stderr(path, tmp_path / "log" / "x.txt") == 1
    outs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o["name"] for o in outs] == ["stdout"]
    assert "oneDNN" in (tmp_path / "log" / "x.txt").read_text()


def test_injected_parameters_are_left_out_of_the_page(tmp_path):
    import nbformat

    from busi_lib.book.build import hide_injected_parameters

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'smoke'"), nbformat.v4.new_code_cell("x = 1")]
    nb.cells[0].metadata["tags"] = ["injected-parameters"]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert hide_injected_parameters(path) == 1
    assert hide_injected_parameters(path) == 0                      # already tagged
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].metadata["tags"] == ["injected-parameters", "remove-cell"]
    assert "tags" not in cells[1].metadata


def test_stage_copies_book_sources(tmp_path):
    from busi_lib.book.build import BOOK_FILES, stage

    for name in ("_config.yml", "_toc.yml"):
        (tmp_path / name).write_text("x: 1\n")
    for d in ("book", "notebooks"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.md").write_text("# a\n")
    (tmp_path / "notebooks" / ".ipynb_checkpoints").mkdir()
    src = stage("smoke", tmp_path)
    assert src == tmp_path / "_build" / "smoke" / "src"
    assert sorted(p.name for p in src.iterdir()) == sorted(BOOK_FILES)
    assert not (src / "notebooks" / ".ipynb_checkpoints").exists()


def test_profiles_markdown_matches_config():
    from busi_lib.book.tables import profiles_markdown
    from busi_lib.config import PROFILES

    md = profiles_markdown()
    for name, prof in PROFILES.items():
        assert f"**{name}** | {prof.get('image_size', 128)} |" in md
    assert (ROOT / "book" / "profiles_table.md").read_text() == md, \
        "book/profiles_table.md is stale: run `make book` or busi_lib.book.build.write_generated"


def test_book_cli_rejects_bad_arguments():
    from busi_lib.book.build import main

    with pytest.raises(SystemExit):
        main(["--profile", "nope"])
    with pytest.raises(SystemExit, match="smoke"):
        main(["--profile", "cpu", "--refresh-nbval"])
    with pytest.raises(SystemExit, match="no notebook matches"):
        main(["--profile", "smoke", "--only", "99", "--no-build"])


def _glue_values(name: str) -> dict[str, str]:
    out = {}
    for c in _code(NB_DIR / f"{name}.ipynb"):
        for o in c.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if meta:
                out[meta["name"]] = o["data"].get("application/papermill.record/text/plain", "")
    return out


def _first_number_after(text: str, words: str) -> float:
    m = re.search(re.escape(words) + r"\D*?(\d+\.\d+)", text)
    assert m, f"{words!r} not followed by a number in {text!r}"
    return float(m.group(1))


def test_the_same_quantity_agrees_between_chapters():
    """robust_grouped_e60 on BUS-BRA is computed twice: from its fold records (chapter 6) and
    from the released float16, calibrated ensemble (chapter 8); on BUSI as a fold mean
    (chapter 3) and pooled out of fold from the released weights (chapter 8). Each pair must
    agree to rounding, and chapter 8 must name the pooled estimate as such."""
    g3, g6, g8 = _glue_values("03_training"), _glue_values("06_birads"), _glue_values("08_try_model")
    if "robust_e60_ext" not in g6 or "not recorded" in g6["robust_e60_ext"]:
        pytest.skip("the cpu records of robust_grouped_e60 are not rendered")
    busbra_records = _first_number_after(g6["robust_e60_ext"], "an AUC of")
    busbra_release = _first_number_after(g8["try_external"], "reaches an AUC of")
    assert abs(busbra_records - busbra_release) <= 0.005
    busi_fold_mean = _first_number_after(g3["r60_auc"], "")
    busi_pooled = _first_number_after(g8["try_expect"], "pooled AUC of")
    assert abs(busi_fold_mean - busi_pooled) <= 0.01
    assert "out-of-fold" in g8["try_expect"]


def test_glued_values_are_plain_text():
    """No glued value of a rendered chapter carries Markdown marks, which a {glue:text} role
    would show raw (backticks, bold)."""
    raw = {(n, k): v for n in NAMES for k, v in _glue_values(n).items()
           if "`" in v or re.search(r"\*\*\S", v)}
    assert not raw, f"glued values with raw Markdown: {sorted(raw)}"
