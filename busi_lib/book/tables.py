"""Result tables in the paper's layouts: per fold, beside the paper, compared, ablations, aim.

Also one fold under several budgets, our training settings beside the paper's, the profiles,
and the audited relations checked on our own records.

Every number comes from result records (:mod:`busi_lib.book.runs`); the paper's numbers come only
from :mod:`busi_lib.analysis.paper` and are always labelled "paper".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.analysis import paper
from busi_lib.book.runs import DEFAULT_SEED, fold_record, predictions, results_dir_for
from busi_lib.book.view import markdown_table, metric_label, pct
from busi_lib.config import DEFAULTS, LIGHT, PROFILES, setting
from busi_lib.records import load_records

SEG_LAYOUT = ["JSI", "DC", "ACC", "REC", "PRE"]            # Table 1
CLS_LAYOUT = ["ACC", "PRE", "REC", "SPE", "F1", "AUC"]     # Table 2, 6, 7
SEG4_LAYOUT = ["ACC", "PRE", "REC", "JSI", "DC"]           # Table 4


def fold_table(records: list[dict], kind: str = "seg", convention: str = "mean") -> pd.DataFrame:
    """Our per-fold table in the paper's layout: rows 1..k, ``mean``, ``std``.

    kind : ``"seg"`` (Table 1: JSI DC ACC REC PRE, %), ``"cls"`` (Table 2: ACC PRE REC SPE F1
        in %, AUC as a fraction) or ``"seg4"`` (Table 4's column order).
    convention : ``"mean"`` (per-image mean) or ``"pooled"`` (pixel counts summed over the
        fold) for the segmentation metrics.
    """
    layout = {"seg": SEG_LAYOUT, "cls": CLS_LAYOUT, "seg4": SEG4_LAYOUT}[kind]
    rows = {}
    for r in records:
        m = r["metrics"]
        row = {}
        for c in layout:
            key = f"seg_{c}_{convention}" if kind in ("seg", "seg4") else f"cls_{c}"
            row[c] = pct(c, m[key]) if key in m else np.nan
        rows[r["fold"] + 1] = row
    df = pd.DataFrame.from_dict(rows, orient="index", columns=layout)
    if df.empty:
        return pd.DataFrame(columns=layout)
    df.index = pd.Index(list(df.index), name="fold", dtype=object)
    mean, std = df.mean(), df.std(ddof=1) if len(df) > 1 else df.mean() * np.nan
    df.loc["mean"] = mean
    df.loc["std"] = std
    return df


def side_by_side(ours: pd.DataFrame, theirs: pd.DataFrame, ours_label: str = "ours",
                 theirs_label: str = "paper") -> pd.DataFrame:
    """Columns ``(metric, ours)``, ``(metric, paper)`` for every metric of ``theirs``."""
    keys = list(dict.fromkeys([*map(_key, ours.index), *map(_key, theirs.index)]))
    nums = sorted((k for k in keys if k.isdigit()), key=int)
    idx = nums + [k for k in ("mean", "std") if k in keys] + \
        [k for k in keys if k not in nums and k not in ("mean", "std")]
    o = ours.copy()
    o.index = [_key(i) for i in o.index]
    t = theirs.copy()
    t.index = [_key(i) for i in t.index]
    cols = {}
    for c in theirs.columns:
        cols[(c, ours_label)] = o[c].reindex(idx) if c in o.columns else pd.Series(np.nan, idx)
        cols[(c, theirs_label)] = t[c].reindex(idx)
    out = pd.DataFrame(cols, index=pd.Index(idx, name=theirs.index.name or "row"))
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def _key(i):
    return str(i)


def compare_experiments(profile: str, experiments: Sequence[str], metrics: Sequence[str],
                        labels: dict[str, str] | None = None, *, records: dict | None = None,
                        seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Mean and std over folds of ``metrics`` (record keys) for each experiment.

    Returns one row per experiment with ``<metric>`` and ``<metric> sd`` in % (AUC fraction),
    plus the number of folds and epochs.
    """

    rows = []
    for e in experiments:
        recs = records[e] if records is not None and e in records else \
            load_records(profile, e, results_dir_for(seed))
        row = {"experiment": (labels or {}).get(e, e), "folds": len(recs),
               "epochs": recs[0]["config"]["epochs"] if recs else np.nan}
        for m in metrics:
            short = metric_label(m)
            vals = [pct(short, r["metrics"][m]) for r in recs if m in r["metrics"]]
            row[short] = float(np.mean(vals)) if vals else np.nan
            row[short + " sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("experiment")


def confusion(pred: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted class), all folds pooled."""
    cm = pd.crosstab(pd.Categorical(pred["true_class"], categories=list(classes)),
                     pd.Categorical(pred["pred_class"], categories=list(classes)),
                     dropna=False)
    cm.index.name, cm.columns.name = "true", "predicted"
    return cm


#: The ablations of profile ``cpu_v1`` (light protocol), as (experiment, reference, what changes);
#: the current ablations are :data:`busi_lib.config.ABLATIONS`.
ABLATIONS_V1 = [
    # (experiment, reference, what changes)
    ("seg_only", "random_light", "segmentation only (no classification head)"),
    ("cls_only", "random_light", "classification only (no decoder loss)"),
    ("cls_encoder", "random_light", "classifier on encoder output only (not stages 4-5-6)"),
    ("enh_none", "random_light", "no contrast enhancement (instead of GHE)"),
    ("enh_clahe", "random_light", "CLAHE (instead of GHE)"),
    ("ce_loss", "random_light", "cross-entropy (instead of weighted focal loss)"),
    ("plain_blocks", "random_light", "plain conv blocks (instead of residual units)"),
    ("grouped_light", "random_light", "duplicate-grouped folds (instead of random folds)"),
]


ABLATION_METRICS = ["seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_F1", "cls_AUC"]


def ablation_table(records: dict[str, list[dict]]) -> pd.DataFrame:
    """Each variant against its reference: mean over folds and the difference (points).

    A variant's columns are its mean over its recorded folds; ``Δ<metric>`` is the mean of the
    fold-by-fold differences ``variant_k - reference_k`` over the folds both have recorded
    (``Δ folds`` of them), so that a fold recorded for one and not yet for the other does not
    bias the difference. ``sd ΔDC`` and ``sd ΔAUC`` are the sample std of those differences:
    the spread to read a Δ against (NaN below two folds). For ``grouped_light`` fold k holds
    other images than the reference's fold k, so its Δ compares two splits, not paired folds.
    """
    rows = []
    for exp, ref, what in ABLATIONS_V1:
        a, b = records.get(exp, []), records.get(ref, [])
        by_a, by_b = {r["fold"]: r for r in a}, {r["fold"]: r for r in b}
        common = sorted(set(by_a) & set(by_b))
        row = {"variant": exp, "change": what, "folds": f"{len(a)}/{len(b)}",
               "Δ folds": len(common)}
        for m in ABLATION_METRICS:
            lab = metric_label(m)
            va = [pct(lab, r["metrics"][m]) for r in a if m in r["metrics"]]
            d = [pct(lab, by_a[k]["metrics"][m]) - pct(lab, by_b[k]["metrics"][m])
                 for k in common if m in by_a[k]["metrics"] and m in by_b[k]["metrics"]]
            row[lab] = float(np.mean(va)) if va else np.nan
            row[f"Δ{lab}"] = float(np.mean(d)) if d else np.nan
            if lab in ("DC", "AUC"):
                row[f"sd Δ{lab}"] = float(np.std(d, ddof=1)) if len(d) > 1 else np.nan
        rows.append(row)
    ref_rows = []
    for ref in sorted({r for _, r, _ in ABLATIONS_V1}):
        b = records.get(ref, [])
        row = {"variant": ref + " (reference)", "change": "multi-task, light protocol",
               "folds": str(len(b)), "Δ folds": 0}
        for m in ABLATION_METRICS:
            lab = metric_label(m)
            vb = [pct(lab, r["metrics"][m]) for r in b if m in r["metrics"]]
            row[lab] = float(np.mean(vb)) if vb else np.nan
            row[f"Δ{lab}"] = np.nan
            if lab in ("DC", "AUC"):
                row[f"sd Δ{lab}"] = np.nan
        ref_rows.append(row)
    return pd.DataFrame(ref_rows + rows, columns=list((ref_rows + rows)[0])).set_index("variant")


#: The book's aim for the main model on BUSI 5-fold CV (per-image mean Dice, AUC).
AIM = {"seg_DC_mean": 0.78, "cls_AUC": 0.92}


def aim_table(records: list[dict], aim: dict[str, float] | None = None) -> pd.DataFrame:
    """Mean and sample std over folds of each aimed metric, the aim, and the shortfall.

    ``shortfall`` is ``aim - mean`` (positive: the aim is missed by that much); ``met`` says
    whether the mean reaches the aim. Values are fractions, as in the records.
    """
    aim = AIM if aim is None else aim
    rows = {}
    for key, target in aim.items():
        vals = np.array([r["metrics"][key] for r in records if key in r["metrics"]], float)
        mean = float(vals.mean()) if len(vals) else np.nan
        rows[metric_label(key)] = {
            "folds": len(vals), "mean": mean,
            "sd": float(vals.std(ddof=1)) if len(vals) > 1 else np.nan,
            "aim": target, "shortfall": target - mean,
            "met": bool(mean >= target) if len(vals) else False}
    return pd.DataFrame(rows).T


def lr_schedule(cfg: dict) -> str:
    """The learning-rate schedule of a recorded configuration in words: the cosine schedule
    with its warm-up, or the step schedule with its factor and period."""
    if setting(cfg, "schedule") == "cosine":
        return f"{cfg['lr']:g}, cosine, {setting(cfg, 'warmup_epochs')} warm-up epochs"
    return f"{cfg['lr']:g}, /{1 / cfg['lr_drop_factor']:g} every {cfg['lr_drop_every']}"


def fold_evidence(runs: Sequence[tuple[str, str]], fold: int = 0,
                  metrics: Sequence[str] = ("seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_AUC"),
                  results_dir=None) -> pd.DataFrame:
    """One fold of several (profile, experiment) runs side by side, with what differs.

    Only records whose configuration hash matches today's configuration are used; a run
    without such a record for ``fold`` is left out. Metrics in % (AUC as a fraction).
    """
    rows = []
    for profile, exp in runs:
        r = fold_record(profile, exp, fold, results_dir)
        if r is None:
            continue
        c = r["config"]
        row = {"run": f"{profile} / {exp}", "image px": c["image_size"],
               "width": c["filters"][0], "epochs run": r["epochs_run"],
               "lr schedule": lr_schedule(c),
               "precision": r["precision"],
               "backend": r.get("versions", {}).get("keras_backend", "tensorflow"),
               "device": "GPU" if "gpu" in r.get("versions", {}).get("platform", "") else "CPU",
               "hours": r["wall_seconds"] / 3600}
        row.update({metric_label(m): pct(metric_label(m), r["metrics"][m]) for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def config_vs_paper(cfg: dict) -> pd.DataFrame:
    """Our configuration of an experiment beside the training settings the paper states."""
    if setting(cfg, "schedule") == "cosine":
        sched = f"linear warm-up {cfg.get('warmup_epochs', 0)} epochs, then cosine decay to 0"
    else:
        sched = f"x{cfg['lr_drop_factor']:g} every {cfg['lr_drop_every']} epochs"
    aug = "none"
    if cfg["augment"]:
        aug = f"horizontal flip, vertical flip, rotation {cfg['rotation']:g} degrees"
        if setting(cfg, "aug_scale"):
            aug += f", zoom +-{cfg['aug_scale']:.0%}"
        if cfg.get("aug_intensity"):
            aug += ", brightness / contrast / gamma"
        if cfg.get("aug_noise"):
            aug += ", blur or speckle"
    infer = [f"mask threshold {cfg.get('mask_threshold', 0.5):g}"]
    if cfg.get("tta"):
        infer.append("flip test-time augmentation")
    if setting(cfg, "postprocess") != "none":
        infer.append("largest component, holes filled")
    ours = {"optimizer": "AdamW" if setting(cfg, "weight_decay") else "Adam",
            "lr": f"{cfg['lr']:g}",
            "lr_schedule": sched,
            "batch_size": str(cfg["batch_size"]),
            "epochs": str(cfg["epochs"]) + (f" (early stopping, patience {cfg['early_stopping']})"
                                            if cfg["early_stopping"] else ""),
            "folds": str(cfg["n_folds"]) + f" ({cfg['split']})",
            "augmentation": aug,
            "enhancement": cfg["enhancement"],
            "input_size": f"{cfg['image_size']} x {cfg['image_size']} ("
                          + ("padded to a square" if cfg.get("resize") == "pad" else "stretched")
                          + (", per-image z-score" if cfg.get("normalize") == "zscore" else "")
                          + ")",
            "filters": f"{cfg['filters']}, bridge {cfg['bridge_filters']}",
            "segmentation loss": "Dice + binary cross-entropy" if cfg.get("seg_loss") == "dice_bce"
                                 else "Dice",
            "classifier": "pooled stages 4-5-6" + (" + a look at the predicted lesion's crop"
                                                    if cfg.get("cls_head") == "gap_crop" else ""),
            "inference": ", ".join(infer)}
    theirs = {**paper.TRAINING, "segmentation loss": "Dice", "classifier": "pooled stages 4-5-6",
              "inference": "not given"}
    return pd.DataFrame({"paper": pd.Series(theirs).astype(str), "ours": pd.Series(ours)})


def profiles_table() -> pd.DataFrame:
    """The settings that differ between profiles (from :mod:`busi_lib.config`)."""

    keys = ["image_size", "filters", "bridge_filters", "dense_units", "max_per_class", "n_folds",
            "epochs", "batch_size", "lr", "early_stopping", "precision"]
    rows = {}
    for name, prof in PROFILES.items():
        cfg = {**DEFAULTS, **prof}
        row = {k: str(cfg[k]) for k in keys}
        row["light experiments"] = ", ".join(f"{k} {v}" for k, v in LIGHT.get(name, {}).items()
                                             if cfg.get(k) != v) or "same"
        rows[name] = row
    df = pd.DataFrame(rows).T
    df.index.name = "profile"
    return df


def profiles_markdown() -> str:
    """:func:`profiles_table` as a Markdown table (written into the book by ``busi_lib.book.build``)."""
    t = profiles_table()
    cols = ["profile"] + list(t.columns)
    head = [f"`{c}`" if c != "profile" else c for c in cols]
    body = [[f"**{name}**"] + [str(v) for v in row] for name, row in t.iterrows()]
    return ("<!-- generated by busi_lib.book.build from busi_lib.config; do not edit -->\n\n"
            + markdown_table(head, body))


def our_audit(profile: str, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The audited relations checked on our own records of ``multitask`` (what must hold)."""

    recs = load_records(profile, "multitask", results_dir_for(seed))
    rows = []
    if not recs:
        return pd.DataFrame(columns=["check", "ours", "holds"])
    m = [r["metrics"] for r in recs]
    ok_mean = all(x["seg_DC_mean"] >= x["seg_JSI_mean"] - 1e-12 for x in m)
    rows.append({"check": "per-image mean DC >= mean JSI in every fold",
                 "ours": "; ".join(f"fold {r['fold'] + 1}: JSI {100 * r['metrics']['seg_JSI_mean']:.2f}, "
                                   f"DC {100 * r['metrics']['seg_DC_mean']:.2f}" for r in recs),
                 "holds": ok_mean})
    err = max(abs(x["seg_DC_pooled"] - 2 * x["seg_JSI_pooled"] / (1 + x["seg_JSI_pooled"]))
              for x in m)
    rows.append({"check": "pooled DC = 2 JSI / (1 + JSI) in every fold",
                 "ours": "equal to 1e-9" if err < 1e-9 else f"largest difference {100 * err:.3g} points",
                 "holds": err < 1e-9})
    pred = predictions(profile, "multitask", seed=seed, records=recs)
    if not pred.empty:
        y = (pred["true_class"] == "malignant").to_numpy()
        yp = (pred["pred_class"] == "malignant").to_numpy()
        tp, fn = int((y & yp).sum()), int((y & ~yp).sum())
        tn, fp = int((~y & ~yp).sum()), int((~y & yp).sum())
        rec = tp / (tp + fn) if tp + fn else np.nan
        spe = tn / (tn + fp) if tn + fp else np.nan
        imp = paper.implied_classification(100 * rec, 100 * spe, tp + fn, tn + fp)
        acc = (tp + tn) / len(y)
        pre = tp / (tp + fp) if tp + fp else np.nan
        rows.append({"check": "ACC and PRE follow from REC, SPE and the class counts (pooled)",
                     "ours": f"TP {tp}, FN {fn}, TN {tn}, FP {fp}: ACC {100 * acc:.2f} (implied "
                             f"{imp['ACC']:.2f}), PRE {100 * pre:.2f} (implied {imp['PRE']:.2f})",
                     "holds": bool(abs(100 * acc - imp["ACC"]) < 1e-6 and
                                   (np.isnan(pre) or abs(100 * pre - imp["PRE"]) < 1e-6))})
        rows.append({"check": "per-fold REC and SPE are k/n of the fold's class counts",
                     "ours": "; ".join(
                         f"fold {r['fold'] + 1}: REC {100 * r['metrics']['cls_REC']:.2f} "
                         f"(k/{int((pred[pred.fold == r['fold']].true_class == 'malignant').sum())}), "
                         f"SPE {100 * r['metrics']['cls_SPE']:.2f} "
                         f"(k/{int((pred[pred.fold == r['fold']].true_class != 'malignant').sum())})"
                         for r in recs),
                     "holds": all(
                         paper.achievable(100 * r["metrics"]["cls_REC"],
                                          int((pred[pred.fold == r["fold"]].true_class == "malignant").sum()))
                         and paper.achievable(100 * r["metrics"]["cls_SPE"],
                                              int((pred[pred.fold == r["fold"]].true_class != "malignant").sum()))
                         for r in recs)})
    f1_ok = all(abs(x["cls_F1"] - (2 * x["cls_PRE"] * x["cls_REC"] / (x["cls_PRE"] + x["cls_REC"])
                                   if x["cls_PRE"] + x["cls_REC"] else 0.0)) < 1e-9 for x in m)
    rows.append({"check": "F1 = harmonic mean of PRE and REC in every fold",
                 "ours": "; ".join(f"fold {r['fold'] + 1}: F1 {100 * r['metrics']['cls_F1']:.2f}"
                                   for r in recs), "holds": f1_ok})
    return pd.DataFrame(rows).set_index("check")
