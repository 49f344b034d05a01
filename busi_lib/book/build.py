"""Execute the book's notebooks for a profile with papermill, then build the HTML book.

    python -m busi_lib.book.build --profile cpu            # the published book: notebooks/ in place
    python -m busi_lib.book.build --profile smoke          # staged copy in _build/smoke/src/
    python -m busi_lib.book.build --profile smoke --refresh-nbval   # reference notebooks for nbval
    python -m busi_lib.book.build --profile cpu --only 03 --no-build

* ``cpu`` (the published profile) writes the executed notebooks back into ``notebooks/`` (they
  are committed) and builds ``_build/html``.
* Any other profile copies ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/`` to
  ``_build/<profile>/src/``, executes the copies there and builds
  ``_build/<profile>/src/_build/html``, so the committed notebooks are never overwritten.
* ``--refresh-nbval`` executes the smoke notebooks into ``tests/nbval/`` (no HTML).

Each notebook gets the papermill parameters ``profile`` (and ``data_dir`` when ``--data-dir`` is
given; otherwise the notebooks find BUSI through ``$BUSI_DATA``), plus any profile-specific
parameter listed in :data:`PROFILE_PARAMETERS` that the notebook declares.

The book only *renders*: the notebooks load the recorded folds (``results/<profile>/``) and
never train; missing folds show as notes naming the command that trains them, and empty rows.
The records are made beforehand, in resumable pieces, with ``make results``
(``busi-train``, :mod:`busi_lib.experiments.crossval`).

papermill's ``injected-parameters`` cell is tagged ``remove-cell`` after execution, like the
set-up cells of the notebooks themselves: the HTML shows each chapter's findings and results
first and names the parameters and records behind them in its last section.

Standard-error output of the kernel (TensorFlow's C++ log lines, Python warnings) is moved out
of the executed notebooks into ``_build/<profile>/logs/<notebook>.stderr.txt``; the HTML build
hides any that remain (``nb_output_stderr: remove`` in ``_config.yml``). The book is built with
``jupyter-book build -W`` (warnings are errors) and ``execute_notebooks: "off"``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from busi_lib.book.cost import cost_markdown, gpu_timings_markdown
from busi_lib.book.runs import DEFAULT_SEED
from busi_lib.book.tables import profiles_markdown
from busi_lib.book.try_model_chapter import save_headline_figure
from busi_lib.config import PROFILES, RELEASED_EXPERIMENT
from busi_lib.records import MODELS_DIR, PROJECT_ROOT
from busi_lib.serve.release import model_name

NOTEBOOKS = ("01_eda", "02_ghe", "03_training", "04_baselines", "05_ablations", "06_birads",
             "07_claims_audit", "08_try_model", "09_recipe_and_cost", "10_peers")
PUBLISHED_PROFILE = "cpu"
#: Extra papermill parameters per profile (given only to notebooks that declare them).
PROFILE_PARAMETERS: dict[str, dict[str, object]] = {
    "smoke": {"baseline_folds": [0]},
}
BOOK_FILES = ("_config.yml", "_toc.yml", "book", "notebooks")


def _log(msg: str) -> None:
    print(f"[book] {msg}", flush=True)


def stage(profile: str, root: Path = PROJECT_ROOT) -> Path:
    """Copy the book sources to ``_build/<profile>/src`` (fresh) and return that folder."""
    src = root / "_build" / profile / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in BOOK_FILES:
        p = root / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns(
                ".ipynb_checkpoints", "__pycache__", "_build"))
        elif p.is_file():
            shutil.copy2(p, src / name)
    return src


def strip_stderr(path: Path, log_path: Path | None = None) -> int:
    """Remove ``stderr`` stream outputs from an executed notebook (saved to ``log_path``).

    Returns the number of outputs removed.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    removed, lines = 0, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        keep = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                removed += 1
                lines.append(f"--- cell {i}\n{out.get('text', '')}")
            else:
                keep.append(out)
        cell.outputs = keep
    if removed:
        nbformat.write(nb, path)
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("".join(lines))
    return removed


