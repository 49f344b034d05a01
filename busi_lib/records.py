"""Result records: where they live, how they are written, read back and summarised.

Layout (small files, committed)::

    results/<profile>/<experiment>/
        fold<k>.json               # one record per fold (see train.train_fold for the fields)
        fold<k>_predictions.csv    # id, true class, malignant probability, predicted class, Dice
        fold<k>_masks.npz          # predicted test masks, bit-packed (for overlays)
        fold<k>_external.csv       # BUS-BRA predictions (only where config["external"])
        data_manifest.json         # pixel sha256 of every input file, checked before each run
    results/<profile>/<experiment>/checkpoints/   # per-epoch model + state (NOT committed)

Every file is written to a temporary name and renamed, so a killed run never leaves a
half-written record that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from busi_lib.errors import ConfigError, DataError

PROJECT_ROOT = Path(__file__).resolve().parents[1]



def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB pieces)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def results_root(results_dir: str | os.PathLike | None = None) -> Path:
    """``results_dir``, else ``$BUSI_RESULTS``, else ``<project>/results``."""
    if results_dir is not None:
        return Path(results_dir)
    return Path(os.environ.get("BUSI_RESULTS", PROJECT_ROOT / "results"))


def experiment_dir(profile: str, experiment: str, results_dir=None) -> Path:
    return results_root(results_dir) / profile / experiment


def check_writable(folder: Path) -> None:
    """Raise a clear error early when ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_probe_{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"results folder {str(folder)!r} cannot be written ({exc}); expected a "
                          "writable folder: pass results_dir or set BUSI_RESULTS") from exc


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def write_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write_text(path, df.to_csv(index=False))


def write_masks(path: Path, ids, masks: np.ndarray) -> None:
    """Bit-pack boolean masks ``(N, S, S)`` into an ``.npz`` (atomic)."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, ids=np.asarray(ids), shape=np.array(masks.shape),
                        bits=np.packbits(masks.astype(bool).ravel()))
    os.replace(tmp, path)


def read_masks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        shape = tuple(z["shape"])
        masks = np.unpackbits(z["bits"])[: int(np.prod(shape))].reshape(shape).astype(bool)
        return z["ids"], masks


def git_commit() -> str:
    """``git rev-parse HEAD`` of the project (``+dirty`` when tracked files changed).

    ``$BUSI_GIT_COMMIT`` is used instead where it is set: a copy of the working tree without
    its ``.git`` (a GPU machine) names the commit it was copied from that way.
    """
    if os.environ.get("BUSI_GIT_COMMIT"):
        return os.environ["BUSI_GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                "--", "busi_lib"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return (head or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("tensorflow-cpu", "tensorflow", "keras", "jax", "numpy", "scikit-learn",
                "scikit-image", "pillow", "busi_lib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        import keras

        out["keras_backend"] = keras.backend.backend()
    except ImportError:
        pass
    return out


def check_manifest(folder: Path, manifest: dict[str, str], data_sha256: str) -> None:
    """Compare the data with the manifest stored beside earlier records (or store it).

    Raises
    ------
    DataError
        Files changed, missing or extra compared with the stored manifest; nothing is trained.
    """

    path = folder / "data_manifest.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        diff = compare_manifests(stored["files"], manifest)
        if any(diff.values()):
            parts = [f"{k} {len(v)} (e.g. {v[:3]})" for k, v in diff.items() if v]
            raise DataError(f"the data differs from the data of the records in {folder}: "
                            + "; ".join(parts) + f". Expected data_sha256 {stored['data_sha256']},"
                            f" found {data_sha256}. Use the original data, or another "
                            "results folder for new data.")
        return
    write_json(path, {"data_sha256": data_sha256, "files": manifest})


def load_records(profile: str, experiment: str, results_dir=None) -> list[dict]:
    """All fold records of an experiment, sorted by fold (empty list when none)."""
    folder = experiment_dir(profile, experiment, results_dir)
    recs = [json.loads(p.read_text()) for p in sorted(folder.glob("fold*.json"))]
    return sorted(recs, key=lambda r: r["fold"])


def diverged_name(fold: int) -> str:
    """File name of the failure record of a fold whose training diverged (not ``fold*.json``,
    so :func:`load_records` never reads it as a fold)."""
    return f"diverged_fold{int(fold)}.json"


def load_divergences(profile: str, experiment: str, results_dir=None) -> list[dict]:
    """The failure records of an experiment's folds whose training diverged, sorted by fold
    (see :func:`busi_lib.experiments.crossval.train_fold`); folds recorded since are left out."""
    folder = experiment_dir(profile, experiment, results_dir)
    out = [json.loads(p.read_text()) for p in folder.glob("diverged_fold*.json")]
    return sorted((r for r in out if not (folder / f"fold{r['fold']}.json").is_file()),
                  key=lambda r: r["fold"])


#: The kind (file ``fold<k>_<kind>.csv``) of a fold model's predictions on its fold's
#: validation part (protocols with one), for choices that must not read a test fold.
VALIDATION_KIND = "validation"


def load_predictions(profile: str, experiment: str, results_dir=None, kind: str = "predictions"
                     ) -> pd.DataFrame:
    """Concatenated ``fold<k>_<kind>.csv`` files with a ``fold`` column."""
    folder = experiment_dir(profile, experiment, results_dir)
    frames = []
    for p in sorted(folder.glob(f"fold*_{kind}.csv")):
        df = pd.read_csv(p)
        df.insert(0, "fold", int(p.name.split("_")[0][4:]))
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def metrics_table(records: list[dict], names: list[str] | None = None) -> pd.DataFrame:
    """One row per fold plus ``mean`` and ``std`` rows (sample std over folds)."""
    if not records:
        return pd.DataFrame()
    df = pd.DataFrame([{"fold": r["fold"] + 1, **r["metrics"]} for r in records]).set_index("fold")
    if names is not None:
        df = df[[n for n in names if n in df.columns]]
    summary = pd.DataFrame({"mean": df.mean(), "std": df.std(ddof=1)}).T
    return pd.concat([df, summary])


def compare_manifests(expected: dict[str, str], actual: dict[str, str]) -> dict[str, list[str]]:
    """Files ``changed``, ``missing`` (in expected only) and ``extra`` (in actual only)."""
    return {
        "changed": sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k]),
        "missing": sorted(expected.keys() - actual.keys()),
        "extra": sorted(actual.keys() - expected.keys()),
    }


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def machine_label(rec: dict) -> str:
    """Short name of the machine a record ran on: GPU, or CPU with / without bfloat16 units,
    and its precision (records made before machines were recorded: their platform only)."""
    m = rec.get("machine")
    if not m:
        return f"CPU, not recorded ({rec.get('precision', '?')})"
    if m.get("gpu"):
        return f"{m['gpu']} GPU ({rec.get('precision', '?')})"
    bf = "bf16 CPU" if m.get("cpu_bf16") else "AVX2 CPU"
    return f"{m.get('cores', '?')}-core {bf} ({rec.get('precision', '?')})"


#: Where released models live (one folder per release, with the card README.md).
MODELS_DIR = PROJECT_ROOT / "models"


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def append_result(path, result: dict, kind: str) -> None:
    """Append one result line ``{"kind", "date", "git_commit", **result}`` to a JSON-lines file."""
    import datetime

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"kind": kind, "date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"), "git_commit": git_commit(), **result}
    with open(path, "a") as fh:
        fh.write(json.dumps(line) + "\n")
