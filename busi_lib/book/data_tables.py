"""Tables of the BUSI images themselves: inventory, counts, sizes, duplicates, contrast.

Nothing here is trained: the image inventory, class counts beside the paper's, sizes,
exact and near duplicates, example picks and the lesion contrast of each enhancement method.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from busi_lib.analysis import paper
from busi_lib.book.runs import DEFAULT_SEED
from busi_lib.data.busi import (CLASSES, data_manifest, default_cache_dir, find_samples, load_busi,
                                load_sample, locate_data, manifest_sha256)
from busi_lib.data.enhance import METHODS, lesion_contrast
from busi_lib.errors import DataError
from busi_lib.records import atomic_write_text


def image_inventory(data_dir=None, cache: bool = True) -> pd.DataFrame:
    """One row per BUSI image (all three classes): size, colour, masks, lesion area, pixel hash.

    Decodes every original file once (about 15 s) and caches the table in the busi_lib cache
    folder, keyed by the pixel manifest, so later calls are instant.
    """
    from PIL import Image

    root = locate_data(data_dir)
    samples = find_samples(root, CLASSES)
    manifest = data_manifest(root, samples)
    key = manifest_sha256(manifest)[:16]
    path = default_cache_dir() / f"eda_inventory_{key}_v1.csv"
    if cache and path.is_file():
        return pd.read_csv(path, dtype={"id": str, "pixel_sha256": str})
    rows = []
    for s in samples:
        with Image.open(s.image_path) as im:
            mode = im.mode
            arr = np.asarray(im)
        colour = bool(arr.ndim == 3 and not (np.array_equal(arr[..., 0], arr[..., 1])
                                             and np.array_equal(arr[..., 0], arr[..., 2])))
        img, mask = load_sample(s)
        rows.append({"id": s.id, "class": s.label, "number": s.number, "height": img.shape[0],
                     "width": img.shape[1], "mode": mode, "colour": colour,
                     "n_masks": len(s.mask_paths), "lesion_fraction": float(mask.mean()),
                     "pixel_sha256": manifest[f"{s.label}/{s.image_path.name}"]})
    df = pd.DataFrame(rows)
    if cache:

        atomic_write_text(path, df.to_csv(index=False))
    return df


def class_count_table(inv: pd.DataFrame) -> pd.DataFrame:
    """Per class: images, mask files, images with several masks, colour images, and the
    counts the paper states."""
    g = inv.groupby("class")
    df = pd.DataFrame({"images (data)": g.size(), "paper states": pd.Series(paper.STATED_COUNTS),
                       "mask files": g["n_masks"].sum(),
                       "images with >1 mask": g["n_masks"].apply(lambda s: int((s > 1).sum())),
                       "colour images": g["colour"].sum().astype(int),
                       "empty masks": g["lesion_fraction"].apply(lambda s: int((s == 0).sum()))})
    df.loc["total"] = df.sum()
    return df.astype(int)


def size_table(inv: pd.DataFrame) -> pd.DataFrame:
    """Image width and height (px) and lesion area fraction (%) per class."""
    g = inv.groupby("class")
    df = pd.DataFrame({"distinct sizes": g.apply(lambda d: len(set(zip(d.width, d.height))),
                                                 include_groups=False),
                       "width min": g["width"].min(), "width median": g["width"].median(),
                       "width max": g["width"].max(), "height min": g["height"].min(),
                       "height median": g["height"].median(), "height max": g["height"].max(),
                       "lesion % median": 100 * g["lesion_fraction"].median(),
                       "lesion % p10": 100 * g["lesion_fraction"].quantile(0.1),
                       "lesion % p90": 100 * g["lesion_fraction"].quantile(0.9)})
    return df


def exact_duplicates(inv: pd.DataFrame) -> pd.DataFrame:
    """Groups of images with identical decoded pixels."""
    d = inv[inv.duplicated("pixel_sha256", keep=False)]
    rows = [{"images": ", ".join(g["id"]), "classes": ", ".join(sorted(set(g["class"]))),
             "cross-class": g["class"].nunique() > 1, "pixel sha256": h[:12]}
            for h, g in d.groupby("pixel_sha256", sort=True)]
    return pd.DataFrame(rows, columns=["images", "classes", "cross-class", "pixel sha256"])


def data_counts(data_dir=None) -> dict[str, int]:
    """Images per class in the data folder (file names only, nothing decoded)."""

    root = locate_data(data_dir)
    s = find_samples(root, CLASSES)
    return {c: sum(x.label == c for x in s) for c in CLASSES}


def original_sample(data_dir, sample_id: str):
    """Full-resolution grey image and merged mask of one BUSI image (e.g. ``"benign (4)"``)."""

    root = locate_data(data_dir)
    label = sample_id.split(" ")[0]
    if label not in CLASSES:
        raise DataError(f"sample id {sample_id!r}: expected '<class> (<n>)'")
    for s in find_samples(root, CLASSES):
        if s.id == sample_id:
            return load_sample(s)
    raise DataError(f"sample {sample_id!r} not found in {root}")


def pick_examples(data, n: int = 3, seed: int = DEFAULT_SEED) -> list[int]:
    """Indices of ``n`` lesion images (alternating classes), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    lesion_classes = [i for i, c in enumerate(data.class_names) if c != "normal"]
    for j in range(n):
        lab = lesion_classes[j % len(lesion_classes)]
        idx = np.flatnonzero((data.labels == lab) & data.masks.reshape(len(data), -1).any(1))
        idx = np.setdiff1d(idx, out)
        out.append(int(rng.choice(idx)))
    return out


def contrast_by_method(data_dir=None, *, image_size: int = 128, max_per_class=None,
                       classes=("benign", "malignant")) -> pd.DataFrame:
    """Lesion-vs-background contrast of the *network inputs* (after enhancement and resizing)
    for every lesion image and method. One row per image, one column per method."""

    cols = {}
    ids = None
    for m in METHODS:
        d = load_busi(data_dir, image_size=image_size, classes=list(classes), enhancement=m,
                      max_per_class=max_per_class)
        keep = d.masks.reshape(len(d), -1).any(1) & ~d.masks.reshape(len(d), -1).all(1)
        cols[m] = [lesion_contrast(im, mk) for im, mk in zip(d.images[keep], d.masks[keep])]
        if ids is None:
            ids = d.ids[keep]
            labels = [d.class_names[i] for i in d.labels[keep]]
    df = pd.DataFrame(cols, index=pd.Index(ids, name="image"))
    df.insert(0, "class", labels)
    return df


def contrast_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per method: median and mean |contrast|, and how often |contrast| beats ``none``."""

    rows = []
    base = df["none"].abs()
    for m in METHODS:
        a = df[m].abs()
        rows.append({"method": m, "images": int(a.notna().sum()),
                     "median |contrast|": float(a.median()), "mean |contrast|": float(a.mean()),
                     "median contrast": float(df[m].median()),
                     "% images with |contrast| > none": 100 * float((a > base + 1e-12).mean())
                     if m != "none" else np.nan,
                     "median ratio to none": float((a / base).median()) if m != "none" else 1.0})
    return pd.DataFrame(rows).set_index("method")
