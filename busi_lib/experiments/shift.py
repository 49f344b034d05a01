"""Simulated acquisition shift: a selection signal for robustness that never looks at BUS-BRA.

BUSI comes from one kind of scanner, so a validation split of BUSI cannot say whether a recipe
holds up on another machine, and BUS-BRA, the external test set, must not be used to choose.
This module perturbs the *validation* images in the ways scanners and their settings are known
to differ (overall gain, dynamic range / contrast, gamma of the grey map, resolution, speckle,
field of view), each at one fixed strength and with a fixed seed, and measures validation Dice
and AUC on every perturbed copy. The perturbations were fixed from that generic list before
any stage-4 trial ran, and none was fitted to BUS-BRA.

The strengths sit at or beyond the edges of the strong training augmentation
(:mod:`busi_lib.data.augment`: contrast 0.75-1.25, gamma 0.7-1.5, blur sigma up to 1.2, speckle up
to 0.2, zoom 0.85-1.15), so a recipe trained with that augmentation is not simply tested on its
own training distribution; it is still favoured by a signal of this kind, which is why the
external set is what finally says whether the choice transfers.

    SHIFTS                 name -> what it does
    shift_images(...)      one perturbation of uint8 images (and their masks)
    perturbed_inputs(...)  the same, as a configuration's network sees it (enhancement again)
    shift_metrics(...)     validation Dice and AUC of a model on every perturbation
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from busi_lib.data.augment import warp
from busi_lib.data.enhance import METHODS as CONTRAST_METHODS
from busi_lib.data.enhance import enhance
from busi_lib.errors import ConfigError
from busi_lib.eval.inference import network_outputs
from busi_lib.experiments.trainer import evaluate_outputs

#: name -> (description, parameters). The order is the order of the tables.
SHIFTS: dict[str, tuple[str, dict]] = {
    "gain_low": ("overall gain x 0.6", {"gain": 0.6}),
    "gain_high": ("overall gain x 1.4 (clipped)", {"gain": 1.4}),
    "contrast_low": ("contrast x 0.6 about the mean grey", {"contrast": 0.6}),
    "gamma_dark": ("grey map gamma 1.8", {"gamma": 1.8}),
    "gamma_bright": ("grey map gamma 0.55", {"gamma": 0.55}),
    "blur": ("lower resolution: Gaussian blur, sigma 1.5 px", {"blur": 1.5}),
    "speckle": ("multiplicative speckle, sd 0.25", {"speckle": 0.25}),
    "zoom_out": ("wider field of view: content x 0.75, zero border", {"zoom": 0.75}),
    "zoom_in": ("narrower field of view: content x 1.25 about the centre", {"zoom": 1.25}),
}
SEED = 20261127


def shift_images(images: np.ndarray, masks: np.ndarray, name: str, seed: int = SEED
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Perturbed copies of ``uint8`` images ``(N, S, S)`` and their 0/1 masks.

    Intensity changes act on the image scaled to [0, 1] and leave the masks as they are; a
    zoom moves image and mask together (bilinear for the image, nearest for the mask, zero
    fill). The result is ``uint8`` again. Deterministic: the same ``seed`` gives the same
    copies.

    Raises
    ------
    ConfigError
        For a ``name`` not in :data:`SHIFTS`, or images that are not ``uint8``.
    """
    if name not in SHIFTS:
        raise ConfigError(f"shift={name!r}: expected one of {list(SHIFTS)}")
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ConfigError(f"shift_images needs uint8 images, got dtype {images.dtype}")
    if len(images) != len(masks):
        raise ConfigError(f"{len(images)} images but {len(masks)} masks: expected as many")
    p = SHIFTS[name][1]
    x = images.astype(np.float32) / 255.0
    m = np.asarray(masks).copy()
    if "gain" in p:
        x = x * p["gain"]
    if "contrast" in p:
        mean = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)
        x = (x - mean) * p["contrast"] + mean
    if "gamma" in p:
        x = np.clip(x, 0, 1) ** p["gamma"]
    if "blur" in p:
        s = p["blur"]
        x = ndimage.gaussian_filter(x, sigma=(0, s, s) + (0,) * (x.ndim - 3))
    if "speckle" in p:
        rng = np.random.default_rng(seed)
        x = x * (1 + p["speckle"] * rng.standard_normal(x.shape).astype(np.float32))
    if "zoom" in p:

        x = np.stack([warp(im, 0.0, p["zoom"], order=1) for im in x])
        m = np.stack([warp(mk, 0.0, p["zoom"], order=0) for mk in m])
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), m


def perturbed_inputs(cfg: dict, images: np.ndarray, masks: np.ndarray, name: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The perturbed copy ``name`` of preprocessed ``uint8`` images as the network of ``cfg``
    sees it: :func:`shift_images`, then the configuration's enhancement applied again
    (:func:`busi_lib.data.enhance.enhance`, at the network's size).

    A scanner's gain, contrast or grey map changes the image before the pipeline's own
    preprocessing does anything, so a pipeline that equalises grey levels (``"he"``) sees the
    perturbed image equalised again; without this the perturbation would act after the
    equalisation and the signal could not tell such a pipeline from one without it. Only the
    contrast enhancements are applied again (``"unmark"`` is not: the marks are already gone,
    and its detector is made for full-size images). For ``enhancement="none"`` this is
    :func:`shift_images` unchanged.
    """
    imgs, mks = shift_images(images, masks, name)
    method = cfg.get("enhancement", "none")
    if method in CONTRAST_METHODS and method != "none":
        imgs = np.stack([enhance(im, method) for im in imgs])
    return imgs, mks


def shift_metrics(model, cfg: dict, images: np.ndarray, masks: np.ndarray, labels,
                  class_names, shifts=None) -> dict[str, dict[str, float]]:
    """Validation Dice and AUC of ``model`` on each perturbed copy of the images.

    Returns ``{shift: {"val_dice": ..., "val_auc": ...}}`` for each name in ``shifts``
    (default: all of :data:`SHIFTS`; each made by :func:`perturbed_inputs`), predicted as the
    trial is evaluated (no test-time
    augmentation, threshold 0.5, no post-processing).
    """

    out = {}
    c = {**cfg, "tta": False, "mask_threshold": 0.5, "postprocess": "none"}
    for name in shifts or SHIFTS:
        imgs, mks = perturbed_inputs(c, images, masks, name)
        m, _, _ = evaluate_outputs(c, network_outputs(model, c, imgs), mks, labels, class_names)
        out[name] = {"val_dice": float(m.get("seg_DC_mean", float("nan"))),
                     "val_auc": float(m.get("cls_AUC", float("nan")))}
    return out


def shift_score(shift: dict[str, dict[str, float]]) -> float:
    """Mean over the perturbations of validation Dice + AUC (the stage-4 selection score)."""
    if not shift:
        raise ConfigError("no shift metrics: this trial was recorded without them")
    return float(np.mean([v["val_dice"] + v["val_auc"] for v in shift.values()]))
