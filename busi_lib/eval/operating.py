"""Operating points: sensitivity and specificity where a reader would act on the probability.

A probability becomes a decision at a threshold. The released model's probability is
calibrated, so its thresholds read like BI-RADS' likelihoods of malignancy: above 2 % is
"suspicious" (BI-RADS 4A and up: biopsy considered), above 10 % is BI-RADS 4B and up, and 50 %
is the plain classifier's cut. This module gives, for each threshold,

* sensitivity = malignant lesions called positive / malignant lesions, and
* specificity = benign lesions called negative / benign lesions,

each with a Wilson 95 % interval (:func:`scipy.stats.binomtest`; images are counted as
independent, which slightly narrows the interval where a patient contributes two), and the same
for the radiologists' BI-RADS categories of BUS-BRA (>= 4, >= 5; BUS-BRA records BI-RADS 4
without its 4A/4B/4C subdivision, so ">= 4B" cannot be formed from it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from busi_lib.errors import DataError

#: Calibrated thresholds: BI-RADS 4A's lower bound (2 %), 4B's (10 %) and the plain cut (50 %).
THRESHOLDS = (0.02, 0.10, 0.50)


def _check(y, positive) -> tuple[np.ndarray, np.ndarray]:
    y, positive = np.asarray(y).astype(int), np.asarray(positive).astype(bool)
    if y.shape != positive.shape or y.ndim != 1:
        raise DataError(f"labels of shape {y.shape} and decisions of shape {positive.shape}; "
                        "expected two 1-D arrays of the same length")
    if not set(np.unique(y)) <= {0, 1}:
        raise DataError(f"labels {sorted(np.unique(y).tolist())}: expected 0 (benign) and 1 "
                        "(malignant)")
    return y, positive


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """``(k / n, low, high)``: a proportion with its Wilson interval (NaN when ``n`` is 0)."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan"), float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return k / n, float(ci.low), float(ci.high)


def sens_spec(y, positive) -> dict[str, float]:
    """Sensitivity and specificity of decisions ``positive`` against labels ``y`` (1 =
    malignant), with Wilson intervals and the counts behind them."""
    y, positive = _check(y, positive)
    tp, fn = int((positive & (y == 1)).sum()), int((~positive & (y == 1)).sum())
    tn, fp = int((~positive & (y == 0)).sum()), int((positive & (y == 0)).sum())
    se, se_lo, se_hi = wilson(tp, tp + fn)
    sp, sp_lo, sp_hi = wilson(tn, tn + fp)
    return {"sensitivity": se, "sens_low": se_lo, "sens_high": se_hi, "specificity": sp,
            "spec_low": sp_lo, "spec_high": sp_hi, "tp": tp, "fn": fn, "tn": tn, "fp": fp}


def model_points(y, prob, thresholds=THRESHOLDS) -> pd.DataFrame:
    """One row per threshold: the decision ``prob > threshold``."""
    rows = [{"reader": f"model, p > {100 * t:g} %", **sens_spec(y, np.asarray(prob) > t)}
            for t in thresholds]
    return pd.DataFrame(rows).set_index("reader")


def radiologist_points(y, birads) -> pd.DataFrame:
    """BI-RADS >= 4 and >= 5 as decisions (BUS-BRA's categories 2-5)."""
    b = pd.to_numeric(pd.Series(birads), errors="coerce").to_numpy(float)
    if np.isnan(b).any():
        raise DataError("BI-RADS categories must be numbers (2-5); found a missing or "
                        "non-numeric value")
    rows = [{"reader": f"radiologists, BI-RADS >= {c}", **sens_spec(y, b >= c)} for c in (4, 5)]
    return pd.DataFrame(rows).set_index("reader")


def specificity_at_sensitivity(y, prob, sensitivity: float) -> dict[str, float]:
    """The model's specificity at the lowest threshold that keeps at least ``sensitivity``
    (descriptive: the threshold is read off the same images, so it flatters the model)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(prob, float)
    pos = np.sort(p[y == 1])
    if not len(pos) or not 0 < sensitivity <= 1:
        raise DataError(f"sensitivity={sensitivity!r} on {len(pos)} malignant images: expected "
                        "a number in (0, 1] and at least one malignant image")
    k = int(np.floor((1 - sensitivity) * len(pos) + 1e-9))   # malignant lesions allowed below
    thr = np.nextafter(pos[k], -np.inf)
    return {"threshold": float(thr), **sens_spec(y, p > thr)}


def missed_sentence(y, prob, threshold: float = 0.5) -> str:
    """"At p > 50 % the model misses 12 of 247 cancers (4.9 %) and ..." in words."""
    s = sens_spec(y, np.asarray(prob) > threshold)
    m = s["tp"] + s["fn"]
    b = s["tn"] + s["fp"]
    return (f"at a probability above {100 * threshold:g} % the model misses {s['fn']} of {m} "
            f"cancers ({100 * s['fn'] / m:.0f} %) and sends {s['fp']} of {b} benign lesions "
            f"({100 * s['fp'] / b:.0f} %) on as suspicious")


def display(table: pd.DataFrame) -> pd.DataFrame:
    """A table of :func:`model_points` / :func:`radiologist_points` rows for the page:
    sensitivity and specificity in percent with their intervals."""
    def pct(v, lo, hi):
        return f"{100 * v:.1f} ({100 * lo:.1f}-{100 * hi:.1f})"

    return pd.DataFrame({
        "sensitivity % (95% CI)": [pct(r.sensitivity, r.sens_low, r.sens_high)
                                   for r in table.itertuples()],
        "specificity % (95% CI)": [pct(r.specificity, r.spec_low, r.spec_high)
                                   for r in table.itertuples()],
        "cancers missed": [f"{r.fn} of {r.tp + r.fn}" for r in table.itertuples()],
        "benign called suspicious": [f"{r.fp} of {r.tn + r.fp}" for r in table.itertuples()],
    }, index=table.index)


def points_record(y, prob, birads=None) -> dict[str, Any]:
    """Sensitivity and specificity at the calibrated thresholds (:mod:`busi_lib.eval.operating`), the
    specificity at the sensitivity of the radiologists' BI-RADS >= 4 and at 95 %, and the
    radiologists' own points when ``birads`` is given: plain numbers for release.json."""
    y = np.asarray(y).astype(int)
    out: dict[str, Any] = {"model": model_points(y, prob).reset_index().to_dict("records"),
                           "spec_at_sens95": specificity_at_sensitivity(y, prob, 0.95)}
    if birads is not None:
        rad = radiologist_points(y, birads)
        out["radiologists"] = rad.reset_index().to_dict("records")
        out["spec_at_radiologist_sens"] = specificity_at_sensitivity(
            y, prob, float(rad.iloc[0]["sensitivity"]))
    return out
