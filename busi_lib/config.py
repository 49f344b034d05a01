"""Profiles and experiments: every training configuration of the book, in one place.

A *profile* says how big the run is (``smoke`` for tests, ``cpu`` for the published book on a
2-core machine, ``paper`` for the paper's settings on a GPU); an *experiment* says what is
trained (the main multi-task model, an ablation, a variant). :func:`make_config` combines them:

    config = DEFAULTS | PROFILES[profile] | LIGHT[profile] (light experiments only)
             | experiments(profile)[experiment] | overrides

The ``cpu`` profile trains the recipe chosen by :mod:`busi_lib.experiments.tune` (:data:`RECIPE`);
``cpu_v1`` is the profile as it was before, with its own frozen experiment table, so that its
committed records stay readable and comparable.

and checks the result, so a bad notebook parameter fails before any work starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from busi_lib.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    # data
    "image_size": 128,
    "classes": ["benign", "malignant"],
    "enhancement": "ghe",     # at full resolution: "none", "he", "clahe", "ghe" (contrast) or
                              # "unmark" (burnt-in text and calipers inpainted)
    "resize": "squash",       # "squash" (the paper: stretch to the square) or "pad" (keep aspect)
    "normalize": "none",      # "none" (x / 255, the paper) or "zscore" (per image)
    "max_per_class": None,
    # folds
    "n_folds": 5,
    "split": "random",
    "folds": None,            # None = all folds; or a list of fold indices to run now
    # model: "resunet" (the paper's) or a baseline name from busi_lib.nn.baselines
    "model": "resunet",
    "pretrained": "imagenet",  # keras.applications weights for classification baselines
    "in_channels": 1,
    "filters": [32, 64, 128, 256],
    "bridge_filters": 512,
    "full_res": "stem",
    "block": "residual",
    "task": "multi",
    "cls_from": "456",
    "dense_units": 256,
    "dropout": 0.5,
    "baseline_width": 32,     # segmentation baselines: filters of the first encoder stage
                              # (None: the profile's filters[0], the width of our network)
    "cls_head": "gap",        # "gap" (the paper: pooled stages 4-5-6) or "gap_crop" (plus a
                              # second look at the image cropped around the predicted mask)
    "crop_context": "keep",   # with gap_crop: "keep" the lesion's surroundings in the crop, or
                              # "mask" them outside a thin rim of the predicted mask
    "net_size": None,         # None: the U-Net runs at image_size; an integer below it: the
                              # input is resized to net_size for the U-Net, the mask brought back
                              # to image_size, and gap_crop's lesion crop reads the full-size
                              # input (the lesion seen at image_size / net_size times the detail)
    # losses
    "seg_loss": "dice",       # "dice" (Eq. 2) or "dice_bce" (Dice + pixel binary cross-entropy)
    "seg_smooth": 1.0,
    "cls_loss": "focal",      # "focal" (Eq. 3-4) or "ce" (plain cross-entropy)
    "focal_gamma": 2.0,
    "class_weight_norm": "mean1",
    "loss_weights": [1.0, 1.0],
    # optimisation
    "batch_size": 16,
    "epochs": 40,
    "lr": 1e-4,
    "schedule": "step",       # "step" (the paper: lr x lr_drop_factor every lr_drop_every epochs)
                              # or "cosine" (linear warm-up, then cosine decay to 0)
    "lr_drop_every": 20,
    "lr_drop_factor": 0.1,
    "warmup_epochs": 0,       # epochs of linear warm-up (cosine schedule)
    "weight_decay": 0.0,      # > 0: AdamW with this decoupled weight decay
    "early_stopping": None,   # None, or patience in epochs on a validation split of the train fold
    "val_fraction": 0.1,
    # augmentation
    "augment": True,
    "rotation": 30.0,
    "aug_scale": 0.0,         # > 0: random zoom by a factor in [1 - s, 1 + s]
    "aug_intensity": False,   # random brightness, contrast and gamma
    "aug_noise": False,       # random Gaussian blur or multiplicative speckle
    "oversample": "none",     # "none"; "peer": the curated peer's deterministic oversampling
                              # (busi_lib.data.protocols.peer_oversample), before training
    "aug_policy": "none",     # "none"; "trivial": after the above, one operation per image
                              # from albumentations / usaugment (busi_lib.data.augment.TRIVIAL_POOL);
                              # "lesion_crop": a random crop keeping the lesion, half the images
                              # (busi_lib.data.augment.lesion_crop); "context_swap": half
                              # the lesions moved into another image's surroundings
                              # (busi_lib.data.augment.context_swap)
    # inference (applied to the test fold and to BUS-BRA)
    "tta": False,             # average with the horizontally flipped image
    "mask_threshold": 0.5,
    "postprocess": "none",    # "none" or "largest_fill" (largest component, holes filled)
    # numerics
    "precision": "auto",      # "auto" | "float32" | "mixed_bfloat16"
    "deterministic": True,
    "seed": 42,               # seeds the split and, unless train_seed is set, the training
    "train_seed": None,       # None, or another seed for weights, shuffle, augmentation and
                              # dropout on the same split (a noise yardstick at a fixed fold)
    # external validation on BUS-BRA after each fold (never used for training or tuning)
    "external": False,
}

#: Keys added after records were made, with the value that reproduces what was done before
#: them: a key holding that value is left out of the config hash, so that the records made
#: before the key existed keep their hash.
LEGACY = {"train_seed": None, "resize": "squash", "normalize": "none", "cls_head": "gap",
          "seg_loss": "dice", "schedule": "step", "warmup_epochs": 0, "weight_decay": 0.0,
          "aug_scale": 0.0, "aug_intensity": False, "aug_noise": False, "tta": False,
          "mask_threshold": 0.5, "postprocess": "none", "baseline_width": 32,
          "aug_policy": "none", "crop_context": "keep", "oversample": "none", "net_size": None}


#: The training recipe of the ``cpu`` profile, chosen with :mod:`busi_lib.experiments.tune` on an inner
#: validation split of the duplicate-grouped fold 1's training images (never a test fold, never
#: BUS-BRA; the trials are under ``results/cpu/tuning/``; rule: keep a change that raises
#: validation Dice + AUC by more than 0.02). Stage 1 (schedule): warm-up + cosine at lr 1e-3
#: beat the paper's step schedule at lr 1e-4 by 0.18 over 30 epochs (lr 3e-3: +0.019, not
#: kept). Stage 2, one change at a time: Dice + BCE (+0.022), no enhancement instead of GHE
#: (+0.060), the classifier's second look at the predicted lesion (+0.051) and batches of 8
#: (+0.023) were kept; padding to a square, strong augmentation, per-image z-score and a
#: doubled classification weight were not. Stage 3: the four together scored 1.671 (validation
#: Dice 0.754, AUC 0.917) at 30 epochs and 1.646 at 40, so 30 epochs; inference as trained (no
#: flip TTA, no post-processing, threshold 0.5 scored best on the same validation images).
RECIPE: dict[str, Any] = {
    "epochs": 30, "lr": 1e-3, "schedule": "cosine", "warmup_epochs": 2, "batch_size": 8,
    "seg_loss": "dice_bce", "enhancement": "none", "cls_head": "gap_crop",
}
#: Stage 4 of the trials (robustness, judged on validation images perturbed as scanners differ,
#: busi_lib.experiments.shift; never BUS-BRA) kept the strong augmentation with 40 epochs (``robust_aug_e40``:
#: shift score +0.123, clean score -0.010). Trained as ``robust_grouped`` beside the recipe, which
#: stays the cpu profile's, so that the book can show what the robust choice costs and buys.
ROBUST_RECIPE: dict[str, Any] = {"aug_scale": 0.15, "aug_intensity": True, "aug_noise": True}
#: ... and its epochs, per experiment and profile (the trials' 40 and 60 for cpu; the other
#: profiles keep their own: smoke's 2, and the paper profile's early stopping). Stage 4's
#: follow-up (``robust_aug_e60``, a later session; rule fixed before it finished: clean score
#: +0.039, shift score +0.038 over ``robust_aug_e40``) is trained as ``robust_grouped_e60``.
ROBUST_EPOCHS: dict[str, dict[str, int]] = {"robust_grouped": {"cpu": 40},
                                            "robust_grouped_e60": {"cpu": 60},
                                            "robust_trivial_grouped_e60": {"cpu": 60},
                                            "robust_crop_grouped_e60": {"cpu": 60},
                                            "peer_curated": {"cpu": 60},
                                            "peer_segbench": {"cpu": 60},
                                            "peer_segbench_128": {"cpu": 60},
                                            "peer_grouped_locked": {"cpu": 60}}
#: The experiment whose fold models are the released model (``models/<experiment>_cpu``, the
#: README's predict line, the book's *Try the model*). ``robust_grouped_e60`` replaced
#: ``multitask_grouped`` (2026-12-03): on the same duplicate-grouped folds and machine its Dice is
#: higher with a paired interval above zero (chapter 3), and no candidate of issue 26 was
#: kept over it under a rule fixed before it was computed (shape fusion: ``busi_lib.eval.fusion``).
RELEASED_EXPERIMENT = "robust_grouped_e60"
#: A candidate that replaces the release only under
#: :func:`busi_lib.analysis.comparisons.release_verdict` (rule fixed 2026-12-03, before its
#: folds were trained).
RELEASE_CANDIDATES: tuple[str, ...] = ("trivial_grouped",)
#: The paper's training recipe (its section 3, as the book reads it in chapter 7): Adam at 1e-4 divided by 10 every
#: 20 epochs, batches of 16, multi-peak GHE, Dice loss, flips and rotation, images scaled to
#: [0, 1], the pooled head, no test-time choices. ``paper_recipe`` trains it with the cpu profile's network, size and epochs.
PAPER_RECIPE: dict[str, Any] = {
    **{k: v for k, v in LEGACY.items() if k != "train_seed"},
    "lr": 1e-4, "lr_drop_every": 20, "lr_drop_factor": 0.1, "enhancement": "ghe", "batch_size": 16,
}

#: What each profile changes. ``cpu`` is the default and what the book shows.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        # the whole book in minutes on 2 cores: tiny images, tiny network, 2 folds, 2 epochs of
        # the cpu profile's recipe
        **RECIPE, "image_size": 32, "filters": [4, 8, 8, 16], "bridge_filters": 16,
        "dense_units": 16, "max_per_class": 12, "n_folds": 2, "epochs": 2, "warmup_epochs": 1,
        "batch_size": 8, "precision": "float32",
    },
    "cpu": {
        # 128 px, half the paper's width (filters 16..128, bridge 256, 3.1 M parameters), the
        # tuned recipe: about 9 s an epoch on a 2-core CPU with bfloat16 units, 70 s without
        "image_size": 128, "filters": [16, 32, 64, 128], "bridge_filters": 256, **RECIPE,
    },
    "cpu_v1": {
        # the cpu profile before the recipe (records made until 2026-11-27, kept for the
        # comparison; they say "profile": "cpu"): the first 12 epochs of the paper's step
        # schedule, i.e. all at lr 1e-4, with the experiments of EXPERIMENTS_V1
        "image_size": 128, "filters": [16, 32, 64, 128], "bridge_filters": 256, "epochs": 12,
    },
    "paper": {
        # the paper's settings (GPU / Colab): 256 px, 500 epochs of the step schedule; stop
        # early on a validation split, since after ~60 epochs the learning rate is < 1e-7
        "image_size": 256, "epochs": 500, "early_stopping": 30,
    },
}

#: Baselines (Tables 4 and 7): segmentation-only and classification-only, same folds.
SEG_BASELINES = ("unet", "unetpp", "fpn", "deeplabv3p", "attunet")
CLS_BASELINES = ("resnet50", "vgg19", "densenet201", "inceptionv3", "mobilenet",
                 "inceptionresnetv2")
#: Classification baselines trained in float32 whatever the machine: in mixed bfloat16 their
#: training loss turned NaN under the recipe (InceptionV3 on all 5 folds, at epochs 1-9;
#: InceptionResNetV2 on fold 1, at epoch 4; 2-core bf16 CPU). InceptionV3 in float32 trained
#: its 30 epochs without NaN (one fold, in a scratch results folder whose freshly made split
#: differs from the committed one, so that run is not a record). The bfloat16 failures are
#: kept under ``results/cpu/superseded/``.
FLOAT32_BASELINES: dict[str, dict[str, Any]] = {
    "inceptionv3": {"precision": "float32"}, "inceptionresnetv2": {"precision": "float32"}}
#: Classification baselines with a learning rate of their own, chosen on the inner validation
#: split by :mod:`busi_lib.experiments.baseline_tune` (its rule, its records); the others use the recipe's.
#: VGG19 did not train at the recipe's 1e-3 (records under ``results/cpu/superseded/``); of the
#: candidates 1e-4 and 3e-5, 3e-5 scored higher (validation AUC 0.806 against 0.746).
BASELINE_LR: dict[str, float] = {"vgg19": 3e-5}
#: The paper's design choices, each switched off in turn (chapter 5).
ABLATIONS: dict[str, dict[str, Any]] = {
    "seg_only": {"task": "seg", "cls_head": "gap"},
    "cls_only": {"task": "cls", "cls_head": "gap"},
    "cls_encoder": {"cls_from": "encoder"},
    "plain_blocks": {"block": "plain"},
    # the recipe trains on the images as they are (no enhancement won on validation), so the
    # paper's multi-peak GHE is switched *on* here, and CLAHE tried as the other enhancement
    "enh_ghe": {"enhancement": "ghe"},
    "enh_clahe": {"enhancement": "clahe"},
    "ce_loss": {"cls_loss": "ce"},
}
#: How many extra training seeds the ablations' reference is trained with (noise yardstick).
REFERENCE_SEEDS = (1, 2)

#: Experiments of the current profiles. Ablations and baselines run the profile's full recipe
#: on the duplicate-grouped folds, paired fold by fold with ``ablation_reference``: the main
#: model under exactly their protocol and on the same machine (``multitask_grouped`` itself
#: when both are trained on one machine), retrained with other training seeds as the yardstick.
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "multitask": {"external": True},
    "multitask_grouped": {"split": "grouped", "external": True},
    "multitask_3class": {"classes": ["benign", "malignant", "normal"], "external": True},
    "paper_recipe": {"split": "grouped", "external": True, **PAPER_RECIPE},
    "robust_grouped": {"split": "grouped", "external": True, **ROBUST_RECIPE},
    "robust_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE},
    # issue 26, stage 7's kept candidate (TrivialAugment-style policy; shift score +0.106,
    # 98.75 % interval +0.002 to +0.210, five seeds a side) on the recipe it was tested on:
    # multitask_grouped + aug_policy "trivial", paired fold by fold with multitask_grouped and
    # with the release (rule: busi_lib.analysis.comparisons.release_verdict)
    "trivial_grouped": {"split": "grouped", "external": True, "aug_policy": "trivial"},
    # issue 26, stage 8's candidate (the policy on the released recipe), defined before stage
    # 8's verdict and trained only if that verdict keeps it; paired with the release (its base)
    # under the same rule. Stage 8 did not keep it (clean score -0.049, 95 % interval -0.080 to
    # -0.017), so it is not trained
    "robust_trivial_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE,
                                   "aug_policy": "trivial"},
    # issue 26, stage 9's candidate (crops that keep the lesion, on the released recipe),
    # defined before stage 9's verdict, trained only if that verdict keeps it; paired with the
    # release (its base) under busi_lib.analysis.comparisons.release_verdict. Stage 9 did not
    # keep it (no difference clears the seed noise: clean score -0.012, -0.050 to +0.025), so it
    # is not trained
    "robust_crop_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE,
                                "aug_policy": "lesion_crop"},
    # issue 26, stage 10's candidate (lesions moved into other images' surroundings, on the
    # released recipe), defined 2026-12-04 before stage 10's verdict and trained only if that
    # verdict keeps it; paired with the release (its base) under the same rule as stage 9's
    "robust_swap_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE,
                                "aug_policy": "context_swap"},
    # issue 26, stage 11's candidate (the released recipe at 192 px), defined 2026-12-04 before
    # any of its trials ran, trained only if stage 11 keeps it; paired with the release
    "robust_px192_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE,
                                 "image_size": 192},
    # issue 26, stage 12's candidate (the U-Net at 128 px on 256-px images: the lesion crop at
    # twice the detail), defined 2026-12-04 before any of its trials ran, trained only if
    # stage 12 keeps it; paired with the release
    "robust_crop256_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE,
                                   "image_size": 256, "net_size": 128},
    # issue 26, stage 13's candidate (the released recipe on histogram-equalised images),
    # defined 2026-12-04 before any of its trials ran, trained only if stage 13 keeps it;
    # paired with the release
    "robust_he_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE,
                              "enhancement": "he"},
    # issue 26, stage 14's candidate (burnt-in text and calipers inpainted), defined
    # 2026-12-04 before any of its trials ran, trained only if stage 14 keeps it; paired
    # with the release
    "robust_unmark_grouped_e60": {"split": "grouped", "external": True, **ROBUST_RECIPE,
                                  "enhancement": "unmark"},
    "ablation_reference": {"split": "grouped"},
    **{f"ablation_reference_s{s}": {"split": "grouped", "train_seed": s} for s in REFERENCE_SEEDS},
    **{name: {"split": "grouped", **ov} for name, ov in ABLATIONS.items()},
    # segmentation baselines at our network's first-stage width (16 in ``cpu``, 32 in ``paper``):
    # the same width as the reference they are paired with, and affordable on the CPU
    **{f"base_{n}": {"split": "grouped", "model": n, "task": "seg", "cls_head": "gap",
                     "baseline_width": None} for n in SEG_BASELINES},
    # the peers' protocols (issue 29; busi_lib.data.protocols), with the released recipe
    # (robust_grouped_e60's configuration) and its training seed
    "peer_curated": {"split": "peer_curated", "n_folds": 4, "seed": 1993, "train_seed": 42,
                     "classes": ["benign", "malignant", "normal"], **ROBUST_RECIPE},
    # the curated protocol with the peer's deterministic oversampling instead of our class
    # weights alone (defined 2026-12-04 before any of its folds ran; kept over peer_curated
    # only by busi_lib.analysis.peers.choose_curated_training, on the validation parts)
    "peer_curated_os": {"split": "peer_curated", "n_folds": 4, "seed": 1993, "train_seed": 42,
                        "classes": ["benign", "malignant", "normal"], **ROBUST_RECIPE,
                        "oversample": "peer"},
    # the segmentation benchmark's three published 70/30 splits at its 256 px, and the same
    # at our 128 px (a quarter of the compute; an approximation of their protocol)
    "peer_segbench": {"split": "peer_segbench", "n_folds": 3, "image_size": 256,
                      **ROBUST_RECIPE},
    "peer_segbench_128": {"split": "peer_segbench", "n_folds": 3, **ROBUST_RECIPE},
    # the duplicate-grouped protocol with a locked test set (binary; the fold models are also
    # scored on the locked test set and, as the peer does, on BUS-BRA)
    "peer_grouped_locked": {"split": "peer_grouped_locked", "n_folds": 5, "external": True,
                            **ROBUST_RECIPE},
    **{f"base_{n}": {"split": "grouped", "model": n, "task": "cls", "in_channels": 3,
                     "cls_head": "gap", **FLOAT32_BASELINES.get(n, {}),
                     **({"lr": BASELINE_LR[n]} if n in BASELINE_LR else {})}
       for n in CLS_BASELINES},
}

#: The peers' protocols the book's chapter *Against the peers* shows (the last of
#: :data:`BOOK_EXPERIMENTS`).
PEER_EXPERIMENTS: tuple[str, ...] = ("peer_curated", "peer_curated_os", "peer_grouped_locked",
                                     "peer_segbench_128", "peer_segbench")

#: Every experiment the book shows, in the order ``make results`` runs them: the three main
#: experiments, the paper's recipe and the robustness recipes, then the ablations with their
#: reference and its seeds, then the baselines (``busi-train --breadth-first`` runs fold 1 of
#: every one first), then the peers' protocols.
BOOK_EXPERIMENTS: tuple[str, ...] = (
    "multitask_grouped", "multitask", "multitask_3class", "paper_recipe", "robust_grouped",
    "robust_grouped_e60", "trivial_grouped", "ablation_reference",
    *ABLATIONS, *(f"ablation_reference_s{s}" for s in REFERENCE_SEEDS),
    *(f"base_{n}" for n in SEG_BASELINES + CLS_BASELINES),
    *PEER_EXPERIMENTS)

#: The experiments of profile ``cpu_v1`` (the records made before the recipe), frozen as they
#: were: ``light`` marks those run with the lighter protocol of LIGHT.
EXPERIMENTS_V1: dict[str, dict[str, Any]] = {
    "multitask": {"external": True},
    "multitask_grouped": {"split": "grouped"},
    "multitask_3class": {"classes": ["benign", "malignant", "normal"]},
    # the paper's schedule (lr / 10 every 20 epochs) leaves the network under-trained; the same
    # model with the learning rate dropped every 60 epochs instead (evidence for the gap)
    "multitask_slowdecay": {"lr_drop_every": 60, "external": True},
    # the paper's width (filters 32..256, bridge 512) and 40 epochs of its schedule (fold 0)
    "multitask_w32_e40": {"filters": [32, 64, 128, 256], "bridge_filters": 512, "epochs": 40,
                          "external": True, "folds": [0]},
    "seg_only": {"task": "seg", "light": True},
    "cls_only": {"task": "cls", "light": True},
    "cls_encoder": {"cls_from": "encoder", "light": True},
    "plain_blocks": {"block": "plain", "light": True},
    "enh_none": {"enhancement": "none", "light": True},
    "enh_clahe": {"enhancement": "clahe", "light": True},
    "ce_loss": {"cls_loss": "ce", "light": True},
    "grouped_light": {"split": "grouped", "light": True},
    "random_light": {"light": True},
    # random_light in mixed bfloat16, fold 0 only: a numerics check (emulated on AVX2)
    "random_light_bf16": {"light": True, "precision": "mixed_bfloat16", "folds": [0]},
    # ... and its noise yardstick: other training seeds on the same fold
    **{f"random_light_s{s}": {"light": True, "train_seed": s, "folds": [0]} for s in (1, 2, 3)},
    **{f"base_{n}": {"model": n, "task": "seg", "light": True} for n in SEG_BASELINES},
    **{f"base_{n}": {"model": n, "task": "cls", "in_channels": 3, "light": True}
       for n in CLS_BASELINES},
}
#: The book's experiments of profile ``cpu_v1``.
BOOK_EXPERIMENTS_V1: tuple[str, ...] = (
    "multitask", "multitask_grouped", "multitask_3class", "random_light", "seg_only", "cls_only",
    "cls_encoder", "plain_blocks", "enh_none", "enh_clahe", "ce_loss", "grouped_light",
    *(f"base_{n}" for n in SEG_BASELINES + CLS_BASELINES))
#: Profiles whose experiments are those of EXPERIMENTS_V1.
V1_PROFILES = ("cpu_v1",)

#: The lighter protocol of ``light`` experiments of EXPERIMENTS_V1 (cpu_v1: 64 px, 4 epochs at
#: lr 1e-3, no step, folds 1-3 of the 5-fold split; measured on fold 1: 3193 s of wall time
#: for all 20 light experiments on the 2-core AVX2 machine).
LIGHT = {"cpu_v1": {"epochs": 4, "image_size": 64, "lr": 1e-3, "folds": [0, 1, 2]}}


def experiments(profile: str) -> dict[str, dict[str, Any]]:
    """The experiment table of a profile (EXPERIMENTS_V1 for the profiles of V1_PROFILES;
    the robustness experiments with the profile's entry of ROBUST_EPOCHS)."""
    if profile in V1_PROFILES:
        return EXPERIMENTS_V1
    return {**EXPERIMENTS, **{name: {**EXPERIMENTS[name], "epochs": by_profile[profile]}
                              for name, by_profile in ROBUST_EPOCHS.items()
                              if profile in by_profile}}


def book_experiments(profile: str) -> tuple[str, ...]:
    """The experiments the book shows for a profile, in the order ``make results`` runs them."""
    return BOOK_EXPERIMENTS_V1 if profile in V1_PROFILES else BOOK_EXPERIMENTS


#: Allowed values of the configuration keys that take one of a few (``busi-train --list`` shows them).
CHOICES = {
    "enhancement": ("none", "he", "clahe", "ghe", "unmark"),
    "split": ("random", "grouped", "curated", "peer_curated", "peer_segbench",
              "peer_grouped_locked"),
    "full_res": ("stem", "input", "none"),
    "block": ("residual", "plain"),
    "task": ("multi", "seg", "cls"),
    "cls_from": ("456", "encoder"),
    "cls_loss": ("focal", "ce"),
    "class_weight_norm": ("mean1", "raw"),
    "precision": ("auto", "float32", "mixed_bfloat16"),
    "resize": ("squash", "pad"),
    "normalize": ("none", "zscore"),
    "cls_head": ("gap", "gap_crop"),
    "seg_loss": ("dice", "dice_bce"),
    "schedule": ("step", "cosine"),
    "aug_intensity": (False, True),
    "aug_noise": (False, True),
    "aug_policy": ("none", "trivial", "lesion_crop", "context_swap"),
    "oversample": ("none", "peer"),
    "crop_context": ("keep", "mask"),
    "tta": (False, True),
    "postprocess": ("none", "largest_fill"),
    "model": ("resunet",) + SEG_BASELINES + CLS_BASELINES,
    "pretrained": ("imagenet", None),
}
#: Keys that do not change what is computed for a fold (left out of the config hash).
NON_SEMANTIC = ("folds", "light")

def setting(cfg: dict[str, Any], key: str) -> Any:
    """``cfg[key]``; for a configuration recorded before ``key`` existed, its default
    (``DEFAULTS[key]``, which for the keys of ``LEGACY`` is the value that reproduces what was
    done then). The one place where a missing key gets its value.

    Raises
    ------
    ConfigError
        ``key`` is not a configuration key.
    """
    if key in cfg:
        return cfg[key]
    if key not in DEFAULTS:
        raise ConfigError(f"{key!r} is not a configuration key; expected one of {sorted(DEFAULTS)}")
    return DEFAULTS[key]


def make_config(profile: str = "cpu", experiment: str = "multitask", **overrides) -> dict[str, Any]:
    """The validated configuration of ``experiment`` in ``profile``, with ``overrides``.

    Raises
    ------
    ConfigError
        Unknown profile, experiment or key; a value out of range (see :func:`validate_config`).
    """
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r}: expected one of {list(PROFILES)}")
    table = experiments(profile)
    if experiment not in table:
        raise ConfigError(f"experiment={experiment!r}: expected one of {list(table)} "
                          f"(profile {profile!r})")
    cfg = copy.deepcopy(DEFAULTS)
    cfg.update(copy.deepcopy(PROFILES[profile]))
    exp = copy.deepcopy(table[experiment])
    # the light protocol first, so that an experiment's own keys (e.g. ``folds``) win
    if exp.pop("light", False):
        cfg.update(LIGHT[profile])
    cfg.update(exp)
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown}; expected names from {sorted(DEFAULTS)}")
    cfg.update(copy.deepcopy(overrides))
    if cfg["baseline_width"] is None:      # the width of our network in this profile
        cfg["baseline_width"] = cfg["filters"][0]
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict[str, Any]) -> None:
    """Check every value; the error names the parameter, its value and what was expected."""

    def need(key: str, ok: bool, expected: str) -> None:
        if not ok:
            raise ConfigError(f"{key}={cfg.get(key)!r}: expected {expected}")

    for key, choices in CHOICES.items():
        need(key, cfg[key] in choices, f"one of {list(choices)}")
    isint = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    need("image_size", isint(cfg["image_size"]) and cfg["image_size"] >= 32
         and cfg["image_size"] % 16 == 0,
         "an integer >= 32 divisible by 16 (the network's total stride)")
    need("net_size", cfg["net_size"] is None or (
        isint(cfg["net_size"]) and cfg["net_size"] >= 32 and cfg["net_size"] % 16 == 0
        and cfg["net_size"] <= cfg["image_size"] and cfg["model"] == "resunet"),
         f"None, or for the resunet an integer >= 32 divisible by 16 and at most image_size "
         f"({cfg['image_size']})")
    need("epochs", isint(cfg["epochs"]) and cfg["epochs"] >= 1, "an integer >= 1")
    need("baseline_width", isint(cfg["baseline_width"]) and cfg["baseline_width"] >= 1,
         "a positive integer (or None: the profile's filters[0])")
    need("n_folds", isint(cfg["n_folds"]) and cfg["n_folds"] >= 2, "an integer >= 2")
    need("batch_size", isint(cfg["batch_size"]) and cfg["batch_size"] >= 1, "an integer >= 1")
    need("seed", isint(cfg["seed"]) and cfg["seed"] >= 0, "a non-negative integer")
    need("train_seed", cfg["train_seed"] is None or (isint(cfg["train_seed"])
                                                     and cfg["train_seed"] >= 0),
         "None or a non-negative integer")
    need("lr", isinstance(cfg["lr"], (int, float)) and 0 < cfg["lr"] < 1, "a number in (0, 1)")
    need("lr_drop_every", isint(cfg["lr_drop_every"]) and cfg["lr_drop_every"] >= 1,
         "an integer >= 1")
    need("lr_drop_factor", 0 < cfg["lr_drop_factor"] <= 1, "a number in (0, 1]")
    need("rotation", 0 <= cfg["rotation"] <= 180, "degrees in [0, 180]")
    need("aug_scale", isinstance(cfg["aug_scale"], (int, float)) and 0 <= cfg["aug_scale"] < 0.5,
         "a number in [0, 0.5)")
    need("warmup_epochs", isint(cfg["warmup_epochs"]) and 0 <= cfg["warmup_epochs"] < cfg["epochs"],
         f"an integer in [0, epochs) = [0, {cfg['epochs']})")
    need("weight_decay", isinstance(cfg["weight_decay"], (int, float)) and
         0 <= cfg["weight_decay"] < 1, "a number in [0, 1)")
    need("mask_threshold", isinstance(cfg["mask_threshold"], (int, float)) and
         0 < cfg["mask_threshold"] < 1, "a probability in (0, 1)")
    need("dropout", 0 <= cfg["dropout"] < 1, "a rate in [0, 1)")
    need("focal_gamma", cfg["focal_gamma"] >= 0, "a number >= 0")
    need("seg_smooth", cfg["seg_smooth"] >= 0, "a number >= 0")
    need("val_fraction", 0 < cfg["val_fraction"] < 0.5, "a fraction in (0, 0.5)")
    need("early_stopping", cfg["early_stopping"] is None or
         (isint(cfg["early_stopping"]) and cfg["early_stopping"] >= 1), "None or an integer >= 1")
    need("max_per_class", cfg["max_per_class"] is None or
         (isint(cfg["max_per_class"]) and cfg["max_per_class"] >= cfg["n_folds"]),
         f"None or an integer >= n_folds ({cfg['n_folds']})")
    need("filters", len(cfg["filters"]) == 4 and all(isint(f) and f >= 1 for f in cfg["filters"]),
         "four positive integers")
    need("loss_weights", len(cfg["loss_weights"]) == 2 and all(w >= 0 for w in cfg["loss_weights"]),
         "two non-negative numbers [seg, cls]")
    need("classes", list(cfg["classes"]) in (["benign", "malignant"],
                                              ["benign", "malignant", "normal"]),
         "['benign', 'malignant'] or ['benign', 'malignant', 'normal']")
    need("external", isinstance(cfg["external"], bool), "True or False")
    need("in_channels", cfg["in_channels"] in (1, 3), "1 or 3")
    need("folds", cfg["folds"] is None or (len(cfg["folds"]) > 0 and all(
        isint(k) and 0 <= k < cfg["n_folds"] for k in cfg["folds"])),
         f"None or a list of fold indices in [0, {cfg['n_folds'] - 1}]")


def config_hash(cfg: dict[str, Any]) -> str:
    """12-hex-digit hash of the semantic part of a configuration (see ``NON_SEMANTIC``)."""
    sem = {k: v for k, v in cfg.items() if k not in NON_SEMANTIC
           and not (k in LEGACY and _same(v, LEGACY[k]))}
    return hashlib.sha256(json.dumps(sem, sort_keys=True, default=str).encode()).hexdigest()[:12]

def _same(a, b) -> bool:
    """Equal values of the same kind (``0 == 0.0``, but ``False`` is not ``0``)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


#: Epochs of the light protocol per profile (see ``LIGHT``).
LIGHT_EPOCHS = {name: light["epochs"] for name, light in LIGHT.items()}
