"""Contrast enhancement of 8-bit grey breast-ultrasound images.

The reproduced paper (Chowdary et al., 2022, *A multi-task learning framework for automated
segmentation and classification of breast tumors from ultrasound images*, Ultrasonic Imaging
44(1)) enhances every BUSI image with a *generalized histogram equalization* (GHE) before
training, arguing that lesions are low-contrast against the surrounding tissue. It cites the
multi-peak GHE of

    Cheng, H. D. and Shi, X. J. (2004). A simple and effective histogram equalization
    approach to image enhancement. *Digital Signal Processing* 14(2):158-170.
    doi:10.1016/j.dsp.2003.07.002

which this module implements (:func:`ghe`, with its intermediates in :func:`ghe_steps`):

1. a *generalized histogram* is built in which each pixel counts ``1 + strength * local
   information`` instead of 1, the local information being a normalized measure of edges or
   detail around the pixel (absolute Laplacian, or distance to the 3x3 local mean). Grey levels
   that carry structure thus get more of the output range than grey levels of flat areas;
2. the generalized histogram is smoothed with a Gaussian (speckle makes 8-bit ultrasound
   histograms jagged);
3. its peaks (modes) are found;
4. the grey range is cut at the valley (minimum) between consecutive peaks;
5. each segment is equalized *within its own range*, so every mode stays where it was and
   only spreads out: the mean brightness is approximately preserved, unlike global
   histogram equalization (HE) which pushes every image towards a mean of about 128.

For comparison :func:`enhance` also offers ``"none"``, global HE
(:func:`skimage.exposure.equalize_hist`) and CLAHE
(:func:`skimage.exposure.equalize_adapthist`), and :func:`lesion_contrast` /
:func:`contrast_table` measure the lesion-versus-background contrast that the enhancement
is meant to raise.

Implementation choices not fixed by Cheng & Shi (each a keyword argument of :func:`ghe`):
the exact local-information measure and its normalization (99th percentile, so that a few
extreme edges such as burnt-in annotations do not flatten everything else), the smoothing
width, the peak-detection thresholds (:func:`scipy.signal.find_peaks`), and the range of the
outer segments, which is the image's own ``[min, max]`` rather than ``[0, 255]`` (identical
when the image spans the full range, as BUSI images do; for a low-dynamic-range image it
avoids stretching the darkest/brightest mode to the ends of the scale and so keeps the
brightness-preserving property).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Iterable, Sequence

import numpy as np

from busi_lib.data.marks import remove_marks
from busi_lib.errors import ConfigError

__all__ = ["METHODS", "PREPROCESSING", "LOCAL_MEASURES", "enhance", "ghe", "ghe_steps",
           "lesion_contrast", "contrast_table"]

#: The contrast enhancements (``method=`` of :func:`enhance`; the tables and figures of the
#: enhancement chapter compare these).
METHODS = ("none", "he", "clahe", "ghe")
#: Everything :func:`enhance` (and a configuration's ``enhancement``) accepts: the contrast
#: enhancements and ``"unmark"``, burnt-in text and calipers inpainted
#: (:func:`busi_lib.data.marks.remove_marks`).
PREPROCESSING = METHODS + ("unmark",)

#: Local-information measures accepted by :func:`ghe` (``local=``).
LOCAL_MEASURES = ("laplacian", "local_mean")

#: Default CLAHE clip limit (scikit-image's own default): a contextual-region histogram bin
#: may hold at most about 1 % of the region's pixels before being clipped and redistributed,
#: which limits the amplification of speckle in flat regions.
CLAHE_CLIP_LIMIT = 0.01

_N_LEVELS = 256


# --------------------------------------------------------------------------- validation

def _check_image(img: Any) -> np.ndarray:
    """Return ``img`` as a 2-D uint8 ndarray or raise :class:`ConfigError`."""
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise ConfigError(f"image has shape {arr.shape} ({arr.ndim}-D): expected a 2-D "
                          "(H, W) grey image")
    if arr.dtype != np.uint8:
        raise ConfigError(f"image has dtype {arr.dtype}: expected uint8 (8-bit grey)")
    if arr.size == 0:
        raise ConfigError(f"image has shape {arr.shape}: expected a non-empty image")
    return arr


def _check_number(name: str, value: Any, *, low: float, high: float = math.inf,
                  integer: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = math.isfinite(float(value)) and low <= float(value) <= high
    if not ok:
        kind = "an integer" if integer else "a number"
        rng = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ConfigError(f"{name}={value!r}: expected {kind} {rng}")


# ----------------------------------------------------------------------------- GHE

def _local_information(img: np.ndarray, local: str) -> np.ndarray:
    """Normalized local information in [0, 1], one value per pixel."""
    from scipy import ndimage

    f = img.astype(np.float64)
    if local == "laplacian":
        info = np.abs(ndimage.laplace(f, mode="reflect"))
    else:  # "local_mean"
        info = np.abs(f - ndimage.uniform_filter(f, size=3, mode="reflect"))
    scale = float(np.percentile(info, 99))
    if scale <= 0:          # mostly flat image: fall back to the maximum
        scale = float(info.max())
    if scale <= 0:          # perfectly flat: no local information anywhere
        return np.zeros_like(info)
    return np.clip(info / scale, 0.0, 1.0)


def _valley(smoothed: np.ndarray, a: int, b: int) -> int:
    """Grey level of the minimum of ``smoothed`` between peaks ``a < b``.

    Near-ties (a flat valley, e.g. an empty stretch of the histogram) resolve to the middle
    of the tied levels rather than the first one.
    """
    seg = smoothed[a:b + 1]
    m = seg.min()
    tol = 1e-9 * max(float(smoothed.max()), 1e-300)
    tied = np.flatnonzero(seg <= m + tol)
    return int(a + tied[len(tied) // 2])


def ghe_steps(img: np.ndarray, *, local: str = "laplacian", strength: float = 1.0,
              sigma: float = 2.0, min_prominence: float = 0.01, min_distance: int = 16,
              max_peaks: int = 8) -> dict[str, np.ndarray]:
    """Multi-peak generalized histogram equalization, returning every intermediate.

    Same arguments as :func:`ghe` (see there for the method and the defaults).

    Returns
    -------
    dict
        ``"histogram"`` : (256,) float64
            Plain grey-level histogram (pixel counts).
        ``"generalized"`` : (256,) float64
            Generalized histogram: each pixel weighted by ``1 + strength * local info``.
        ``"smoothed"`` : (256,) float64
            ``"generalized"`` smoothed with a Gaussian of ``sigma`` bins.
        ``"peaks"`` : (k,) int64
            Grey levels of the retained peaks, increasing.
        ``"cuts"`` : (k-1,) int64
            Grey levels of the valleys between consecutive peaks, increasing; segment ``i``
            ends (inclusive) at ``cuts[i]``.
        ``"mapping"`` : (256,) uint8
            Monotone non-decreasing lookup table, ``output = mapping[img]``.
        ``"output"`` : (H, W) uint8
            The enhanced image.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    img = _check_image(img)
    if local not in LOCAL_MEASURES:
        raise ConfigError(f"local={local!r}: expected one of {list(LOCAL_MEASURES)}")
    _check_number("strength", strength, low=0.0)
    _check_number("sigma", sigma, low=0.0)
    _check_number("min_prominence", min_prominence, low=0.0, high=1.0)
    _check_number("min_distance", min_distance, low=1, integer=True)
    _check_number("max_peaks", max_peaks, low=1, integer=True)

    flat = img.ravel()
    histogram = np.bincount(flat, minlength=_N_LEVELS).astype(np.float64)

    # 1. generalized histogram
    if strength > 0:
        weights = 1.0 + float(strength) * _local_information(img, local)
        generalized = np.bincount(flat, weights=weights.ravel(), minlength=_N_LEVELS)
    else:
        generalized = histogram.copy()

    # 2. smoothing
    if sigma > 0:
        smoothed = gaussian_filter1d(generalized, float(sigma), mode="constant", cval=0.0)
    else:
        smoothed = generalized.copy()

    # 3. peaks. One zero of padding on each side lets a mode at 0 or 255 (the black
    #    background of an ultrasound frame, saturated echoes) count as a peak.
    padded = np.concatenate([[0.0], smoothed, [0.0]])
    found, props = find_peaks(padded, prominence=(float(min_prominence) * smoothed.max(), None),
                              distance=int(min_distance))
    found = found - 1
    if len(found) > max_peaks:
        keep = np.argsort(props["prominences"], kind="stable")[::-1][:int(max_peaks)]
        found = found[keep]
    peaks = np.sort(found).astype(np.int64)

    # 4. cut points between consecutive peaks
    lo, hi = int(img.min()), int(img.max())
    cuts = [_valley(smoothed, int(a), int(b)) for a, b in zip(peaks[:-1], peaks[1:])]
    cuts = np.unique(np.clip(np.asarray(cuts, np.int64), lo, max(lo, hi - 1))) if cuts else \
        np.zeros(0, np.int64)
    if hi == lo:
        cuts = np.zeros(0, np.int64)

    # 5. equalize each segment within its own range; identity outside [min, max]
    table = np.arange(_N_LEVELS, dtype=np.float64)
    starts = [lo] + [int(c) + 1 for c in cuts]
    ends = [int(c) for c in cuts] + [hi]
    for s, e in zip(starts, ends):
        h = generalized[s:e + 1]
        total = float(h.sum())
        if total <= 0 or e == s:
            continue                                  # empty or one-level segment: identity
        cdf = np.cumsum(h) / total
        table[s:e + 1] = s + (e - s) * cdf
    mapping = np.clip(np.floor(table + 0.5), 0, 255).astype(np.uint8)
    mapping = np.maximum.accumulate(mapping)          # guard monotonicity against rounding

    return {"histogram": histogram, "generalized": np.asarray(generalized, np.float64),
            "smoothed": np.asarray(smoothed, np.float64), "peaks": peaks,
            "cuts": np.asarray(cuts, np.int64), "mapping": mapping, "output": mapping[img]}


