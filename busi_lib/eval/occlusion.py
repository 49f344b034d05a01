"""Context reliance: a classifier's AUC with the lesion hidden, or with only the lesion kept.

A model that reads the lesion falls toward 0.5 when the lesion is hidden; one that reads the
surroundings (scanner, depth, text) keeps its AUC. Used by the tuning trials (stage 6) and by
:mod:`busi_lib.analysis.reliance`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from busi_lib.errors import ConfigError
from busi_lib.eval.inference import network_outputs
from busi_lib.eval.metrics import fast_auc

DARK_LEVEL = 10          # grey level under which a pixel counts as near-black


def occlude(images: np.ndarray, masks: np.ndarray, keep: str, dilate: int = 3,
            margin: float = 0.15) -> np.ndarray:
    """Copies of ``uint8`` images ``(N, S, S)`` with the lesion or its surroundings hidden.

    ``keep="background"``: the lesion (its mask dilated by ``dilate`` pixels) is filled with the
    image's median grey. ``keep="lesion"``: everything outside the lesion's bounding box, grown
    by ``margin`` of its size on each side, is set to 0. Images with an empty mask are unchanged.
    """
    if keep not in ("background", "lesion"):
        raise ConfigError(f"keep={keep!r}: expected 'background' or 'lesion'")
    out = images.copy()
    for i, (img, m) in enumerate(zip(images, masks)):
        if not m.any():
            continue
        if keep == "background":
            region = ndimage.binary_dilation(m, iterations=dilate) if dilate else m
            out[i][region] = np.uint8(np.median(img))
        else:
            ys, xs = np.nonzero(m)
            h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
            y0, y1 = int(max(0, ys.min() - margin * h)), int(min(img.shape[0], ys.max() + 1 + margin * h))
            x0, x1 = int(max(0, xs.min() - margin * w)), int(min(img.shape[1], xs.max() + 1 + margin * w))
            keep_box = np.zeros_like(m)
            keep_box[y0:y1, x0:x1] = True
            out[i][~keep_box] = 0
    return out


def occlusion_auc(model, cfg: dict, images: np.ndarray, masks: np.ndarray, labels) -> dict:
    """AUC of the malignancy probability on the images as they are, without the lesion, and
    with the lesion only (see :func:`occlude`). ``labels``: 1 = malignant."""

    mal = list(cfg["classes"]).index("malignant")
    out = {}
    for name, imgs in (("auc", images), ("auc_no_lesion", occlude(images, masks, "background")),
                       ("auc_lesion_only", occlude(images, masks, "lesion"))):
        out[name] = fast_auc(labels, network_outputs(model, cfg, imgs)["label"][:, mal])
    return out
