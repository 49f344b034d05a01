"""External validation on BUS-BRA (Gomez-Flores et al., Medical Physics 2024).

BUS-BRA is never used to train or tune anything: a model trained on BUSI is applied unchanged,
with the same enhancement and resizing, and its predictions are stored beside the fold record.
The folder is found from an explicit path, ``$BUSBRA_DATA``, the project's ``data/BUS-BRA``, or
``../shared/data/BUS-BRA`` next to the project.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.config import setting
from busi_lib.data.busbra import load_busbra, locate_busbra
from busi_lib.errors import DataError
from busi_lib.eval.inference import binarize, network_outputs
from busi_lib.eval.metrics import (fast_auc, group_resamples, grouped_bootstrap_auc,
                                   per_image_segmentation)
from busi_lib.eval.shape import predicted_descriptors
from busi_lib.nn.build import load_saved_model


def evaluate_external(model, cfg: dict, path=None) -> pd.DataFrame | None:
    """Per-image BUS-BRA predictions of ``model``: id, case, pathology, BI-RADS, device,
    probability, Dice, and the shape descriptors of the predicted mask (``pred_*``)."""

    loaded = load_busbra(path, image_size=cfg["image_size"], enhancement=cfg["enhancement"],
                         resize=setting(cfg, "resize"))
    if loaded is None:
        return None
    images, masks, meta = loaded
    pred = network_outputs(model, cfg, images)
    out = pd.DataFrame({"id": meta["ID"], "case": meta["Case"], "pathology": meta["Pathology"],
                        "birads": meta["BIRADS"], "device": meta["Device"]})
    if "label" in pred:
        mal = list(cfg["classes"]).index("malignant")
        out["prob_malignant"] = pred["label"][:, mal]
    if "mask" in pred:

        pm = binarize(cfg, pred["mask"])
        out["dice"] = per_image_segmentation(masks, pm)["DC"]
        desc = predicted_descriptors(pm, meta[["Height", "Width"]].to_numpy(),
                                     setting(cfg, "resize"))
        for c in desc.columns:
            out[f"pred_{c}"] = desc[c].to_numpy()
    return out


def evaluate_ensemble(profile: str, experiment: str, results_dir=None, path=None,
                      write: bool = True) -> pd.DataFrame | None:
    """BUS-BRA predictions of the fold models of an experiment used as one ensemble.

    The malignancy probability and the mask probability are the means over the fold models
    (``results/<profile>/<experiment>/models/fold<k>.keras``, which stay on the machine that
    trained them); the mean mask is then thresholded and post-processed as the configuration
    says. Written to ``ensemble_external.csv`` beside the fold records (with ``write``).

    Returns ``None`` when BUS-BRA or the fold models cannot be found.
    """
    import json


    folder = records.experiment_dir(profile, experiment, results_dir)
    recs = records.load_records(profile, experiment, results_dir)
    models = [folder / "models" / f"fold{r['fold']}.keras" for r in recs]
    if not recs or not all(m.is_file() for m in models):
        return None
    cfg = recs[0]["config"]
    if any(r["config_hash"] != recs[0]["config_hash"] for r in recs):
        raise DataError(f"the fold records of {experiment} have different configurations")
    loaded = load_busbra(path, image_size=cfg["image_size"], enhancement=cfg["enhancement"],
                         resize=setting(cfg, "resize"))
    if loaded is None:
        return None
    images, masks, meta = loaded
    probs, mask_probs = [], []
    for m in models:
        model = load_saved_model(m)
        pred = network_outputs(model, cfg, images)
        if "label" in pred:
            probs.append(pred["label"][:, list(cfg["classes"]).index("malignant")])
        if "mask" in pred:
            mask_probs.append(pred["mask"])
    out = pd.DataFrame({"id": meta["ID"], "case": meta["Case"], "pathology": meta["Pathology"],
                        "birads": meta["BIRADS"], "device": meta["Device"]})
    if probs:
        out["prob_malignant"] = np.mean(probs, axis=0)
        out["prob_sd_folds"] = np.std(probs, axis=0)
    if mask_probs:
        pm = binarize(cfg, np.mean(mask_probs, axis=0))
        out["dice"] = per_image_segmentation(masks, pm)["DC"]
        desc = predicted_descriptors(pm, meta[["Height", "Width"]].to_numpy(),
                                     setting(cfg, "resize"))
        for c in desc.columns:
            out[f"pred_{c}"] = desc[c].to_numpy()
    if write:
        records.write_csv(folder / "ensemble_external.csv", out)
        records.write_json(folder / "ensemble_external.json", {
            "experiment": experiment, "profile": profile, "folds": [r["fold"] for r in recs],
            "config_hash": recs[0]["config_hash"], "git_commit": records.git_commit(),
            "models_sha256": {m.name: hashlib.sha256(m.read_bytes()).hexdigest() for m in models},
            "n_images": int(len(out)), "note": json.dumps(
                "mean of the fold models' probabilities and mask probabilities")})
    return out


def radiologist_scores(path=None) -> pd.DataFrame | None:
    """BUS-BRA's own BI-RADS category of each image as a malignancy score (the radiologists'
    reading, a reference for the model's AUC): ``id``, ``case``, ``pathology``, ``birads``."""
    root = locate_busbra(path)
    if root is None:
        return None
    meta = pd.read_csv(root / "bus_data.csv")
    return pd.DataFrame({"id": meta["ID"], "case": meta["Case"], "pathology": meta["Pathology"],
                         "birads": meta["BIRADS"], "device": meta["Device"]})