def ghe(img: np.ndarray, *, local: str = "laplacian", strength: float = 1.0,
        sigma: float = 2.0, min_prominence: float = 0.01, min_distance: int = 16,
        max_peaks: int = 8) -> np.ndarray:
    """Multi-peak generalized histogram equalization (Cheng & Shi, 2004).

    Parameters
    ----------
    img : (H, W) uint8 ndarray
        Grey image.
    local : {"laplacian", "local_mean"}, default "laplacian"
        Local-information measure used to weight the histogram (step 1). ``"laplacian"`` is
        ``|scipy.ndimage.laplace(img)|`` (second derivative: edges, fine detail);
        ``"local_mean"`` is ``|img - 3x3 mean|`` (deviation from the neighbourhood). Either is
        divided by its 99th percentile over the image and clipped to [0, 1], so that the
        weight is scale-free and a few extreme edges (annotations, frame border) do not make
        every other pixel's information negligible.
    strength : float >= 0, default 1.0
        Each pixel counts ``1 + strength * info`` in the generalized histogram. With 1.0 a
        pixel on a strong edge counts at most twice a pixel of a flat region: detail gains
        output range while the histogram remains dominated by pixel counts. 0 gives the plain
        histogram (multi-peak HE).
    sigma : float >= 0, default 2.0
        Standard deviation, in grey-level bins, of the Gaussian that smooths the generalized
        histogram before peak detection (step 2). Speckle makes 8-bit ultrasound histograms
        jagged; 2 bins removes bin-to-bin noise without merging modes more than ~10 levels
        apart. 0 disables smoothing.
    min_prominence : float in [0, 1], default 0.01
        A peak is kept only if its prominence (:func:`scipy.signal.find_peaks`) is at least
        this fraction of the highest smoothed-histogram value (step 3): bumps below 1 % of the
        main mode are noise, not tissue classes.
    min_distance : int >= 1, default 16
        Minimal distance in grey levels between two peaks (step 3). Modes closer than 16
        levels are treated as one; it also bounds the number of segments to 256 / 16 = 16 and
        keeps segments wide enough for equalization to have room to act.
    max_peaks : int >= 1, default 8
        At most this many peaks, the most prominent, are kept (step 3), bounding the number of
        segments. 1 gives a single segment, i.e. HE restricted to the image's range.

    Returns
    -------
    (H, W) uint8 ndarray
        Enhanced image.

    Notes
    -----
    Steps (intermediates available from :func:`ghe_steps`):

    1. generalized histogram ``g[k] = sum over pixels of value k of (1 + strength * info)``;
    2. ``s = gaussian_filter1d(g, sigma)``;
    3. peaks of ``s`` with :func:`scipy.signal.find_peaks` (``prominence >= min_prominence *
       max(s)``, ``distance >= min_distance``; the histogram is zero-padded so that a mode
       at 0 or 255 counts), keeping the ``max_peaks`` most prominent;
    4. cut points ``c_1 < ... < c_{k-1}``: the minimum of ``s`` between consecutive peaks
       (middle of the minimum if it is flat). Segments are ``[m, c_1], (c_1, c_2], ...,
       (c_{k-1}, M]`` with ``m, M`` the image's minimum and maximum (``[0, 255]`` for an image
       spanning the full range);
    5. in a segment ``[lo, hi]`` a level ``k`` maps to ``lo + (hi - lo) * CDF(k)``, the CDF
       being that of ``g`` restricted to the segment, rounded to the nearest integer. Each
       segment keeps its range, so the mean brightness is approximately preserved.

    With zero or one peak there is a single segment ``[min, max]``; a constant image is
    returned unchanged. The mapping is monotone non-decreasing, so grey-level order is kept.
    """
    return ghe_steps(img, local=local, strength=strength, sigma=sigma,
                     min_prominence=min_prominence, min_distance=min_distance,
                     max_peaks=max_peaks)["output"]


