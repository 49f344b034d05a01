"""BUS-BRA, the external test set: finding its folder and loading its images, masks and table.

Only loaded to evaluate a finished model (never to train or to choose anything).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from busi_lib.data.busi import default_cache_dir
from busi_lib.data.enhance import enhance
from busi_lib.data.images import read_image, read_mask, resize_pair
from busi_lib.errors import DataError
from busi_lib.records import PROJECT_ROOT


def locate_busbra(path: str | os.PathLike | None = None) -> Path | None:
    """The BUS-BRA folder (holding ``Images/``, ``Masks/``, ``bus_data.csv``), or ``None``."""
    cands = [path, os.environ.get("BUSBRA_DATA"), PROJECT_ROOT / "data" / "BUS-BRA",
             PROJECT_ROOT.parent / "shared" / "data" / "BUS-BRA"]
    for c in cands:
        if c and (Path(c) / "bus_data.csv").is_file():
            return Path(c)
    if path is not None:
        raise DataError(f"BUS-BRA folder {str(path)!r} has no bus_data.csv; expected the folder "
                        "holding Images/, Masks/ and bus_data.csv")
    return None


def load_busbra(path=None, *, image_size: int = 128, enhancement: str = "none",
                resize: str = "squash"):
    """Images ``(N, S, S)`` uint8, masks ``(N, S, S)`` bool and the metadata table.

    Cached in the busi_lib cache folder, keyed by the metadata file's hash and the parameters.
    Returns ``None`` when the folder cannot be found.
    """

    root = locate_busbra(path)
    if root is None:
        return None
    meta = pd.read_csv(root / "bus_data.csv")
    tag = f"{image_size}{enhancement}v1" + ("" if resize == "squash" else resize)
    key = hashlib.sha256(((root / "bus_data.csv").read_bytes() + tag.encode())).hexdigest()[:16]
    cache = default_cache_dir() / f"busbra_{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return z["images"], z["masks"], meta
    n = len(meta)
    images = np.zeros((n, image_size, image_size), np.uint8)
    masks = np.zeros((n, image_size, image_size), bool)
    for i, id_ in enumerate(meta["ID"]):
        img = read_image(root / "Images" / f"{id_}.png")
        mask = read_mask(root / "Masks" / f"{id_.replace('bus_', 'mask_')}.png")
        if mask.shape != img.shape:
            raise DataError(f"BUS-BRA mask of {id_} is {mask.shape}, image {img.shape}")
        images[i], masks[i] = resize_pair(enhance(img, enhancement), mask, image_size, resize)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, masks=masks)
    os.replace(tmp, cache)
    return images, masks, meta


def busbra_sizes(meta: pd.DataFrame, busbra_dir=None) -> np.ndarray:
    """Rows ``(H, W)`` of BUS-BRA's original images: from its table, else read from the files."""
    if {"Height", "Width"} <= set(meta.columns):
        return meta[["Height", "Width"]].to_numpy()
    from PIL import Image

    root = locate_busbra(busbra_dir)
    sizes = []
    for i in meta["ID"]:
        with Image.open(root / "Images" / f"{i}.png") as im:
            sizes.append((im.size[1], im.size[0]))
    return np.array(sizes)
