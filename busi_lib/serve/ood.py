"""Is this image like the training images? An out-of-distribution score for the predictor.

The network answers every input with a probability, even random noise or a photograph. This
module measures how unlike BUSI's training images an input is, from statistics of the image as
the network sees it (after the configuration's preprocessing, :func:`busi_lib.eval.inference.
prepare_image`) and of its colour:

==================  ========================================================================
``mean``, ``std``   grey level mean and spread (0-1)
``dark``            share of near-black pixels (< 16): the frame around the scan
``bright``          share of near-white pixels (> 240): text, calipers, white backgrounds
``entropy``         grey-level histogram entropy (64 bins, bits)
``mode_share``      share of the single most common grey level (flat synthetic regions)
``gradient``        mean Sobel gradient magnitude
``autocorr``        correlation of neighbouring pixels (speckle is smooth at this scale; noise
                    is not)
``high_freq``       std of (image - its Gaussian blur, sigma 1) / std of the image
``colour``          share of pixels whose RGB channels differ by more than 16 (0 for grey)
==================  ========================================================================

The score is the Mahalanobis distance of these features from the training images' mean, with
a Ledoit-Wolf shrunk covariance (scikit-learn) of the standardised features; a feature with no
spread in training (colour, on grey images) gets a floor on its scale, so any departure counts.
The threshold is the :data:`QUANTILE` quantile of *held-out* training scores: each fold's
images scored by a detector fitted on the other folds (:func:`fit_detector`), so about
0.5 % of images like the training images are flagged. Fitted on BUSI only; BUS-BRA is never
used to fit or choose anything here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from busi_lib.data.busi import find_samples, locate_data, select_samples
from busi_lib.errors import ConfigError, DataError
from busi_lib.eval.inference import prepare_image
from busi_lib.serve.userimage import read_input

FEATURES = ("mean", "std", "dark", "bright", "entropy", "mode_share", "gradient", "autocorr",
            "high_freq", "colour")
#: Held-out training images scoring above the threshold: 1 - QUANTILE of them.
QUANTILE = 0.995
#: Smallest scale of a standardised feature (features are all of order 0.01-1).
MIN_SCALE = 0.01


def colour_share(rgb: np.ndarray | None, tol: int = 16) -> float:
    """Share of pixels whose channels differ by more than ``tol`` (0 for ``None`` or grey)."""
    if rgb is None:
        return 0.0
    a = np.asarray(rgb)
    if a.ndim != 3:
        return 0.0
    a = a[..., :3].astype(np.int16)
    return float(((a.max(-1) - a.min(-1)) > tol).mean())


def file_colour_share(path) -> float:
    """:func:`busi_lib.serve.ood.colour_share` of an image file read as RGB (0 when it has no colour
    mode; the file was already checked by :func:`~busi_lib.serve.userimage.read_input`)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("RGB", "RGBA", "RGBX", "P", "PA", "YCbCr", "CMYK"):
            return 0.0
        return colour_share(np.asarray(im.convert("RGB")))


def image_features(prepared: np.ndarray, colour: float = 0.0) -> dict[str, float]:
    """The :data:`FEATURES` of one prepared ``uint8`` image ``(S, S)`` and its colour share.

    Raises
    ------
    DataError
        Not a 2-D image.
    """
    from scipy import ndimage

    x = np.asarray(prepared)
    if x.ndim != 2 or min(x.shape) < 4:
        raise DataError(f"prepared image of shape {x.shape}: expected a 2-D grey image of at "
                        "least 4 x 4 pixels")
    x = x.astype(np.float64) / 255.0
    hist = np.histogram(x, bins=64, range=(0, 1))[0] / x.size
    nz = hist[hist > 0]
    levels = np.bincount(np.round(x * 255).astype(int).ravel(), minlength=256)
    gx, gy = ndimage.sobel(x, 1), ndimage.sobel(x, 0)
    sd = float(x.std())

    def corr(a, b):
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        d = np.sqrt((a * a).sum() * (b * b).sum())
        return float((a * b).sum() / d) if d > 0 else 1.0

    return {"mean": float(x.mean()), "std": sd, "dark": float((x < 16 / 255).mean()),
            "bright": float((x > 240 / 255).mean()), "entropy": float(-(nz * np.log2(nz)).sum()),
            "mode_share": float(levels.max() / x.size),
            "gradient": float(np.hypot(gx, gy).mean()),
            "autocorr": 0.5 * (corr(x[:, 1:], x[:, :-1]) + corr(x[1:], x[:-1])),
            "high_freq": float((x - ndimage.gaussian_filter(x, 1.0)).std() / sd) if sd > 1e-9 else 0.0,
            "colour": float(colour)}


def feature_matrix(rows) -> np.ndarray:
    """``(N, len(FEATURES))`` from dicts of :func:`image_features`."""
    return np.array([[r[f] for f in FEATURES] for r in rows], float)


