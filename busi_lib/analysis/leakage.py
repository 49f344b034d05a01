"""Near-duplicate images on both sides of a train/test boundary, and the test metrics without them.

A duplicate-grouped split (:mod:`busi_lib.data.splits`) keeps every near-duplicate group inside one
fold, but only for the pairs its screen found on the images it looked at
(:data:`busi_lib.data.splits.GROUPING_VIEW`). The same screen on another view of the images (e.g.
without enhancement) can find pairs that the split left in two folds. Then each image of such a
pair is a test image whose near-copy was among its model's training images: a leak.

This module finds those pairs for a fold table and recomputes a run's per-fold test metrics
without the leaked test images, from the committed per-image predictions (nothing is retrained):

    pairs = splits.near_duplicates(load_busi(..., enhancement="none"))
    gone = leaked_ids(folds, pairs)
    leak_effect("cpu", ["multitask_grouped"], gone)
    paired_leak_effect("cpu", "ablation_reference", ["seg_only", "base_unet"], gone)
"""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

from busi_lib.analysis import stats
from busi_lib.analysis.comparisons import LABELS, METRICS as KINDS
from busi_lib.data.busi import load_busi
from busi_lib.data.splits import GROUPING_VIEW, config_splits_path, near_duplicates
from busi_lib.errors import ConfigError
from busi_lib.records import load_predictions

#: metric of the records -> (kind of :func:`busi_lib.analysis.stats.fold_metric`, per-image column, label)
METRICS = {m: (kind, stats.COLUMN[kind], LABELS[m]) for m, kind in KINDS.items()}


