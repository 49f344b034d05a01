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
#: What :func:`occlude` can keep, and the key :func:`occlusion_auc` gives each.
KEEP = ("background", "background_box", "lesion")
AUC_KEYS = {"background": "auc_no_lesion", "background_box": "auc_no_lesion_box",
            "lesion": "auc_lesion_only"}


def occlude(images: np.ndarray, masks: np.ndarray, keep: str, dilate: int = 3,
            margin: float = 0.15) -> np.ndarray:
    """Copies of ``uint8`` images ``(N, S, S)`` with the lesion or its surroundings hidden.

    ``keep="background"``: the lesion (its mask dilated by ``dilate`` pixels) is filled with the
    image's median grey; its outline stays visible as a flat grey silhouette, so its *shape*
    is still there to read. ``keep="background_box"``: a square centred on the lesion's
    bounding box, of side the box's longer side grown by ``margin`` on each side, is filled
    with the median grey: outline and aspect ratio are gone, only the lesion's rough size and
    place are left. ``keep="lesion"``: everything outside the lesion's bounding box, grown by
    ``margin`` of its size on each side, is set to 0. Images with an empty mask are unchanged.
    """
    if keep not in KEEP:
        raise ConfigError(f"keep={keep!r}: expected one of {KEEP}")
    out = images.copy()
    for i, (img, m) in enumerate(zip(images, masks)):
        if not m.any():
            continue
        if keep == "background":
            region = ndimage.binary_dilation(m, iterations=dilate) if dilate else m
            out[i][region] = np.uint8(np.median(img))
        elif keep == "background_box":
            ys, xs = np.nonzero(m)
            side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) * (1 + 2 * margin)
            cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
            y0, x0 = (int(max(0, np.floor(c - side / 2))) for c in (cy, cx))
            y1, x1 = (int(min(n, np.ceil(c + side / 2))) for c, n in zip((cy, cx), img.shape))
            out[i][y0:y1, x0:x1] = np.uint8(np.median(img))
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
    """AUC of the malignancy probability on the images as they are (``auc``), with the lesion
    hidden as a grey silhouette (``auc_no_lesion``), with a square around it hidden
    (``auc_no_lesion_box``), and with the lesion only (``auc_lesion_only``); see
    :func:`occlude`. ``labels``: 1 = malignant."""
    return occlusion_aucs(occluded_probabilities(model, cfg, images, masks), labels)


def occlusion_aucs(probabilities: dict[str, np.ndarray], labels) -> dict:
    """:func:`occlusion_auc` from probabilities already computed by
    :func:`occluded_probabilities` (the model is not run again)."""
    return {"auc": fast_auc(labels, probabilities["as is"]),
            **{AUC_KEYS[k]: fast_auc(labels, probabilities[k]) for k in KEEP}}


def occluded_probabilities(model, cfg: dict, images: np.ndarray, masks: np.ndarray
                           ) -> dict[str, np.ndarray]:
    """The network's malignancy probability of each image ``"as is"`` and with each occlusion
    of :data:`KEEP` (keyed by it)."""
    mal = list(cfg["classes"]).index("malignant")
    out = {"as is": network_outputs(model, cfg, images)["label"][:, mal]}
    for keep in KEEP:
        out[keep] = network_outputs(model, cfg, occlude(images, masks, keep))["label"][:, mal]
    return out
