"""Calibration of p(malignant): calibrators, reliability before and after, BI-RADS bands, BUS-BRA.

A probability can be read on the BI-RADS likelihood scale only if it is *calibrated*: among the
images given p = 0.3, about 30 % should be malignant. This module holds

* the bands (:data:`BIRADS_BANDS`, :func:`birads_band`, :func:`birads_table`): the one definition
  that chapter 6, the released model's card and the predictor (:mod:`busi_lib.serve.predictor`) share
  (:mod:`busi_lib.analysis.paper` re-exports them);
* :class:`Calibrator`: Platt scaling (a logistic curve on the log-odds) or isotonic regression,
  fitted on BUSI's out-of-fold cross-validation predictions, never on BUS-BRA; stored as plain
  JSON numbers, so that applying it needs neither pickle nor scikit-learn;
* :func:`crossfit`: the honest "after" on BUSI: each fold's predictions calibrated by a
  calibrator fitted on the other folds only;
* reliability, ECE and Brier score (:func:`reliability_table`, :func:`calibration_summary`),
  before and after calibration (:func:`calibration_table`, :func:`plot_reliability_before_after`);
* :func:`evidence` (chapter 6): the before/after sets of the released model
  (:func:`release_evidence`) or, before a release, of an experiment's records
  (:func:`records_evidence`);
* the external-test tables of BUS-BRA: AUC with a patient-level bootstrap interval
  (:func:`external_summary`), true BI-RADS against the predicted band (:func:`birads_crosstab`).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from busi_lib.errors import ConfigError
from busi_lib.eval.metrics import (brier_score, calibration_bins, expected_calibration_error,
                                   grouped_bootstrap_auc)
from busi_lib.records import MODELS_DIR, load_predictions

#: Likelihood bands of the BI-RADS categories 3-5 (the paper's Table 8): ``(label, low, high)``.
#: 3 "<= 2 %", 4A "> 2 % and <= 10 %", 4B "> 10 % and <= 50 %", 4C "> 50 % and < 95 %",
#: 5 ">= 95 %".
BIRADS_BANDS = [("3", 0.0, 0.02), ("4A", 0.02, 0.10), ("4B", 0.10, 0.50),
                ("4C", 0.50, 0.95), ("5", 0.95, 1.0)]
#: Calibration methods of :class:`Calibrator`.
METHODS = ("platt", "isotonic", "none")
_EPS = 1e-6


def birads_band(prob) -> np.ndarray:
    """BI-RADS-like band (``"3"``, ``"4A"``, ``"4B"``, ``"4C"``, ``"5"``) of each probability
    (an array of the same shape; a ``str`` for a scalar).

    Upper bounds are inclusive (0.02 is band 3, 0.10 is 4A, 0.50 is 4B), except that band 5
    starts at 0.95 inclusive, as Table 8 states.

    Raises
    ------
    ValueError
        A probability that is not finite or lies outside [0, 1].
    """
    p = np.asarray(prob, np.float64)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must be finite and in [0, 1]")
    if p.ndim == 0:
        return str(birads_band(p[None])[0])
    edges = np.array([b[2] for b in BIRADS_BANDS[:3]])      # 0.02, 0.10, 0.50: upper-inclusive
    idx = np.searchsorted(edges, p, side="left")
    idx = np.where(p >= BIRADS_BANDS[-1][1], len(BIRADS_BANDS) - 1, idx)  # 5 is ">= 95 %"
    return np.array([BIRADS_BANDS[i][0] for i in idx.ravel()]).reshape(p.shape)


def birads_table(y, p) -> pd.DataFrame:
    """Predictions placed in the bands, with the observed malignant fraction in each band beside
    the band's stated likelihood (``y``: 1 malignant, 0 benign)."""
    bands = birads_band(p)
    y = np.asarray(y, int)
    rows = []
    for lab, lo, hi in BIRADS_BANDS:
        sel = bands == lab
        rows.append({"band": lab, "stated likelihood (%)": f"{100 * lo:g}-{100 * hi:g}",
                     "images": int(sel.sum()), "benign": int((y[sel] == 0).sum()),
                     "malignant": int((y[sel] == 1).sum()),
                     "observed malignant (%)": 100 * float(y[sel].mean()) if sel.any() else np.nan})
    return pd.DataFrame(rows).set_index("band")


