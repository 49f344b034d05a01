"""Paired comparisons of a variant with its reference, fold by fold: intervals and verdicts.

Chapters 4 and 5 compare each ablation or baseline with a reference trained under the same
protocol on the same folds. For a metric ``m`` (Dice or AUC):

* the per-fold paired difference :math:`d_k = m_k^{variant} - m_k^{reference}`;
* its mean with a 95% *t* interval over the folds,
  :math:`\\bar d \\pm t_{0.975, K-1} \\, s_d / \\sqrt K` (the training noise of a fold is in it);
* a paired bootstrap over test images that keeps the fold structure: images are resampled with
  replacement *within* each fold, the same images for both models, and the mean over folds of
  the difference is recomputed (the test-sampling noise alone);
* the verdict: ``better`` or ``worse`` when the *t* interval excludes 0, else
  ``no detectable difference``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.errors import ConfigError
from busi_lib.eval.metrics import fast_auc

VERDICTS = ("better", "worse", "no detectable difference")


def t_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the *t* interval of the mean of ``diffs``.

    With a single value the interval is ``(nan, nan)``; with identical values it has width 0.
    """
    from scipy import stats

    d = np.asarray(diffs, float)
    d = d[~np.isnan(d)]
    if len(d) == 0:
        raise ConfigError("t_interval: expected at least one non-missing difference")
    if not 0 < level < 1:
        raise ConfigError(f"level={level!r}: expected a probability in (0, 1)")
    mean = float(d.mean())
    if len(d) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return mean, mean - half, mean + half


def verdict(low: float, high: float) -> str:
    """``better`` (interval above 0), ``worse`` (below 0) or ``no detectable difference``."""
    if np.isnan(low) or np.isnan(high):
        return "no detectable difference"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no detectable difference"


#: per-image column of the predictions that each kind of :func:`fold_metric` is computed from
COLUMN = {"dice": "dice", "auc": "prob_malignant"}


def fold_metric(pred: pd.DataFrame, metric: str) -> float:
    """``"dice"``: mean per-image Dice over lesion images; ``"auc"``: AUC of
    ``prob_malignant`` for ``true_class == "malignant"``."""
    if metric == "dice":
        return float(pred.loc[pred["true_class"] != "normal", "dice"].mean())
    if metric == "auc":
        return fast_auc((pred["true_class"] == "malignant").to_numpy().astype(int),
                    pred["prob_malignant"].to_numpy())
    raise ConfigError(f"metric={metric!r}: expected 'dice' or 'auc'")


def paired_bootstrap(ref: pd.DataFrame, var: pd.DataFrame, metric: str, n_boot: int = 1000,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean over folds of ``metric(var) - metric(ref)`` and its
    percentile interval from resampling test images within each fold (same images for both).

    ``ref`` and ``var`` are per-image predictions with columns ``fold``, ``id``,
    ``true_class`` and ``dice`` / ``prob_malignant``; only images present in both are used.
    """
    if n_boot < 1:
        raise ConfigError(f"n_boot={n_boot!r}: expected a positive integer")
    col = COLUMN["dice" if metric == "dice" else "auc"]
    both = ref[["fold", "id", "true_class", col]].merge(
        var[["fold", "id", col]], on=["fold", "id"], suffixes=("_ref", "_var"))
    if both.empty:
        raise ConfigError("paired_bootstrap: the two prediction tables share no (fold, id)")
    rng = np.random.default_rng(seed)
    folds = [g for _, g in both.groupby("fold")]

    def diff(frames) -> float:
        out = []
        for g in frames:
            r = g.rename(columns={f"{col}_ref": col})
            v = g.rename(columns={f"{col}_var": col})
            out.append(fold_metric(v, metric) - fold_metric(r, metric))
        return float(np.nanmean(out))

    point = diff(folds)
    boots = np.array([diff([g.iloc[rng.integers(0, len(g), len(g))] for g in folds])
                      for _ in range(n_boot)])
    a = (1 - level) / 2
    return point, float(np.nanquantile(boots, a)), float(np.nanquantile(boots, 1 - a))


def compare(ref_records: list[dict], var_records: list[dict], metric_key: str
            ) -> dict[str, float | int | str]:
    """Paired per-fold comparison of two experiments' fold records on ``metric_key`` (e.g.
    ``"seg_DC_mean"``, ``"cls_AUC"``), over the folds both have: ``n_folds``, ``diffs``, the
    *t* interval and the verdict."""
    ref = {r["fold"]: r["metrics"].get(metric_key) for r in ref_records}
    var = {r["fold"]: r["metrics"].get(metric_key) for r in var_records}
    folds = sorted(k for k in ref.keys() & var.keys()
                   if ref[k] is not None and var[k] is not None)
    if not folds:
        return {"n_folds": 0, "diffs": [], "mean": float("nan"), "low": float("nan"),
                "high": float("nan"), "verdict": "not recorded"}
    diffs = [var[k] - ref[k] for k in folds]
    mean, low, high = t_interval(diffs)
    return {"n_folds": len(folds), "folds": folds, "diffs": diffs, "mean": mean, "low": low,
            "high": high, "verdict": verdict(low, high)}


def seed_spread(means: Sequence[float]) -> float:
    """The spread (max - min) of several training seeds' K-fold means of one metric."""
    m = np.asarray(means, float)
    return float(np.nanmax(m) - np.nanmin(m)) if len(m) else float("nan")


def plot_forest(table: pd.DataFrame, title: str = "", xlabel: str = "difference from the reference"):
    """Forest plot: one row per variant, its mean difference and interval against zero.

    ``table`` has an index of variant names and columns ``mean``, ``low``, ``high`` and
    ``verdict``; optional ``boot_low`` / ``boot_high`` are drawn as a thinner inner bar.
    """
    import matplotlib.pyplot as plt

    colors = {"better": "#1b9e77", "worse": "#d95f02"}
    t = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.35 * len(t) + 1.2))
    y = np.arange(len(t))
    for i, (name, r) in enumerate(t.iterrows()):
        c = colors.get(r["verdict"], "#555555")
        ax.plot([r["low"], r["high"]], [i, i], color=c, lw=2.2)
        if "boot_low" in t.columns and not np.isnan(r.get("boot_low", np.nan)):
            ax.plot([r["boot_low"], r["boot_high"]], [i + 0.18, i + 0.18], color=c, lw=1,
                    alpha=0.6)
        ax.plot(r["mean"], i, "o", color=c)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, list(t.index))
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
