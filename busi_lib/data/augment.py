"""Training augmentation, identical for an image and its mask (the paper: flips and rotation).

Beyond the paper, for robustness to other scanners (all off by default): random zoom
(``scale``), random brightness, contrast and gamma (``intensity``), and random Gaussian blur or
multiplicative speckle noise (``noise``). Intensity and noise change the image only.

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
                  rotation: float = 30.0, hflip: bool = True, vflip: bool = True,
                  scale: float = 0.0, intensity: bool = False, noise: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Randomly flip (each axis with probability 1/2) and rotate (uniform in +-``rotation``).

    Parameters
    ----------
    images : (N, H, W) or (N, H, W, C) float or uint8 array; with ``intensity`` or ``noise``,
        float images in [0, 1]
    masks : (N, H, W) or (N, H, W, 1) array of 0/1
    rng : numpy Generator (see :func:`epoch_rng`)
    scale : float in [0, 0.5)
        Zoom by a factor uniform in ``[1 - scale, 1 + scale]`` about the centre, with the rotation.
    intensity : bool
        Brightness ``+ U(-0.1, 0.1)``, contrast ``x U(0.75, 1.25)`` about the image mean, then
        gamma ``U(0.7, 1.5)`` (clipped to [0, 1]).
    noise : bool
        With probability 1/3 each: Gaussian blur (sigma ``U(0.3, 1.2)`` pixels), multiplicative
        speckle ``x (1 + N(0, s))`` with ``s ~ U(0.05, 0.2)``, or nothing.

    Returns
    -------
    Augmented copies; masks stay exactly binary. Draws for the paper's flips and rotation come
    first, so with the extras off the result is the same as before they existed.
    """
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks: expected as many")
    out_i = np.empty_like(images)
    out_m = np.empty_like(masks)
    n = len(images)
    flips_h = rng.random(n) < 0.5 if hflip else np.zeros(n, bool)
    flips_v = rng.random(n) < 0.5 if vflip else np.zeros(n, bool)
    angles = rng.uniform(-rotation, rotation, n) if rotation > 0 else np.zeros(n)
    zooms = rng.uniform(1 - scale, 1 + scale, n) if scale > 0 else np.ones(n)
    if intensity or noise:
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"intensity/noise augmentation needs float images in [0, 1], "
                             f"got dtype {images.dtype}")
    if intensity:
        bright = rng.uniform(-0.1, 0.1, n)
        contrast = rng.uniform(0.75, 1.25, n)
        gamma = rng.uniform(0.7, 1.5, n)
    if noise:
        kind = rng.integers(0, 3, n)             # 0 blur, 1 speckle, 2 nothing
        sigma = rng.uniform(0.3, 1.2, n)
        speckle = rng.uniform(0.05, 0.2, n)
    for k in range(n):
        im, mk = images[k], masks[k]
        if flips_h[k]:
            im, mk = im[:, ::-1], mk[:, ::-1]
        if flips_v[k]:
            im, mk = im[::-1], mk[::-1]
        if zooms[k] != 1:
            im = warp(im, angles[k], zooms[k], order=1)
            mk = warp(mk, angles[k], zooms[k], order=0)
        elif angles[k] != 0:
            im = ndimage.rotate(im, angles[k], axes=(1, 0), reshape=False, order=1,
                                mode="constant", cval=0)
            mk = ndimage.rotate(mk, angles[k], axes=(1, 0), reshape=False, order=0,
                                mode="constant", cval=0)
        if intensity:
            m = im.mean()
            im = np.clip((im - m) * contrast[k] + m + bright[k], 0.0, 1.0) ** gamma[k]
        if noise and kind[k] == 0:
            im = ndimage.gaussian_filter(im, sigma=(sigma[k], sigma[k]) + (0,) * (im.ndim - 2))
        elif noise and kind[k] == 1:
            im = np.clip(im * (1 + speckle[k] * rng.standard_normal(im.shape)), 0.0, 1.0)
        out_i[k], out_m[k] = im, mk
    return out_i, out_m