def _check_yp(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    p = np.asarray(p, np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"y of shape {y.shape} and p of shape {p.shape}: expected two 1-d arrays "
                         "of the same length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y holds {sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}: expected "
                         "0 (benign) or 1 (malignant)")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p must hold finite probabilities in [0, 1]")
    return y.astype(int), p


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class Calibrator:
    """Map a model's malignancy probability to a calibrated one (scikit-learn-like).

    Parameters
    ----------
    method : {"platt", "isotonic", "none"}
        ``"platt"``: :math:`\\sigma(a \\cdot \\mathrm{logit}(p) + b)`, fitted by maximum
        likelihood on Platt's smoothed targets (:math:`(N_+ + 1)/(N_+ + 2)` and
        :math:`1/(N_- + 2)`), which keeps it finite when the classes separate perfectly, with
        :math:`a \ge 0` so that it never reverses the ranking (AUC is unchanged).
        ``"isotonic"``: a non-decreasing step function (scikit-learn's ``IsotonicRegression``),
        applied by linear interpolation between its knots. ``"none"``: the identity.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_ : dict
        ``{"a", "b"}`` (Platt) or ``{"x", "y"}`` (isotonic knots).
    n_fit_ : int
        Number of predictions the calibrator was fitted on.
    """

    def __init__(self, method: str = "platt"):
        if method not in METHODS:
            raise ConfigError(f"method={method!r}: expected one of {list(METHODS)}")
        self.method = method
        self.params_: dict[str, Any] | None = None
        self.n_fit_ = 0

    def fit(self, p, y) -> "Calibrator":
        """Fit on predicted probabilities ``p`` and true labels ``y`` (1 malignant)."""
        y, p = _check_yp(y, p)
        if len(y) < 2 or y.min() == y.max():
            raise ValueError(f"fitting a calibrator needs both classes; got {len(y)} prediction(s) "
                             f"with {int(y.sum())} malignant")
        if self.method == "platt":
            self.params_ = _fit_platt(_logit(p), y)
        elif self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
            self.params_ = {"x": [float(v) for v in iso.X_thresholds_],
                            "y": [float(v) for v in iso.y_thresholds_]}
        else:
            self.params_ = {}
        self.n_fit_ = int(len(y))
        return self

    def transform(self, p) -> np.ndarray:
        """Calibrated probabilities of ``p`` (any shape), in [0, 1]."""
        if self.params_ is None:
            raise ValueError("this Calibrator is not fitted yet: call fit(p, y) first")
        p = np.asarray(p, np.float64)
        if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
            raise ValueError("p must hold finite probabilities in [0, 1]")
        if self.method == "platt":
            z = self.params_["a"] * _logit(p) + self.params_["b"]
            return 1.0 / (1.0 + np.exp(-z))
        if self.method == "isotonic":
            return np.interp(p, self.params_["x"], self.params_["y"])
        return p.copy()

    predict = transform

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (see :meth:`from_dict`)."""
        if self.params_ is None:
            raise ValueError("this Calibrator is not fitted yet: call fit(p, y) first")
        return {"method": self.method, "params": self.params_, "n_fit": self.n_fit_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Calibrator":
        """The calibrator described by :meth:`to_dict`.

        Raises
        ------
        ConfigError
            Unknown method or missing parameters.
        """
        if not isinstance(d, dict) or "method" not in d:
            raise ConfigError(f"calibration {d!r}: expected a dict with 'method' and 'params'")
        cal = cls(d["method"])
        params = dict(d.get("params") or {})
        need = {"platt": ("a", "b"), "isotonic": ("x", "y"), "none": ()}[cal.method]
        missing = [k for k in need if k not in params]
        if missing:
            raise ConfigError(f"calibration {d['method']!r} lacks parameter(s) {missing}")
        cal.params_ = params
        cal.n_fit_ = int(d.get("n_fit", 0))
        return cal

    def describe(self) -> str:
        """One line: the method and its fitted parameters."""
        if self.params_ is None:
            return f"{self.method} (not fitted)"
        if self.method == "platt":
            return (f"Platt: p' = sigmoid({self.params_['a']:.3f} * logit(p) "
                    f"{self.params_['b']:+.3f}), fitted on {self.n_fit_} predictions")
        if self.method == "isotonic":
            return f"isotonic, {len(self.params_['x'])} knots, fitted on {self.n_fit_} predictions"
        return "none (probabilities as the network gives them)"

    def __repr__(self) -> str:
        return f"Calibrator(method={self.method!r})"


def _fit_platt(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Maximum likelihood of ``sigmoid(a z + b)`` on Platt's smoothed targets."""
    from scipy.optimize import minimize

    n1 = int(y.sum())
    n0 = len(y) - n1
    t = np.where(y == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))

    def loss(ab):
        s = ab[0] * z + ab[1]
        # log(1 + e^s) - t s, written stably
        return float(np.sum(np.logaddexp(0.0, s) - t * s))

    def grad(ab):
        s = ab[0] * z + ab[1]
        r = 1.0 / (1.0 + np.exp(-s)) - t
        return np.array([np.sum(r * z), np.sum(r)])

    # a >= 0: a calibration must not reverse the ranking of the predictions (nor change AUC)
    res = minimize(loss, x0=np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B",
                   bounds=[(0.0, None), (None, None)])
    return {"a": float(res.x[0]), "b": float(res.x[1])}


