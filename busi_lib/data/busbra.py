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


# ----------------------------------------------------------------------------- demo images
#: Where chapter 8's demonstration images come from when BUS-BRA is not on the machine (e.g. on
#: Colab): a public copy of the official BUS-BRA release (Zenodo doi:10.5281/zenodo.8231412),
#: pinned to one commit. BUS-BRA's licence allows copying and redistribution, on condition that
#: its notice is kept (``LICENSE.txt`` is fetched with the images) and that the article is cited.
BUSBRA_DEMO_URL = ("https://raw.githubusercontent.com/solutionbeyondnumbers/Ultra-net-codes-/"
                   "ad75b72f88df3a55fd9d3f5e0ad4f60be51df828/BUSBRA/")
#: The article BUS-BRA's licence asks every document using it to cite.
BUSBRA_CITATION = ("Gomez-Flores W, Gregorio-Calas MJ, Coelho de Albuquerque Pereira W. BUS-BRA: "
                   "A breast ultrasound dataset for assessing computer-aided diagnosis systems. "
                   "Medical Physics 2024;51(4):3110-3123. doi:10.1002/mp.16812")
#: Chapter 8's default images: the first image of each BI-RADS x pathology pair of BUS-BRA.
DEMO_IDS = ("bus_0072-l", "bus_0060-l", "bus_0298-l", "bus_0007-l", "bus_0009-l", "bus_0059-l")
#: Their rows of the official ``bus_data.csv`` (that file is not fetched: the public copy holds
#: all 1875 images' rows, of which only these six are needed).
DEMO_TABLE = """\
ID,Case,Histology,Pathology,BIRADS,Device,Width,Height,Side,BBOX
bus_0072-l,72,lipoma,benign,2,GE Logiq 7 @10-14MHz,276,384,left,"[68,79,115,52]"
bus_0060-l,60,fibroadenoma,benign,3,GE Logiq 7 @10-14MHz,276,371,left,"[64,30,151,63]"
bus_0298-l,298,ductal carcinoma in situ,malignant,3,GE Logiq 7 @10-14MHz,276,369,left,"[112,107,59,26]"
bus_0007-l,7,hyperplasia,benign,4,GE Logiq 7 @10-14MHz,274,351,left,"[122,79,71,41]"
bus_0009-l,9,invasive ductal carcinoma,malignant,4,GE Logiq 7 @10-14MHz,276,352,left,"[23,41,150,106]"
bus_0059-l,59,invasive ductal carcinoma,malignant,5,GE Logiq 7 @10-14MHz,270,353,left,"[64,58,177,176]"
"""
#: The sha256 of every fetched file, from the release's manifest: a changed file is refused.
DEMO_SHA256 = {
    "LICENSE.txt": "978667be7ee57b40797eb04701ef0752adc219ef3b97c4bbdb50126c4cd5215e",
    "Images/bus_0072-l.png": "b688bf4fdfaaaa41e095bf21e0c2fa45707c9618cbae2193ab2acbb05b5bfed4",
    "Images/bus_0060-l.png": "1453a5fae15732204e8a2565c05ef2316514f3b2f14da8f0ec707c806a2e57ec",
    "Images/bus_0298-l.png": "858c629277a2c77c2789989a897727b343240d4333cfcd4ba753f46e52cb2c8d",
    "Images/bus_0007-l.png": "c1ae5b80605f56a39eaa4ede8c39648df3475582ab71e7e976bfc25fa5eab661",
    "Images/bus_0009-l.png": "14d00a677a4b5ea960b7b085cad0b14f8bcdd749d63064ea7a6fa1437ea7736c",
    "Images/bus_0059-l.png": "8adae404592f9ff81a2bde39a285bd25801127d7c3d0629cc6171e0372d82ac1",
    "Masks/mask_0072-l.png": "0a6bacc7648bd380f6e6004e06312588bd590fe41b44ede75c8450c68c5d4570",
    "Masks/mask_0060-l.png": "8cd315e4e2dd511660d385ddae397e7def6cacfcb4df6d433509a61a6bdee208",
    "Masks/mask_0298-l.png": "bb5c3d538310cf57277d1c1d566d7c73ca874c02359ee1fb385790ea9cb1c04d",
    "Masks/mask_0007-l.png": "0d83e63426c425648f4687cabfd3b2876bd0d89a76dcf9281880d640f5aa3b8f",
    "Masks/mask_0009-l.png": "f2723422dde33a8aa7f854722d04ac0e2700f566fd6b8c6228b361dc9ca63259",
    "Masks/mask_0059-l.png": "3e2fca6a3d500c51cfedb267f90100e8b890216af8d64aa98e7af154b2711605",
}


def fetch_busbra_demo(dest: str | os.PathLike | None = None, *, url: str = BUSBRA_DEMO_URL,
                      downloader=None) -> Path:
    """Download chapter 8's six demonstration images of BUS-BRA, with their masks and licence.

    The folder it fills has BUS-BRA's layout (``Images/``, ``Masks/``, ``bus_data.csv`` with the
    six rows, ``LICENSE.txt``), so it can be read like the full set; it is kept apart from where
    :func:`locate_busbra` looks, so that six images are never taken for the external test set.

    Parameters
    ----------
    dest : path, optional
        The folder to fill (default ``BUS-BRA-demo`` in :func:`busi_lib.data.busi.
        default_cache_dir`). Files already there with the right sha256 are not fetched again.
    url : str
        The release's folder, ending in ``/`` (default :data:`BUSBRA_DEMO_URL`).
    downloader : callable, optional
        A pooch downloader ``(url, output_file, pooch)``; the tests pass one that copies local
        files, so the logic runs without the network.

    Returns
    -------
    Path of the filled folder.

    Raises
    ------
    DataError
        When a file cannot be fetched or its sha256 is not the release's.
    """
    import pooch

    if not url.endswith("/"):
        raise ValueError(f"url must be a folder ending in '/', got {url!r}")
    root = Path(dest) if dest is not None else default_cache_dir() / "BUS-BRA-demo"
    for rel, sha in DEMO_SHA256.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            pooch.retrieve(url + rel, known_hash=f"sha256:{sha}", fname=target.name,
                           path=target.parent, downloader=downloader, progressbar=False)
        except ValueError as exc:  # pooch raises ValueError on a hash mismatch
            raise DataError(f"{url + rel} failed its sha256 check (expected {sha}): the public "
                            "copy changed; use your own images instead") from exc
        except Exception as exc:  # network errors: say what to do instead
            raise DataError(f"could not download {url + rel} ({type(exc).__name__}: {exc}); "
                            "use your own images instead") from exc
    (root / "bus_data.csv").write_text(DEMO_TABLE)
    return root