def warp(a: np.ndarray, angle: float, zoom: float, order: int) -> np.ndarray:
    """Rotate by ``angle`` degrees (as :func:`scipy.ndimage.rotate` with ``axes=(1, 0)``) and
    zoom by ``zoom`` about the centre of an ``(H, W)`` or ``(H, W, C)`` array; zero fill."""
    t = np.deg2rad(angle)
    # output -> input coordinates (row, col): inverse rotation and inverse zoom
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]]) / zoom
    centre = (np.array(a.shape[:2]) - 1) / 2.0
    offset = centre - rot @ centre
    if a.ndim == 2:
        return ndimage.affine_transform(a, rot, offset=offset, order=order, mode="constant",
                                        cval=0)
    out = np.empty_like(a)
    for c in range(a.shape[2]):
        out[..., c] = ndimage.affine_transform(a[..., c], rot, offset=offset, order=order,
                                               mode="constant", cval=0)
    return out


# ----------------------------------------------------------------------------- library policy
#: ``aug_policy="trivial"``: TrivialAugment-style (Muller and Hutter 2021; for ultrasound,
#: Tupper and Gagne 2025): for each image, one operation drawn uniformly from this pool, its
#: strength drawn uniformly from the range given, from maintained libraries: albumentations
#: 2.0.8 (generic) and usaugment 1.0.1 (ultrasound artefacts). Applied after the flips and
#: rotation above. Names of the pool, in order (tests and the book list them).
TRIVIAL_POOL = ("identity", "brightness_contrast", "gamma", "gaussian_blur",
                "multiplicative_noise", "sharpen", "affine", "downscale", "depth_attenuation",
                "gaussian_shadow", "haze", "speckle_reduction")


def _trivial_ops():
    """name -> transform (built once; imported here because albumentations and usaugment are
    needed by this policy only)."""
    import albumentations as A
    import usaugment.albumentations as U

    return {
        "identity": None,
        "brightness_contrast": A.RandomBrightnessContrast(brightness_limit=0.25,
                                                          contrast_limit=0.35, p=1.0),
        "gamma": A.RandomGamma(gamma_limit=(60, 170), p=1.0),
        "gaussian_blur": A.GaussianBlur(blur_limit=0, sigma_limit=(0.3, 1.5), p=1.0),
        "multiplicative_noise": A.MultiplicativeNoise(multiplier=(0.75, 1.25),
                                                      elementwise=True, p=1.0),
        "sharpen": A.Sharpen(alpha=(0.1, 0.4), lightness=(0.9, 1.1), p=1.0),
        "affine": A.Affine(scale=(0.85, 1.15), translate_percent=(-0.08, 0.08), shear=(-8, 8),
                           border_mode=0, fill=0, fill_mask=0, p=1.0),
        "downscale": A.Downscale(scale_range=(0.4, 0.8), p=1.0),
        "depth_attenuation": U.DepthAttenuation(p=1.0),
        "gaussian_shadow": U.GaussianShadow(p=1.0),
        "haze": U.HazeArtifact(p=1.0),
        # sigma_color drawn away from 0: usaugment's default range (0, 1) reaches 0, where
        # scikit-image's bilateral filter divides by zero (NaN images, a diverged training)
        "speckle_reduction": U.SpeckleReduction(sigma_color=(0.05, 1.0), p=1.0),
    }


_OPS: dict | None = None


