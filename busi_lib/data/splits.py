"""Cross-validation folds: random stratified, duplicate-grouped, or on the curated keep-list.

Every split is written to a CSV with one row per image (``id, class, fold, group``) so that a
reader can see where every image went. Three modes:

``"random"``
    :class:`sklearn.model_selection.StratifiedKFold`, shuffled with the seed (what the paper
    appears to do).
``"grouped"``
    :class:`sklearn.model_selection.StratifiedGroupKFold`; exact duplicates (same decoded pixels)
    and near-duplicates are put in one group, so a group never straddles train and test.
``"curated"``
    stratified folds over the images of the published Curated-BUSI keep-list only
    (Aumente-Maestro et al. 2025, ``curation/mapping_curated_BUSI.csv``).
``"peer_curated"``
    that peer's own protocol on the keep-list (their seed, their order, a validation part in
    each fold): :func:`busi_lib.data.protocols.curated_multitask_folds`.
``"peer_segbench"``
    a segmentation benchmark's three published 70/30 splits (repeats, not folds):
    :func:`busi_lib.data.protocols.segbench_splits`.
``"peer_grouped_locked"``
    a peer's perceptual-hash grouping, conflicting labels excluded, a locked test set and 5
    grouped folds: :func:`busi_lib.data.protocols.grouped_locked_folds`.

Near-duplicate rule (a documented heuristic, the same as the screen in ``BUSI/SOURCE.md``):
two images are near-duplicates when their 32x32 grey thumbnails have a Pearson correlation
>= ``corr_min`` (0.99) **and** their 64-bit difference hashes (dHash, 9x8 thumbnail) differ in
at most ``dhash_max`` (12) bits. Groups are the connected components of that relation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from busi_lib import records
from busi_lib.config import setting
from busi_lib.data.busi import load_busi
from busi_lib.data.protocols import curated_multitask_folds, grouped_locked_for, segbench_splits
from busi_lib.errors import ConfigError, DataError
from busi_lib.records import PROJECT_ROOT, atomic_write_text

SPLIT_MODES = ("random", "grouped", "curated", "peer_curated", "peer_segbench",
               "peer_grouped_locked")
SPLITS_DIR = PROJECT_ROOT / "results" / "splits"
#: The images a grouped split looks for near-duplicates in, whatever the experiment's own
#: preprocessing (so that one seed gives one split): 128 px, squashed, GHE-enhanced. It is the
#: view the book's committed split was made from. Before it was fixed here the screen ran on each
#: experiment's own view, and a new results folder got another split. The same screen on the
#: images without enhancement finds 13 more pairs; the committed split leaves them in two folds,
#: and chapter 3 measures what that changes (:mod:`busi_lib.analysis.leakage`).
GROUPING_VIEW = {"image_size": 128, "enhancement": "ghe", "resize": "squash"}


def _thumb(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR), np.float64)


def dhash(img: np.ndarray) -> np.ndarray:
    """64-bit difference hash of a grey image as a bool array of 64 (9x8 thumbnail, row-wise)."""
    t = _thumb(img, (9, 8))
    return (t[:, 1:] > t[:, :-1]).ravel()


def near_duplicate_pairs(images: np.ndarray, *, corr_min: float = 0.99,
                         dhash_max: int = 12) -> list[tuple[int, int, float, int]]:
    """Pairs ``(i, j, corr, hamming)`` of near-duplicate images (see the module docstring).

    ``images`` is an ``(N, H, W)`` uint8 array (any size; thumbnails are made here).
    """
    if not 0 < corr_min <= 1:
        raise ConfigError(f"corr_min={corr_min!r}: expected a correlation in (0, 1]")
    if not 0 <= dhash_max <= 64:
        raise ConfigError(f"dhash_max={dhash_max!r}: expected an integer in [0, 64]")
    n = len(images)
    if n < 2:
        return []
    t = np.stack([_thumb(im, (32, 32)).ravel() for im in images])
    t -= t.mean(1, keepdims=True)
    norm = np.linalg.norm(t, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    t /= norm
    corr = t @ t.T
    bits = np.stack([dhash(im) for im in images]).astype(np.int32)
    ham = bits @ (1 - bits).T + (1 - bits) @ bits.T
    ii, jj = np.nonzero(np.triu((corr >= corr_min) & (ham <= dhash_max), k=1))
    return [(int(i), int(j), float(corr[i, j]), int(ham[i, j])) for i, j in zip(ii, jj)]


def duplicate_groups(images: np.ndarray, image_sha256: Sequence[str], *,
                     corr_min: float = 0.99, dhash_max: int = 12) -> np.ndarray:
    """Group index per image: exact duplicates (same pixel hash) and near-duplicates share one.

    Returns an ``(N,)`` int array; a group's index is the smallest member index.
    """
    n = len(images)
    if len(image_sha256) != n:
        raise ValueError(f"{len(image_sha256)} hashes for {n} images: expected one per image")
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[str, int] = {}
    for i, h in enumerate(image_sha256):
        if h in first:
            union(first[h], i)
        else:
            first[h] = i
    for i, j, _, _ in near_duplicate_pairs(images, corr_min=corr_min, dhash_max=dhash_max):
        union(i, j)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def read_curated_ids(path: str | os.PathLike) -> set[str]:
    """Ids (``"benign (20)"``) of the Curated-BUSI keep-list (``class;id`` CSV, CRLF allowed)."""
    return set(read_curated_list(path))


def read_curated_list(path: str | os.PathLike) -> list[str]:
    """The Curated-BUSI keep-list's ids in the file's order (the order its authors' folds
    were drawn in)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"curated keep-list {str(path)!r} not found; expected the file "
                        "curation/mapping_curated_BUSI.csv shipped beside Dataset_BUSI_with_GT")
    df = pd.read_csv(path, sep=";")
    if list(df.columns) != ["class", "id"]:
        raise DataError(f"{str(path)!r} has columns {list(df.columns)}; expected ['class', 'id']")
    return [f"{c.strip()} ({int(i)})" for c, i in zip(df["class"], df["id"])]


