"""Segmentation and classification metrics (Eq. 6-12), with the conventions made explicit.

Segmentation metrics come in two flavours, and every table says which:

``*_mean``
    computed per image, then averaged over the images of a fold;
``*_pooled``
    computed once from the pixel counts (TP, FP, FN, TN) summed over all images of the fold.

Empty-set convention (per image): a ratio whose numerator and denominator are both 0 counts as 1
(perfect agreement, e.g. an empty mask predicted empty); with a 0 denominator and non-zero
numerator it cannot happen. So Dice = 1 when mask and prediction are both empty, 0 when only one
is. Pooled metrics use the same rule.

Classification metrics use the malignant class as positive (``positive`` argument) and
scikit-learn's implementations; AUC is the area under the ROC of the malignant probability.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SEG_METRICS = ("JSI", "DC", "ACC", "PRE", "REC")
CLS_METRICS = ("ACC", "PRE", "REC", "SPE", "F1", "AUC")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    out = np.ones_like(num)
    nz = den > 0
    out[nz] = num[nz] / den[nz]
    return out


def pixel_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-image ``(TP, FP, FN, TN)`` pixel counts of binary masks, shape ``(N, 4)``.

    Inputs are ``(N, H, W)`` or ``(N, H, W, 1)`` arrays of bools (or 0/1).
    """
    t = np.asarray(y_true).astype(bool).reshape(len(y_true), -1)
    p = np.asarray(y_pred).astype(bool).reshape(len(y_pred), -1)
    if t.shape != p.shape:
        raise ValueError(f"mask shapes differ: y_true {np.shape(y_true)} vs y_pred "
                         f"{np.shape(y_pred)}; expected the same")
    tp = (t & p).sum(1)
    fp = (~t & p).sum(1)
    fn = (t & ~p).sum(1)
    tn = (~t & ~p).sum(1)
    return np.stack([tp, fp, fn, tn], 1).astype(np.int64)


def _seg_from_counts(c: np.ndarray) -> dict[str, np.ndarray]:
    tp, fp, fn, tn = (c[..., i].astype(np.float64) for i in range(4))
    return {
        "JSI": _ratio(tp, tp + fp + fn),
        "DC": _ratio(2 * tp, 2 * tp + fp + fn),
        "ACC": _ratio(tp + tn, tp + fp + fn + tn),
        "PRE": _ratio(tp, tp + fp),
        "REC": _ratio(tp, tp + fn),
    }


def per_image_segmentation(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image JSI, DC, ACC, PRE, REC, each an ``(N,)`` array."""
    return _seg_from_counts(pixel_counts(y_true, y_pred))


def segmentation_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``seg_<M>_mean`` (per-image mean) and ``seg_<M>_pooled`` for M in JSI, DC, ACC, PRE, REC."""
    c = pixel_counts(y_true, y_pred)
    per = _seg_from_counts(c)
    pooled = _seg_from_counts(c.sum(0))
    out = {}
    for m in SEG_METRICS:
        out[f"seg_{m}_mean"] = float(np.mean(per[m]))
        out[f"seg_{m}_pooled"] = float(pooled[m])
    return out


def classification_metrics(y_true: Sequence[int], prob_positive: Sequence[float],
                           y_pred: Sequence[int] | None = None, *, positive: int = 1) -> dict[str, float]:
    """``cls_<M>`` for M in ACC, PRE, REC, SPE, F1, AUC with class ``positive`` as positive.

    Parameters
    ----------
    y_true : int labels (2 or 3 classes)
    prob_positive : predicted probability of the positive (malignant) class, for AUC
    y_pred : predicted labels; default ``prob_positive >= 0.5`` (only valid for 2 classes)

    With 3 classes, ACC is the 3-class accuracy and the others are malignant-vs-rest;
    ``cls_ACC_binary`` is always the malignant-vs-rest accuracy.
    """
    from sklearn.metrics import (accuracy_score, f1_score, precision_score, recall_score,
                                 roc_auc_score)

    y_true = np.asarray(y_true)
    prob = np.asarray(prob_positive, np.float64)
    if y_pred is None:
        y_pred = np.where(prob >= 0.5, positive, 1 - positive)
    y_pred = np.asarray(y_pred)
    if not (len(y_true) == len(prob) == len(y_pred)):
        raise ValueError(f"lengths differ: y_true {len(y_true)}, prob {len(prob)}, y_pred "
                         f"{len(y_pred)}; expected one entry per image")
    t = (y_true == positive).astype(int)
    p = (y_pred == positive).astype(int)
    out = {
        "cls_ACC": float(accuracy_score(y_true, y_pred)),
        "cls_ACC_binary": float(accuracy_score(t, p)),
        "cls_PRE": float(precision_score(t, p, zero_division=0)),
        "cls_REC": float(recall_score(t, p, zero_division=0)),
        "cls_SPE": float(recall_score(1 - t, 1 - p, zero_division=0)),
        "cls_F1": float(f1_score(t, p, zero_division=0)),
        "cls_AUC": float(roc_auc_score(t, prob)) if 0 < t.sum() < len(t) else float("nan"),
    }
    return out


def dice_from_jaccard(j):
    """Dice implied by a Jaccard index: ``D = 2J / (1 + J)`` (so ``D >= J``, equal at 0 and 1)."""
    j = np.asarray(j, np.float64)
    return 2 * j / (1 + j)


def implied_classification(tp: float, fn: float, tn: float, fp: float) -> dict[str, float]:
    """ACC, PRE, REC, SPE, F1 from a confusion matrix (for the claims audit)."""
    acc = (tp + tn) / (tp + tn + fp + fn)
    pre = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    spe = tn / (tn + fp) if tn + fp else float("nan")
    f1 = 2 * pre * rec / (pre + rec) if pre + rec else float("nan")
    return {"ACC": acc, "PRE": pre, "REC": rec, "SPE": spe, "F1": f1}


def calibration_bins(prob, n_bins: int = 10) -> np.ndarray:
    """Index of the equal-width probability bin of each prediction (1.0 goes in the last bin)."""
    p = np.asarray(prob, np.float64)
    return np.minimum((p * n_bins).astype(int), n_bins - 1)


def brier_score(y_true: Sequence[int], prob: Sequence[float]) -> float:
    """Brier score of the positive-class probability (scikit-learn's ``brier_score_loss``)."""
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(np.asarray(y_true, int), np.asarray(prob, np.float64)))


def expected_calibration_error(y_true: Sequence[int], prob: Sequence[float], n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width bins of the positive-class probability."""
    y = np.asarray(y_true, np.float64)
    p = np.asarray(prob, np.float64)
    bins = calibration_bins(p, n_bins)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(ece)


CONSTANT_SPAN = 1e-4


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


def group_resamples(groups, n_boot: int, seed: int = 0):
    """``n_boot`` bootstrap resamples that draw whole groups (patients) with replacement: yields
    the row indices of each resample (a group drawn twice appears twice)."""
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.concatenate([members[k] for k in rng.integers(0, len(uniq), len(uniq))])


def grouped_bootstrap_auc(y, p, groups, n_boot: int = 1000, seed: int = 0,
                          alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC and a percentile bootstrap CI, resampling whole groups (patients) with replacement."""
    y = np.asarray(y, int)
    p = np.asarray(p, float)
    g = np.asarray(groups)
    auc = fast_auc(y, p)
    stats = [fast_auc(y[idx], p[idx]) for idx in group_resamples(g, n_boot, seed)
             if 0 < y[idx].sum() < len(idx)]
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return auc, float(lo), float(hi)
