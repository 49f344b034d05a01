"""Variants against their reference, fold by fold: the tables, plots and sentences of ch. 4-5.

The statistics themselves (intervals, bootstrap, verdicts) are in :mod:`busi_lib.stats`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import stats

#: The paper's design claims tested by the ablations: (claim, variant, metric record key,
#: the variant's verdict that supports the claim). Most variants switch one of the paper's
#: choices off (the claim holds if that makes the model worse); the recipe trains without the
#: paper's multi-peak GHE, so ``enh_ghe`` switches it on (the claim holds if that is better).
CLAIMS = [
    ("multi-task training helps segmentation", "seg_only", "seg_DC_mean", "worse"),
    ("multi-task training helps classification", "cls_only", "cls_AUC", "worse"),
    ("the classifier on stages 4-5-6 beats one on the encoder alone", "cls_encoder", "cls_AUC",
     "worse"),
    ("residual units help segmentation", "plain_blocks", "seg_DC_mean", "worse"),
    ("residual units help classification", "plain_blocks", "cls_AUC", "worse"),
    ("multi-peak GHE helps segmentation", "enh_ghe", "seg_DC_mean", "better"),
    ("multi-peak GHE helps classification", "enh_ghe", "cls_AUC", "better"),
    ("the class-weighted focal loss helps classification", "ce_loss", "cls_AUC", "worse"),
]
METRICS = {"seg_DC_mean": "dice", "cls_AUC": "auc"}


def paired_table(profile: str, reference: str, variants: Sequence[str],
                 metrics: Sequence[str] = ("seg_DC_mean", "cls_AUC"), *, n_boot: int = 1000,
                 seed: int = 0, results_dir=None) -> pd.DataFrame:
    """One row per (variant, metric): folds paired, the reference's and the variant's mean,
    the mean paired difference with its *t* interval over folds and its fold-keeping bootstrap
    interval over test images, and the verdict. Metrics are fractions (Dice, AUC)."""
    from .records import load_predictions, load_records

    ref_recs = load_records(profile, reference, results_dir)
    ref_pred = load_predictions(profile, reference, results_dir)
    rows = []
    for v in variants:
        recs = load_records(profile, v, results_dir)
        pred = load_predictions(profile, v, results_dir)
        for m in metrics:
            c = stats.compare(ref_recs, recs, m)
            row = {"variant": v, "metric": "Dice" if m == "seg_DC_mean" else "AUC",
                   "folds": c["n_folds"], "mean": c["mean"], "low": c["low"], "high": c["high"],
                   "verdict": c["verdict"], "boot_low": np.nan, "boot_high": np.nan,
                   "reference": np.nan, "variant_value": np.nan}
            if c["n_folds"]:
                folds = c["folds"]
                row["reference"] = float(np.mean([r["metrics"][m] for r in ref_recs
                                                  if r["fold"] in folds]))
                row["variant_value"] = row["reference"] + c["mean"]
                col = "dice" if m == "seg_DC_mean" else "prob_malignant"
                if not pred.empty and col in pred and col in ref_pred:
                    both = [p[p["fold"].isin(folds)] for p in (ref_pred, pred)]
                    _, lo, hi = stats.paired_bootstrap(both[0], both[1], METRICS[m],
                                                       n_boot=n_boot, seed=seed)
                    row["boot_low"], row["boot_high"] = lo, hi
            rows.append(row)
    return pd.DataFrame(rows)


def forest(table: pd.DataFrame, metric: str, title: str = ""):
    """The forest plot of one metric of :func:`paired_table` (rows with recorded folds)."""
    t = table[(table["metric"] == metric) & (table["folds"] > 0)].set_index("variant")
    if t.empty:
        return None
    return stats.plot_forest(t, title=title or f"{metric}: variant minus reference, 95% intervals",
                             xlabel=f"difference in {metric}")


def glance(table: pd.DataFrame) -> pd.DataFrame:
    """One line per variant for a reader: Dice and AUC differences with intervals, verdicts."""
    out = {}
    for _, r in table.iterrows():
        d = out.setdefault(r["variant"], {"folds": int(r["folds"])})
        if r["folds"] == 0:
            d[f"{r['metric']} Δ"] = "not recorded"
            continue
        d[f"{r['metric']} Δ (95% CI)"] = f"{r['mean']:+.3f} ({r['low']:+.3f} to {r['high']:+.3f})"
        d[f"{r['metric']} verdict"] = r["verdict"]
    return pd.DataFrame(out).T


def seed_yardstick(profile: str, runs: Sequence[str], metrics=("seg_DC_mean", "cls_AUC"),
                   results_dir=None) -> pd.DataFrame:
    """The K-fold mean of each metric for the reference trained with each training seed, and
    the spread (max - min) between seeds, over the folds every run has."""
    from .records import load_records

    recs = {r: {x["fold"]: x for x in load_records(profile, r, results_dir)} for r in runs}
    common = sorted(set.intersection(*(set(v) for v in recs.values()))) if recs else []
    rows = {}
    for r in runs:
        rows[r] = {m: (float(np.mean([recs[r][k]["metrics"][m] for k in common]))
                       if common else np.nan) for m in metrics}
    df = pd.DataFrame(rows).T
    df.loc["spread (max - min)"] = [stats.seed_spread(df[m].iloc[:len(runs)]) for m in metrics]
    df["folds"] = [len(common)] * len(df)
    return df


def claim_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per design claim of the paper: supported, contradicted, or not detectable
    at this sample size (or not recorded yet)."""
    out = []
    for claim, variant, key, supports in CLAIMS:
        metric = "Dice" if key == "seg_DC_mean" else "AUC"
        r = table[(table["variant"] == variant) & (table["metric"] == metric)]
        if r.empty or r.iloc[0]["folds"] == 0:
            out.append(f"*{claim}*: not recorded yet (`{variant}`).")
            continue
        r = r.iloc[0]
        against = "better" if supports == "worse" else "worse"
        v = {supports: "**supported**", against: "**contradicted**"}.get(
            r["verdict"], "**not detectable at this sample size**")
        out.append(f"*{claim}*: {v} (`{variant}` minus reference: {r['mean']:+.3f} {metric}, "
                   f"95% CI {r['low']:+.3f} to {r['high']:+.3f}, {int(r['folds'])} folds).")
    return out


def across_profiles(rows: Sequence[tuple[str, str, str]], results_dir=None,
                    metrics=("seg_DC_mean", "cls_AUC")) -> pd.DataFrame:
    """Mean and sample sd over folds of ``metrics`` for ``(label, profile, experiment)`` rows
    (e.g. the recipe, the paper's recipe, the records made before the recipe), with folds,
    epochs and hours of training (wall time)."""
    from .records import load_records

    out = []
    for label, profile, exp in rows:
        recs = load_records(profile, exp, results_dir)
        row = {"run": label, "profile / experiment": f"{profile} / {exp}", "folds": len(recs),
               "epochs": recs[0]["config"]["epochs"] if recs else np.nan}
        for m in metrics:
            vals = [r["metrics"][m] for r in recs if m in r["metrics"]]
            name = "Dice" if m == "seg_DC_mean" else "AUC"
            row[name] = float(np.mean(vals)) if vals else np.nan
            row[f"{name} sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan
        row["train hours"] = sum(r["train_seconds"] for r in recs) / 3600
        out.append(row)
    return pd.DataFrame(out).set_index("run")
