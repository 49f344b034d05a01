"""Calibration and external-test tables: reliability, ECE, Brier, BI-RADS bands, BUS-BRA AUC.

The BUS-BRA AUC comes with a patient-level bootstrap interval.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from . import paper


def brier(y: Iterable[int], p: Iterable[float]) -> float:
    from .metrics import brier_score

    return brier_score(list(y), list(p))


def reliability_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of the predicted probability: count, mean prediction, observed rate."""
    from .metrics import calibration_bins

    y = np.asarray(y, float)
    p = np.asarray(p, float)
    b = calibration_bins(p, n_bins)
    rows = []
    for k in range(n_bins):
        sel = b == k
        rows.append({"bin": f"{k / n_bins:.1f}-{(k + 1) / n_bins:.1f}", "images": int(sel.sum()),
                     "mean predicted": float(p[sel].mean()) if sel.any() else np.nan,
                     "observed malignant": float(y[sel].mean()) if sel.any() else np.nan})
    return pd.DataFrame(rows).set_index("bin")


def calibration_summary(y, p, n_bins: int = 10) -> pd.DataFrame:
    from .metrics import expected_calibration_error

    y = np.asarray(y, int)
    p = np.asarray(p, float)
    return pd.DataFrame([{"images": len(y), "malignant": int(y.sum()),
                          "ECE": expected_calibration_error(y, p, n_bins),
                          "Brier": brier(y, p),
                          "Brier of the base rate": brier(y, np.full(len(y), y.mean()))}],
                        index=pd.Index(["pooled"], name=f"{n_bins} bins"))


def birads_table(y, p) -> pd.DataFrame:
    """Predictions placed in the BI-RADS likelihood bands of Table 8, with the observed
    malignant fraction in each band beside the band's stated range."""
    bands = paper.birads_band(p)
    y = np.asarray(y, int)
    rows = []
    for lab, lo, hi in paper.BIRADS_BANDS:
        sel = bands == lab
        rows.append({"band": lab, "stated likelihood (%)": f"{100 * lo:g}-{100 * hi:g}",
                     "images": int(sel.sum()), "benign": int((y[sel] == 0).sum()),
                     "malignant": int((y[sel] == 1).sum()),
                     "observed malignant (%)": 100 * float(y[sel].mean()) if sel.any() else np.nan})
    return pd.DataFrame(rows).set_index("band")


def fast_auc(y, p) -> float:
    """ROC AUC from ranks (Mann-Whitney U; ties count one half), as sklearn's roc_auc_score."""
    from scipy.stats import rankdata

    y = np.asarray(y, bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(np.asarray(p, float))
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def grouped_bootstrap_auc(y, p, groups, n_boot: int = 1000, seed: int = 0,
                          alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC and a percentile bootstrap CI, resampling whole groups (patients) with replacement."""
    y = np.asarray(y, int)
    p = np.asarray(p, float)
    g = np.asarray(groups)
    auc = fast_auc(y, p)
    uniq, inv = np.unique(g, return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[k] for k in pick])
        if 0 < y[idx].sum() < len(idx):
            stats.append(fast_auc(y[idx], p[idx]))
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return auc, float(lo), float(hi)


def external_ensemble(ext: pd.DataFrame) -> pd.DataFrame:
    """Mean over folds of each BUS-BRA image's malignancy probability and Dice."""
    agg = {"prob_malignant": "mean", "dice": "mean", "case": "first", "pathology": "first",
           "birads": "first", "device": "first"}
    agg = {k: v for k, v in agg.items() if k in ext.columns}
    out = ext.groupby("id", sort=True).agg(agg)
    out["folds"] = ext.groupby("id").size()
    return out.reset_index()


def external_summary(ext: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per fold and for the fold ensemble: AUC (95 % CI by patient bootstrap) and mean Dice."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for k, g in ext.groupby("fold"):
        y = (g["pathology"] == "malignant").astype(int)
        rows.append({"model": f"fold {k + 1}", "images": len(g), "patients": g["case"].nunique(),
                     "AUC": float(roc_auc_score(y, g["prob_malignant"])), "AUC 95% CI": "",
                     "Dice mean (%)": 100 * float(g["dice"].mean())})
    ens = external_ensemble(ext)
    y = (ens["pathology"] == "malignant").astype(int)
    auc, lo, hi = grouped_bootstrap_auc(y, ens["prob_malignant"], ens["case"], n_boot, seed)
    rows.append({"model": "mean of folds", "images": len(ens), "patients": ens["case"].nunique(),
                 "AUC": auc, "AUC 95% CI": f"{lo:.3f}-{hi:.3f}",
                 "Dice mean (%)": 100 * float(ens["dice"].mean())})
    return pd.DataFrame(rows).set_index("model")


def birads_crosstab(ens: pd.DataFrame) -> pd.DataFrame:
    """True BI-RADS (BUS-BRA) against the band of the predicted probability."""
    band = paper.birads_band(ens["prob_malignant"].clip(0, 1))
    ct = pd.crosstab(pd.Categorical(ens["birads"].astype(str), categories=sorted(
        ens["birads"].astype(str).unique())), pd.Categorical(band, categories=[b[0] for b in
                                                                              paper.BIRADS_BANDS]),
        dropna=False)
    ct.index.name, ct.columns.name = "true BI-RADS", "predicted band"
    return ct