def default_curated_path(data_root: str | os.PathLike | None) -> Path | None:
    """``<data_root>/../curation/mapping_curated_BUSI.csv`` when it exists."""
    if data_root is None:
        return None
    p = Path(data_root).parent / "curation" / "mapping_curated_BUSI.csv"
    return p if p.is_file() else None


def make_folds(ids: Sequence[str], labels: Sequence[int], *, n_folds: int = 5, seed: int = 42,
               mode: str = "random", class_names: Sequence[str] = ("benign", "malignant"),
               images: np.ndarray | None = None, image_sha256: Sequence[str] | None = None,
               curated_ids: set[str] | None = None, corr_min: float = 0.99,
               dhash_max: int = 12, keep_list: Sequence[str] | None = None,
               subset: bool = False, data_root: str | os.PathLike | None = None
               ) -> pd.DataFrame:
    """Assign each image to a test fold.

    Returns
    -------
    DataFrame with columns ``id``, ``class``, ``fold`` (0..n_folds-1) and ``group``, in the
    order of ``ids``. In ``"curated"`` mode images off the keep-list get ``fold = -1``.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if mode not in SPLIT_MODES:
        raise ConfigError(f"split={mode!r}: expected one of {list(SPLIT_MODES)}")
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds={n_folds!r}: expected an integer >= 2")
    if mode == "peer_curated":
        if keep_list is None:
            raise ConfigError("split='peer_curated' needs keep_list (see read_curated_list)")
        return curated_multitask_folds(ids, [class_names[i] for i in labels], keep_list,
                                       n_folds=n_folds, seed=seed)
    if mode == "peer_grouped_locked":
        if data_root is None:
            raise ConfigError("split='peer_grouped_locked' needs data_root (the BUSI folder: the "
                              "split is drawn over all of its images)")
        return grouped_locked_for(data_root, ids, task_classes=class_names)
    if mode == "peer_segbench":
        return segbench_splits(ids, [class_names[i] for i in labels], subset=subset)
    ids = np.asarray(ids)
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=len(class_names))
    groups = np.arange(len(ids))
    keep = np.ones(len(ids), bool)
    if mode == "grouped":
        if images is None or image_sha256 is None:
            raise ConfigError("split='grouped' needs images and image_sha256 to find duplicates")
        groups = duplicate_groups(images, image_sha256, corr_min=corr_min, dhash_max=dhash_max)
    elif mode == "curated":
        if curated_ids is None:
            raise ConfigError("split='curated' needs curated_ids (see read_curated_ids)")
        keep = np.array([i in curated_ids for i in ids])
        counts = np.bincount(labels[keep], minlength=len(class_names))
    if counts.min() < n_folds:
        raise ConfigError(f"n_folds={n_folds} but the smallest class has only {counts.min()} "
                          f"images ({dict(zip(class_names, counts.tolist()))}); expected at "
                          "least one image of each class per fold")
    fold = np.full(len(ids), -1, np.int64)
    idx = np.nonzero(keep)[0]
    if mode == "grouped":
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(idx, labels[idx], groups[idx])
    else:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(idx, labels[idx])
    for k, (_, test) in enumerate(parts):
        fold[idx[test]] = k
    return pd.DataFrame({"id": ids, "class": [class_names[i] for i in labels], "fold": fold,
                         "group": groups})


def splits_path(classes: Sequence[str], mode: str, n_folds: int, seed: int,
                max_per_class: int | None = None, folder: str | os.PathLike | None = None) -> Path:
    """Canonical CSV name, e.g. ``results/splits/benign-malignant_random_k5_seed42.csv``."""
    name = f"{'-'.join(classes)}_{mode}_k{n_folds}_seed{seed}"
    if max_per_class is not None:
        name += f"_max{max_per_class}"
    return Path(folder if folder is not None else SPLITS_DIR) / f"{name}.csv"


def config_splits_path(cfg: dict, results_dir: str | os.PathLike | None = None) -> Path:
    """Where the fold table of configuration ``cfg`` is written
    (``<results>/splits/<name>.csv``, named by :func:`splits_path`)."""
    return splits_path(cfg["classes"], cfg["split"], cfg["n_folds"], cfg["seed"],
                       cfg["max_per_class"], folder=records.results_root(results_dir) / "splits")


def save_folds(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a fold table atomically."""

    atomic_write_text(path, df.to_csv(index=False))
    return Path(path)


