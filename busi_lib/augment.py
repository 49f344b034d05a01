"""Training augmentation, identical for an image and its mask (the paper: flips and rotation).

Each epoch draws from a ``numpy.random.Generator`` seeded by ``(seed, fold, epoch)``, so an
epoch's augmented images depend only on those three numbers: two runs, or a run resumed from a
checkpoint, see exactly the same images. Rotation uses :func:`scipy.ndimage.rotate` (bilinear for
the image, nearest for the mask, zero fill outside the frame, as the ultrasound background).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def epoch_rng(seed: int, fold: int, epoch: int) -> np.random.Generator:
    """The generator of one epoch of one fold."""
    return np.random.default_rng([int(seed), int(fold), int(epoch)])


def augment_batch(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator, *,
                  rotation: float = 30.0, hflip: bool = True, vflip: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Randomly flip (each axis with probability 1/2) and rotate (uniform in +-``rotation``).

    Parameters
    ----------
    images : (N, H, W) or (N, H, W, C) float or uint8 array
    masks : (N, H, W) or (N, H, W, 1) array of 0/1
    rng : numpy Generator (see :func:`epoch_rng`)

    Returns
    -------
    Augmented copies; masks stay exactly binary.
    """
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks: expected as many")
    out_i = np.empty_like(images)
    out_m = np.empty_like(masks)
    n = len(images)
    flips_h = rng.random(n) < 0.5 if hflip else np.zeros(n, bool)
    flips_v = rng.random(n) < 0.5 if vflip else np.zeros(n, bool)
    angles = rng.uniform(-rotation, rotation, n) if rotation > 0 else np.zeros(n)
    for k in range(n):
        im, mk = images[k], masks[k]
        if flips_h[k]:
            im, mk = im[:, ::-1], mk[:, ::-1]
        if flips_v[k]:
            im, mk = im[::-1], mk[::-1]
        if angles[k] != 0:
            im = ndimage.rotate(im, angles[k], axes=(1, 0), reshape=False, order=1,
                                mode="constant", cval=0)
            mk = ndimage.rotate(mk, angles[k], axes=(1, 0), reshape=False, order=0,
                                mode="constant", cval=0)
        out_i[k], out_m[k] = im, mk
    return out_i, out_m