class Detector:
    """Mahalanobis distance from the training images' features (see the module docstring)."""

    def __init__(self):
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.precision: np.ndarray | None = None
        self.threshold: float = float("inf")
        self.n_fit = 0
        self.info: dict[str, Any] = {}

    def fit(self, X: np.ndarray) -> "Detector":
        """Fit on training feature rows ``X`` (:func:`feature_matrix`); the threshold is left
        at infinity (set it from held-out scores, see :func:`fit_detector`)."""
        from sklearn.covariance import LedoitWolf

        X = np.asarray(X, float)
        if X.ndim != 2 or X.shape[1] != len(FEATURES) or len(X) < 3:
            raise DataError(f"feature matrix of shape {X.shape}: expected (N, {len(FEATURES)}) "
                            "with N >= 3 (the shrunk covariance needs a few rows)")
        self.center = np.median(X, 0)
        self.scale = np.maximum(X.std(0), MIN_SCALE)
        self.precision = LedoitWolf().fit((X - self.center) / self.scale).precision_
        self.n_fit = len(X)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``X`` (higher: less like the training images)."""
        if self.precision is None:
            raise ConfigError("this Detector is not fitted; call fit() or from_dict() first")
        Z = (np.atleast_2d(np.asarray(X, float)) - self.center) / self.scale
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", Z, self.precision, Z), 0.0))

    def flag(self, X: np.ndarray) -> np.ndarray:
        """``score > threshold`` for each row."""
        return self.score(X) > self.threshold

    def to_dict(self) -> dict[str, Any]:
        if self.precision is None:
            raise ConfigError("this Detector is not fitted; nothing to save")
        return {"features": list(FEATURES), "center": self.center.tolist(),
                "scale": self.scale.tolist(), "precision": self.precision.tolist(),
                "threshold": self.threshold, "n_fit": self.n_fit, **self.info}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Detector":
        if list(d.get("features", [])) != list(FEATURES):
            raise DataError(f"detector saved with features {d.get('features')}; this version "
                            f"expects {list(FEATURES)}")
        det = cls()
        det.center, det.scale, det.precision = (np.asarray(d[k], float)
                                                for k in ("center", "scale", "precision"))
        det.threshold, det.n_fit = float(d["threshold"]), int(d.get("n_fit", 0))
        det.info = {k: v for k, v in d.items() if k not in
                    ("features", "center", "scale", "precision", "threshold", "n_fit")}
        return det


def fit_detector(X: np.ndarray, folds: np.ndarray, quantile: float = QUANTILE) -> Detector:
    """A detector fitted on all rows of ``X``, its threshold the ``quantile`` of the held-out
    scores (each fold's rows scored by a detector fitted on the other folds)."""
    if not 0.5 < quantile < 1:
        raise ConfigError(f"quantile={quantile!r}: expected a number in (0.5, 1)")
    X, folds = np.asarray(X, float), np.asarray(folds)
    if len(folds) != len(X):
        raise DataError(f"{len(folds)} fold labels for {len(X)} rows; expected one per row")
    held = np.full(len(X), np.nan)
    for k in np.unique(folds):
        test = folds == k
        held[test] = Detector().fit(X[~test]).score(X[test])
    det = Detector().fit(X)
    det.threshold = float(np.quantile(held, quantile))
    det.info = {"quantile": quantile, "held_out_flagged": float((held > det.threshold).mean()),
                "held_out_median": float(np.median(held)),
                "fitted_on": "BUSI training images (benign and malignant), as the network sees them"}
    return det


def busi_features(cfg: dict, data_dir=None) -> tuple[list[str], np.ndarray]:
    """``(ids, features)`` of the BUSI images of a configuration's classes, each read as the
    predictor reads a file (:func:`busi_lib.serve.userimage.read_input`) and prepared as in training."""
    from PIL import Image

    root = locate_data(data_dir)
    samples = select_samples(find_samples(root, cfg["classes"]), cfg.get("max_per_class"))
    ids, rows = [], []
    for s in samples:
        img, _ = read_input(s.image_path)
        with Image.open(s.image_path) as im:
            colour = colour_share(np.asarray(im.convert("RGB")))
        rows.append(image_features(prepare_image(img, cfg), colour))
        ids.append(s.id)
    return ids, feature_matrix(rows)


def fit_on_busi(cfg: dict, data_dir, folds) -> "Detector":
    """The out-of-distribution detector of a release (:func:`busi_lib.serve.ood.fit_detector`),
    fitted on the BUSI images of the configuration, its threshold from the held-out scores of
    the release's own folds."""
    ids, X = busi_features(cfg, data_dir)
    fold_of = dict(zip(folds["id"], folds["fold"]))
    missing = [i for i in ids if i not in fold_of]
    if missing:
        raise DataError(f"{len(missing)} BUSI images (e.g. {missing[0]!r}) are not in the fold "
                        "table; expected the images the folds were made from")
    return fit_detector(X, np.array([fold_of[i] for i in ids]))
