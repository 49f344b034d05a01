"""Whether recorded numbers hold: reruns of recorded folds, bfloat16 against float32.

A rerun trains a recorded fold again from scratch; the bfloat16 check sets mixed bfloat16
against float32 on one fold, with the spread of training seeds beside it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.book.runs import current_records, fold_record, short_commit
from busi_lib.book.view import metric_label, pct
from busi_lib.experiments.rerun import comparison_table, load_reruns, rerun_path
from busi_lib.records import load_predictions


def rerun_table(profile: str, results_dir=None) -> pd.DataFrame:
    """One row per recorded rerun (:mod:`busi_lib.experiments.rerun`): which fold was trained again, by
    which code, how long it took, and the largest differences from its record."""

    rows = []
    for r in load_reruns(profile, results_dir):
        rows.append({
            "experiment": r["experiment"], "fold": r["fold"] + 1,
            "recorded by": short_commit(r.get("recorded_git_commit")),
            "rerun by": short_commit(r.get("rerun_git_commit")), "rerun date": r.get("date"),
            "rerun minutes": (r.get("rerun_wall_seconds") or np.nan) / 60,
            "max |diff| metric": r["max_abs_diff"],
            "max |diff| p(malignant)": r.get("max_abs_diff_prob", np.nan),
            "max |diff| image Dice": r.get("max_abs_diff_dice", np.nan),
            "same (tolerance)": f"{'yes' if r['agree'] else 'NO'} ({r['tolerance']:g})"})
    return pd.DataFrame(rows)


def rerun_metrics(profile: str, experiment: str, fold: int, results_dir=None) -> pd.DataFrame:
    """Recorded against rerun value of every metric of one rerun fold (empty if none)."""

    path = rerun_path(profile, experiment, fold, results_dir)
    if not path.is_file():
        return pd.DataFrame()
    import json

    return comparison_table(json.loads(path.read_text())).astype(float)


#: float32 reruns of ``random_light`` on fold 0 with other training seeds (noise yardstick)
RESEEDS = tuple(f"random_light_s{s}" for s in (1, 2, 3))


def precision_check(profile: str, reference: str = "random_light",
                    variant: str = "random_light_bf16", reseeds: Sequence[str] = RESEEDS,
                    fold: int = 0,
                    metrics: Sequence[str] = ("seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_AUC"),
                    results_dir=None) -> pd.DataFrame:
    """Does another precision move the results by more than noise? (issue 5)

    One fold of ``reference`` (float32) and of ``variant`` (the same experiment in another
    precision), both with today's configuration, and the noise that training alone makes on
    that fold: the reference and its ``reseeds`` (float32, same split, other training seeds).
    Per metric (in %, AUC as a fraction): the two values, ``delta`` = variant - reference, the
    mean and sample sd of the float32 runs on the fold (``seeds``: how many), the reference's
    fold-to-fold sd (``sd folds``) and ``within noise``: with at least 3 float32 runs on the fold,
    variant >= their mean - 2 sd; otherwise delta >= -sd folds. Empty when the reference or the
    variant fold is not recorded.
    """
    _, ref_all = current_records(profile, reference, results_dir)
    r = next((x for x in ref_all if x["fold"] == fold), None)
    v = fold_record(profile, variant, fold, results_dir)
    if r is None or v is None:
        return pd.DataFrame()
    runs = [r] + [x for x in (fold_record(profile, e, fold, results_dir) for e in reseeds)
                  if x is not None]
    rows = {}
    for m in metrics:
        lab = metric_label(m)
        folds = np.array([pct(lab, x["metrics"][m]) for x in ref_all], float)
        seeds = np.array([pct(lab, x["metrics"][m]) for x in runs], float)
        a, b = pct(lab, r["metrics"][m]), pct(lab, v["metrics"][m])
        sd_f = float(folds.std(ddof=1)) if len(folds) > 1 else np.nan
        sd_s = float(seeds.std(ddof=1)) if len(seeds) > 1 else np.nan
        within = (b >= seeds.mean() - 2 * sd_s) if len(seeds) >= 3 else (
            b - a >= -sd_f if sd_f == sd_f else False)
        rows[lab] = {r["precision"]: a, v["precision"]: b, "delta": b - a,
                     "mean seeds": float(seeds.mean()), "sd seeds": sd_s, "seeds": len(seeds),
                     "sd folds": sd_f, "within noise": bool(within)}
    return pd.DataFrame(rows).T


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Image by image, b against a (prediction tables of one fold)."""
    m = a.merge(b, on="id", suffixes=("_a", "_b"))
    d = 100 * (m["dice_b"] - m["dice_a"]).dropna()
    return {"n": len(m), "dice_delta_mean": float(d.mean()),
            "dice_delta_se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan,
            "class_agreement": float((m["pred_class_a"] == m["pred_class_b"]).mean()),
            "prob_max_abs_diff": float((m["prob_malignant_a"] - m["prob_malignant_b"]).abs().max())}


def precision_paired(profile: str, reference: str = "random_light",
                     variant: str = "random_light_bf16", reseeds: Sequence[str] = RESEEDS,
                     fold: int = 0, results_dir=None) -> dict:
    """Image by image on the same test fold, ``variant`` against ``reference`` and each recorded
    reseed against ``reference``: ``n`` images, mean Dice difference (points) and its standard
    error, the share of images whose predicted class agrees, the largest |difference| of
    p(malignant). Returns ``{"variant": {...}, "reseeds": [{...}, ...], "reference_seconds",
    "variant_seconds"}``; an empty dict when the reference or the variant fold is missing."""

    r = fold_record(profile, reference, fold, results_dir)
    v = fold_record(profile, variant, fold, results_dir)
    if r is None or v is None:
        return {}

    def preds(exp):
        p = load_predictions(profile, exp, results_dir)
        return p[p["fold"] == fold].drop(columns="fold")
    a = preds(reference)
    out = {"variant": _paired(a, preds(variant)), "reseeds": [],
           "reference_seconds": r["wall_seconds"], "variant_seconds": v["wall_seconds"]}
    for e in reseeds:
        if fold_record(profile, e, fold, results_dir) is not None:
            out["reseeds"].append(_paired(a, preds(e)))
    return out