def load_or_make_folds(path: str | os.PathLike, ids: Sequence[str], **make_kwargs) -> pd.DataFrame:
    """Read the fold CSV at ``path`` if it exists (and matches ``ids``), else make and save it.

    Raises
    ------
    DataError
        The existing CSV lists other images than ``ids``: the data changed since the split
        was made. Nothing is overwritten.
    """
    path = Path(path)
    if path.is_file():
        df = pd.read_csv(path, dtype={"id": str, "class": str})
        if sorted(df["id"]) != sorted(map(str, ids)):
            missing = sorted(set(map(str, ids)) - set(df["id"]))[:5]
            extra = sorted(set(df["id"]) - set(map(str, ids)))[:5]
            raise DataError(f"fold file {str(path)!r} does not match the data (images not in it: "
                            f"{missing}; in it but not in the data: {extra}). Delete it or use "
                            "another seed/mode to make a new split.")
        order = {k: i for i, k in enumerate(map(str, ids))}
        return df.sort_values("id", key=lambda s: s.map(order)).reset_index(drop=True)
    df = make_folds(ids, **make_kwargs)
    save_folds(df, path)
    return df


def nested_share(labels: Sequence[int], groups: Sequence[int], fraction: float, *,
                 seed: int = 42) -> np.ndarray:
    """Positions (sorted) of a class-stratified, duplicate-grouped share of the images.

    Within each class the duplicate groups are put in one random order (``seed``) and taken
    from the front until the class has at least ``ceil(fraction * n_class)`` images, so a group
    is never split and the shares are *nested*: with the same ``seed`` the share at 0.25 is
    inside the share at 0.5, which is inside the share at 0.75 (what a learning curve needs).

    Parameters
    ----------
    labels, groups : sequences of int, one entry per image (a group's images share a class)
    fraction : float in (0, 1]; 1 returns every position
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    if labels.shape != groups.shape or labels.ndim != 1:
        raise ConfigError(f"labels {labels.shape} and groups {groups.shape}: expected two 1-D "
                          "arrays of the same length")
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction={fraction!r}: expected a number in (0, 1]")
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for c in np.unique(labels):
        pos = np.nonzero(labels == c)[0]
        need = int(np.ceil(fraction * len(pos)))
        uniq, counts = np.unique(groups[pos], return_counts=True)
        perm = rng.permutation(len(uniq))            # the same draws as permuting uniq itself
        n_groups = int(np.searchsorted(np.cumsum(counts[perm]), need) + 1)
        keep.append(pos[np.isin(groups[pos], uniq[perm[:n_groups]])])
    return np.sort(np.concatenate(keep))


def near_duplicates(data, corr_min: float = 0.99, dhash_max: int = 12) -> pd.DataFrame:
    """Near-duplicate pairs (heuristic of :func:`busi_lib.data.splits.near_duplicate_pairs`)."""

    pairs = near_duplicate_pairs(data.images, corr_min=corr_min, dhash_max=dhash_max)
    cls = [data.class_names[i] for i in data.labels]
    rows = [{"image a": str(data.ids[i]), "image b": str(data.ids[j]), "class a": cls[i],
             "class b": cls[j], "correlation": c, "dHash distance": h,
             "cross-class": cls[i] != cls[j]} for i, j, c, h in pairs]
    return pd.DataFrame(rows, columns=["image a", "image b", "class a", "class b", "correlation",
                                       "dHash distance", "cross-class"])


def prepare(cfg: dict, data_dir=None, verbose: bool = False, results_dir=None,
            manifest_dir: Path | None = None):
    """Load the data and the fold table of a configuration.

    With ``manifest_dir``, the data is first checked against the manifest stored there (see
    :func:`busi_lib.records.check_manifest`), before anything else uses it.
    """
    data = load_busi(data_dir, image_size=cfg["image_size"], classes=cfg["classes"],
                     enhancement=cfg["enhancement"], max_per_class=cfg["max_per_class"],
                     verbose=verbose, resize=setting(cfg, "resize"))
    if manifest_dir is not None:
        records.check_manifest(manifest_dir, data.manifest, data.data_sha256)
    kw: dict[str, Any] = dict(labels=data.labels, n_folds=cfg["n_folds"], seed=cfg["seed"],
                              mode=cfg["split"], class_names=data.class_names)
    if cfg["split"] == "peer_segbench":
        kw.update(subset=cfg["max_per_class"] is not None)
    if cfg["split"] == "peer_grouped_locked":
        kw.update(data_root=data.root)
    csv = config_splits_path(cfg, results_dir)
    if cfg["split"] == "grouped" and not csv.is_file():
        view = data   # near-duplicates are looked for in one fixed view of the images
        if any(cfg.get(k) != v for k, v in GROUPING_VIEW.items()):
            view = load_busi(data_dir, classes=cfg["classes"], max_per_class=cfg["max_per_class"],
                             verbose=verbose, **GROUPING_VIEW)
        if list(view.ids) != list(data.ids):
            raise DataError("the grouping view lists other images than the data; expected the "
                            "same images in the same order")
        kw.update(images=view.images, image_sha256=view.image_sha256)
    if cfg["split"] in ("curated", "peer_curated"):
        path = default_curated_path(data.root)
        if path is None:
            raise DataError(f"split={cfg['split']!r} needs curation/mapping_curated_BUSI.csv "
                            f"next to {data.root}; it was not found")
        keep_list = read_curated_list(path)
        if cfg["max_per_class"] is not None:     # a capped subset (smoke) cannot hold them all
            present = set(map(str, data.ids))
            keep_list = [i for i in keep_list if i in present]
        kw.update(curated_ids=set(keep_list), keep_list=keep_list)
    folds = load_or_make_folds(csv, data.ids, **kw)
    return data, folds
