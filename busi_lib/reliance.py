"""What a classifier relies on: the lesion, or what surrounds it (scanner, frame, image size).

* :func:`occlusion_auc`: the AUC on the same images when the lesion is hidden (filled with the
  image's median grey) and when everything but the lesion's neighbourhood is hidden (black).
  A classifier that reads the lesion loses its AUC without it and keeps it with the lesion alone.
* :func:`within_size_auc`: the AUC inside groups of images of one original size (width x height),
  averaged with the group sizes as weights, against the pooled AUC: a classifier that reads the
  image size or the scanner's frame loses its AUC within a group.
* :func:`leak_auc`: cross-validated AUC of a logistic regression on features that say nothing of
  the lesion (original width and height, share of near-black pixels): how much of the label the
  acquisition alone gives away.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from .errors import ConfigError

DARK_LEVEL = 10          # grey level under which a pixel counts as near-black


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def occlude(images: np.ndarray, masks: np.ndarray, keep: str, dilate: int = 3,
            margin: float = 0.15) -> np.ndarray:
    """Copies of ``uint8`` images ``(N, S, S)`` with the lesion or its surroundings hidden.

    ``keep="background"``: the lesion (its mask dilated by ``dilate`` pixels) is filled with the
    image's median grey. ``keep="lesion"``: everything outside the lesion's bounding box, grown
    by ``margin`` of its size on each side, is set to 0. Images with an empty mask are unchanged.
    """
    if keep not in ("background", "lesion"):
        raise ConfigError(f"keep={keep!r}: expected 'background' or 'lesion'")
    out = images.copy()
    for i, (img, m) in enumerate(zip(images, masks)):
        if not m.any():
            continue
        if keep == "background":
            region = ndimage.binary_dilation(m, iterations=dilate) if dilate else m
            out[i][region] = np.uint8(np.median(img))
        else:
            ys, xs = np.nonzero(m)
            h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
            y0, y1 = int(max(0, ys.min() - margin * h)), int(min(img.shape[0], ys.max() + 1 + margin * h))
            x0, x1 = int(max(0, xs.min() - margin * w)), int(min(img.shape[1], xs.max() + 1 + margin * w))
            keep_box = np.zeros_like(m)
            keep_box[y0:y1, x0:x1] = True
            out[i][~keep_box] = 0
    return out


def occlusion_auc(model, cfg: dict, images: np.ndarray, masks: np.ndarray, labels) -> dict:
    """AUC of the malignancy probability on the images as they are, without the lesion, and
    with the lesion only (see :func:`occlude`). ``labels``: 1 = malignant."""
    from .fit import predict_arrays

    mal = list(cfg["classes"]).index("malignant")
    out = {}
    for name, imgs in (("auc", images), ("auc_no_lesion", occlude(images, masks, "background")),
                       ("auc_lesion_only", occlude(images, masks, "lesion"))):
        out[name] = _auc(labels, predict_arrays(model, cfg, imgs)["label"][:, mal])
    return out


def within_size_auc(sizes, y, p, min_group: int = 6) -> dict:
    """Pooled AUC against the mean of the AUCs within groups of one original size.

    ``sizes`` rows ``(H, W)``; only groups with at least ``min_group`` images and both classes
    count. Returns ``auc``, ``within_auc`` (weighted by group size), ``n_groups``, ``n_images``.
    """
    df = pd.DataFrame({"size": [f"{int(h)}x{int(w)}" for h, w in np.asarray(sizes)],
                       "y": np.asarray(y).astype(int), "p": np.asarray(p, float)})
    aucs, ns = [], []
    for _, g in df.groupby("size"):
        if len(g) >= min_group and 0 < g["y"].sum() < len(g):
            aucs.append(_auc(g["y"], g["p"]))
            ns.append(len(g))
    return {"auc": _auc(df["y"], df["p"]),
            "within_auc": float(np.average(aucs, weights=ns)) if aucs else float("nan"),
            "n_groups": len(aucs), "n_images": int(sum(ns))}


def acquisition_features(orig_sizes, dark_fraction=None) -> pd.DataFrame:
    """Features that carry nothing of the lesion: width, height, aspect, area (log), and the
    share of near-black pixels when given."""
    s = np.asarray(orig_sizes, float)
    f = pd.DataFrame({"height": s[:, 0], "width": s[:, 1], "aspect": s[:, 1] / s[:, 0],
                      "log_area": np.log(s[:, 0] * s[:, 1])})
    if dark_fraction is not None:
        f["dark_fraction"] = np.asarray(dark_fraction, float)
    return f


def dark_fraction(images) -> np.ndarray:
    """Share of pixels darker than :data:`DARK_LEVEL` in each grey image (any sizes)."""
    return np.array([float((np.asarray(im) < DARK_LEVEL).mean()) for im in images])


def leak_auc(features: pd.DataFrame, y, groups=None, n_splits: int = 5, seed: int = 0) -> float:
    """Out-of-fold AUC of a standardised logistic regression on ``features`` (grouped folds
    when ``groups`` is given, so duplicates never straddle train and test)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y).astype(int)
    cv = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed) if groups is not None
          else StratifiedKFold(n_splits, shuffle=True, random_state=seed))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    p = cross_val_predict(clf, features.to_numpy(), y, cv=cv, groups=groups,
                          method="predict_proba")[:, 1]
    return _auc(y, p)


def _logistic():
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                         LogisticRegression(max_iter=1000))


def fold_fitted_scores(table: pd.DataFrame, features, y, fold_col: str = "fold") -> np.ndarray:
    """Scores of a logistic regression on ``features``, each fold's rows scored by a model
    fitted on the *other* folds' rows only (the test fold never enters its own fit).

    ``table`` holds the features and ``fold_col``; ``y`` is 1 for malignant. Missing values
    (an empty predicted mask) are imputed with the training rows' median.
    """
    y = np.asarray(y).astype(int)
    out = np.full(len(table), np.nan)
    folds = table[fold_col].to_numpy()
    X = table[list(features)].to_numpy(float)
    for k in np.unique(folds):
        test = folds == k
        out[test] = _logistic().fit(X[~test], y[~test]).predict_proba(X[test])[:, 1]
    return out


def transfer_scores(train: pd.DataFrame, y_train, test: pd.DataFrame, features) -> np.ndarray:
    """Scores on ``test`` of a logistic regression fitted on all of ``train`` (e.g. BUSI ->
    BUS-BRA)."""
    model = _logistic().fit(train[list(features)].to_numpy(float), np.asarray(y_train).astype(int))
    return model.predict_proba(test[list(features)].to_numpy(float))[:, 1]


def logit(p, eps: float = 1e-6) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``."""
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    return np.log(p / (1 - p))
