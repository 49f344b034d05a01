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

from busi_lib.data.busbra import locate_busbra
from busi_lib.data.busi import (default_cache_dir, find_samples, load_sample, locate_data,
                                select_samples)
from busi_lib.data.images import read_image, read_mask
from busi_lib.errors import ConfigError
from busi_lib.eval.fusion import logit
from busi_lib.eval.metrics import fast_auc, grouped_bootstrap_auc
from busi_lib.eval.occlusion import DARK_LEVEL
from busi_lib.eval.shape import DESCRIPTORS, descriptors


def within_size_auc(sizes, y, p, min_group: int = 6, bin_px: int = 1) -> dict:
    """Pooled AUC against the mean of the AUCs within groups of one original size.

    ``sizes`` rows ``(H, W)``, grouped after rounding to ``bin_px`` pixels (BUSI's sizes rarely
    repeat exactly: bins of 50 px make groups of similar frames); only groups with at least
    ``min_group`` images and both classes count. Returns ``auc``, ``within_auc`` (weighted by
    group size), ``n_groups``, ``n_images``.
    """
    df = pd.DataFrame({"size": [f"{round(h / bin_px)}x{round(w / bin_px)}"
                                for h, w in np.asarray(sizes)],
                       "y": np.asarray(y).astype(int), "p": np.asarray(p, float)})
    aucs, ns = [], []
    for _, g in df.groupby("size"):
        if len(g) >= min_group and 0 < g["y"].sum() < len(g):
            aucs.append(fast_auc(g["y"], g["p"]))
            ns.append(len(g))
    return {"auc": fast_auc(df["y"], df["p"]),
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


def leak_auc(features: pd.DataFrame, y, groups=None, n_splits: int = 5, seed: int = 0,
             model: str = "logistic") -> float:
    """Out-of-fold AUC of a classifier (:func:`_classifier`) on ``features`` (grouped folds
    when ``groups`` is given, so duplicates never straddle train and test)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict

    y = np.asarray(y).astype(int)
    cv = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed) if groups is not None
          else StratifiedKFold(n_splits, shuffle=True, random_state=seed))
    p = cross_val_predict(_classifier(model), features.to_numpy(), y, cv=cv, groups=groups,
                          method="predict_proba")[:, 1]
    return fast_auc(y, p)


MODELS = ("logistic", "forest")


def _classifier(model: str = "logistic"):
    """A standardised logistic regression, or a random forest (300 trees, leaves of >= 3
    images, seeded) for features whose link to the label need not be monotone (image sizes);
    missing values imputed with the training rows' median."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "logistic":
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                             LogisticRegression(max_iter=1000))
    if model == "forest":
        return make_pipeline(SimpleImputer(strategy="median"), RandomForestClassifier(
            300, min_samples_leaf=3, random_state=0, n_jobs=1))
    raise ConfigError(f"model={model!r}: expected one of {list(MODELS)}")


def fold_fitted_scores(table: pd.DataFrame, features, y, fold_col: str = "fold",
                       model: str = "logistic") -> np.ndarray:
    """Scores of a classifier (:func:`_classifier`) on ``features``, each fold's rows scored
    by a model fitted on the *other* folds' rows only (the test fold never enters its own fit).

    ``table`` holds the features and ``fold_col``; ``y`` is 1 for malignant. Missing values
    (an empty predicted mask) are imputed with the training rows' median.
    """
    y = np.asarray(y).astype(int)
    out = np.full(len(table), np.nan)
    folds = table[fold_col].to_numpy()
    X = table[list(features)].to_numpy(float)
    for k in np.unique(folds):
        test = folds == k
        out[test] = _classifier(model).fit(X[~test], y[~test]).predict_proba(X[test])[:, 1]
    return out


def transfer_scores(train: pd.DataFrame, y_train, test: pd.DataFrame, features,
                    model: str = "logistic") -> np.ndarray:
    """Scores on ``test`` of a classifier fitted on all of ``train`` (e.g. BUSI -> BUS-BRA)."""
    clf = _classifier(model).fit(train[list(features)].to_numpy(float),
                                 np.asarray(y_train).astype(int))
    return clf.predict_proba(test[list(features)].to_numpy(float))[:, 1]


