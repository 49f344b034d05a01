"""Rerun one recorded fold from scratch and compare it with its record.

The book's claim that "every number traces to a record the project can repeat" is tested
here the hard way: the fold is trained again in an empty results folder (same profile,
experiment, fold table and data), and the new record is compared with the committed one,
metric by metric and image by image. The comparison is written, small, to
``results/<profile>/reruns/<experiment>_fold<k>.json`` so that the book can show it.

``python -m busi_lib.experiments.rerun --profile cpu --experiment multitask --fold 0``
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.config import config_hash, experiments, make_config
from busi_lib.errors import ConfigError, DataError
from busi_lib.experiments.crossval import run_cv

#: Two runs "agree" when no metric differs by more than this (absolute). With TensorFlow's op
#: determinism on the same CPU a rerun is expected to be bit-identical; the tolerance only
#: absorbs float formatting, it is not a statistical allowance.
TOLERANCE = 1e-6


def rerun_path(profile: str, experiment: str, fold: int, results_dir=None) -> Path:
    """``results/<profile>/reruns/<experiment>_fold<k>.json``."""
    return records.results_root(results_dir) / profile / "reruns" / f"{experiment}_fold{fold}.json"


def compare_records(recorded: dict, rerun: dict, recorded_pred: pd.DataFrame | None = None,
                    rerun_pred: pd.DataFrame | None = None,
                    tolerance: float = TOLERANCE) -> dict[str, Any]:
    """Compare two fold records of the same configuration.

    Parameters
    ----------
    recorded, rerun : dict
        Fold records (``fold<k>.json``) with ``config_hash``, ``fold`` and ``metrics``.
    recorded_pred, rerun_pred : DataFrame, optional
        Their per-image predictions (``id``, ``prob_malignant``, ``dice``); when given, the
        largest per-image differences are reported as well.
    tolerance : float
        Largest absolute metric difference still called agreement.

    Returns
    -------
    dict
        ``metrics`` (name -> recorded, rerun, abs_diff), ``max_abs_diff``, the per-image
        differences where available, and ``agree`` (bool).

    Raises
    ------
    ConfigError
        If the records are of different configurations or folds: comparing them would mean
        nothing.
    """
    for key in ("config_hash", "fold", "data_sha256"):
        if recorded.get(key) != rerun.get(key):
            raise ConfigError(f"cannot compare records with different {key}: "
                              f"{recorded.get(key)!r} vs {rerun.get(key)!r}")
    if not 0 <= tolerance:
        raise ConfigError(f"tolerance={tolerance}: expected a non-negative number")
    a, b = recorded["metrics"], rerun["metrics"]
    missing = sorted(set(a) ^ set(b))
    if missing:
        raise ConfigError(f"the records do not hold the same metrics: {missing} in only one")
    rows = {}
    for name in sorted(a):
        x, y = float(a[name]), float(b[name])
        same_nan = np.isnan(x) and np.isnan(y)
        rows[name] = {"recorded": x, "rerun": y, "abs_diff": 0.0 if same_nan else abs(x - y)}
    diffs = [r["abs_diff"] for r in rows.values()]
    out: dict[str, Any] = {"metrics": rows, "max_abs_diff": float(np.nanmax(diffs)) if diffs else 0.0}
    if recorded_pred is not None and rerun_pred is not None:
        m = recorded_pred.merge(rerun_pred, on="id", suffixes=("_rec", "_rerun"), how="outer",
                                indicator=True)
        if (m["_merge"] != "both").any():
            raise DataError(f"{int((m['_merge'] != 'both').sum())} test images are in only one "
                            "of the two prediction files: not the same fold")
        out["n_images"] = int(len(m))
        out["max_abs_diff_prob"] = float(np.abs(m["prob_malignant_rec"] - m["prob_malignant_rerun"]).max())
        out["max_abs_diff_dice"] = float(np.nanmax(np.abs(m["dice_rec"] - m["dice_rerun"])))
    out["agree"] = bool(out["max_abs_diff"] <= tolerance)
    out["tolerance"] = tolerance
    return out


def comparison_table(comparison: dict) -> pd.DataFrame:
    """The ``metrics`` part of :func:`compare_records` as a table (one row per metric)."""
    return pd.DataFrame(comparison["metrics"]).T[["recorded", "rerun", "abs_diff"]]


def rerun_fold(profile: str, experiment: str, fold: int, *, data_dir=None, results_dir=None,
               work_dir=None, verbose: int = 1, **overrides) -> dict[str, Any]:
    """Train fold ``fold`` of ``experiment`` again from scratch and compare with its record.

    The fold table is copied from the recorded results (so the rerun sees the same test
    images), the fold is trained in ``work_dir`` (a temporary folder by default, removed
    afterwards), and the comparison is written next to the records by :func:`rerun_path`.
    ``overrides`` are configuration values, as given to :func:`busi_lib.experiments.crossval.run_cv` when the
    fold was recorded (they must give the record's config hash).
    """

    if experiment not in experiments(profile):
        raise ConfigError(f"experiment={experiment!r}: expected one of "
                          f"{sorted(experiments(profile))}")
    cfg = make_config(profile, experiment, **{**overrides, "folds": [int(fold)]})
    src = records.experiment_dir(profile, experiment, results_dir)
    rec_path = src / f"fold{fold}.json"
    if not rec_path.is_file():
        raise DataError(f"no record to compare with: {rec_path} does not exist (train the fold "
                        "first: python -m busi_lib.experiments.crossval)")
    recorded = json.loads(rec_path.read_text())
    if recorded.get("config_hash") != config_hash(cfg):
        raise ConfigError(f"{rec_path} has config_hash {recorded.get('config_hash')}, today's "
                          f"configuration has {config_hash(cfg)}: a rerun could not reproduce it")
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="busi_rerun_")) if own_tmp else Path(work_dir)
    try:
        root = records.results_root(results_dir)
        if (root / "splits").is_dir():
            shutil.copytree(root / "splits", work / "splits", dirs_exist_ok=True)
        t0 = time.time()
        (new,) = run_cv(profile, experiment, data_dir=data_dir, results_dir=work,
                        verbose=verbose, **{**overrides, "folds": [int(fold)]})
        seconds = time.time() - t0
        new_dir = records.experiment_dir(profile, experiment, work)
        pred_a = pd.read_csv(src / f"fold{fold}_predictions.csv")
        pred_b = pd.read_csv(new_dir / f"fold{fold}_predictions.csv")
        comp = compare_records(recorded, new, pred_a, pred_b)
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    result = {"profile": profile, "experiment": experiment, "fold": int(fold),
              "config_hash": recorded["config_hash"], "data_sha256": recorded["data_sha256"],
              "recorded_git_commit": recorded.get("git_commit"),
              "rerun_git_commit": new.get("git_commit"),
              "recorded_wall_seconds": recorded.get("wall_seconds"),
              "rerun_wall_seconds": seconds, "versions": new.get("versions"),
              "date": time.strftime("%Y-%m-%d"), **comp}
    out = rerun_path(profile, experiment, fold, results_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    records.write_json(out, result)
    return result


def load_reruns(profile: str, results_dir=None) -> list[dict]:
    """Every rerun comparison recorded for ``profile`` (empty list when none)."""
    folder = records.results_root(results_dir) / profile / "reruns"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*_fold*.json"))]


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Rerun one recorded fold from scratch and compare.")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--experiment", default="multitask")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--work-dir", default=None,
                   help="train here and keep it (its models/ then hold the retrained fold "
                        "model, e.g. for a release); default: a temporary folder, removed")
    a = p.parse_args(argv)
    res = rerun_fold(a.profile, a.experiment, a.fold, data_dir=a.data_dir,
                     results_dir=a.results_dir, work_dir=a.work_dir)
    print(comparison_table(res).to_string())
    print(f"max |difference| {res['max_abs_diff']:.3g}; per image: probability "
          f"{res.get('max_abs_diff_prob', float('nan')):.3g}, Dice "
          f"{res.get('max_abs_diff_dice', float('nan')):.3g}; agree: {res['agree']}")
    print(f"written: {rerun_path(a.profile, a.experiment, a.fold, a.results_dir)}")
    return 0 if res["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