# ------------------------------------------------------------------------- dispatch

def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 with rounding."""
    return np.clip(np.floor(np.asarray(x, np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def _he(img: np.ndarray, *, nbins: int = 256) -> np.ndarray:
    from skimage.exposure import equalize_hist

    if img.min() == img.max():          # nothing to equalize; skimage would map to 1.0
        return img.copy()
    return _to_uint8(equalize_hist(img, nbins=nbins))


def _clahe(img: np.ndarray, *, clip_limit: float = CLAHE_CLIP_LIMIT, kernel_size: Any = None,
           nbins: int = 256) -> np.ndarray:
    from skimage.exposure import equalize_adapthist

    _check_number("clip_limit", clip_limit, low=0.0, high=1.0)
    if img.min() == img.max():
        return img.copy()
    return _to_uint8(equalize_adapthist(img, kernel_size=kernel_size, clip_limit=clip_limit,
                                        nbins=nbins))


def _none(img: np.ndarray) -> np.ndarray:
    return img.copy()


def _unmark(img: np.ndarray, *, radius: int = 3) -> np.ndarray:
    return remove_marks(img, radius=radius)


_DISPATCH = {"none": _none, "he": _he, "clahe": _clahe, "ghe": ghe, "unmark": _unmark}


def enhance(img: np.ndarray, method: str = "ghe", **kwargs: Any) -> np.ndarray:
    """Contrast-enhance a grey image.

    Parameters
    ----------
    img : (H, W) uint8 ndarray
        Grey image.
    method : {"none", "he", "clahe", "ghe", "unmark"}, default "ghe"
        ``"none"``: a copy of ``img``.
        ``"he"``: global histogram equalization, :func:`skimage.exposure.equalize_hist`
        (keyword: ``nbins``, default 256).
        ``"clahe"``: contrast-limited adaptive HE, :func:`skimage.exposure.equalize_adapthist`
        (keywords: ``clip_limit``, default :data:`CLAHE_CLIP_LIMIT` = 0.01, scikit-image's
        default; ``kernel_size``, default 1/8 of the image size; ``nbins``, default 256).
        ``"ghe"``: multi-peak generalized HE of the paper, :func:`ghe` (keywords: those of
        :func:`ghe`).
        ``"unmark"``: not a contrast enhancement: burnt-in text and calipers found and
        inpainted, :func:`busi_lib.data.marks.remove_marks` (keyword: ``radius``, default 3).
    **kwargs
        Method-specific keywords as listed above; any other raises :class:`ConfigError`.

    Returns
    -------
    (H, W) uint8 ndarray
        Enhanced image (a new array; ``img`` is not modified). HE and CLAHE results, floats in
        [0, 1], are scaled by 255 and rounded. A constant image is returned unchanged by
        every method.

    Raises
    ------
    ConfigError
        Unknown ``method`` or keyword, or ``img`` not a 2-D uint8 array.
    """
    if not isinstance(method, str) or method not in PREPROCESSING:
        raise ConfigError(f"unknown enhancement method={method!r}: expected one of "
                          f"{list(PREPROCESSING)}")
    img = _check_image(img)
    func = _DISPATCH[method]
    allowed = [p.name for p in inspect.signature(func).parameters.values()
               if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"method={method!r} does not accept keyword(s) {unknown}: "
                          f"accepted are {allowed}")
    return func(img, **kwargs)


# ------------------------------------------------------------------- lesion contrast

def lesion_contrast(img: np.ndarray, mask: np.ndarray) -> float:
    """Lesion-to-background contrast ``(mean_in - mean_out) / std_out``.

    Parameters
    ----------
    img : (H, W) ndarray
        Grey image (normally uint8); computed as float64.
    mask : (H, W) ndarray
        Lesion mask; non-zero (or True) is lesion.

    Returns
    -------
    float
        Difference of the mean grey level inside and outside the lesion, in units of the
        background's standard deviation (population std, ``ddof=0``). Negative for a lesion
        darker than its background (most BUSI lesions are hypoechoic). If the background is
        perfectly uniform (std 0) the result is ``+-inf``, or ``nan`` if the means are equal.

    Raises
    ------
    ValueError
        Shapes differ, or the mask is empty or covers the whole image.
    """
    a = np.asarray(img)
    m = np.asarray(mask)
    if a.shape != m.shape:
        raise ValueError(f"image shape {a.shape} and mask shape {m.shape} differ: expected "
                         "the same (H, W) shape")
    if a.ndim != 2:
        raise ValueError(f"image has shape {a.shape}: expected a 2-D (H, W) grey image")
    m = m != 0
    n_in = int(m.sum())
    if n_in == 0:
        raise ValueError("mask is empty (no lesion pixel): lesion contrast is undefined")
    if n_in == m.size:
        raise ValueError("mask covers the whole image (no background pixel): lesion "
                         "contrast is undefined")
    f = a.astype(np.float64)
    inside, outside = f[m], f[~m]
    diff = float(inside.mean() - outside.mean())
    sd = float(outside.std())
    if sd == 0:
        return math.copysign(math.inf, diff) if diff != 0 else math.nan
    return diff / sd


def contrast_table(images: Iterable[np.ndarray], masks: Iterable[np.ndarray],
                   methods: Sequence[str] = METHODS, names: Sequence[Any] | None = None,
                   **kwargs: Any):
    """Lesion contrast of each image after each enhancement method.

    Parameters
    ----------
    images : iterable of (H, W) uint8 ndarray
    masks : iterable of (H, W) ndarray
        Lesion masks, aligned with ``images``.
    methods : sequence of str, default :data:`METHODS`
        Enhancement methods, each one of :data:`METHODS`.
    names : sequence, optional
        Row labels, aligned with ``images`` (default: the position 0, 1, ...).
    **kwargs
        Passed to :func:`enhance` for ``"ghe"`` only (e.g. ``strength=2.0``).

    Returns
    -------
    pandas.DataFrame
        One row per image with a non-empty mask (images with an empty mask, such as BUSI's
        normal images, are skipped), one column per method, values
        :func:`lesion_contrast` of the enhanced image. Index named ``"image"``.
    """
    import pandas as pd

    methods = list(methods)
    for meth in methods:
        if meth not in METHODS:
            raise ConfigError(f"unknown enhancement method={meth!r}: expected one of "
                              f"{list(METHODS)}")
    images, masks = list(images), list(masks)
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks: expected as many")
    if names is None:
        names = list(range(len(images)))
    elif len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images: expected as many")
    rows, index = [], []
    for name, img, mask in zip(names, images, masks):
        if not np.any(np.asarray(mask)):
            continue
        rows.append({meth: lesion_contrast(
            enhance(img, meth, **(kwargs if meth == "ghe" else {})), mask) for meth in methods})
        index.append(name)
    return pd.DataFrame(rows, index=pd.Index(index, name="image"), columns=methods)