def _checked(images, masks) -> np.ndarray:
    """``images`` as an array, after checking that they are float ``(N, H, W, 1)`` and as many
    as ``masks`` (the input of the library policies)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 1 or not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images of shape {images.shape} and dtype {images.dtype}: expected "
                         "float (N, H, W, 1) in [0, 1]")
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks: expected as many")
    return images


def scan_mask(image: np.ndarray, level: float = 0.02) -> np.ndarray:
    """The scanned region of a [0, 1] grey image ``(H, W)``: pixels above ``level`` with the
    holes of that region filled (the ultrasound transforms act inside it only)."""
    return ndimage.binary_fill_holes(np.asarray(image) > level).astype(np.uint8)


def trivial_augment(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One operation of :data:`TRIVIAL_POOL` per image, drawn by ``rng`` (as is its strength:
    albumentations and usaugment are seeded from ``rng`` for each image -- usaugment through
    NumPy's and Python's global generators, whose states are restored afterwards -- so an
    epoch's result depends only on the generator's state).

    Parameters
    ----------
    images : (N, H, W, 1) float32 in [0, 1]
    masks : (N, H, W) or (N, H, W, 1) 0/1

    Returns
    -------
    images, masks (same shapes; images clipped to [0, 1], masks still binary), and the name of
    the operation applied to each image.
    """
    global _OPS
    images = _checked(images, masks)
    if _OPS is None:
        _OPS = _trivial_ops()
    import albumentations as A

    out_i, out_m = np.empty_like(images), np.empty_like(masks)
    names = []
    picks = rng.integers(0, len(TRIVIAL_POOL), len(images))
    seeds = rng.integers(0, 2**31 - 1, len(images))
    import random

    state, py_state = np.random.get_state(), random.getstate()
    try:
        for k, (pick, seed) in enumerate(zip(picks, seeds)):
            name = TRIVIAL_POOL[pick]
            names.append(name)
            im = images[k].astype(np.float32)
            mk = np.asarray(masks[k]).astype(np.uint8)
            op = _OPS[name]
            if op is not None:
                np.random.seed(int(seed))      # usaugment draws from NumPy's and Python's
                random.seed(int(seed))         # global generators
                t = A.Compose([op], seed=int(seed), p=1.0)
                r = t(image=np.ascontiguousarray(im[..., 0]),   # 2-D: as usaugment expects
                      mask=mk.squeeze(-1) if mk.ndim == 3 else mk,
                      scan_mask=scan_mask(im[..., 0]))
                out = np.asarray(r["image"], np.float32).reshape(images[k].shape)
                if not np.isfinite(out).all():      # never hand the network a NaN
                    names[-1] = f"identity ({name} gave non-finite values)"
                    out_i[k], out_m[k] = im, np.asarray(masks[k])
                    continue
                im = np.clip(out, 0, 1)
                mk = (np.asarray(r["mask"]) > 0).astype(masks.dtype).reshape(np.shape(masks[k]))
            out_i[k], out_m[k] = im, mk
    finally:
        np.random.set_state(state)
        random.setstate(py_state)
    return out_i, out_m, names


# ----------------------------------------------------------------------------- lesion crops
def lesion_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The lesion's bounding box ``(x_min, y_min, x_max, y_max)`` (pascal_voc: ends exclusive)
    of a 2-D 0/1 mask, or ``None`` when the mask is empty."""
    rows, cols = np.nonzero(np.asarray(mask))
    if rows.size == 0:
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def lesion_crop(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator, *,
                p: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``aug_policy="lesion_crop"``: with probability ``p`` per image, a random crop that keeps
    the whole lesion, resized back to the image's size (so its aspect ratio and zoom vary), by
    albumentations' ``RandomSizedBBoxSafeCrop`` on the lesion's box. BUS-BRA's images, unlike
    BUSI's full frames, are cropped around the lesion; this shows the network such framings in
    training. An image with an empty mask gets albumentations' plain random crop.

    Parameters
    ----------
    images : (N, H, W, 1) float32 in [0, 1]
    masks : (N, H, W) or (N, H, W, 1) 0/1
    rng : numpy Generator; the only source of randomness (albumentations is seeded from it)
    p : float in [0, 1]

    Returns
    -------
    images, masks (same shapes, masks binary) and a boolean array: which images were cropped.
    """
    import albumentations as A

    images = _checked(images, masks)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: expected a probability in [0, 1]")
    h, w = images.shape[1:3]
    out_i, out_m = images.copy(), np.array(masks, copy=True)
    crop = rng.random(len(images)) < p
    seeds = rng.integers(0, 2**31 - 1, len(images))
    for k in np.flatnonzero(crop):
        mk = np.asarray(masks[k]).astype(np.uint8).reshape(h, w)
        box = lesion_box(mk)
        t = A.Compose([A.RandomSizedBBoxSafeCrop(height=h, width=w, erosion_rate=0.0, p=1.0)],
                      bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
                      seed=int(seeds[k]), p=1.0)
        r = t(image=np.ascontiguousarray(images[k, ..., 0]), mask=mk,
              bboxes=[box] if box else [], labels=[0] if box else [])
        out_i[k] = np.clip(np.asarray(r["image"], np.float32), 0, 1).reshape(h, w, 1)
        out_m[k] = (np.asarray(r["mask"]) > 0).astype(out_m.dtype).reshape(np.shape(masks[k]))
    return out_i, out_m, crop


# ----------------------------------------------------------------------------- context swap
def _padded_box(box, shape, margin: float) -> tuple[int, int, int, int]:
    """``box`` widened by ``margin`` of its size on each side, cut to the frame ``shape``."""
    x0, y0, x1, y1 = box
    dx, dy = int(np.ceil(margin * (x1 - x0))), int(np.ceil(margin * (y1 - y0)))
    return max(0, x0 - dx), max(0, y0 - dy), min(shape[1], x1 + dx), min(shape[0], y1 + dy)