def ensemble_table(ens: pd.DataFrame | None, radiologists: pd.DataFrame | None = None,
                   n_boot: int = 1000, seed: int = 0,
                   label: str = "model: the fold models as one ensemble") -> pd.DataFrame:
    """The fold ensemble on BUS-BRA beside the radiologists' own BI-RADS reading.

    One row per reader: AUC with its 95% interval from a patient-grouped bootstrap (both
    breasts of a patient resampled together), mean Dice of the ensemble's masks, images,
    patients. ``ens`` is :func:`evaluate_ensemble`'s table; ``radiologists`` is
    :func:`radiologist_scores` (BI-RADS 2-5 read as an ordinal malignancy score); ``label``
    names the model's row. With ``ens=None`` (no predictions recorded yet) the table holds the
    radiologists' row only.
    """

    rows = []
    if ens is not None:
        y = (ens["pathology"] == "malignant").astype(int).to_numpy()
        auc, lo, hi = grouped_bootstrap_auc(y, ens["prob_malignant"], ens["case"], n_boot, seed)
        rows.append({"reader": label, "images": len(ens),
                     "patients": ens["case"].nunique(), "AUC": auc, "AUC 95% CI low": lo,
                     "AUC 95% CI high": hi,
                     "Dice mean": float(ens["dice"].mean()) if "dice" in ens else np.nan})
    if radiologists is not None:
        r = radiologists
        yr = (r["pathology"] == "malignant").astype(int).to_numpy()
        auc, lo, hi = grouped_bootstrap_auc(yr, r["birads"].astype(float), r["case"], n_boot,
                                            seed)
        rows.append({"reader": "radiologists: BI-RADS category as a score", "images": len(r),
                     "patients": r["case"].nunique(), "AUC": auc, "AUC 95% CI low": lo,
                     "AUC 95% CI high": hi, "Dice mean": np.nan})
    cols = ["reader", "images", "patients", "AUC", "AUC 95% CI low", "AUC 95% CI high",
            "Dice mean"]
    return pd.DataFrame(rows, columns=cols).set_index("reader")


def device_table(ens: pd.DataFrame, min_images: int = 20) -> pd.DataFrame:
    """The ensemble per scanner (``device``): images, malignant share, AUC, mean Dice; scanners
    with fewer than ``min_images`` images or one class only are pooled as ``other``."""

    counts = ens["device"].value_counts()
    dev = ens["device"].where(ens["device"].map(counts) >= min_images, "other")
    rows = []
    for name, g in ens.groupby(dev):
        y = (g["pathology"] == "malignant").astype(int)
        rows.append({"device": name, "images": len(g), "malignant": float(y.mean()),
                     "AUC": fast_auc(y, g["prob_malignant"]) if 0 < y.sum() < len(y) else np.nan,
                     "Dice mean": float(g["dice"].mean()) if "dice" in g else np.nan})
    return pd.DataFrame(rows).set_index("device").sort_values("images", ascending=False)


def probability_by_birads(ens: pd.DataFrame) -> pd.DataFrame:
    """The ensemble's malignancy probability per BI-RADS category of the radiologists and per
    pathology: count and median."""
    t = (ens.groupby(["birads", "pathology"])["prob_malignant"]
         .agg(images="size", median="median").unstack("pathology"))
    return t.astype({c: "Int64" for c in t.columns if c[0] == "images"})


