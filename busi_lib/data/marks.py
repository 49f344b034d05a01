"""Burnt-in marks of a scanner's screen (text, calipers, measuring lines), found and inpainted.

Many BUSI images carry what the sonographer typed or measured: a side and position label
("RIGHT BREAST", "LT9"), calipers (``+``) on the lesion's edge and the dotted lines between
them. They are drawn by the scanner, not imaged, and a network can learn to read them (a
measured lesion is a suspicious one). Images from other sites and scanners need not carry
such marks. :func:`remove_marks` finds them and fills them from their
surroundings, so that a network trained on the result cannot use them.

How a mark is found (:func:`mark_mask`): a mark is bright and thin. A pixel is a *core* pixel
when it is at least ``level`` grey and at least ``contrast`` above the median of its
``size x size`` neighbourhood (OpenCV's median filter; a median of that size removes strokes
and dots a few pixels wide but keeps tissue structures, which are wider). Pixels that stand
out in the same way from a ``wide x wide`` neighbourhood join a mark when they touch a core
pixel (the strokes of bold letters fill the narrow window). Connected groups larger than
``max_area`` pixels are dropped (a mark is small, a bright reflector along a fascia is long);
what is left is grown by ``grow`` pixels to take the anti-aliased rim of the strokes. The
filling (:func:`inpaint`) is OpenCV's :func:`cv2.inpaint` (Telea's fast marching method),
from the surrounding pixels.

The parameters were set by eye, before any training with them, on 24 BUSI images (text on
black and on tissue, calipers, dotted lines), for images about 500 pixels across as BUSI's
are; no label and no result was looked at. The detector is a heuristic, not a learned one: it
removes most text and calipers, and leaves some letters drawn over bright tissue and faint
dots of measuring lines; it also fills a few isolated bright specks of tissue.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from busi_lib.errors import ConfigError

__all__ = ["mark_mask", "inpaint", "remove_marks", "mark_table"]


def _check(img) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 2 or arr.dtype != np.uint8 or arr.size == 0:
        raise ConfigError(f"image of shape {arr.shape} and dtype {arr.dtype}: expected a "
                          "non-empty 2-D uint8 grey image")
    return arr


def mark_mask(img: np.ndarray, *, level: int = 170, contrast: int = 70, size: int = 7,
              wide: int = 11, max_area: int = 400, grow: int = 3) -> np.ndarray:
    """Where the burnt-in marks of a grey image are (see the module's description).

    Parameters
    ----------
    img : (H, W) uint8
    level : a core pixel's least grey level
    contrast : a core pixel's least height above the median of its neighbourhood
    size : side of that neighbourhood (the median filter), pixels; odd
    wide : side of a wider neighbourhood, odd, ``>= size``: pixels that stand out from it as
        a core pixel does from the first join a mark when they touch one (bold letters, whose
        strokes fill the narrow window), never on their own (bright speckle stands out from a
        wide window too)
    max_area : largest connected group of such pixels that counts as a mark, pixels
    grow : pixels added around each mark (its anti-aliased rim)

    Returns
    -------
    (H, W) bool
    """
    import cv2

    img = _check(img)
    for name, v, low in (("level", level, 0), ("contrast", contrast, 1), ("size", size, 3),
                         ("wide", wide, 3), ("max_area", max_area, 1), ("grow", grow, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
            raise ConfigError(f"{name}={v!r}: expected an integer >= {low}")
    if size % 2 == 0 or wide % 2 == 0 or wide < size:
        raise ConfigError(f"size={size!r}, wide={wide!r}: expected odd integers with "
                          "wide >= size (centred windows)")
    src = np.ascontiguousarray(img)

    def cores(k: int) -> np.ndarray:
        height = img.astype(np.int16) - cv2.medianBlur(src, k).astype(np.int16)
        return (img >= level) & (height >= contrast)

    seeds = cores(size)
    region = seeds | cores(wide) if wide > size else seeds
    labels, n = ndimage.label(region, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(img.shape, bool)
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(region, labels, index=index)
    seeded = ndimage.maximum(seeds, labels, index=index) > 0
    keep = np.concatenate([[False], (areas <= max_area) & seeded])
    marks = keep[labels]
    if grow and marks.any():
        marks = ndimage.binary_dilation(marks, structure=np.ones((3, 3), bool), iterations=grow)
    return marks


def inpaint(img: np.ndarray, marks: np.ndarray, radius: int = 3) -> np.ndarray:
    """``img`` with the pixels of ``marks`` (a boolean mask of its shape, e.g. from
    :func:`mark_mask`) filled from their surroundings (OpenCV, Telea's method, ``radius``
    pixels); a copy when ``marks`` is empty. The input is never modified.

    Returns
    -------
    (H, W) uint8
    """
    import cv2

    img = _check(img)
    marks = np.asarray(marks, bool)
    if marks.shape != img.shape:
        raise ConfigError(f"marks of shape {marks.shape} for an image of shape {img.shape}; "
                          "expected the same shape")
    if not marks.any():
        return img.copy()
    return cv2.inpaint(np.ascontiguousarray(img), marks.astype(np.uint8), int(radius),
                       cv2.INPAINT_TELEA)


def remove_marks(img: np.ndarray, radius: int = 3, **kwargs) -> np.ndarray:
    """``img`` with its burnt-in marks (:func:`mark_mask`, whose keywords it passes on)
    inpainted from their surroundings (:func:`inpaint`). An image without marks comes back
    unchanged; the input is never modified.

    Returns
    -------
    (H, W) uint8
    """
    return inpaint(img, mark_mask(img, **kwargs), radius)


def mark_table(items) -> pd.DataFrame:
    """Marks per image: ``items`` yields ``(id, label, image, lesion mask)`` (a grey ``uint8``
    image and a boolean mask of its shape, as :func:`busi_lib.data.busi.load_sample` reads
    them). Returns, per image, ``id``, ``label``, the share of its pixels that
    :func:`mark_mask` finds (``marked``) and the share of its lesion's pixels that are marked
    (``lesion_marked``; 0 for an image without a lesion)."""
    rows = []
    for ident, label, img, lesion in items:
        found = mark_mask(img)
        lesion = np.asarray(lesion, bool)
        if lesion.shape != found.shape:
            raise ConfigError(f"{ident}: mask of shape {lesion.shape} for an image of shape "
                              f"{found.shape}; expected the same shape")
        rows.append({"id": ident, "label": label, "marked": float(found.mean()),
                     "lesion_marked": float((found & lesion).sum() / lesion.sum())
                     if lesion.any() else 0.0})
    return pd.DataFrame(rows, columns=["id", "label", "marked", "lesion_marked"])
