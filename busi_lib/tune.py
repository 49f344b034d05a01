"""Choosing the recipe on an inner validation split: never a test fold, never BUS-BRA.

A *trial* trains one configuration on the inner-training part of the training images of one
outer fold (:data:`TUNE_FOLD` of the duplicate-grouped split) and measures, after every epoch,
validation Dice and AUC on the inner-validation part. The outer test fold is removed before
anything else happens (:func:`development_set`), and BUS-BRA is never loaded here, so no number
that a choice is made from has seen either (``tests/test_tune.py`` checks both).

    python -m busi_lib.tune --list                     # the trials and what is recorded
    python -m busi_lib.tune --trial cos_lr1e-3         # run (or resume) trials
    python -m busi_lib.tune --stage 1 --hours 1        # run a stage, start none after 1 hour
    python -m busi_lib.tune --lr-range                 # learning-rate range test

Each trial writes ``results/<profile>/tuning/<trial>.json``: its configuration and hash, the
overrides it tests, the validation metrics of every epoch, the wall and CPU seconds, the machine
(CPU model, bf16), the inner split's sizes, and, at the end, the inference choices (flip TTA,
largest component + hole filling, mask threshold) and the occlusion AUCs (lesion hidden, lesion
alone; :mod:`busi_lib.reliance`) measured on the same validation images.

Selection rule (fixed before the trials ran): a trial's *score* is the mean over its last
:data:`SCORE_EPOCHS` epochs of validation Dice plus validation AUC; a change is kept when it
raises the score of the stage's reference by more than :data:`MIN_GAIN`, otherwise the simpler
(paper's) choice stays.

Stage 4 (robustness; rule fixed before its trials ran): each trial also records validation Dice
and AUC on the validation images perturbed as scanners differ (:mod:`busi_lib.shift`); a change
is kept when it raises the mean of Dice + AUC over the perturbations (the *shift score*) by more
than :data:`MIN_GAIN` and lowers the clean score by no more than :data:`MIN_GAIN`
(:func:`robust_select`). BUS-BRA is not looked at to make this choice either.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import fit, records
from .config import config_hash, make_config
from .errors import ConfigError

TUNE_FOLD = 0
BASE_EXPERIMENT = "multitask_grouped"
N_INNER = 5          # the inner validation part is 1/5 of the outer training images
SCORE_EPOCHS = 3
MIN_GAIN = 0.02
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)

#: The old cpu profile's network (width 16, 128 px): every trial starts from it, so that the
#: trials do not change when the cpu profile becomes the chosen recipe.
NETWORK = {"image_size": 128, "filters": [16, 32, 64, 128], "bridge_filters": 256}
#: The rest of the old cpu profile that stages 1 and 2 started from (the keys the recipe later
#: changed, and ``external``, which a trial never uses but the configuration hash counts).
#: Without it a stage-1/2 trial run after the recipe became the profile would silently start
#: from the recipe instead (the first px160 record did; it is kept under ``superseded/``).
BEFORE_RECIPE = {"enhancement": "ghe", "seg_loss": "dice", "cls_head": "gap", "batch_size": 16,
                 "warmup_epochs": 0,
                 "external": False}
#: Stage 2's reference: the best schedule of stage 1 (filled in from the stage-1 records).
R1 = {"lr": 1e-3, "schedule": "cosine", "warmup_epochs": 2, "epochs": 30}
STRONG_AUG = {"aug_scale": 0.15, "aug_intensity": True, "aug_noise": True}
#: Stage 3: R1 with the changes that stage 2 kept.
COMBO = {**R1, "seg_loss": "dice_bce", "enhancement": "none", "cls_head": "gap_crop",
         "batch_size": 8}

#: name -> (stage, overrides on top of NETWORK). Stage 1: optimisation; stage 2: one change at
#: a time against stage 1's best; stage 3: the combination and its length.
TRIALS: dict[str, tuple[int, dict]] = {
    "paper_e30": (1, {"lr": 1e-4, "schedule": "step", "lr_drop_every": 20, "lr_drop_factor": 0.1,
                      "epochs": 30}),
    "step_lr1e-3": (1, {"lr": 1e-3, "schedule": "step", "lr_drop_every": 10,
                        "lr_drop_factor": 0.3, "epochs": 30}),
    "cos_lr1e-3": (1, dict(R1)),
    "cos_lr3e-3": (1, {**R1, "lr": 3e-3}),
    "dice_bce": (2, {**R1, "seg_loss": "dice_bce"}),
    "enh_none": (2, {**R1, "enhancement": "none"}),
    "pad": (2, {**R1, "resize": "pad"}),
    "aug_strong": (2, {**R1, **STRONG_AUG}),
    "zscore": (2, {**R1, "normalize": "zscore"}),
    "crop_head": (2, {**R1, "cls_head": "gap_crop"}),
    "cls_w2": (2, {**R1, "loss_weights": [1.0, 2.0]}),
    "batch8": (2, {**R1, "batch_size": 8}),
    "width32": (2, {**R1, "filters": [32, 64, 128, 256], "bridge_filters": 512}),
    "px160": (2, {**R1, "image_size": 160}),
    # stage 3: the changes that stage 2 kept (each beat R1 by more than MIN_GAIN: dice_bce
    # +0.022, enh_none +0.060, crop_head +0.051, batch8 +0.023; pad, aug_strong, zscore and
    # cls_w2 did not), together, for 30 epochs and for 40 (the most the compute budget allows: 15 folds of
    # 40 epochs at about 70 s an epoch on the 2-core AVX2 machine are about 12 hours)
    "combo_e30": (3, dict(COMBO)),
    "combo_e40": (3, {**COMBO, "epochs": 40}),
    # run after the recipe was fixed: the chosen combination at 160 px (capacity check)
    "combo_px160": (3, {**COMBO, "image_size": 160}),
    # stage 4, robustness to another scanner, judged on the validation images perturbed as
    # scanners differ (busi_lib.shift): the recipe itself again (its shift metrics), with the
    # strong augmentation, and padded to a square instead of squashed (the frame's geometry)
    "robust_ref": (4, dict(COMBO)),
    "robust_aug": (4, {**COMBO, **STRONG_AUG}),
    "robust_pad": (4, {**COMBO, "resize": "pad"}),
    # added after robust_aug's record (shift score +0.078, clean -0.053: not kept; its training
    # loss stayed above robust_ref's, so it may be under-trained): the same with 40 epochs
    "robust_aug_e40": (4, {**COMBO, **STRONG_AUG, "epochs": 40}),
    # added after robust_grouped was trained (a later session): does more compute still pay for
    # the kept configuration? Judged against robust_aug_e40 on the same validation images
    # (ROBUST_FOLLOW_UP), not a candidate of the rule above
    "robust_aug_e60": (4, {**COMBO, **STRONG_AUG, "epochs": 60}),
    # stage 5, the learning curve (run after the recipe was fixed): the recipe on a nested,
    # class-stratified, duplicate-grouped share of the inner-training images
    # (splits.nested_share), for about as many optimiser steps as the full recipe (epochs and
    # warm-up scaled by 1 / share): how much does more data still buy? Its full-data point is
    # combo_e30 (DATA_REFERENCE)
    "data25": (5, {**COMBO, "epochs": 120, "warmup_epochs": 8, "train_fraction": 0.25}),
    "data50": (5, {**COMBO, "epochs": 60, "warmup_epochs": 4, "train_fraction": 0.5}),
    "data75": (5, {**COMBO, "epochs": 40, "warmup_epochs": 3, "train_fraction": 0.75}),
    # ... and the noise these scores carry: the recipe retrained with two other training seeds
    # (weights, order, augmentation; the same images and validation split)
    "recipe_s1": (5, {**COMBO, "train_seed": 1}),
    "recipe_s2": (5, {**COMBO, "train_seed": 2}),
}
#: Stage 5's trials and their full-data point (see :func:`learning_curve_table`).
DATA_TRIALS = ("data25", "data50", "data75")
DATA_REFERENCE = "combo_e30"
#: The recipe retrained with other training seeds: the spread of a trial's score (seed_spread).
SEED_TRIALS = ("recipe_s1", "recipe_s2")
#: A stage-4 follow-up and the trial it is compared with (see :func:`robust_follow_up`).
ROBUST_FOLLOW_UP = {"robust_aug_e60": "robust_aug_e40"}
#: Stage 4's reference and candidates (see :func:`robust_select`).
ROBUST_REFERENCE = "robust_ref"
ROBUST_CANDIDATES = ("robust_aug", "robust_pad", "robust_aug_e40")
#: The trial whose configuration became the cpu profile's recipe (see ``busi_lib.config.RECIPE``)
FINAL_TRIAL = "combo_e30"


# ----------------------------------------------------------------------------- the split
def development_set(data, folds: pd.DataFrame, fold: int = TUNE_FOLD):
    """The images outside test fold ``fold`` (its training part), as a new ``BusiData``, with
    their rows of ``folds``. The test fold's images are not in what is returned."""
    col = folds["fold"].to_numpy()
    keep = np.nonzero((col != fold) & (col >= 0))[0]
    return data.subset(keep), folds.iloc[keep].reset_index(drop=True)