def load_ensemble(profile: str, experiment: str, results_dir=None,
                  folds=None) -> tuple[pd.DataFrame | None, str]:
    """The fold ensemble's BUS-BRA table of an experiment, and where it comes from.

    ``ensemble_external.csv`` (written by :func:`evaluate_ensemble`: the fold models' mean
    probability and mean mask) when it exists; else the mean over the recorded folds (only
    ``folds`` when given) of each image's per-fold probability and Dice
    (``fold<k>_external.csv``), which needs no model file; else ``None``. The text says which.
    """

    path = records.experiment_dir(profile, experiment, results_dir) / "ensemble_external.csv"
    if path.is_file():
        import json

        meta = path.with_suffix(".json")
        n = len(json.loads(meta.read_text()).get("folds", [])) if meta.is_file() else 0
        return pd.read_csv(path), (f"{experiment}: the {f'{n} ' if n else ''}fold models' "
                                   "mean probability and mean mask (ensemble_external.csv)")
    ext = records.load_predictions(profile, experiment, results_dir, kind="external")
    if not ext.empty and folds is not None:
        ext = ext[ext["fold"].isin(list(folds))]
    if ext.empty or "prob_malignant" not in ext:
        return None, f"{experiment}: no BUS-BRA predictions recorded"
    agg = {c: "first" for c in ("case", "pathology", "birads", "device") if c in ext}
    agg.update({c: "mean" for c in ext.columns
                if c in ("prob_malignant", "dice") or c.startswith("pred_")})
    ens = ext.groupby("id", sort=True).agg(agg).reset_index()
    n = ext["fold"].nunique()
    return ens, (f"{experiment}: mean over {n} fold model{'s' if n != 1 else ''} of each "
                 "image's probability, Dice and mask-shape descriptors (per-fold predictions; "
                 "the ensemble's own masks are not recorded yet)")


def paired_external(a: pd.DataFrame, b: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                    alpha: float = 0.05) -> dict:
    """Model ``b`` minus model ``a`` on the same BUS-BRA images: AUC and mean Dice.

    ``a`` and ``b`` are ensemble tables (:func:`load_ensemble`); they are matched on ``id``
    and must hold the same images. The interval is a percentile bootstrap that resamples
    patients (``case``) and recomputes both models on each resample, so it keeps the pairing.

    Returns ``{"images", "patients", "auc_a", "auc_b", "d_auc", "d_auc_low", "d_auc_high",
    "dice_a", "dice_b", "d_dice", "d_dice_low", "d_dice_high"}`` (Dice keys NaN without
    ``dice`` columns).

    Raises
    ------
    ValueError
        When the two tables do not hold the same images.
    """

    ia, ib = set(a["id"]), set(b["id"])
    if ia != ib:
        raise ValueError(f"the two ensembles hold different images ({len(ia - ib)} only in the "
                         f"first, {len(ib - ia)} only in the second): expected the same BUS-BRA set")
    m = a.merge(b[["id", "prob_malignant"] + (["dice"] if "dice" in b else [])], on="id",
                suffixes=("_a", "_b"))
    y = (m["pathology"] == "malignant").to_numpy(int)
    pa, pb = m["prob_malignant_a"].to_numpy(float), m["prob_malignant_b"].to_numpy(float)
    has_dice = "dice_a" in m and "dice_b" in m
    da = m["dice_a"].to_numpy(float) if has_dice else None
    db = m["dice_b"].to_numpy(float) if has_dice else None
    d_auc, d_dice = [], []
    for idx in group_resamples(m["case"].to_numpy(), n_boot, seed):
        if 0 < y[idx].sum() < len(idx):
            d_auc.append(fast_auc(y[idx], pb[idx]) - fast_auc(y[idx], pa[idx]))
        if has_dice:
            d_dice.append(np.nanmean(db[idx]) - np.nanmean(da[idx]))
    q = [alpha / 2, 1 - alpha / 2]
    lo, hi = np.quantile(d_auc, q) if d_auc else (np.nan, np.nan)
    dlo, dhi = np.quantile(d_dice, q) if d_dice else (np.nan, np.nan)
    auc_a, auc_b = fast_auc(y, pa), fast_auc(y, pb)
    dice_a = float(np.nanmean(da)) if has_dice else np.nan
    dice_b = float(np.nanmean(db)) if has_dice else np.nan
    return {"images": len(m), "patients": int(m["case"].nunique()), "auc_a": auc_a, "auc_b": auc_b,
            "d_auc": auc_b - auc_a, "d_auc_low": float(lo), "d_auc_high": float(hi),
            "dice_a": dice_a, "dice_b": dice_b, "d_dice": dice_b - dice_a,
            "d_dice_low": float(dlo), "d_dice_high": float(dhi)}
