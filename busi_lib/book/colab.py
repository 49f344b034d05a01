"""First-cell helper of every notebook: make the notebook runnable on Google Colab.

Off Colab, :func:`setup` returns at once and prints nothing (the project is installed with
``make venv``). On Colab (``google.colab`` importable or ``COLAB_RELEASE_TAG`` set) it

1. clones the repository (:data:`REPO_URL`, branch :data:`BRANCH`) unless the notebook already
   runs inside a checkout, and makes it the working directory;
2. installs the package with ``pip install -e . --no-deps``, so Colab's own TensorFlow/Keras
   are left alone, then installs only the light dependencies that are missing
   (:data:`LIGHT_DEPS`);
3. finds or downloads BUSI with :func:`busi_lib.data.busi.locate_data` and returns its folder.

The notebooks call it as ``busi_lib.book.colab.setup()`` inside ``try/except ImportError`` so that a
fresh Colab runtime (where ``busi_lib`` is not importable yet) can bootstrap it; see
:data:`BOOTSTRAP`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

#: The published repository of the book.
REPO_URL = "https://github.com/busi-repro/busi-multitask-book"
BRANCH = "main"
#: Where the clone goes on Colab.
CLONE_DIR = Path("/content/busi-multitask-book")
#: import name -> pip requirement, installed on Colab only when the import fails. TensorFlow,
#: Keras, NumPy, pandas, scikit-learn, scikit-image, SciPy, matplotlib, seaborn and Pillow are
#: preinstalled on Colab and deliberately not touched.
LIGHT_DEPS = {"pooch": "pooch>=1.8,<2", "papermill": "papermill>=2.6,<3",
              "tqdm": "tqdm>=4.66", "seaborn": "seaborn>=0.13,<0.14",
              "skimage": "scikit-image>=0.24,<0.27", "albumentations": "albumentations==2.0.8",
              "usaugment": "usaugment==1.0.1", "imagehash": "imagehash>=4.3,<5"}

#: Google Colab's launch prefix (``launch_buttons: colab_url`` of ``_config.yml``).
COLAB_URL = "https://colab.research.google.com"


def launch_url(chapter: str, repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The Colab launch link of a chapter, of the form the book's Colab button has:
    ``<COLAB_URL>/github/<owner>/<name>/blob/<branch>/notebooks/<chapter>.ipynb``.

    Raises ``ValueError`` for a repository URL that is not ``https://github.com/<owner>/<name>``
    (Colab opens notebooks from GitHub only)."""
    prefix = "https://github.com/"
    parts = repo_url[len(prefix):].strip("/").split("/") if repo_url.startswith(prefix) else []
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"repo_url must be https://github.com/<owner>/<name>, got {repo_url!r}")
    return f"{COLAB_URL}/github/{parts[0]}/{parts[1]}/blob/{branch}/notebooks/{chapter}.ipynb"


#: The chapters that read only the records (and the release), never BUSI's images: on Colab
#: their first cell does not download BUSI.
WITHOUT_BUSI = ("04_baselines", "06_birads", "10_peers")

#: Code of the first cell of each notebook (kept here so every notebook stays the same; the
#: chapters of :data:`WITHOUT_BUSI` end it with ``colab.setup(fetch_data=False)``).
BOOTSTRAP = f"""\
# On Google Colab: clone and install the project, fetch BUSI. Elsewhere: does nothing.
try:
    import busi_lib.book.colab as colab
except ImportError:  # fresh Colab runtime: get the project first
    import subprocess, sys
    subprocess.run(["git", "clone", "-q", "--depth", "1", "{REPO_URL}",
                    "{CLONE_DIR}"], check=True)
    sys.path.insert(0, "{CLONE_DIR}")
    import busi_lib.book.colab as colab
colab.setup()"""


def bootstrap_cell(chapter: str) -> str:
    """The first code cell of notebook ``chapter`` (e.g. ``"04_baselines"``)."""
    if chapter not in WITHOUT_BUSI:
        return BOOTSTRAP
    return (BOOTSTRAP.replace("fetch BUSI. Elsewhere", "no BUSI needed. Elsewhere")
            .replace("colab.setup()", "colab.setup(fetch_data=False)"))