def fit_calibrator(y, p, method: str = "platt") -> Calibrator:
    """A :class:`Calibrator` fitted on labels ``y`` and probabilities ``p``."""
    return Calibrator(method).fit(p, y)


def crossfit(y, p, groups, method: str = "platt") -> np.ndarray:
    """Out-of-fold calibrated probabilities: the predictions of each group (a CV fold) are
    calibrated by a calibrator fitted on the other groups only, so that the "after" numbers on
    BUSI are not measured on the data the calibrator was fitted on."""
    y, p = _check_yp(y, p)
    g = np.asarray(groups)
    if g.shape != y.shape:
        raise ValueError(f"groups of shape {g.shape}: expected one group per prediction {y.shape}")
    uniq = np.unique(g)
    if len(uniq) < 2:
        raise ValueError(f"cross-fitting needs at least two groups; got {uniq.tolist()}")
    out = np.empty_like(p)
    for k in uniq:
        sel = g == k
        out[sel] = fit_calibrator(y[~sel], p[~sel], method).transform(p[sel])
    return out


def calibration_scores(y, p, n_bins: int = 10) -> dict[str, float]:
    """``{"images", "malignant", "ECE", "Brier", "Brier of the base rate"}``."""

    y, p = _check_yp(y, p)
    return {"images": int(len(y)), "malignant": int(y.sum()),
            "ECE": expected_calibration_error(y, p, n_bins), "Brier": brier_score(y, p),
            "Brier of the base rate": brier_score(y, np.full(len(y), y.mean()))}


def brier(y: Iterable[int], p: Iterable[float]) -> float:
    return brier_score(list(y), list(p))