def straddling_pairs(folds: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs whose two images are in different test folds of ``folds``.

    Parameters
    ----------
    folds : fold table with columns ``id`` and ``fold`` (``-1``: in no fold)
    pairs : columns ``image a`` and ``image b`` (e.g. :func:`busi_lib.data.splits.near_duplicates`);
        pairs with an image not in ``folds`` (another class) or in no fold are left out

    Returns
    -------
    ``pairs``' rows that straddle two folds, with columns ``fold a`` and ``fold b`` (1-based)
    added.
    """
    for col, df, name in (("id", folds, "folds"), ("fold", folds, "folds"),
                          ("image a", pairs, "pairs"), ("image b", pairs, "pairs")):
        if col not in df:
            raise ConfigError(f"{name} has no column {col!r}: expected {name} with columns "
                              + ("'id', 'fold'" if name == "folds" else "'image a', 'image b'"))
    where = dict(zip(folds["id"].astype(str), folds["fold"].astype(int)))
    fa = pairs["image a"].astype(str).map(where)
    fb = pairs["image b"].astype(str).map(where)
    keep = fa.notna() & fb.notna() & (fa >= 0) & (fb >= 0) & (fa != fb)
    out = pairs[keep].copy()
    out["fold a"], out["fold b"] = fa[keep].astype(int) + 1, fb[keep].astype(int) + 1
    return out.reset_index(drop=True)


def leaked_ids(folds: pd.DataFrame, pairs: pd.DataFrame) -> list[str]:
    """Ids of the test images whose near-duplicate is in another fold, i.e. among the training
    images of the model that tested them: both images of every straddling pair."""
    st = straddling_pairs(folds, pairs)
    return sorted(set(st["image a"].astype(str)) | set(st["image b"].astype(str)))


def fold_values(pred: pd.DataFrame, metric: str, exclude: Iterable[str] = ()) -> pd.Series:
    """Per-fold metric (``"seg_DC_mean"`` or ``"cls_AUC"``) from per-image predictions (columns
    ``fold``, ``id``, ``true_class`` and ``dice`` or ``prob_malignant``), leaving out the images
    in ``exclude``. With nothing excluded it equals the fold records' metric."""
    if metric not in METRICS:
        raise ConfigError(f"metric={metric!r}: expected one of {sorted(METRICS)}")
    kind, col, _ = METRICS[metric]
    if col not in pred:
        raise ConfigError(f"predictions have no column {col!r}, needed for {metric}")
    drop = set(map(str, exclude))
    kept = pred[~pred["id"].astype(str).isin(drop)]
    return kept.groupby("fold").apply(lambda d: stats.fold_metric(d, kind),
                                      include_groups=False).rename(metric)


def leak_effect(profile: str, experiments: Sequence[str], exclude: Iterable[str], *,
                results_dir=None) -> pd.DataFrame:
    """Each experiment's fold-mean Dice and AUC with all test images and without ``exclude``.

    One row per (experiment, metric) it has predictions for: ``folds``, ``images left out``
    (over all folds), ``all``, ``without``, ``change`` (without - all).
    """

    exclude = sorted(set(map(str, exclude)))
    rows = []
    for e in experiments:
        pred = load_predictions(profile, e, results_dir)
        if pred.empty:
            continue
        n_out = int(pred["id"].astype(str).isin(exclude).sum())
        for m, (_, col, label) in METRICS.items():
            if col not in pred:
                continue
            a, w = fold_values(pred, m), fold_values(pred, m, exclude)
            rows.append({"experiment": e, "metric": label, "folds": len(a),
                         "images left out": n_out, "all": float(a.mean()),
                         "without": float(w.mean()), "change": float(w.mean() - a.mean())})
    return pd.DataFrame(rows, columns=["experiment", "metric", "folds", "images left out", "all",
                                       "without", "change"])


def paired_leak_effect(profile: str, reference: str, variants: Sequence[str],
                       exclude: Iterable[str], *, results_dir=None) -> pd.DataFrame:
    """The paired difference (variant - reference, fold by fold, *t* interval over folds) and its
    verdict with all test images and without ``exclude``; ``verdict changed`` says whether
    leaving the leaked images out changes the verdict. Only folds both have are paired."""

    exclude = sorted(set(map(str, exclude)))
    ref = load_predictions(profile, reference, results_dir)
    tags = (("all", ()), ("without", exclude))
    ref_values = {(m, tag): fold_values(ref, m, ex) for m, (_, col, _) in METRICS.items()
                  if col in ref for tag, ex in tags}          # once, not once per variant
    rows = []
    for v in variants:
        var = load_predictions(profile, v, results_dir)
        if var.empty or ref.empty:
            continue
        for m, (_, col, label) in METRICS.items():
            if col not in var or col not in ref:
                continue
            out = {"variant": v, "metric": label}
            for tag, ex in tags:
                d = (fold_values(var, m, ex) - ref_values[m, tag]).dropna()
                mean, low, high = stats.t_interval(d.to_numpy())
                out.update({"folds": len(d), f"{tag}": mean, f"{tag} low": low,
                            f"{tag} high": high, f"{tag} verdict": stats.verdict(low, high)})
            out["verdict changed"] = out["all verdict"] != out["without verdict"]
            rows.append(out)
    return pd.DataFrame(rows)


def leak_sentence(pairs: pd.DataFrame, ids: Sequence[str], effect: pd.DataFrame,
                  paired: pd.DataFrame) -> str:
    """One paragraph: how many pairs straddle, how many test images that is, the largest change
    of a fold-mean metric and how many verdicts change."""
    if pairs.empty:
        return "No near-duplicate pair found on this view straddles two folds."
    big = effect.loc[effect["change"].abs().idxmax()] if not effect.empty else None
    s = (f"{len(pairs)} near-duplicate pair(s) straddle two folds, so {len(ids)} test images had "
         "a near-copy among their model's training images.")
    if big is not None:
        s += (f" Leaving them out changes a fold-mean metric by at most "
              f"{big['change']:+.3f} ({big['metric']} of {big['experiment']}).")
    if not paired.empty:
        n = int(paired["verdict changed"].sum())
        s += (f" {n} of {len(paired)} paired verdicts change" if n else
              f" None of the {len(paired)} paired verdicts changes") + "."
        if n:
            s += " Changed: " + "; ".join(
                f"{r['variant']} {r['metric']}, {r['all verdict']} -> {r['without verdict']}"
                for _, r in paired[paired["verdict changed"]].iterrows()) + "."
    return s


def grouped_split_leak(cfg: dict, data_dir=None, results_dir=None):
    """The near-duplicate pairs that the screen finds on the images *without enhancement* (at the
    grouping view's size) and that ``cfg``'s grouped split leaves in two folds.

    Returns ``(data, straddling pairs, leaked ids)`` (``data``: those images, for figures), or
    ``None`` when the split file of ``cfg`` has not been made yet (nothing is made here).
    """

    if cfg["split"] != "grouped":
        raise ConfigError(f"split={cfg['split']!r}: expected a configuration with split='grouped'")
    path = config_splits_path(cfg, results_dir)
    if not path.is_file():
        return None
    folds = pd.read_csv(path, dtype={"id": str, "class": str})
    data = load_busi(data_dir, image_size=GROUPING_VIEW["image_size"], classes=cfg["classes"],
                     max_per_class=cfg["max_per_class"], enhancement="none",
                     resize=GROUPING_VIEW["resize"])
    pairs = straddling_pairs(folds, near_duplicates(data))
    return data, pairs, leaked_ids(folds, pairs)