def on_colab() -> bool:
    """True on Google Colab: ``COLAB_RELEASE_TAG`` is set or ``google.colab`` is importable."""
    if os.environ.get("COLAB_RELEASE_TAG"):
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):  # "google" missing or a namespace without spec
        return False


def _run(cmd: list[str], runner) -> None:
    print("$", " ".join(cmd), flush=True)
    result = runner(cmd, check=False)
    code = getattr(result, "returncode", 0)
    if code:
        raise RuntimeError(f"command failed with exit code {code}: {' '.join(cmd)}")


def _find_checkout(start: Path) -> Path | None:
    """The project folder holding ``busi_lib/`` and ``pyproject.toml`` at or above ``start``."""
    for p in (start, *start.parents):
        if (p / "pyproject.toml").is_file() and (p / "busi_lib").is_dir():
            return p
    return None


def missing_deps(deps: dict[str, str] | None = None) -> list[str]:
    """pip requirements of :data:`LIGHT_DEPS` whose module cannot be imported."""
    deps = LIGHT_DEPS if deps is None else deps
    out = []
    for mod, req in deps.items():
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(req)
    return out


def upload_images(dest: str | os.PathLike = "uploads", *, uploader=None,
                  force: bool = False) -> list[Path]:
    """On Colab, an upload widget for one's own images; elsewhere nothing (``[]``).

    Parameters
    ----------
    dest : path
        Folder that receives the uploaded files (created when needed).
    uploader : callable, optional
        ``google.colab.files.upload``-like function returning ``{file name: bytes}`` (the
        tests pass a fake one).
    force : bool
        Act as on Colab even when not on Colab (tests).

    Returns
    -------
    The paths of the saved files, in upload order (``[]`` off Colab or when nothing was chosen).
    """
    if not (force or on_colab()):
        return []
    if uploader is None:
        from google.colab import files  # type: ignore[import-not-found]

        uploader = files.upload
    print("Choose breast-ultrasound images (PNG, JPEG, ...) to analyse:", flush=True)
    got = uploader() or {}
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in got.items():
        path = folder / (Path(name).name or "upload")   # never outside dest
        path.write_bytes(data)
        paths.append(path)
    return paths


def setup(data_dir: str | os.PathLike | None = None, *, clone_dir: str | os.PathLike | None = None,
          runner=None, fetch_data: bool = True, force: bool = False) -> Path | None:
    """Prepare a Colab runtime; elsewhere do nothing and return ``None``.

    Parameters
    ----------
    data_dir : path, optional
        Passed to :func:`busi_lib.data.busi.locate_data` (on Colab only).
    clone_dir : path, optional
        Where to clone the repository (default :data:`CLONE_DIR`).
    runner : callable, optional
        ``subprocess.run``-like function (the tests pass a recorder).
    fetch_data : bool
        Locate/download BUSI at the end (default True).
    force : bool
        Act as on Colab even when not on Colab (tests).

    Returns
    -------
    The BUSI data folder on Colab (``None`` if ``fetch_data`` is false), ``None`` elsewhere.
    """
    if not (force or on_colab()):
        return None
    runner = subprocess.run if runner is None else runner
    checkout = _find_checkout(Path.cwd())
    if checkout is None:
        target = Path(clone_dir) if clone_dir is not None else CLONE_DIR
        if not (target / "pyproject.toml").is_file():
            _run(["git", "clone", "--depth", "1", "--branch", BRANCH, REPO_URL, str(target)],
                 runner)
        checkout = target
    os.chdir(checkout)
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    # the package itself, without letting pip replace Colab's TensorFlow / Keras / NumPy
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(checkout)], runner)
    missing = missing_deps()
    if missing:
        _run([sys.executable, "-m", "pip", "install", "-q", *missing], runner)
    if not fetch_data:
        return None

    # imported here, not at the top: this module runs before the project's dependencies are
    # installed (busi_lib.data needs scikit-image, which step 2 may have just installed)
    from busi_lib.data.busi import locate_data

    root = locate_data(data_dir)
    os.environ.setdefault("BUSI_DATA", str(root))   # later locate_data() calls find it at once
    print(f"BUSI data: {root}")
    return root
