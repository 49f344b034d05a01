"""Shape-descriptor fusion: the network's probability read together with the shape of its mask.

The classifier head of the multi-task network reads the lesion *and its surroundings*; the
shape of the lesion it outlines (:mod:`busi_lib.eval.shape`: solidity, circularity, extent,
taller-than-wide, roughness, area) is what a radiologist's BI-RADS lexicon reads. A fusion
model combines the two:

.. math::

    p_\\text{fused} = \\sigma\\big(\\beta_0 + \\beta_1 \\operatorname{logit} p_\\text{net}
                      + \\textstyle\\sum_j \\beta_{j+1} z_j\\big),

with :math:`z_j` the standardised descriptors of the *predicted* mask (an empty mask gets the
training median) -- a logistic regression, so :math:`p_\\text{fused}` is calibrated on the rows
it was fitted on.

Fitted on out-of-fold predictions only
--------------------------------------
Every row a fusion model is fitted on is an out-of-fold prediction: the probability and mask
of a BUSI image predicted by the fold model that did not train on it. The book's estimate of
its effect (:func:`fold_fitted`) scores each test fold with a fusion fitted on the *other*
folds' out-of-fold rows, so no test image enters its own fit; the released fusion
(:mod:`busi_lib.serve.release`) is fitted on every out-of-fold row of BUSI. BUS-BRA is never used.

The selection rules that decide whether a release ships the fusion are in
:mod:`busi_lib.analysis.fusion_selection`; :func:`kept` reads their records.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from busi_lib.errors import ConfigError, DataError
from busi_lib.eval.shape import DESCRIPTORS
from busi_lib.records import results_root

#: The fusion's inputs: the descriptors of the predicted mask (columns ``pred_<name>`` of the
#: prediction tables) and the logit of the network's probability.
FEATURES: tuple[str, ...] = tuple(f"pred_{d}" for d in DESCRIPTORS) + ("logit",)


def feature_table(table: pd.DataFrame, prob_col: str = "prob_malignant") -> pd.DataFrame:
    """The :data:`FEATURES` of a prediction table (``pred_<descriptor>`` columns and the
    probability column ``prob_col``), in that order.

    Raises
    ------
    DataError
        A descriptor or the probability column is missing.
    """
    need = [c for c in FEATURES if c != "logit"] + [prob_col]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DataError(f"prediction table without column(s) {missing}; expected the "
                        f"descriptors of the predicted mask and {prob_col!r}")
    out = table[[c for c in FEATURES if c != "logit"]].astype(float).copy()
    out["logit"] = logit(table[prob_col].to_numpy(float))
    return out


class Fusion:
    """A standardised logistic regression on :data:`FEATURES`, stored as plain numbers (JSON).

    Parameters
    ----------
    C : float
        Inverse L2 strength of scikit-learn's ``LogisticRegression`` (default 1.0).
    """

    def __init__(self, C: float = 1.0):
        if not C > 0:
            raise ConfigError(f"C={C!r}: expected a positive number")
        self.C = float(C)
        self.median: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept: float = 0.0
        self.n_fit: int = 0

    def fit(self, X: pd.DataFrame, y) -> "Fusion":
        """Fit on feature rows ``X`` (:func:`feature_table`) and labels ``y`` (1 = malignant)."""
        from sklearn.linear_model import LogisticRegression

        A = self._matrix(X, fitting=True)
        y = np.asarray(y).astype(int)
        if len(y) != len(A) or len(np.unique(y)) != 2:
            raise DataError(f"fusion fit on {len(A)} rows and {len(y)} labels of classes "
                            f"{sorted(np.unique(y).tolist())}; expected one label per row and "
                            "both classes")
        self.median = np.nanmedian(A, axis=0)
        A = np.where(np.isnan(A), self.median, A)
        self.mean, self.scale = A.mean(0), A.std(0)
        self.scale = np.where(self.scale > 0, self.scale, 1.0)
        clf = LogisticRegression(C=self.C, max_iter=1000).fit((A - self.mean) / self.scale, y)
        self.coef, self.intercept, self.n_fit = clf.coef_[0].copy(), float(clf.intercept_[0]), len(y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Fused probability of malignancy for each row of ``X``."""
        if self.coef is None:
            raise ConfigError("this Fusion is not fitted; call fit() or from_dict() first")
        A = self._matrix(X)
        A = np.where(np.isnan(A), self.median, A)
        z = ((A - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    @staticmethod
    def _matrix(X: pd.DataFrame, fitting: bool = False) -> np.ndarray:
        missing = [c for c in FEATURES if c not in X.columns]
        if missing:
            raise DataError(f"fusion features {missing} missing; expected columns {list(FEATURES)}"
                            " (see busi_lib.eval.fusion.feature_table)")
        return X[list(FEATURES)].to_numpy(float)

    def to_dict(self) -> dict[str, Any]:
        if self.coef is None:
            raise ConfigError("this Fusion is not fitted; nothing to save")
        return {"method": "logistic", "features": list(FEATURES), "C": self.C,
                "median": self.median.tolist(), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "n_fit": self.n_fit}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Fusion":
        if list(d.get("features", [])) != list(FEATURES):
            raise DataError(f"fusion saved with features {d.get('features')}; this version "
                            f"expects {list(FEATURES)}")
        f = cls(d.get("C", 1.0))
        f.median, f.mean, f.scale, f.coef = (np.asarray(d[k], float)
                                             for k in ("median", "mean", "scale", "coef"))
        f.intercept, f.n_fit = float(d["intercept"]), int(d.get("n_fit", 0))
        return f

    def describe(self) -> str:
        """The weights in words (standardised units), largest first."""
        if self.coef is None:
            return "not fitted"
        order = np.argsort(-np.abs(self.coef))
        return ", ".join(f"{FEATURES[i]} {self.coef[i]:+.2f}" for i in order)


def lesion_rows(pred: pd.DataFrame) -> pd.DataFrame:
    """The rows of a prediction table with a benign or malignant image, with ``y`` (1 =
    malignant)."""
    col = "true_class" if "true_class" in pred.columns else "pathology"
    out = pred[pred[col].isin(["benign", "malignant"])].copy()
    out["y"] = (out[col] == "malignant").astype(int)
    return out.reset_index(drop=True)


def fold_fitted(oof: pd.DataFrame, fold_col: str = "fold", C: float = 1.0) -> np.ndarray:
    """Fused probabilities of out-of-fold rows ``oof`` (``fold``, ``y``, the prediction
    columns), each fold's rows scored by a fusion fitted on the *other* folds' rows only."""
    X, y = feature_table(oof), oof["y"].to_numpy(int)
    folds = oof[fold_col].to_numpy()
    out = np.full(len(oof), np.nan)
    for k in np.unique(folds):
        test = folds == k
        out[test] = Fusion(C).fit(X[~test], y[~test]).predict_proba(X[test])
    return out


def fit_all(oof: pd.DataFrame, C: float = 1.0) -> Fusion:
    """The fusion fitted on every out-of-fold row of ``oof`` (what a release ships)."""
    return Fusion(C).fit(feature_table(oof), oof["y"].to_numpy(int))


def selection_path(profile: str = "cpu", results_dir=None):
    """``results/<profile>/selection/fusion.json``: the rule applied to each experiment."""

    return results_root(results_dir) / profile / "selection" / "fusion.json"


# ----------------------------------------------------------------------------- second rule


def perturbed_path(profile: str = "cpu", results_dir=None):
    """``results/<profile>/selection/fusion_perturbed.json``."""
    return selection_path(profile, results_dir).with_name("fusion_perturbed.json")


def kept(profile: str, experiment: str, results_dir=None) -> bool:
    """Whether the selection records keep the fusion for ``experiment``: the first rule's or
    the second rule's verdict (False when neither is recorded)."""
    import json

    verdicts = []
    for path in (selection_path(profile, results_dir), perturbed_path(profile, results_dir)):
        if path.is_file():
            e = json.loads(path.read_text())["experiments"].get(experiment)
            if e is not None:
                verdicts.append(bool(e["keep"]))
    return any(verdicts)


def logit(p, eps: float = 1e-6) -> np.ndarray:
    """``log(p / (1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]``."""
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    return np.log(p / (1 - p))
