"""Reading any image file or array for the predictor: 8-bit grey as in training, with warnings.

8-bit grey, RGB and palette images are read exactly as the training data
(:func:`busi_lib.data.images.read_image`). Other inputs get a sensible answer and a warning (16-bit,
colour, transparency); inputs that cannot be used raise :class:`~busi_lib.errors.DataError`
with a one-line message that names the file and what was expected. :func:`overlay` draws a
predicted outline on the image.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from busi_lib.data.images import read_image
from busi_lib.errors import DataError

#: Larger images are refused before they are decoded (PIL's own bomb limit is about 179 MP).
MAX_PIXELS = 100_000_000
#: Outline colour of the overlay (RGB): Okabe-Ito orange, readable for colour-blind readers and
#: distinct from the sky blue the book uses for reference outlines.
OUTLINE_RGB = (230, 159, 0)
_HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def read_input(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """An image file as the predictor uses it: ``uint8`` grey ``(H, W)`` and warnings.

    8-bit grey, RGB and palette images are read exactly as the training data
    (:func:`busi_lib.data.images.read_image`: ITU-R 601 luma). Other inputs get a sensible answer and a
    warning: 16-bit (or 32-bit) images are rescaled linearly from their own minimum and maximum
    to 0-255; images with an alpha channel are composited on black first.

    Raises
    ------
    DataError
        Missing path, a folder, an empty, truncated or non-image file, an image larger than
        :data:`MAX_PIXELS`, or a blank image (a single grey level).
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if p.is_dir():
        raise DataError(f"{str(p)!r} is a folder; expected an image file (PNG, JPEG, TIFF, BMP)")
    if not p.is_file():
        raise DataError(f"{str(p)!r} does not exist")
    if p.stat().st_size == 0:
        raise DataError(f"{str(p)!r} is an empty (zero-byte) file; expected an image")
    warnings: list[str] = []
    try:
        with Image.open(p) as im:             # lazy: the header only
            w, h = im.size
            mode = im.mode
            if w * h > MAX_PIXELS:
                raise DataError(f"{str(p)!r} is {w} x {h} = {w * h / 1e6:.0f} MP; expected at most "
                                f"{MAX_PIXELS / 1e6:.0f} MP: downscale it first")
            if mode in _HIGH_BIT_MODES:
                im.load()
                arr = np.asarray(im, np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                img = np.zeros(arr.shape, np.uint8) if hi <= lo else np.round(
                    (arr - lo) * 255.0 / (hi - lo)).astype(np.uint8)
                warnings.append(f"{mode} image ({'32' if mode in ('I', 'F') else '16'}-bit) "
                                f"rescaled linearly from its range [{lo:g}, {hi:g}] to 8 bits; "
                                "the model was trained on 8-bit images")
            elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
                im.load()
                rgba = im.convert("RGBA")
                alpha = np.asarray(rgba)[..., 3]
                black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                img = np.asarray(Image.alpha_composite(black, rgba).convert("L"), np.uint8)
                if alpha.min() < 255:
                    warnings.append("image with transparency: composited on black before use")
            else:
                img = None
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(f"{str(p)!r} is too large to decode safely ({exc}); downscale it "
                        "first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read {str(p)!r} as an image ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); expected a "
                        "PNG, JPEG, TIFF or BMP file (DICOM: export it as PNG first)") from exc
    if img is None:                            # the training path, unchanged
        img = read_image(p)
        if mode in ("RGB", "RGBX", "YCbCr", "CMYK", "P"):
            rgb = np.asarray(Image.open(p).convert("RGB")).astype(np.int16)
            if int((rgb.max(axis=-1) - rgb.min(axis=-1)).max()) > 16:
                warnings.append("colour image converted to grey; colour overlays (Doppler, "
                                "annotations) were not in most training images and can mislead "
                                "the model")
    check_not_blank(img, str(p))
    return img, warnings


def check_not_blank(img: np.ndarray, name: str = "image") -> None:
    """Raise :class:`DataError` for an image with a single grey level (nothing to analyse)."""
    if img.size == 0:
        raise DataError(f"{name} has no pixels; expected a 2-D image")
    if int(img.max()) == int(img.min()):
        raise DataError(f"{name} is blank (every pixel is {int(img.min())}): there is nothing to "
                        "analyse; expected an ultrasound image")


def array_to_grey(image, warnings: list[str]) -> np.ndarray:
    """A ``uint8`` grey ``(H, W)`` array from a grey or colour array; conversions are appended
    to ``warnings``. Raises :class:`DataError` for other shapes and dtypes."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        from PIL import Image

        if a.dtype != np.uint8:
            raise DataError(f"colour array of dtype {a.dtype}: expected uint8")
        a = np.asarray(Image.fromarray(a[..., :3]).convert("L"), np.uint8)
        warnings.append("colour array converted to grey (ITU-R 601 luma)")
    if a.ndim != 2:
        raise DataError(f"array of shape {a.shape}: expected a grey (H, W) or colour (H, W, 3) "
                        "image")
    if a.dtype != np.uint8:
        if a.dtype.kind not in "uif" or not np.isfinite(a).all():
            raise DataError(f"array of dtype {a.dtype}: expected uint8 grey levels")
        lo, hi = float(a.min()), float(a.max())
        a = (np.zeros(a.shape, np.uint8) if hi <= lo
             else np.round((a - lo) * 255.0 / (hi - lo)).astype(np.uint8))
        warnings.append(f"array rescaled linearly from [{lo:g}, {hi:g}] to 8 bits")
    return a


def overlay(img: np.ndarray, mask: np.ndarray, colour=OUTLINE_RGB) -> np.ndarray:
    """The grey image as RGB with the outline of ``mask`` drawn in ``colour`` (``uint8``)."""
    from scipy import ndimage

    rgb = np.repeat(np.asarray(img, np.uint8)[..., None], 3, axis=-1)
    mask = np.asarray(mask, bool)
    if mask.any():
        t = max(1, round(max(mask.shape) / 300))
        inner = ndimage.minimum_filter(mask.astype(np.uint8), size=2 * t + 1, mode="nearest") > 0
        rgb[mask & ~inner] = colour
    return rgb