def reliability_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of the predicted probability: count, mean prediction, observed rate."""

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
    """:func:`calibration_scores` of the pooled predictions, as a one-row table."""
    return pd.DataFrame([calibration_scores(y, p, n_bins)],
                        index=pd.Index(["pooled"], name=f"{n_bins} bins"))


def calibration_table(sets: dict[str, tuple[Sequence[int], Sequence[float], Sequence[float]]],
                      n_bins: int = 10) -> pd.DataFrame:
    """ECE and Brier score before and after calibration, one row per data set.

    Parameters
    ----------
    sets : dict
        ``name -> (y, p_before, p_after)``, e.g. ``{"BUSI (CV)": ..., "BUS-BRA": ...}``.
    """
    rows = []
    for name, (y, before, after) in sets.items():
        b = calibration_scores(y, before, n_bins)
        a = calibration_scores(y, after, n_bins)
        rows.append({"data": name, "images": b["images"], "malignant": b["malignant"],
                     "ECE before": b["ECE"], "ECE after": a["ECE"],
                     "Brier before": b["Brier"], "Brier after": a["Brier"],
                     "Brier of the base rate": b["Brier of the base rate"]})
    return pd.DataFrame(rows).set_index("data")


def plot_reliability_before_after(sets: dict[str, tuple[Iterable, Iterable, Iterable]],
                                  n_bins: int = 10, title: str = "", show: bool = True):
    """One reliability diagram per data set, before (grey) and after (blue) calibration, with
    the BI-RADS band edges marked. ``sets`` as in :func:`calibration_table`. Shows the figure
    (``show=True``, returns ``None``) or returns it."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(4 * len(sets), 3.6), squeeze=False)
    for ax, (name, (y, before, after)) in zip(axes[0], sets.items()):
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
        for edge in [b[2] for b in BIRADS_BANDS[:-1]]:
            ax.axvline(edge, color="#dddddd", lw=0.8, zorder=0)
        for p, label, colour in ((before, "before", "#999999"), (after, "after", "#1f5fa8")):
            pts = reliability_table(y, p, n_bins)
            pts = pts[pts["images"] > 0]
            ece = calibration_scores(y, p, n_bins)["ECE"]
            ax.plot(pts["mean predicted"], pts["observed malignant"], marker="o", ms=4,
                    color=colour, label=f"{label} (ECE {ece:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted p(malignant)",
               ylabel="observed malignant fraction", title=name)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig


def release_evidence(model_dir) -> dict[str, Any]:
    """Calibration before and after of a released model (:mod:`busi_lib.serve.release`), from the
    predictions stored with it: BUSI out-of-fold (raw, and calibrated by cross-fitting) and
    BUS-BRA (the ensemble's mean raw probability, and the mean of its calibrated fold
    probabilities, which is what the predictor says). Returns the same keys as
    :func:`records_evidence`."""
    import json
    from pathlib import Path

    d = Path(model_dir)
    cal = Calibrator.from_dict(json.loads((d / "calibration.json").read_text()))
    oof = pd.read_csv(d / "oof_predictions.csv")
    oof = oof[oof["true_class"].isin(["benign", "malignant"])]
    y = (oof["true_class"] == "malignant").to_numpy(int)
    sets = {"BUSI (cross-validation)": (y, oof["prob_raw"].to_numpy(float),
                                        oof["prob_calibrated_crossfit"].to_numpy(float))}
    busbra = pd.DataFrame()
    if (d / "busbra_predictions.csv").is_file():
        busbra = pd.read_csv(d / "busbra_predictions.csv").rename(
            columns={"prob_calibrated": "prob_cal"})
        yb = (busbra["pathology"] == "malignant").to_numpy(int)
        sets["BUS-BRA (external)"] = (yb, busbra["prob_raw"].to_numpy(float),
                                      busbra["prob_cal"].to_numpy(float))
    return {"calibrator": cal, "sets": sets, "busbra": busbra,
            "source": f"released model {d.name}"}


def evidence(profile: str, experiment: str = "multitask_grouped", method: str = "platt",
             models_dir=None, results_dir=None) -> dict[str, Any]:
    """Calibration evidence for chapter 6: the released model ``<experiment>_<profile>`` when
    it exists in ``models_dir`` (default ``models/``, :func:`release_evidence`), else the
    experiment's records (:func:`records_evidence`). ``source`` says which."""
    from pathlib import Path

    d = Path(MODELS_DIR if models_dir is None else models_dir) / f"{experiment}_{profile}"
    if (d / "calibration.json").is_file() and (d / "oof_predictions.csv").is_file():
        return release_evidence(d)
    ev = records_evidence(profile, experiment, method, results_dir)
    ev["source"] = f"records of {experiment} ({profile}), calibration fitted on them here"
    return ev