def inner_split(dev_folds: pd.DataFrame, labels: np.ndarray, seed: int, n_inner: int = N_INNER
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` indices into the development set: stratified by class and grouped by
    duplicate group (a group never straddles inner-train and validation); one of ``n_inner``
    parts is the validation set."""
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=n_inner, shuffle=True, random_state=seed + 1)
    tr, va = next(splitter.split(np.zeros(len(labels)), labels, dev_folds["group"].to_numpy()))
    return np.sort(tr), np.sort(va)


# ----------------------------------------------------------------------------- a trial
def trial_config(name: str, profile: str = "cpu", **extra) -> dict:
    """The full configuration of trial ``name`` (see :data:`TRIALS`); a stage-5 trial's share
    of the images is not a configuration key (see :func:`trial_fraction`)."""
    if name not in TRIALS:
        raise ConfigError(f"trial={name!r}: expected one of {sorted(TRIALS)}")
    stage, ov = TRIALS[name]
    ov = {k: v for k, v in ov.items() if k != "train_fraction"}
    base = {**NETWORK, **(BEFORE_RECIPE if stage < 3 else {})}
    return make_config(profile, BASE_EXPERIMENT, **{**base, **ov, **extra})


def trial_fraction(name: str) -> float:
    """The share of the inner-training images trial ``name`` trains on (1 but in stage 5)."""
    if name not in TRIALS:
        raise ConfigError(f"trial={name!r}: expected one of {sorted(TRIALS)}")
    return float(TRIALS[name][1].get("train_fraction", 1.0))


def trial_hash(name: str, profile: str = "cpu", **extra) -> str:
    """The hash a trial's record carries: its configuration's, with the share of the images
    counted when it is below 1 (so the full-data trials keep their hashes)."""
    cfg, frac = trial_config(name, profile, **extra), trial_fraction(name)
    return config_hash(cfg if frac == 1 else {**cfg, "train_fraction": frac})


def tuning_dir(profile: str = "cpu", results_dir=None) -> Path:
    return records.results_root(results_dir) / profile / "tuning"


def _val_metrics(model, cfg, val, class_names) -> dict:
    pred = fit.predict_arrays(model, {**cfg, "tta": False}, val.images)
    metrics, _, _ = fit.evaluate_outputs({**cfg, "tta": False, "mask_threshold": 0.5,
                                          "postprocess": "none"}, pred, val.masks, val.labels,
                                         class_names)
    return {"val_dice": metrics.get("seg_DC_mean", float("nan")),
            "val_auc": metrics.get("cls_AUC", float("nan"))}


def inference_choices(model, cfg: dict, val, class_names) -> pd.DataFrame:
    """Validation Dice (and AUC) for each inference choice: flip TTA off/on, post-processing
    none / largest component + holes filled, and mask thresholds :data:`THRESHOLDS`."""
    rows = []
    for tta in (False, True):
        pred = fit.predict_arrays(model, {**cfg, "tta": tta}, val.images)
        auc = None
        for post in ("none", "largest_fill"):
            for thr in THRESHOLDS:
                c = {**cfg, "tta": tta, "postprocess": post, "mask_threshold": thr}
                m, _, _ = fit.evaluate_outputs(c, pred, val.masks, val.labels, class_names)
                auc = m.get("cls_AUC", auc)
                rows.append({"tta": tta, "postprocess": post, "mask_threshold": thr,
                             "val_dice": m.get("seg_DC_mean"), "val_auc": auc})
    return pd.DataFrame(rows)


def run_trial(name: str, profile: str = "cpu", *, data_dir=None, results_dir=None,
              verbose: int = 1, stop_after_epochs: int | None = None, **extra) -> dict | None:
    """Run (or resume, or skip when recorded) trial ``name``; returns its record.

    ``extra`` overrides configuration values (tests use it to shrink a trial).
    """
    from .train import prepare

    cfg = trial_config(name, profile, **extra)
    chash = trial_hash(name, profile, **extra)
    out = tuning_dir(profile, results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    if path.is_file():
        rec = json.loads(path.read_text())
        if rec["config_hash"] == chash:
            if verbose:
                print(f"[tune] {name}: recorded, skipped")
            return rec
        raise ConfigError(f"{path} was recorded with config_hash {rec['config_hash']}, not "
                          f"{chash}: the trial changed; rename it or move the old record")
    data, folds = prepare(cfg, data_dir, results_dir=results_dir)
    dev, dev_folds = development_set(data, folds, TUNE_FOLD)
    del data                                   # from here on, only the development set exists
    tr, va = inner_split(dev_folds, dev.labels, cfg["seed"])
    fraction = trial_fraction(name)
    if fraction < 1:
        from .splits import nested_share

        tr = tr[nested_share(dev.labels[tr], dev_folds["group"].to_numpy()[tr], fraction,
                             seed=cfg["seed"])]
    train_set, val = dev.subset(tr), dev.subset(va)
    precision = fit.resolve_precision(cfg["precision"])
    t0 = time.time()
    with fit.precision_scope(precision):
        model, state = fit.fit_model(
            cfg, train_set.images, train_set.masks, train_set.labels, key=TUNE_FOLD,
            ckpt_dir=out / "checkpoints" / name, chash=chash, label=f"tune {name}",
            verbose=verbose, stop_after_epochs=stop_after_epochs,
            on_epoch=lambda m, e: _val_metrics(m, cfg, val, dev.class_names))
        if model is None:
            return None
        choices = inference_choices(model, cfg, val, dev.class_names)
        reliance = shift = None
        if cfg["task"] == "multi":
            from .reliance import occlusion_auc

            reliance = occlusion_auc(model, cfg, val.images, val.masks,
                                     val.labels == list(dev.class_names).index("malignant"))
            from .shift import shift_metrics

            shift = shift_metrics(model, cfg, val.images, val.masks, val.labels,
                                  dev.class_names)
    hist = state["history"]
    rec = {
        "trial": name, "stage": TRIALS[name][0], "overrides": TRIALS[name][1], "extra": extra,
        "profile": profile, "config": cfg, "config_hash": chash,
        "data_sha256": dev.data_sha256, "git_commit": records.git_commit(),
        "versions": records.versions(), "precision": precision,
        "machine": fit.machine_info(precision),
        "outer_fold": TUNE_FOLD, "split": cfg["split"], "n_inner_train": int(len(tr)),
        "train_fraction": fraction,
        "n_val": int(len(va)), "val_ids_sha256": _ids_hash(val.ids),
        "train_seconds": state["train_seconds"], "cpu_seconds": state["cpu_seconds"],
        "seconds_per_epoch": float(np.median([r["seconds"] for r in hist])),
        "n_params": int(model.count_params()), "history": hist,
        "score": trial_score(hist), "inference_choices": choices.to_dict("records"),
        "reliance": reliance, "shift": shift,
        "wall_seconds": time.time() - t0,
    }
    records.write_json(path, rec)
    import shutil

    shutil.rmtree(out / "checkpoints" / name, ignore_errors=True)
    if verbose:
        print(f"[tune] {name}: score {rec['score']:.4f} ({rec['train_seconds']:.0f} s)",
              flush=True)
    return rec


def _ids_hash(ids) -> str:
    import hashlib

    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()[:16]


def trial_score(history: list[dict], n: int = SCORE_EPOCHS) -> float:
    """Mean of ``val_dice + val_auc`` over the last ``n`` epochs (see the selection rule)."""
    last = history[-n:]
    return float(np.mean([r["val_dice"] + r["val_auc"] for r in last]))


# ----------------------------------------------------------------------------- views
def load_trials(profile: str = "cpu", results_dir=None) -> list[dict]:
    """Every recorded trial of a profile, in the order of :data:`TRIALS` (others last)."""
    folder = tuning_dir(profile, results_dir)
    recs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if not p.name.startswith("lr_range")]
    order = {n: i for i, n in enumerate(TRIALS)}
    return sorted(recs, key=lambda r: (order.get(r["trial"], len(order)), r["trial"]))


def trials_table(recs: list[dict]) -> pd.DataFrame:
    """One row per trial: stage, what it changes, last-epochs validation Dice and AUC, score,
    gain over its stage's reference, CPU hours."""
    rows = []
    for r in recs:
        last = r["history"][-SCORE_EPOCHS:]
        rows.append({"trial": r["trial"], "stage": r["stage"],
                     "epochs": r["config"]["epochs"],
                     "val Dice": float(np.mean([h["val_dice"] for h in last])),
                     "val AUC": float(np.mean([h["val_auc"] for h in last])),
                     "score": r["score"], "CPU h": r["cpu_seconds"] / 3600,
                     "s/epoch": r["seconds_per_epoch"],
                     "machine": r["machine"].get("gpu") or r["machine"]["cpu"]})
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


#: Capacity trials: does a wider network, a larger input or a longer training pay?
#: name -> (what, reference)
CAPACITY = {"width32": ("width 32 (the paper's width)", "cos_lr1e-3"),
            "px160": ("160 px input", "cos_lr1e-3"),
            "combo_px160": ("the chosen recipe at 160 px", "combo_e30"),
            "combo_e40": ("the chosen recipe for 40 epochs", "combo_e30")}


def capacity_sentence(table: pd.DataFrame, min_gain: float = MIN_GAIN) -> str:
    """What each capacity trial (:data:`CAPACITY`) gained over its reference in score and what
    it cost in seconds per epoch, and what the selection rule says of it."""
    parts = []
    for name, (what, reference) in CAPACITY.items():
        if name not in table.index or reference not in table.index:
            missing = name if name not in table.index else f"its reference {reference}"
            parts.append(f"{what} ({name}): {missing} not recorded")
            continue
        ref, r = table.loc[reference], table.loc[name]
        gain = r["score"] - ref["score"]
        verdict = "would be kept" if gain > min_gain else "not kept"
        parts.append(f"{what} ({name}): score {r['score']:.3f}, {gain:+.3f} over {reference} "
                     f"(val Dice {r['val Dice'] - ref['val Dice']:+.3f}, AUC "
                     f"{r['val AUC'] - ref['val AUC']:+.3f}) at {r['s/epoch'] / ref['s/epoch']:.1f}x "
                     f"its seconds per epoch: {verdict} by the rule (gain > {min_gain})")
    return "; ".join(parts) + "."


def select(table: pd.DataFrame, reference: str, candidates, min_gain: float = MIN_GAIN
           ) -> list[str]:
    """The candidates whose score beats ``reference``'s by more than ``min_gain``, best first."""
    if reference not in table.index:
        raise ConfigError(f"reference trial {reference!r} is not recorded")
    ref = table.loc[reference, "score"]
    won = [(table.loc[c, "score"] - ref, c) for c in candidates
           if c in table.index and table.loc[c, "score"] - ref > min_gain]
    return [c for _, c in sorted(won, reverse=True)]


def robust_table(recs: list[dict]) -> pd.DataFrame:
    """One row per trial recorded with shift metrics: clean score, shift score, and validation
    Dice and AUC on each perturbation (columns ``<shift> Dice``, ``<shift> AUC``)."""
    from .shift import SHIFTS, shift_score

    rows = []
    for r in recs:
        if not r.get("shift"):
            continue
        row = {"trial": r["trial"], "score": r["score"], "shift score": shift_score(r["shift"])}
        for name in SHIFTS:
            v = r["shift"].get(name, {})
            row[f"{name} Dice"] = v.get("val_dice", float("nan"))
            row[f"{name} AUC"] = v.get("val_auc", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


def robust_select(table: pd.DataFrame, reference: str = ROBUST_REFERENCE,
                  candidates=ROBUST_CANDIDATES, min_gain: float = MIN_GAIN) -> list[str]:
    """Stage 4's rule on a :func:`robust_table`: the candidates whose shift score beats the
    reference's by more than ``min_gain`` while their clean score is at most ``min_gain`` below
    the reference's, best shift gain first (:func:`select` on the shift score)."""
    if reference not in table.index:
        raise ConfigError(f"reference trial {reference!r} is not recorded with shift metrics")
    clean = table["score"]
    kept_clean = [c for c in candidates
                  if c in table.index and clean[c] - clean[reference] >= -min_gain]
    return select(table.assign(score=table["shift score"]), reference, kept_clean, min_gain)


def robust_sentence(table: pd.DataFrame, reference: str = ROBUST_REFERENCE,
                    candidates=ROBUST_CANDIDATES, min_gain: float = MIN_GAIN) -> str:
    """Each stage-4 candidate against the reference: clean and shift score changes, and what
    the rule says of it."""
    if reference not in table.index:
        return f"Stage 4 is not recorded yet (its reference {reference} has no shift metrics)."
    ref = table.loc[reference]
    kept = robust_select(table, reference, candidates, min_gain)
    parts = []
    for c in candidates:
        if c not in table.index:
            parts.append(f"{c}: not recorded")
            continue
        r = table.loc[c]
        parts.append(f"{c}: shift score {r['shift score']:.3f} "
                     f"({r['shift score'] - ref['shift score']:+.3f}), clean score "
                     f"{r['score']:.3f} ({r['score'] - ref['score']:+.3f}): "
                     f"{'kept' if c in kept else 'not kept'}")
    return (f"Against {reference} (shift score {ref['shift score']:.3f}, clean "
            f"{ref['score']:.3f}): " + "; ".join(parts) + ".")


def robust_follow_up(table: pd.DataFrame, follow_up: dict | None = None,
                     min_gain: float = MIN_GAIN) -> str:
    """Each stage-4 follow-up (:data:`ROBUST_FOLLOW_UP`) against the trial it extends, on a
    :func:`robust_table`. The rule (fixed before the follow-up ran): the extra compute pays when
    the clean or the shift score rises by more than ``min_gain`` and neither falls by more
    than ``min_gain``."""
    parts = []
    for name, base in (ROBUST_FOLLOW_UP if follow_up is None else follow_up).items():
        if name not in table.index or base not in table.index:
            parts.append(f"{name}: {name if name not in table.index else base} not recorded")
            continue
        d_clean = table.loc[name, "score"] - table.loc[base, "score"]
        d_shift = table.loc[name, "shift score"] - table.loc[base, "shift score"]
        pays = max(d_clean, d_shift) > min_gain and min(d_clean, d_shift) >= -min_gain
        parts.append(f"{name} against {base}: clean score {table.loc[name, 'score']:.3f} "
                     f"({d_clean:+.3f}), shift score {table.loc[name, 'shift score']:.3f} "
                     f"({d_shift:+.3f}): the extra epochs {'pay' if pays else 'do not pay'}")
    return "; ".join(parts) + "."


def learning_curve_table(recs: list[dict]) -> pd.DataFrame:
    """Stage 5: one row per share of the inner-training images (:data:`DATA_TRIALS` and the
    full-data :data:`DATA_REFERENCE`), smallest first: images, epochs, last-epochs validation
    Dice and AUC, score, CPU hours."""
    table = trials_table([r for r in recs if r["trial"] in (*DATA_TRIALS, DATA_REFERENCE)])
    if table.empty:
        return table
    by = {r["trial"]: r for r in recs}
    table.insert(0, "share", [float(by[t].get("train_fraction", 1.0)) for t in table.index])
    table.insert(1, "images", [int(by[t]["n_inner_train"]) for t in table.index])
    return table.sort_values("images")


def learning_curve_slopes(table: pd.DataFrame) -> dict[str, float]:
    """Least-squares slopes of validation Dice, AUC and score on ``log2(images)``: what each
    doubling of the training images added over the measured range (NaN with < 2 rows)."""
    if len(table) < 2:
        return {"Dice": float("nan"), "AUC": float("nan"), "score": float("nan")}
    x = np.log2(table["images"].to_numpy(float))
    return {k: float(np.polyfit(x, table[c].to_numpy(float), 1)[0])
            for k, c in (("Dice", "val Dice"), ("AUC", "val AUC"), ("score", "score"))}


def learning_curve_sentence(table: pd.DataFrame, min_gain: float = MIN_GAIN) -> str:
    """What stage 5 says: the score at each share and what a doubling of the images added."""
    if len(table) < 2:
        return "Stage 5 (the learning curve) is not recorded yet."
    pts = ", ".join(f"{r['share']:.0%} ({r['images']} images): {r['score']:.3f}"
                    for _, r in table.iterrows())
    slope = learning_curve_slopes(table)
    still = slope["score"] > min_gain
    return (f"Validation score (Dice + AUC) by share of the inner-training images, at about "
            f"equal optimiser steps: {pts}. Each doubling of the images added "
            f"{slope['Dice']:+.3f} Dice and {slope['AUC']:+.3f} AUC (least squares on "
            f"log2 of the images, {len(table)} points): "
            + ("the curve has not flattened at BUSI's size, so more images would still pay."
               if still else f"below the rule's {min_gain}, so the curve has flattened."))


def seed_spread(recs: list[dict]) -> dict | None:
    """The recipe's validation score over training seeds (:data:`DATA_REFERENCE` and
    :data:`SEED_TRIALS`, those recorded): ``{"n", "scores", "range", "sd"}``, or ``None`` with
    fewer than two; ``sd`` is the sample standard deviation."""
    scores = {r["trial"]: float(r["score"]) for r in recs
              if r["trial"] in (DATA_REFERENCE, *SEED_TRIALS)}
    if len(scores) < 2:
        return None
    v = np.array(list(scores.values()))
    return {"n": len(v), "scores": scores, "range": float(v.max() - v.min()),
            "sd": float(v.std(ddof=1))}


def seed_sentence(spread: dict | None, min_gain: float = MIN_GAIN) -> str:
    """The trial score's seed noise against the selection rule's threshold."""
    if spread is None:
        return "The recipe's reseeds are not recorded yet."
    pts = ", ".join(f"{k} {v:.3f}" for k, v in spread["scores"].items())
    verdict = ("larger than" if spread["range"] > min_gain else "within")
    return (f"The recipe retrained with other training seeds on the same images scores {pts}: a "
            f"range of {spread['range']:.3f} (sd {spread['sd']:.3f}, {spread['n']} seeds), "
            f"{verdict} the rule's threshold of {min_gain}: a gain or loss of that size between "
            f"two trials {'can be' if spread['range'] > min_gain else 'is unlikely to be'} seed "
            f"noise alone.")


def plot_learning_curve(table: pd.DataFrame):
    """Validation Dice and AUC against the number of training images (log scale), with the
    least-squares line of :func:`learning_curve_slopes`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
    x = table["images"].to_numpy(float)
    for ax, col in zip(axes, ("val Dice", "val AUC")):
        y = table[col].to_numpy(float)
        ax.plot(x, y, "o", color="C0")
        if len(x) >= 2:
            b, a = np.polyfit(np.log2(x), y, 1)
            xs = np.geomspace(x.min(), x.max(), 20)
            ax.plot(xs, a + b * np.log2(xs), "-", color="C0", alpha=0.5,
                    label=f"{b:+.3f} per doubling")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [f"{int(v)}" for v in x])
        ax.minorticks_off()
        ax.set_xlabel("training images (inner-training share)")
        ax.set_title(f"validation {col.split()[-1]}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_quality_per_hour(recs: list[dict], names=None, smooth: int = 3):
    """Validation Dice and AUC against cumulative training CPU hours, one curve per trial
    (a running mean over ``smooth`` epochs); the paper's schedule dashed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for r in recs:
        if names is not None and r["trial"] not in names:
            continue
        h = pd.DataFrame(r["history"])
        x = h["cpu_seconds"].cumsum() / 3600
        style = "--" if r["trial"].startswith("paper") else "-"
        for ax, col in zip(axes, ("val_dice", "val_auc")):
            ax.plot(x, h[col].rolling(smooth, min_periods=1).mean(), style, label=r["trial"])
    for ax, t in zip(axes, ("validation Dice", "validation AUC")):
        ax.set_xlabel("training CPU hours (2-core machine, cumulative)")
        ax.set_title(t)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def best_inference(rec: dict) -> dict:
    """The inference choice of a trial with the highest validation Dice + AUC; on a tie, the
    simplest (no TTA, no post-processing, threshold nearest 0.5)."""
    c = pd.DataFrame(rec["inference_choices"])
    c = c.assign(score=c["val_dice"] + c["val_auc"], extra=c["tta"].astype(int)
                 + (c["postprocess"] != "none").astype(int), off=(c["mask_threshold"] - 0.5).abs())
    best = c.sort_values(["score", "extra", "off"], ascending=[False, True, True]).iloc[0]
    return {"tta": bool(best["tta"]), "postprocess": str(best["postprocess"]),
            "mask_threshold": float(best["mask_threshold"])}


def choices_table(rec: dict) -> pd.DataFrame:
    """A trial's inference choices as a table: validation Dice per threshold (columns), one
    row per (TTA, post-processing); AUC with and without TTA."""
    c = pd.DataFrame(rec["inference_choices"])
    dice = c.pivot_table(index=["tta", "postprocess"], columns="mask_threshold", values="val_dice")
    dice.columns = [f"Dice @ {t:g}" for t in dice.columns]
    auc = c.groupby(["tta", "postprocess"])["val_auc"].first()
    return dice.assign(AUC=auc)


def reliance_table(recs: list[dict]) -> pd.DataFrame:
    """Validation AUC of each trial's model on the images as they are, with the lesion hidden
    and with the lesion alone (:func:`busi_lib.reliance.occlusion_auc`)."""
    rows = {r["trial"]: r["reliance"] for r in recs if r.get("reliance")}
    return pd.DataFrame(rows).T.rename(columns={"auc": "AUC", "auc_no_lesion": "lesion hidden",
                                                "auc_lesion_only": "lesion alone"})


def load_lr_range(profile: str = "cpu", results_dir=None) -> dict | None:
    path = tuning_dir(profile, results_dir) / "lr_range.json"
    return json.loads(path.read_text()) if path.is_file() else None


def plot_lr_range(rec: dict):
    """The range test: each step's loss and its smoothed curve against the learning rate."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.semilogx(rec["lr"], rec["loss"], ".", ms=2, alpha=0.4, label="step loss")
    ax.semilogx(rec["lr"], rec["smoothed"], "-", label="smoothed")
    ax.axvline(rec["lr_at_min"], color="k", lw=0.8, ls=":", label="lowest smoothed loss")
    ax.axvline(rec["suggested_lr"], color="C2", lw=1, label="a tenth of it")
    lo, hi = np.nanpercentile(rec["smoothed"], [1, 99])
    ax.set_ylim(lo * 0.9, min(hi * 1.5, max(rec["smoothed"])))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- LR range test
def lr_range_test(profile: str = "cpu", *, lr_min: float = 1e-5, lr_max: float = 1e-1,
                  epochs: int = 2, data_dir=None, results_dir=None, verbose: int = 1,
                  **extra) -> dict:
    """Leslie Smith's range test on the inner-training images: the learning rate grows
    geometrically from ``lr_min`` to ``lr_max`` over ``epochs`` epochs, one step at a time, and
    each step's training loss is recorded (``results/<profile>/tuning/lr_range.json``).

    The suggestion is a tenth of the rate at which the smoothed loss is lowest.
    """
    import keras

    from .losses import class_weights_from_labels
    from .train import prepare

    cfg = make_config(profile, BASE_EXPERIMENT, **{**NETWORK, **R1, **extra})
    data, folds = prepare(cfg, data_dir, results_dir=results_dir)
    dev, dev_folds = development_set(data, folds, TUNE_FOLD)
    del data
    tr, _ = inner_split(dev_folds, dev.labels, cfg["seed"])
    train_set = dev.subset(tr)
    steps = math.ceil(len(tr) * epochs / cfg["batch_size"])
    rates = lr_min * (lr_max / lr_min) ** (np.arange(steps) / max(steps - 1, 1))
    losses: list[float] = []

    class Sweep(keras.callbacks.Callback):
        """Sets each step's rate; Keras logs the running mean of the epoch's loss, from which
        each step's own loss is recovered: ``l_b = b m_b - (b - 1) m_{b-1}``."""

        prev = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.learning_rate = float(rates[batch])

        def on_train_batch_end(self, batch, logs=None):
            mean = float(logs["loss"])
            losses.append((batch + 1) * mean - batch * self.prev)
            self.prev = mean

    from .inference import targets

    precision = fit.resolve_precision(cfg["precision"])
    t0 = time.time()
    with fit.precision_scope(precision):
        fit.set_determinism(cfg["seed"], cfg["deterministic"])
        model, _ = fit.build_for_config(cfg)
        w = class_weights_from_labels(train_set.labels, len(cfg["classes"]),
                                      normalize=cfg["class_weight_norm"])
        fit.compile_for_config(model, cfg, w, 1, optimizer=keras.optimizers.Adam(lr_min))
        xs, ms, ys = [], [], []
        for e in range(epochs):             # the epochs' augmented images, one long epoch
            rng = fit.epoch_rng(cfg["seed"], 10**3, e)
            order = rng.permutation(len(tr))
            xe, me = fit.epoch_inputs(cfg, train_set.images[order], train_set.masks[order], rng)
            xs.append(xe), ms.append(me), ys.append(train_set.labels[order])
        model.fit(np.concatenate(xs), targets(cfg["task"], np.concatenate(ms), np.concatenate(ys)),
                  batch_size=cfg["batch_size"], epochs=1, shuffle=False, verbose=0,
                  callbacks=[Sweep()])
    lr = rates[: len(losses)]
    smooth = pd.Series(losses).ewm(alpha=0.1).mean().to_numpy()
    best = int(np.nanargmin(smooth))
    rec = {"lr": lr.tolist(), "loss": losses, "smoothed": smooth.tolist(),
           "lr_at_min": float(lr[best]), "suggested_lr": float(lr[best] / 10),
           "config": cfg, "machine": fit.machine_info(precision),
           "seconds": time.time() - t0, "git_commit": records.git_commit()}
    records.write_json(tuning_dir(profile, results_dir) / "lr_range.json", rec)
    if verbose:
        print(f"[tune] LR range test: loss lowest at {rec['lr_at_min']:.2g}, suggested "
              f"{rec['suggested_lr']:.2g}")
    return rec


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m busi_lib.tune [--trial NAME ...] [--stage N] [--hours H] [--lr-range]``."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--trial", nargs="*", default=[])
    p.add_argument("--stage", type=int, default=None)
    p.add_argument("--hours", type=float, default=None)
    p.add_argument("--lr-range", action="store_true")
    p.add_argument("--list", action="store_true")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--results-dir", default=None)
    a = p.parse_args(argv)
    if a.list:
        recorded = {r["trial"]: r for r in load_trials(a.profile, a.results_dir)}
        for name, (stage, ov) in TRIALS.items():
            done = f"score {recorded[name]['score']:.4f}" if name in recorded else "not recorded"
            print(f"stage {stage}  {name:14s} {done:18s} {ov}")
        return 0
    if a.lr_range:
        lr_range_test(a.profile, data_dir=a.data_dir, results_dir=a.results_dir)
    names = list(a.trial) + [n for n, (s, _) in TRIALS.items() if a.stage == s]
    bad = [n for n in names if n not in TRIALS]
    if bad:
        raise ConfigError(f"--trial {bad}: expected names from {sorted(TRIALS)}")
    t0 = time.time()
    for name in names:
        if a.hours is not None and time.time() - t0 > a.hours * 3600:
            print(f"--hours {a.hours}: time is up, stopping before {name}", flush=True)
            return 0
        run_trial(name, a.profile, data_dir=a.data_dir, results_dir=a.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
