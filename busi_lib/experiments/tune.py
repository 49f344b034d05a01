"""Choosing the recipe on an inner validation split: never a test fold, never BUS-BRA.

A *trial* trains one configuration on the inner-training part of the training images of one
outer fold (:data:`TUNE_FOLD` of the duplicate-grouped split) and measures, after every epoch,
validation Dice and AUC on the inner-validation part. The outer test fold is removed before
anything else happens (:func:`development_set`), and BUS-BRA is never loaded here, so no number
that a choice is made from has seen either (``tests/test_tune.py`` checks both).

    python -m busi_lib.experiments.tune --list                     # the trials and what is recorded
    python -m busi_lib.experiments.tune --trial cos_lr1e-3         # run (or resume) trials
    python -m busi_lib.experiments.tune --stage 1 --hours 1        # run a stage, start none after 1 hour
    python -m busi_lib.experiments.tune --lr-range                 # learning-rate range test

Each trial writes ``results/<profile>/tuning/<trial>.json``: its configuration and hash, the
overrides it tests, the validation metrics of every epoch, the wall and CPU seconds, the machine
(CPU model, bf16), the inner split's sizes, and, at the end, the inference choices (flip TTA,
largest component + hole filling, mask threshold) and the occlusion AUCs (lesion hidden, lesion
alone; :mod:`busi_lib.analysis.reliance`) measured on the same validation images, and (trials
recorded from 2026-12-04 on) each validation image's Dice and probabilities
(``val_predictions``), so that trials can be compared image by image or ensembled.

Selection rule (fixed before the trials ran): a trial's *score* is the mean over its last
:data:`SCORE_EPOCHS` epochs of validation Dice plus validation AUC; a change is kept when it
raises the score of the stage's reference by more than :data:`MIN_GAIN`, otherwise the simpler
(paper's) choice stays.

Stage 4 (robustness; rule fixed before its trials ran): each trial also records validation Dice
and AUC on the validation images perturbed as scanners differ (:mod:`busi_lib.experiments.shift`); a change
is kept when it raises the mean of Dice + AUC over the perturbations (the *shift score*) by more
than :data:`MIN_GAIN` and lowers the clean score by no more than :data:`MIN_GAIN`
(:func:`busi_lib.analysis.tune_report.robust_select`). BUS-BRA is not looked at to make this choice
either.

Stage 5 (after the recipe was fixed): the learning curve (the recipe on a quarter, half and
three quarters of the inner-training images) and the recipe's reseeds (the noise of a score).

What the records say (tables, the rules, sentences, figures) is :mod:`busi_lib.analysis.tune_report`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.config import config_hash, make_config
from busi_lib.data.splits import nested_share, prepare
from busi_lib.errors import ConfigError
from busi_lib.eval import inference
from busi_lib.eval.inference import targets
from busi_lib.eval.occlusion import AUC_KEYS, KEEP, occluded_probabilities, occlusion_aucs
from busi_lib.experiments import trainer
from busi_lib.experiments.shift import shift_metrics
from busi_lib.nn import build, machine
from busi_lib.nn.losses import class_weights_from_labels
from busi_lib.nn.quiet import start_backend_quietly

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
    # scanners differ (busi_lib.experiments.shift): the recipe itself again (its shift metrics), with the
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
    # stage 6 (issue 26, 2026-12-03; rule in busi_lib.analysis.tune_report.seeded_select, fixed before
    # these trials ran): candidates for transfer to other scanners, each with the three training
    # seeds of the recipe's reseeds (robust_ref, recipe_s1, recipe_s2 are the reference).
    # Per-image intensity standardisation (z-score): the scanner's grey-level look should not
    # carry the label
    **{f"s6_zscore{sfx}": (6, {**COMBO, "normalize": "zscore", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # geometry: aspect-preserving letterbox (pad to a square) instead of squashing; added before
    # any stage-6 trial ran, under the same rule
    **{f"s6_pad{sfx}": (6, {**COMBO, "resize": "pad", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # diverse augmentation from maintained libraries (TrivialAugment-style, albumentations and
    # usaugment: busi_lib.data.augment.TRIVIAL_POOL); added before any stage-6 trial ran
    **{f"s6_trivial{sfx}": (6, {**COMBO, "aug_policy": "trivial", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # lesion-centred classification without context: the classifier's second look (gap_crop)
    # sees the lesion and a thin rim only; added before any stage-6 trial ran
    **{f"s6_cropmask{sfx}": (6, {**COMBO, "crop_context": "mask", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 7 (issue 26, a later session of 2026-12-03; rule in
    # busi_lib.analysis.tune_report.confirm_select, fixed and committed before these trials
    # ran): a confirmation of the one stage-6 candidate whose shift-score interval reached zero
    # (trivial: +0.105, -0.003 to +0.213). Two more training seeds (3, 4) on each side, so five
    # against five; the same images, validation split and signals
    **{f"s7_recipe_s{k}": (7, {**COMBO, "train_seed": k}) for k in (3, 4)},
    **{f"s7_trivial_s{k}": (7, {**COMBO, "aug_policy": "trivial", "train_seed": k})
       for k in (3, 4)},
    # stage 8 (issue 26; rule busi_lib.analysis.tune_report.seeded_select at 95 %, fixed
    # 2026-12-03 before any of these trials ran): does stage 7's policy add to the released
    # recipe (the strong augmentation, 60 epochs)? Three seeds a side; the reference's first
    # seed is the stage-4 trial robust_aug_e60
    **{f"s8_release_s{k}": (8, {**COMBO, **STRONG_AUG, "epochs": 60, "train_seed": k})
       for k in (1, 2)},
    **{f"s8_release_trivial{sfx}": (8, {**COMBO, **STRONG_AUG, "epochs": 60,
                                        "aug_policy": "trivial", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 9 (issue 26; defined and committed 2026-12-03 before its trials ran, while stage 8
    # ran; the same rule, seeded_select at 95 %, against stage 8's reference): random crops that
    # keep the whole lesion, resized back (aspect ratio and zoom vary), on the released recipe.
    # Why this candidate: BUS-BRA's images are framed around the lesion, BUSI's are full frames,
    # and a public BUSI classifier reports a transfer gain from such crops (issue 26)
    **{f"s9_release_crop{sfx}": (9, {**COMBO, **STRONG_AUG, "epochs": 60,
                                     "aug_policy": "lesion_crop", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 10 (issue 26; defined and committed 2026-12-04 before its trials ran; rule:
    # busi_lib.analysis.tune_report.release_seeded_select, where for this candidate a drop of
    # the AUC with the lesion hidden also counts as a gain, see CONTEXT_CANDIDATES): half the
    # lesions moved into another training image's surroundings, over its lesion, on the
    # released recipe. Why this candidate: stages 6-9 left the AUC with the lesion hidden at
    # 0.85, so the classifier still reads the surroundings, and no candidate so far took the
    # label away from them
    **{f"s10_release_swap{sfx}": (10, {**COMBO, **STRONG_AUG, "epochs": 60,
                                       "aug_policy": "context_swap", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 11 (issue 26; defined and committed 2026-12-04 before its trials ran, while stage
    # 10's last trial ran; rule: release_seeded_select, the plain rule of seeded_select at 95 %):
    # the released recipe at 192 px instead of 128 (2.25 times the pixels). Why: resolution is
    # the one lever of issue 26's list not tried on the released recipe; the lesion's margin
    # and echo pattern, which a radiologist reads, are finer at 192 px
    **{f"s11_release_px192{sfx}": (11, {**COMBO, **STRONG_AUG, "epochs": 60,
                                        "image_size": 192, **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 12 (issue 26; defined and committed 2026-12-04 before its trials ran, while stage
    # 11's last trial ran; rule: release_seeded_select, the plain rule of seeded_select at
    # 95 %): the released recipe with its U-Net still at 128 px but fed 256-px images, so that
    # the classifier's second look (the lesion crop of gap_crop) samples the lesion at twice
    # the detail (net_size). Why: stage 11's first two seeds put the whole network at 192 px
    # and lost validation Dice (0.755 and 0.770 against the reference's 0.777-0.787), while
    # the first candidate asks for the lesion at a higher resolution for the
    # classifier only; this keeps the U-Net, and its Dice, as released. Its validation Dice is
    # measured at 256 px against 256-px outlines (the reference's at 128 px), as stage 11's
    # was at 192 px
    **{f"s12_release_crop256{sfx}": (12, {**COMBO, **STRONG_AUG, "epochs": 60,
                                          "image_size": 256, "net_size": 128, **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 13 (issue 26; defined and committed 2026-12-04 before its trials ran; rule:
    # release_seeded_select, the plain rule of seeded_select at 95 %): the released recipe on
    # histogram-equalised images (enhancement "he", scikit-image's equalize_hist at full
    # resolution, before the resize; the predictor does the same). Why: the issue's
    # intensity normalisation, so that a scanner's gain, dynamic range and grey map cannot
    # carry the label; per-image z-score (stage 6) only matched mean and spread, HE matches
    # the whole grey-level distribution to a flat one. Its perturbed validation applies each
    # perturbation before the equalisation, as a scanner's would be
    # (busi_lib.experiments.shift.perturbed_inputs)
    **{f"s13_release_he{sfx}": (13, {**COMBO, **STRONG_AUG, "epochs": 60,
                                     "enhancement": "he", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 14 (issue 26; defined and committed 2026-12-04 before its trials ran, while stage
    # 13's ran; rule: release_seeded_select, the plain rule of seeded_select at 95 %): the
    # released recipe on images whose burnt-in text and calipers are found and inpainted
    # (enhancement "unmark", busi_lib.data.marks, at full resolution before the resize; the
    # predictor does the same). Why: the "drop text, calipers and frames"; BUSI's
    # calipers are often drawn across the lesion itself (a measured lesion is a suspicious
    # one), and other sites' images need not carry such marks
    **{f"s14_release_unmark{sfx}": (14, {**COMBO, **STRONG_AUG, "epochs": 60,
                                         "enhancement": "unmark", **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
    # stage 12's re-runs of the release recipe's three reference seeds (added 2026-12-04, after
    # stage 12's candidate trials, judged by nothing): the same configurations as
    # RELEASE_SEEDED_REFERENCE, run again to record the signals added since those ran (the
    # AUC with a square around the lesion hidden, each validation image's outcome); their
    # scores beside the originals' show how far a trial reproduces on another machine
    **{f"s12_release_rerun{sfx}": (12, {**COMBO, **STRONG_AUG, "epochs": 60, **seed})
       for sfx, seed in (("", {}), ("_s1", {"train_seed": 1}), ("_s2", {"train_seed": 2}))},
}
#: Stage 6: each candidate's trials (three training seeds) and the reference's (the recipe's
#: stage-4 record and its two reseeds: the same configuration, seeds None, 1, 2).
SEEDED_REFERENCE = ("robust_ref", "recipe_s1", "recipe_s2")
SEEDED_CANDIDATES: dict[str, tuple[str, ...]] = {
    "zscore": ("s6_zscore", "s6_zscore_s1", "s6_zscore_s2"),
    "pad": ("s6_pad", "s6_pad_s1", "s6_pad_s2"),
    "trivial": ("s6_trivial", "s6_trivial_s1", "s6_trivial_s2"),
    "cropmask": ("s6_cropmask", "s6_cropmask_s1", "s6_cropmask_s2")}
#: The configuration keys each stage-6 candidate changes.
SEEDED_KEYS: dict[str, set[str]] = {"zscore": {"normalize"}, "pad": {"resize"},
                                    "trivial": {"aug_policy"}, "cropmask": {"crop_context"}}
#: Stage 7: the confirmation of stage 6's closest candidate, five seeds on each side (the
#: stage-6 trials and two new seeds each). Judged at a stricter level, because the candidate
#: was picked as the best of the four that stage 6 looked at: a Bonferroni level of
#: 1 - 0.05 / 4 (see :func:`busi_lib.analysis.tune_report.confirm_select`).
CONFIRM_REFERENCE = SEEDED_REFERENCE + ("s7_recipe_s3", "s7_recipe_s4")
CONFIRM_CANDIDATES: dict[str, tuple[str, ...]] = {
    "trivial": SEEDED_CANDIDATES["trivial"] + ("s7_trivial_s3", "s7_trivial_s4")}
CONFIRM_LEVEL = 1 - 0.05 / len(SEEDED_CANDIDATES)
#: Stages 8 to 14: candidates on the released recipe, three seeds each against the same three
#: seeds of that recipe (stage 8: stage 7's policy; stage 9: crops that keep the lesion;
#: stage 10: lesions moved into other images' surroundings; stage 11: 192 px; stage 12: the
#: U-Net at 128 px on 256-px images, the lesion crop at twice the detail; stage 13: images
#: histogram-equalised; stage 14: burnt-in text and calipers inpainted).
RELEASE_SEEDED_REFERENCE = ("robust_aug_e60", "s8_release_s1", "s8_release_s2")
#: The same three configurations run again in stage 12, seed by seed (not part of any rule).
RELEASE_REFERENCE_RERUN = ("s12_release_rerun", "s12_release_rerun_s1", "s12_release_rerun_s2")
RELEASE_SEEDED_CANDIDATES: dict[str, tuple[str, ...]] = {
    "release + trivial": ("s8_release_trivial", "s8_release_trivial_s1",
                          "s8_release_trivial_s2"),
    "release + lesion crop": ("s9_release_crop", "s9_release_crop_s1", "s9_release_crop_s2"),
    "release + context swap": ("s10_release_swap", "s10_release_swap_s1",
                               "s10_release_swap_s2"),
    "release at 192 px": ("s11_release_px192", "s11_release_px192_s1",
                          "s11_release_px192_s2"),
    "release + lesion crop at 256 px": ("s12_release_crop256", "s12_release_crop256_s1",
                                        "s12_release_crop256_s2"),
    "release + histogram equalisation": ("s13_release_he", "s13_release_he_s1",
                                         "s13_release_he_s2"),
    "release + marks inpainted": ("s14_release_unmark", "s14_release_unmark_s1",
                                  "s14_release_unmark_s2")}
#: Candidates made to take the label away from the lesion's surroundings: for them a lower AUC
#: with the lesion hidden (its interval below zero) is a gain too (stage 10's rule, committed
#: before its trials ran).
CONTEXT_CANDIDATES = ("release + context swap",)
#: Stage 5's trials and their full-data point
#: (see :func:`busi_lib.analysis.tune_report.learning_curve_table`).
DATA_TRIALS = ("data25", "data50", "data75")
DATA_REFERENCE = "combo_e30"
#: The recipe retrained with other training seeds: the noise of a trial's score
#: (:func:`busi_lib.analysis.tune_report.trial_seed_spread`).
SEED_TRIALS = ("recipe_s1", "recipe_s2")
#: A stage-4 follow-up and the trial it is compared with
#: (see :func:`busi_lib.analysis.tune_report.robust_follow_up`).
ROBUST_FOLLOW_UP = {"robust_aug_e60": "robust_aug_e40"}
#: Stage 4's reference and candidates (see :func:`busi_lib.analysis.tune_report.robust_select`).
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
def inner_sets(cfg: dict, data_dir=None, results_dir=None):
    """``(dev, dev_folds, train_idx, val_idx)``: the development set of :data:`TUNE_FOLD`
    (:func:`development_set`; the test fold's images are dropped before anything else) and its
    inner split (:func:`inner_split`)."""

    data, folds = prepare(cfg, data_dir, results_dir=results_dir)
    dev, dev_folds = development_set(data, folds, TUNE_FOLD)
    del data                                   # from here on, only the development set exists
    tr, va = inner_split(dev_folds, dev.labels, cfg["seed"])
    return dev, dev_folds, tr, va


def fit_inner(cfg: dict, chash: str, train_set, ckpt_dir: Path, label: str, verbose: int,
              stop_after_epochs: int | None, on_epoch, then=None):
    """:func:`busi_lib.experiments.trainer.fit_model` on the inner-training images ``train_set`` (seeded with
    :data:`TUNE_FOLD`), resumable from ``ckpt_dir``, in the configuration's precision; then
    ``then(model)``, in the same precision, when the model is trained.

    Returns ``(model, state, precision, then's result)``; ``model`` is ``None`` when stopped on
    purpose by ``stop_after_epochs``."""
    precision = machine.resolve_precision(cfg["precision"])
    with machine.precision_scope(precision):
        model, state = trainer.fit_model(cfg, train_set.images, train_set.masks, train_set.labels,
                                     key=TUNE_FOLD, ckpt_dir=ckpt_dir, chash=chash, label=label,
                                     verbose=verbose, stop_after_epochs=stop_after_epochs,
                                     on_epoch=on_epoch)
        extra = then(model) if model is not None and then is not None else None
    return model, state, precision, extra


def recorded_trial(folder: Path, name: str, chash: str, tag: str = "tune",
                   verbose: int = 1) -> tuple[Path, dict | None]:
    """``(path, record)`` of trial ``name`` in ``folder`` (made if missing): the record when it
    was made with configuration hash ``chash``, ``None`` when there is none. A record of
    another configuration is refused (nothing is overwritten)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    if not path.is_file():
        return path, None
    rec = json.loads(path.read_text())
    if rec["config_hash"] != chash:
        raise ConfigError(f"{path} was recorded with config_hash {rec['config_hash']}, not "
                          f"{chash}: the trial's configuration changed; rename it or move the "
                          "old record")
    if verbose:
        print(f"[{tag}] {name}: recorded, skipped")
    return path, rec


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
    pred = inference.network_outputs(model, {**cfg, "tta": False}, val.images)
    metrics, _, _ = trainer.evaluate_outputs({**cfg, "tta": False, "mask_threshold": 0.5,
                                          "postprocess": "none"}, pred, val.masks, val.labels,
                                         class_names)
    return {"val_dice": metrics.get("seg_DC_mean", float("nan")),
            "val_auc": metrics.get("cls_AUC", float("nan"))}


def inference_choices(model, cfg: dict, val, class_names) -> pd.DataFrame:
    """Validation Dice (and AUC) for each inference choice: flip TTA off/on, post-processing
    none / largest component + holes filled, and mask thresholds :data:`THRESHOLDS`."""
    rows = []
    for tta in (False, True):
        pred = inference.network_outputs(model, {**cfg, "tta": tta}, val.images)
        auc = None
        for post in ("none", "largest_fill"):
            for thr in THRESHOLDS:
                c = {**cfg, "tta": tta, "postprocess": post, "mask_threshold": thr}
                m, _, _ = trainer.evaluate_outputs(c, pred, val.masks, val.labels, class_names)
                auc = m.get("cls_AUC", auc)
                rows.append({"tta": tta, "postprocess": post, "mask_threshold": thr,
                             "val_dice": m.get("seg_DC_mean"), "val_auc": auc})
    return pd.DataFrame(rows)


def validation_predictions(model, cfg: dict, val, class_names,
                           probabilities: dict[str, np.ndarray]) -> dict[str, list]:
    """Each validation image's outcome, for paired comparisons of trials on the same images
    and for ensembles of trials: ``id``, ``true_class``, ``dice`` (threshold 0.5, no
    post-processing, no flip), ``prob_malignant`` and the probability under each occlusion of
    :data:`~busi_lib.eval.occlusion.KEEP` (``prob_`` + its AUC key without ``auc_``), as
    columns of lists, rounded to 6 decimals. ``probabilities``: those of
    :func:`~busi_lib.eval.occlusion.occluded_probabilities` on ``val``."""
    c = {**cfg, "tta": False, "mask_threshold": 0.5, "postprocess": "none"}
    pred = inference.network_outputs(model, c, val.images)
    _, table, _ = trainer.evaluate_outputs(c, pred, val.masks, val.labels, class_names)
    def rounded(values) -> list[float]:
        return [round(float(v), 6) for v in values]

    out = {"id": [str(i) for i in val.ids], "true_class": list(table["true_class"]),
           "dice": rounded(table["dice"]), "prob_malignant": rounded(probabilities["as is"])}
    for keep in KEEP:
        out["prob_" + AUC_KEYS[keep].removeprefix("auc_")] = rounded(probabilities[keep])
    return out


def run_trial(name: str, profile: str = "cpu", *, data_dir=None, results_dir=None,
              verbose: int = 1, stop_after_epochs: int | None = None, **extra) -> dict | None:
    """Run (or resume, or skip when recorded) trial ``name``; returns its record.

    ``extra`` overrides configuration values (tests use it to shrink a trial).
    """
    cfg = trial_config(name, profile, **extra)
    chash = trial_hash(name, profile, **extra)
    out = tuning_dir(profile, results_dir)
    path, rec = recorded_trial(out, name, chash, "tune", verbose)
    if rec is not None:
        return rec
    dev, dev_folds, tr, va = inner_sets(cfg, data_dir, results_dir)
    fraction = trial_fraction(name)
    if fraction < 1:

        tr = tr[nested_share(dev.labels[tr], dev_folds["group"].to_numpy()[tr], fraction,
                             seed=cfg["seed"])]
    train_set, val = dev.subset(tr), dev.subset(va)

    def measure(model):                      # on the validation images, in the same precision
        choices = inference_choices(model, cfg, val, dev.class_names)
        reliance = shift = per_image = None
        if cfg["task"] == "multi":
            probs = occluded_probabilities(model, cfg, val.images, val.masks)
            reliance = occlusion_aucs(probs,
                                      val.labels == list(dev.class_names).index("malignant"))
            shift = shift_metrics(model, cfg, val.images, val.masks, val.labels,
                                  dev.class_names)
            per_image = validation_predictions(model, cfg, val, dev.class_names, probs)
        return choices, reliance, shift, per_image

    t0 = time.time()
    model, state, precision, measured = fit_inner(
        cfg, chash, train_set, out / "checkpoints" / name, f"tune {name}", verbose,
        stop_after_epochs, lambda m, e: _val_metrics(m, cfg, val, dev.class_names), then=measure)
    if model is None:
        return None
    choices, reliance, shift, per_image = measured
    hist = state["history"]
    rec = {
        "trial": name, "stage": TRIALS[name][0], "overrides": TRIALS[name][1], "extra": extra,
        "profile": profile, "config": cfg, "config_hash": chash,
        "data_sha256": dev.data_sha256, "git_commit": records.git_commit(),
        "versions": records.versions(), "precision": precision,
        "machine": machine.machine_info(precision),
        "outer_fold": TUNE_FOLD, "split": cfg["split"], "n_inner_train": int(len(tr)),
        "train_fraction": fraction,
        "n_val": int(len(va)), "val_ids_sha256": _ids_hash(val.ids),
        "train_seconds": state["train_seconds"], "cpu_seconds": state["cpu_seconds"],
        "seconds_per_epoch": float(np.median([r["seconds"] for r in hist])),
        "n_params": int(model.count_params()), "history": hist,
        "score": float("nan") if state.get("diverged_at") else trial_score(hist),
        "diverged_at": state.get("diverged_at"),
        "inference_choices": choices.to_dict("records"),
        "reliance": reliance, "shift": shift, "val_predictions": per_image,
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

    precision = machine.resolve_precision(cfg["precision"])
    t0 = time.time()
    with machine.precision_scope(precision):
        machine.set_determinism(cfg["seed"], cfg["deterministic"])
        model, _ = build.build_for_config(cfg)
        w = class_weights_from_labels(train_set.labels, len(cfg["classes"]),
                                      normalize=cfg["class_weight_norm"])
        build.compile_for_config(model, cfg, w, 1, optimizer=keras.optimizers.Adam(lr_min))
        xs, ms, ys = [], [], []
        for e in range(epochs):             # the epochs' augmented images, one long epoch
            rng = trainer.epoch_rng(cfg["seed"], 10**3, e)
            order = rng.permutation(len(tr))
            xe, me = trainer.epoch_inputs(cfg, train_set.images[order], train_set.masks[order], rng)
            xs.append(xe), ms.append(me), ys.append(train_set.labels[order])
        model.fit(np.concatenate(xs), targets(cfg["task"], np.concatenate(ms), np.concatenate(ys)),
                  batch_size=cfg["batch_size"], epochs=1, shuffle=False, verbose=0,
                  callbacks=[Sweep()])
    lr = rates[: len(losses)]
    smooth = pd.Series(losses).ewm(alpha=0.1).mean().to_numpy()
    best = int(np.nanargmin(smooth))
    rec = {"lr": lr.tolist(), "loss": losses, "smoothed": smooth.tolist(),
           "lr_at_min": float(lr[best]), "suggested_lr": float(lr[best] / 10),
           "config": cfg, "machine": machine.machine_info(precision),
           "seconds": time.time() - t0, "git_commit": records.git_commit()}
    records.write_json(tuning_dir(profile, results_dir) / "lr_range.json", rec)
    if verbose:
        print(f"[tune] LR range test: loss lowest at {rec['lr_at_min']:.2g}, suggested "
              f"{rec['suggested_lr']:.2g}")
    return rec


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m busi_lib.experiments.tune [--trial NAME ...] [--stage N] [--hours H] [--lr-range]``."""
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
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up log lines")
    a = p.parse_args(argv)
    start_backend_quietly(a.verbose)
    if a.list:
        recorded = {p.stem: json.loads(p.read_text())
                    for p in tuning_dir(a.profile, a.results_dir).glob("*.json")}
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