# ----------------------------------------------------------------------------- what gives it away
def acquisition_and_shape(data_dir=None, classes=("benign", "malignant"),
                          max_per_class=None, busbra: bool = False, path=None) -> pd.DataFrame:
    """One row per image of BUSI (or BUS-BRA with ``busbra=True``) at its original size: id,
    label (1 = malignant), height, width, share of near-black pixels, and the shape
    descriptors of its ground-truth mask (:mod:`busi_lib.eval.shape`). Cached by the data's hash."""
    import hashlib

    if busbra:

        root = locate_busbra(path)
        if root is None:
            return pd.DataFrame()
        meta = pd.read_csv(root / "bus_data.csv")
        key = hashlib.sha256((root / "bus_data.csv").read_bytes()).hexdigest()[:16]
        items = [(r.ID, int(r.Pathology == "malignant"), r.Case,
                  lambda r=r: (read_image(root / "Images" / f"{r.ID}.png"),
                               read_mask(root / "Masks" / f"{r.ID.replace('bus_', 'mask_')}.png")))
                 for r in meta.itertuples()]
    else:
        root = locate_data(data_dir)
        samples = select_samples(find_samples(root, classes), max_per_class)
        key = hashlib.sha256("|".join(f"{s.id}:{s.image_path.stat().st_size}"
                                      for s in samples).encode()).hexdigest()[:16]
        items = [(s.id, int(s.label == "malignant"), None, lambda s=s: load_sample(s))
                 for s in samples]
    cache = default_cache_dir() / f"giveaways_{'busbra' if busbra else 'busi'}_{key}_v1.csv"
    if cache.is_file():
        return pd.read_csv(cache)
    rows = []
    for id_, y, case, load in items:
        img, mask = load()
        rows.append({"id": id_, "y": y, "case": case, "height": img.shape[0],
                     "width": img.shape[1], "dark_fraction": float((img < DARK_LEVEL).mean()),
                     **descriptors(mask)})
    df = pd.DataFrame(rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(cache, index=False)
    return df


ACQUISITION = ("height", "width", "aspect", "log_area")
#: The descriptors of :data:`busi_lib.eval.shape.DESCRIPTORS`, area last (the order the records
#: were made with; a new descriptor joins by itself).
SHAPE = tuple(d for d in DESCRIPTORS if d != "area_frac") + ("area_frac",)


def with_acquisition(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the :func:`acquisition_features` of its height and width added."""
    f = acquisition_features(df[["height", "width"]].to_numpy())
    return df.assign(**{c: f[c].to_numpy() for c in ("aspect", "log_area")})


def giveaway_table(busi: pd.DataFrame, busbra: pd.DataFrame, folds: pd.DataFrame,
                   n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """How much of the label features that are not the lesion's appearance give away.

    Rows: the image's size (``ACQUISITION``), size plus near-black share, and the shape of the
    *annotators'* outline (``SHAPE``), each through a random forest (sizes need not act
    monotonically). Columns: BUSI AUC out of fold (each fold scored by a fit on the others, the
    book's grouped folds) with a bootstrap interval over duplicate groups, and the AUC on
    BUS-BRA of the same model fitted on all of BUSI (interval over patients).
    """

    b = with_acquisition(busi).merge(folds[["id", "fold", "group"]], on="id")
    e = with_acquisition(busbra) if len(busbra) else busbra
    sets = {"image size (width, height, aspect, area)": ACQUISITION,
            "image size + near-black share": ACQUISITION + ("dark_fraction",),
            "shape of the ground-truth outline": SHAPE}
    rows = []
    for name, feats in sets.items():
        s = fold_fitted_scores(b, feats, b["y"], model="forest")
        auc, lo, hi = grouped_bootstrap_auc(b["y"], s, b["group"], n_boot, seed)
        row = {"features": name, "BUSI AUC (out of fold)": auc, "BUSI 95% CI":
               f"{lo:.3f}-{hi:.3f}", "BUS-BRA AUC (fitted on BUSI)": np.nan, "BUS-BRA 95% CI": ""}
        if len(e):
            t = transfer_scores(b, b["y"], e, feats, model="forest")
            auc, lo, hi = grouped_bootstrap_auc(e["y"], t, e["case"], n_boot, seed)
            row.update({"BUS-BRA AUC (fitted on BUSI)": auc, "BUS-BRA 95% CI": f"{lo:.3f}-{hi:.3f}"})
        rows.append(row)
    return pd.DataFrame(rows).set_index("features")


def predicted_shape_table(oof: pd.DataFrame, busbra: pd.DataFrame | None, folds: pd.DataFrame,
                          n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The network's probability, the shape descriptors of its *predicted* masks as a
    classifier, and the two fused (descriptors + logit of the probability), on BUSI out of fold
    and on BUS-BRA.

    ``oof``: the out-of-fold predictions of an experiment (``fold``, ``id``, ``true_class``,
    ``prob_malignant``, ``pred_<descriptor>``); each fold's rows are scored by a logistic
    regression fitted on the other folds' rows only. ``busbra``: the ensemble's BUS-BRA table
    (``pathology``, ``case``, ``prob_malignant``, ``pred_*``), scored by a fit on all of
    ``oof``. Intervals: bootstrap over duplicate groups (BUSI) and patients (BUS-BRA).
    """

    o = oof.merge(folds[["id", "group"]], on="id")
    o = o.assign(y=(o["true_class"] == "malignant").astype(int), logit=logit(o["prob_malignant"]))
    desc = [f"pred_{c}" for c in SHAPE]
    sets = {"network probability": None, "shape of the predicted mask": desc,
            "fused: shape + network probability": desc + ["logit"]}
    e = None
    if busbra is not None and len(busbra):
        e = busbra.assign(y=(busbra["pathology"] == "malignant").astype(int),
                          logit=logit(busbra["prob_malignant"]))
    rows = []
    for name, feats in sets.items():
        s = o["prob_malignant"].to_numpy() if feats is None else fold_fitted_scores(o, feats, o["y"])
        auc, lo, hi = grouped_bootstrap_auc(o["y"], s, o["group"], n_boot, seed)
        row = {"classifier": name, "BUSI AUC (out of fold)": auc, "BUSI 95% CI":
               f"{lo:.3f}-{hi:.3f}", "BUS-BRA AUC": np.nan, "BUS-BRA 95% CI": ""}
        if e is not None:
            t = e["prob_malignant"].to_numpy() if feats is None else transfer_scores(o, o["y"], e, feats)
            auc, lo, hi = grouped_bootstrap_auc(e["y"], t, e["case"], n_boot, seed)
            row.update({"BUS-BRA AUC": auc, "BUS-BRA 95% CI": f"{lo:.3f}-{hi:.3f}"})
        rows.append(row)
    return pd.DataFrame(rows).set_index("classifier")


def giveaway_sentence(table: pd.DataFrame) -> str:
    """One sentence from :func:`giveaway_table`: the AUC of the image size alone and of the
    annotators' outline shape, on BUSI out of fold and on BUS-BRA."""
    def one(row: str) -> str:
        r = table.loc[row]
        ext = r["BUS-BRA AUC (fitted on BUSI)"]
        return (f"{r['BUSI AUC (out of fold)']:.2f} on BUSI ("
                + (f"{ext:.2f} on BUS-BRA" if np.isfinite(ext) else "BUS-BRA not found") + ")")
    size = next(i for i in table.index if i.startswith("image size ("))
    shape = next(i for i in table.index if i.startswith("shape of"))
    return (f"the original image size alone tells malignant from benign with an AUC of "
            f"{one(size)}, and the shape of the annotators' lesion outline with {one(shape)}")