def context_swap(images: np.ndarray, masks: np.ndarray, rng: np.random.Generator, *,
                 p: float = 0.5, margin: float = 0.2, max_zoom: float = 1.5
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``aug_policy="context_swap"``: with probability ``p`` per image, its lesion (with a rim
    of ``margin`` of the lesion's size) moves into another training image, over that image's
    own lesion; the label stays the moved lesion's. The surroundings then come from an image
    drawn regardless of its class, so they stop carrying the label: a classifier can only
    keep its accuracy on such images by reading the lesion (issue 26: with the lesion hidden,
    the released model's validation AUC stays at 0.85).

    The lesion's patch is zoomed by one factor ``s`` (its shape and aspect ratio kept) so
    that it covers the other image's lesion box with its rim, and centred on that box: no
    trace of the other lesion is left, and the mask is the moved lesion's only. The other
    image is drawn among those whose lesion needs ``1 / max_zoom <= s <= max_zoom``, so a
    lesion's size changes by at most that factor; an image with no such partner, or with an
    empty mask, is left as it is. No maintained library has this transform: albumentations'
    ``OverlayElements`` pastes a patch and adds its mask but keeps the covered image's own
    mask, and chooses neither the partner nor the zoom; hence NumPy and
    :func:`scipy.ndimage.zoom` (bilinear for the image, nearest for the mask).

    Parameters
    ----------
    images : (N, H, W, 1) float32 in [0, 1]
    masks : (N, H, W) or (N, H, W, 1) 0/1
    rng : numpy Generator; the only source of randomness
    p : float in [0, 1]
    margin : float >= 0, the rim around each lesion box, as a share of the box's size
    max_zoom : float >= 1

    Returns
    -------
    images, masks (same shapes, masks binary) and, per image, the index of the image whose
    surroundings it now has (``-1``: unchanged).
    """
    images = _checked(images, masks)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: expected a probability in [0, 1]")
    if not margin >= 0:
        raise ValueError(f"margin={margin!r}: expected a share >= 0")
    if not max_zoom >= 1:
        raise ValueError(f"max_zoom={max_zoom!r}: expected a factor >= 1")
    n, h, w = images.shape[:3]
    flat = np.asarray(masks).reshape(n, h, w)
    boxes = [lesion_box(flat[k]) for k in range(n)]
    padded = [None if b is None else _padded_box(b, (h, w), margin) for b in boxes]
    # heights and widths of the padded boxes (NaN: no lesion), for every pair's zoom at once
    hw = np.array([[np.nan, np.nan] if b is None else [b[3] - b[1], b[2] - b[0]]
                   for b in padded], float)
    out_i, out_m = images.copy(), np.array(masks, copy=True)
    draw = rng.random(n) < p
    picks = rng.random(n)
    donors = np.full(n, -1)
    for k in np.flatnonzero(draw):
        if padded[k] is None:
            continue
        x0, y0, x1, y1 = padded[k]
        zooms = np.max(hw / hw[k], axis=1)          # NaN for images without a lesion
        zooms[k] = np.nan
        ok = np.flatnonzero((zooms >= 1 / max_zoom) & (zooms <= max_zoom))
        if ok.size == 0:
            continue
        j = int(ok[min(int(picks[k] * ok.size), ok.size - 1)])
        s = zooms[j]
        patch = ndimage.zoom(images[k, y0:y1, x0:x1, 0], s, order=1)
        pmask = ndimage.zoom(flat[k, y0:y1, x0:x1].astype(np.uint8), s, order=0)
        ph, pw = patch.shape
        u0, v0, u1, v1 = padded[j]
        top, left = (v0 + v1 - ph) // 2, (u0 + u1 - pw) // 2     # centred on the other box
        r0, c0 = max(0, top), max(0, left)
        r1, c1 = min(h, top + ph), min(w, left + pw)
        im = images[j, ..., 0].copy()
        mk = np.zeros((h, w), flat.dtype)
        im[r0:r1, c0:c1] = patch[r0 - top:r1 - top, c0 - left:c1 - left]
        mk[r0:r1, c0:c1] = pmask[r0 - top:r1 - top, c0 - left:c1 - left]
        out_i[k] = np.clip(im, 0, 1)[..., None]
        out_m[k] = (mk > 0).astype(out_m.dtype).reshape(np.shape(masks[k]))
        donors[k] = j
    return out_i, out_m, donors
