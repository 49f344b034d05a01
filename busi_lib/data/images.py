"""Reading, checking and resizing one image or mask file (any data set).

* :func:`read_image`: an 8-bit grey ``uint8`` array (colour converted with ITU-R 601 luma; 16-bit
  refused with a clear message); :func:`read_mask`: a ``bool`` array from any mask format;
* :func:`resize_image`, :func:`resize_mask`: to the network's square, stretched (``"squash"``,
  the paper) or padded to a centred square first (``"pad"``);
* :func:`pixel_sha256`: a hash of decoded pixels, the same for a losslessly re-encoded copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from busi_lib.errors import ConfigError, DataError


def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{str(path)!r} is an empty (zero-byte) file; expected a PNG image")
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"cannot read {str(path)!r} as an image ({exc}); the file is truncated "
                        "or not a PNG") from exc
    return im


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit image as a ``uint8`` grey array of shape ``(H, W)``.

    RGB(A) images are converted with Pillow's ITU-R 601 luma (``convert("L")``).

    Raises
    ------
    DataError
        Missing, empty, truncated or non-image file; an image with more than 8 bits per channel.
    """
    im = _open(Path(path))
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        raise DataError(f"{str(path)!r} is a {im.mode} (16/32-bit) image; expected 8-bit "
                        "grey or RGB as in BUSI. Convert it to 8 bits first.")
    if im.mode != "L":
        im = im.convert("L")
    return np.asarray(im, dtype=np.uint8)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask of any format (1-bit, grey, RGB, RGBA, palette) as a ``bool`` ``(H, W)`` array.

    A pixel is lesion when the mask's first channel is non-zero (for palette images, the
    palette index). Values other than 0/255 therefore count as lesion when non-zero.
    """
    im = _open(Path(path))
    arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr > 0


#: How an image is brought to the network's square: ``"squash"`` stretches it (the paper's
#: pipeline; the aspect ratio is lost), ``"pad"`` pads it with black to a centred square first
#: (aspect kept, as in a letterbox).
RESIZE_MODES = ("squash", "pad")


def pad_geometry(h: int, w: int) -> tuple[int, int, int]:
    """``(top, left, side)``: where an ``h x w`` image sits in its centred black square."""
    side = max(int(h), int(w))
    return (side - int(h)) // 2, (side - int(w)) // 2, side


def pad_to_square(arr: np.ndarray) -> np.ndarray:
    """``arr`` (H, W) centred in a zero-filled ``max(H, W)`` square (see :func:`pad_geometry`)."""
    top, left, side = pad_geometry(*arr.shape[:2])
    out = np.zeros((side, side) + arr.shape[2:], arr.dtype)
    out[top:top + arr.shape[0], left:left + arr.shape[1]] = arr
    return out


def resize_image(img: np.ndarray, size: int, mode: str = "squash") -> np.ndarray:
    """Resize a ``uint8`` grey image to ``size x size`` (bilinear), squashed or padded."""
    check_resize(size, mode)
    if mode == "pad":
        img = pad_to_square(img)
    im = Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def resize_mask(mask: np.ndarray, size: int, mode: str = "squash") -> np.ndarray:
    """Resize a ``bool`` mask to ``size x size`` (nearest neighbour: it stays binary)."""
    check_resize(size, mode)
    if mode == "pad":
        mask = pad_to_square(mask)
    mk = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size),
                                                            Image.Resampling.NEAREST)
    return np.asarray(mk) > 0


def resize_pair(img: np.ndarray, mask: np.ndarray, size: int, mode: str = "squash"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Resize an image (bilinear) and its mask (nearest, stays binary) to ``size x size``."""
    return resize_image(img, size, mode), resize_mask(mask, size, mode)


def check_resize(size, mode: str) -> None:
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ConfigError(f"image_size={size!r}: expected an integer >= 8")
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize={mode!r}: expected one of {list(RESIZE_MODES)}")


def pixel_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's decoded pixels: ``f"{mode}{shape}"`` then the raw array bytes.

    This is the definition used by ``shared/data/BUSI/PIXELS.sha256``, so a losslessly
    re-encoded PNG hashes the same as the original.
    """
    im = _open(Path(path))
    arr = np.asarray(im)
    h = hashlib.sha256(f"{im.mode}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
