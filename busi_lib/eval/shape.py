"""Shape descriptors of a lesion mask, the features a radiologist's BI-RADS lexicon describes.

For the largest connected component of a binary mask (``area_frac`` counts every component):

=================  ==========================================================================
``area_frac``      lesion pixels / image pixels
``solidity``       area / area of the convex hull (irregular, lobulated shapes are lower)
``circularity``    :math:`4 \\pi A / P^2` (1 for a disc; lower for elongated or spiculated)
``extent``         area / area of the bounding box
``taller_wide``    bounding-box height / width ("taller than wide", > 1 is suspicious)
``roughness``      perimeter / perimeter of the convex hull (>= 1; higher for a rough margin)
=================  ==========================================================================

Shape depends on the aspect ratio, so masks predicted on a squashed square are first brought
back to the image's own proportions (:func:`predicted_descriptors`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from busi_lib.eval.inference import restore_mask

DESCRIPTORS = ("area_frac", "solidity", "circularity", "extent", "taller_wide", "roughness")


def descriptors(mask: np.ndarray) -> dict[str, float]:
    """The :data:`DESCRIPTORS` of one binary mask ``(H, W)``; all NaN for an empty mask."""
    from skimage import measure

    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask of shape {mask.shape}: expected (H, W)")
    if not mask.any():
        return {k: float("nan") for k in DESCRIPTORS}
    lab = measure.label(mask, connectivity=2)
    props = max(measure.regionprops(lab), key=lambda p: p.area)
    area = float(props.area)
    perim = float(props.perimeter) or 1.0
    h = props.bbox[2] - props.bbox[0]
    w = props.bbox[3] - props.bbox[1]
    hull = props.image_convex
    hull_perim = float(measure.perimeter(hull)) or 1.0
    return {"area_frac": float(mask.sum()) / mask.size,
            "solidity": float(props.solidity),
            "circularity": float(min(4 * np.pi * area / perim ** 2, 1.0)),
            "extent": float(props.extent),
            "taller_wide": float(h / max(w, 1)),
            "roughness": float(perim / hull_perim)}


def descriptor_table(masks) -> pd.DataFrame:
    """One row of :data:`DESCRIPTORS` per mask."""
    return pd.DataFrame([descriptors(m) for m in masks], columns=list(DESCRIPTORS))


def predicted_descriptors(masks: np.ndarray, orig_sizes, resize: str = "squash",
                          side: int = 256) -> pd.DataFrame:
    """Descriptors of binary masks predicted at ``S x S``, each first brought back to its
    image's proportions (``orig_sizes`` rows ``(H, W)``), scaled so that the longer side is
    ``side`` pixels (the descriptors do not depend on scale)."""

    rows = []
    for m, (h, w) in zip(masks, np.asarray(orig_sizes)):
        f = side / max(h, w)
        shape = (max(1, round(h * f)), max(1, round(w * f)))
        rows.append(descriptors(restore_mask(m.astype(np.float32), shape, resize) >= 0.5))
    return pd.DataFrame(rows, columns=list(DESCRIPTORS))


def mask_descriptors(mask: np.ndarray, side: int = 256) -> dict[str, float | None]:
    """The shape descriptors of :mod:`busi_lib.eval.shape` (area fraction, solidity, circularity,
    extent, taller-than-wide ratio, roughness) of a mask at the image's size, computed on the
    mask scaled so that its longer side is ``side`` pixels, as the book's prediction tables do
    (they do not depend on scale); ``None`` for an empty mask. They describe the outline only:
    the network's probability does not use them."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    if max(h, w) > side:
        f = side / max(h, w)
        rows = (np.arange(max(1, round(h * f))) / f).astype(int)
        cols = (np.arange(max(1, round(w * f))) / f).astype(int)
        small = mask[np.ix_(rows, cols)]
        mask = small if small.any() or not mask.any() else mask
    return {k: (round(float(v), 4) if np.isfinite(v) else None)
            for k, v in descriptors(mask).items()}