def records_evidence(profile: str, experiment: str, method: str = "platt",
                     results_dir=None) -> dict[str, Any]:
    """Calibration before and after, from an experiment's recorded predictions.

    The calibrator is fitted on all out-of-fold BUSI predictions (``fold<k>_predictions.csv``).
    BUSI "after" is cross-fitted (:func:`crossfit`, by fold); BUS-BRA (``fold<k>_external.csv``,
    when recorded) is calibrated fold by fold with the calibrator fitted on BUSI, then averaged
    over folds per image, as the released ensemble does (:mod:`busi_lib.serve.predictor`).

    Returns
    -------
    dict with ``calibrator`` (fitted on all BUSI folds), ``sets`` (for
    :func:`calibration_table` and :func:`plot_reliability_before_after`; BUS-BRA only when
    recorded) and ``busbra`` (per-image table: id, case, pathology, birads, prob_raw, prob_cal;
    empty when not recorded).
    """

    oof = load_predictions(profile, experiment, results_dir)
    if oof.empty or "prob_malignant" not in oof:
        raise ValueError(f"no out-of-fold predictions recorded for {experiment!r} ({profile}); "
                         "expected fold<k>_predictions.csv files with prob_malignant")
    oof = oof[oof["true_class"].isin(["benign", "malignant"])]
    y = (oof["true_class"] == "malignant").to_numpy(int)
    p = oof["prob_malignant"].to_numpy(float)
    cal = fit_calibrator(y, p, method)
    sets = {"BUSI (cross-validation)": (y, p, crossfit(y, p, oof["fold"].to_numpy(), method))}
    ext = load_predictions(profile, experiment, results_dir, kind="external")
    busbra = pd.DataFrame()
    if not ext.empty and "prob_malignant" in ext:
        ext = ext.assign(prob_cal=cal.transform(ext["prob_malignant"].to_numpy(float)))
        busbra = ext.groupby("id", sort=True).agg(
            case=("case", "first"), pathology=("pathology", "first"), birads=("birads", "first"),
            prob_raw=("prob_malignant", "mean"), prob_cal=("prob_cal", "mean")).reset_index()
        yb = (busbra["pathology"] == "malignant").to_numpy(int)
        sets["BUS-BRA (external)"] = (yb, busbra["prob_raw"].to_numpy(),
                                      busbra["prob_cal"].to_numpy())
    return {"calibrator": cal, "sets": sets, "busbra": busbra}


# ----------------------------------------------------------------------------- BUS-BRA


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


def birads_crosstab(ens: pd.DataFrame, prob_col: str = "prob_malignant") -> pd.DataFrame:
    """True BI-RADS (BUS-BRA) against the band of the predicted probability ``prob_col``."""
    band = birads_band(ens[prob_col].clip(0, 1))
    ct = pd.crosstab(pd.Categorical(ens["birads"].astype(str), categories=sorted(
        ens["birads"].astype(str).unique())), pd.Categorical(band, categories=[b[0] for b in
                                                                              BIRADS_BANDS]),
        dropna=False)
    ct.index.name, ct.columns.name = "true BI-RADS", "predicted band"
    return ct


def discordant_sentence(table: pd.DataFrame) -> str:
    """How many images the radiologists call BI-RADS 2 or 3 get a band of 4C or 5, and how many
    BI-RADS 5 get 3 or 4A, from a :func:`birads_crosstab` table."""
    def count(rows, cols):
        r = [x for x in rows if x in table.index]
        c = [x for x in cols if x in table.columns]
        return int(table.loc[r, c].to_numpy().sum()) if r and c else 0, \
            int(table.loc[r].to_numpy().sum()) if r else 0

    parts = []
    for rows, cols, what in ((["2"], ["4C", "5"], "BI-RADS 2"), (["3"], ["4C", "5"], "BI-RADS 3"),
                             (["5"], ["3", "4A"], "BI-RADS 5")):
        k, n = count(rows, cols)
        if n:
            parts.append(f"{k} of {n} {what} images get band {' or '.join(cols)}")
    return "; ".join(parts) if parts else "no image with BI-RADS 2, 3 or 5"