def hide_injected_parameters(path: Path) -> int:
    """Tag papermill's ``injected-parameters`` cell ``remove-cell``: the HTML book leaves it out
    (each chapter lists the parameters in effect in its last section, *How these numbers were
    made*); it still runs and stays in the notebook. Returns the number of cells tagged."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tagged = 0
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
            tagged += 1
    if tagged:
        nbformat.write(nb, path)
    return tagged


def notebook_parameters(path: Path, profile: str, data_dir: str | None) -> dict:
    """The papermill parameters for one notebook (only those it declares, besides profile)."""
    import papermill as pm

    declared = set(pm.inspect_notebook(str(path)))
    params: dict[str, object] = {"profile": profile}
    if data_dir:
        params["data_dir"] = data_dir
    for k, v in PROFILE_PARAMETERS.get(profile, {}).items():
        if k in declared:
            params[k] = v
    return params


def execute(notebooks: list[Path], out_dir: Path, profile: str, *, data_dir: str | None = None,
            log_dir: Path | None = None, timeout: int | None = None) -> dict[str, float]:
    """Run each notebook with papermill into ``out_dir``; returns seconds per notebook."""
    import papermill as pm

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    out_dir.mkdir(parents=True, exist_ok=True)
    times = {}
    for i, nb in enumerate(notebooks, 1):
        out = out_dir / nb.name
        params = notebook_parameters(nb, profile, data_dir)
        _log(f"({i}/{len(notebooks)}) {nb.name}  parameters {params}")
        t0 = time.time()
        try:
            pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3",
                                cwd=str(out_dir), progress_bar=True, log_output=False,
                                execution_timeout=timeout)
        finally:
            if out.is_file():
                n = strip_stderr(out, (log_dir / f"{nb.stem}.stderr.txt") if log_dir else None)
                if n:
                    _log(f"    {n} stderr output(s) moved to the log")
                hide_injected_parameters(out)
        times[nb.name] = time.time() - t0
        _log(f"    done in {times[nb.name]:.0f} s")
    return times


def write_generated(src: Path, profile: str = PUBLISHED_PROFILE) -> None:
    """Pages generated from the code and the records: ``book/profiles_table.md`` (from
    busi_lib.config), ``book/cost_table.md`` (measured cost of ``profile``'s experiments),
    ``book/gpu_timings.md`` (fold timings of its records made on a GPU) and the introduction's
    figure ``book/bottom_line.png``."""

    for name, text in (("profiles_table.md", profiles_markdown()),
                       ("cost_table.md", cost_markdown(profile)),
                       ("gpu_timings.md", gpu_timings_markdown(profile))):
        path = src / "book" / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    # the introduction's bottom-line figure, from the records and the profile's release
    save_headline_figure(src / "book" / "bottom_line.png", profile, DEFAULT_SEED,
                         MODELS_DIR / model_name(profile, RELEASED_EXPERIMENT))


def build_html(src: Path, keep_going: bool = True, profile: str = PUBLISHED_PROFILE) -> Path:
    """``jupyter-book build src -W`` (warnings are errors); returns the HTML folder."""
    write_generated(src, profile)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(src), "-W"]
    if keep_going:
        cmd.append("--keep-going")
    _log("$ " + " ".join(cmd))
    t0 = time.time()
    r = subprocess.run(cmd, cwd=src)
    if r.returncode:
        raise SystemExit(f"[book] jupyter-book build failed (exit {r.returncode})")
    _log(f"HTML built in {time.time() - t0:.0f} s")
    return src / "_build" / "html"


def select_names(only: list[str] | None) -> list[str]:
    names = list(NOTEBOOKS)
    if only:
        names = [n for n in names if any(n.startswith(o) or n == o for o in only)]
        if not names:
            raise SystemExit(f"--only {only}: no notebook matches; expected prefixes of {NOTEBOOKS}")
    return names


def select(only: list[str] | None, folder: Path) -> list[Path]:
    paths = [folder / f"{n}.ipynb" for n in select_names(only)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"missing notebook(s): {missing}")
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m busi_lib.book.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default=PUBLISHED_PROFILE, choices=list(PROFILES))
    p.add_argument("--data-dir", default=None,
                   help="BUSI folder passed to every notebook (default: notebooks use $BUSI_DATA)")
    p.add_argument("--only", nargs="*", default=None, help="notebook name prefixes, e.g. 01 03")
    p.add_argument("--no-execute", action="store_true", help="build from the notebooks as they are")
    p.add_argument("--no-build", action="store_true", help="execute only, no HTML")
    p.add_argument("--refresh-nbval", action="store_true",
                   help="execute the smoke notebooks into tests/nbval (reference outputs for nbval)")
    p.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: none)")
    a = p.parse_args(argv)

    t_all = time.time()
    select_names(a.only)                     # fail on a bad --only before touching anything
    if a.refresh_nbval:
        if a.profile != "smoke":
            raise SystemExit("--refresh-nbval uses the smoke profile; pass --profile smoke")
        nbs = select(a.only, PROJECT_ROOT / "notebooks")
        times = execute(nbs, PROJECT_ROOT / "tests" / "nbval", "smoke", data_dir=a.data_dir,
                        log_dir=PROJECT_ROOT / "_build" / "nbval" / "logs", timeout=a.timeout)
        _log(f"reference notebooks written to {PROJECT_ROOT / 'tests' / 'nbval'} "
             f"({sum(times.values()):.0f} s)")
        return 0

    if a.profile == PUBLISHED_PROFILE:
        src = PROJECT_ROOT
    else:
        src = stage(a.profile)
        _log(f"staged the book sources in {src}")
    nb_dir = src / "notebooks"
    if not a.no_execute:
        nbs = select(a.only, nb_dir)
        # papermill writes to a temporary name next to the source, then it replaces it
        tmp = src / "_build" / "executing"
        times = execute(nbs, tmp, a.profile, data_dir=a.data_dir,
                        log_dir=PROJECT_ROOT / "_build" / a.profile / "logs", timeout=a.timeout)
        for nb in nbs:
            shutil.move(str(tmp / nb.name), str(nb))
        shutil.rmtree(tmp, ignore_errors=True)
        _log("execution times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    if not a.no_build:
        html = build_html(src, profile=a.profile)
        _log(f"book ({a.profile}) in {time.time() - t_all:.0f} s: open {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
