"""From images to network inputs, and from network outputs to predictions.

Shared by training (:mod:`busi_lib.experiments.crossval`), tuning (:mod:`busi_lib.experiments.tune`), the external
evaluation on BUS-BRA (:mod:`busi_lib.experiments.external`) and the predictor (:mod:`busi_lib.serve.predictor`),
so that all of them feed the network the same way:

* :func:`to_input`: ``uint8`` images ``(N, S, S)`` -> ``float32`` ``(N, S, S, C)``, scaled to
  [0, 1] (``normalize="none"``, the paper) or standardised per image (``"zscore"``);
* :func:`predict`: batched inference without ``tf.data``, optionally averaged with the
  horizontally flipped image (test-time augmentation);
* :func:`postprocess_masks`: threshold, optionally keep the largest connected component and
  fill holes.
"""

from __future__ import annotations

import numpy as np

from busi_lib.config import setting
from busi_lib.data.enhance import enhance
from busi_lib.data.images import RESIZE_MODES, pad_geometry, resize_image
from busi_lib.errors import ConfigError

NORMALIZE = ("none", "zscore")


def to_input(images: np.ndarray, in_channels: int = 1, normalize: str = "none") -> np.ndarray:
    r"""Network input from ``uint8`` images ``(N, S, S)``.

    ``normalize="none"``: :math:`x = I / 255`. ``"zscore"``: per image,
    :math:`x = (I - \mu) / \max(\sigma, 1)` with the image's own mean and standard deviation
    (grey levels), which removes a scanner's overall gain and contrast.
    ``in_channels=3`` repeats the grey channel (ImageNet-style baselines).
    """
    if normalize not in NORMALIZE:
        raise ConfigError(f"normalize={normalize!r}: expected one of {list(NORMALIZE)}")
    if in_channels not in (1, 3):
        raise ConfigError(f"in_channels={in_channels!r}: expected 1 or 3")
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images of shape {images.shape}: expected (N, S, S)")
    x = standardize(images.astype(np.float32)[..., None] / 255.0, normalize)
    return np.repeat(x, 3, axis=-1) if in_channels == 3 else x


def standardize(x: np.ndarray, normalize: str = "none") -> np.ndarray:
    """Images in [0, 1] ``(N, S, S, 1)`` as :func:`to_input` scales them (after augmentation)."""
    if normalize == "none":
        return x
    if normalize != "zscore":
        raise ConfigError(f"normalize={normalize!r}: expected one of {list(NORMALIZE)}")
    mu = x.mean(axis=(1, 2, 3), keepdims=True)
    sd = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1.0 / 255.0)
    return (x - mu) / sd


def targets(task: str, masks: np.ndarray, labels: np.ndarray) -> dict:
    """Training targets of a task: ``{"mask": (N, S, S, 1) float32, "label": (N,) int32}``."""
    t = {}
    if task in ("multi", "seg"):
        t["mask"] = np.asarray(masks).astype(np.float32)[..., None]
    if task in ("multi", "cls"):
        t["label"] = np.asarray(labels).astype(np.int32)
    return t


def run_network(model, x: np.ndarray, batch_size: int = 32, tta: bool = False) -> dict[str, np.ndarray]:
    """Batched inference without ``tf.data`` (no iterator, no stall), as float32 numpy.

    With ``tta=True`` every output is the mean of the prediction on the image and on its
    horizontal mirror (the mask prediction mirrored back first).
    """
    outs: dict[str, list] = {}
    for s in range(0, len(x), batch_size):
        o = model.predict_on_batch(x[s:s + batch_size])
        if tta:
            f = model.predict_on_batch(x[s:s + batch_size][:, :, ::-1])
            o = {k: (np.asarray(v, np.float32) + (np.asarray(f[k], np.float32)[:, :, ::-1]
                                                   if k == "mask" else np.asarray(f[k], np.float32))
                     ) / 2 for k, v in o.items()}
        for k, v in o.items():
            outs.setdefault(k, []).append(np.asarray(v, np.float32))
    return {k: np.concatenate(v) for k, v in outs.items()}


def postprocess_masks(prob: np.ndarray, threshold: float = 0.5, *, largest: bool = False,
                      fill_holes: bool = False) -> np.ndarray:
    """Binary masks from mask probabilities ``(N, S, S)`` (or ``(N, S, S, 1)``).

    Parameters
    ----------
    threshold : float in (0, 1)
        A pixel is lesion when its probability is at least ``threshold``.
    largest : bool
        Keep only the largest connected component (8-connectivity) of each mask.
    fill_holes : bool
        Fill holes inside each mask.
    """
    from scipy import ndimage

    if not 0 < threshold < 1:
        raise ConfigError(f"threshold={threshold!r}: expected a probability in (0, 1)")
    prob = np.asarray(prob)
    if prob.ndim == 4:
        prob = prob[..., 0]
    out = prob >= threshold
    if not (largest or fill_holes):
        return out
    eight = np.ones((3, 3), bool)
    for i in range(len(out)):
        m = out[i]
        if largest and m.any():
            lab, n = ndimage.label(m, structure=eight)
            if n > 1:
                sizes = np.bincount(lab.ravel())[1:]
                m = lab == (1 + int(np.argmax(sizes)))
        if fill_holes:
            m = ndimage.binary_fill_holes(m)
        out[i] = m
    return out


def prepare_image(img: np.ndarray, cfg: dict) -> np.ndarray:
    """One grey ``uint8`` image ``(H, W)`` as the network of ``cfg`` sees it: enhanced
    (``cfg["enhancement"]``) at full resolution, then resized (``cfg["resize"]``) to
    ``cfg["image_size"]``, exactly as :func:`busi_lib.data.busi.load_busi` prepares BUSI."""

    return resize_image(enhance(img, cfg["enhancement"]), cfg["image_size"],
                        setting(cfg, "resize"))


def restore_mask(prob: np.ndarray, shape: tuple[int, int], resize: str = "squash") -> np.ndarray:
    """A mask probability map ``(S, S)`` brought back to an image of ``shape = (H, W)``.

    The inverse of the resizing of :func:`prepare_image`: bilinear resize to ``(H, W)``
    (``"squash"``), or to the padded square and then the image's own window (``"pad"``).
    """
    from PIL import Image

    if resize not in RESIZE_MODES:
        raise ConfigError(f"resize={resize!r}: expected one of {list(RESIZE_MODES)}")
    h, w = int(shape[0]), int(shape[1])
    p = Image.fromarray(np.asarray(prob, np.float32))
    if resize == "squash":
        return np.asarray(p.resize((w, h), Image.Resampling.BILINEAR), np.float32)
    top, left, side = pad_geometry(h, w)
    big = np.asarray(p.resize((side, side), Image.Resampling.BILINEAR), np.float32)
    return big[top:top + h, left:left + w]


def network_outputs(model, cfg: dict, images: np.ndarray) -> dict[str, np.ndarray]:
    """Raw outputs on ``uint8`` images ``(N, S, S)`` with the configuration's input scaling and
    test-time augmentation (``cfg["tta"]``)."""
    return run_network(model, to_input(images, cfg["in_channels"], setting(cfg, "normalize")),
                   tta=setting(cfg, "tta"))


def binarize(cfg: dict, mask_prob: np.ndarray) -> np.ndarray:
    """Binary masks from mask probabilities with the configuration's threshold and
    post-processing (``cfg["mask_threshold"]``, ``cfg["postprocess"]``)."""
    both = setting(cfg, "postprocess") == "largest_fill"
    return postprocess_masks(mask_prob, setting(cfg, "mask_threshold"), largest=both,
                             fill_holes=both)
