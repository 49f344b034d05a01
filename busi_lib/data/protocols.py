"""Peers' evaluation protocols, rebuilt from their published descriptions.

Each builder returns a fold table in the form :mod:`busi_lib.data.splits` uses (one row per
image: ``id``, ``class``, ``fold``, ``group``; ``fold = -1`` for images the protocol leaves
out) plus, where the peer holds a validation part out of each training part, one boolean
column ``val<k>`` per fold ``k`` (the image is in fold ``k``'s validation part: neither trained
on nor tested in that fold).

``"peer_curated"`` -- Curated BUSI, multi-task (Aumente-Maestro et al., repository
    ``caumente/multi_task_breast_cancer``, ``src/config.yaml`` and
    ``src/dataset/BUSI_dataloader.py``): the images of the keep-list
    ``curation/mapping_curated_BUSI.csv`` (benign, malignant and normal), in the keep-list's
    order; ``StratifiedKFold(n_splits=4, shuffle=True, random_state=1993)`` over the class
    names; in each fold, ``train_test_split(train_part, train_size=0.8, random_state=1993,
    stratify=class)`` for the validation part. The same calls on the same order give the same
    folds; that their ``mapping.csv`` lists the images in the keep-list's order is our
    assumption (their preprocessing writes it, and it is not published).

``"peer_segbench"`` -- the segmentation benchmark of ``FengheTan9/Medical-Image-Segmentation-
    Benchmarks``: BUSI's benign and malignant images (no normals), three random 70/30 splits
    (their ``split.py``: ``train_test_split(test_size=0.3, random_state=random.randint(0,
    1024))``, seeds not published), 256 px. Rebuilt exactly from their three published test
    lists (``peer_lists/segbench_test_splits.csv``, see ``peer_lists/SOURCE.md``). The splits'
    test parts overlap (they are repeats, not folds): the table has ``fold = 0`` for every image
    the protocol keeps and one boolean column ``test<k>`` per repeat.

``"peer_grouped_locked"`` -- the duplicate-grouped protocol with a locked test set of
    ``wajidali99/breast-ultrasound-classification`` (``scripts/01_data_audit_split.py``,
    ``src/data.py``): every BUSI image of the three classes (files sorted by path within
    ``benign``, ``malignant``, ``normal``), grouped by perceptual hash (``imagehash.phash`` of
    the grey image; Hamming distance <= 4; union-find over the pairs in index order), groups
    whose images carry more than one label excluded, one sixth locked as a test set
    (the first test part of ``StratifiedGroupKFold(6, shuffle=True, random_state=42)``) and 5
    grouped folds on the rest (``StratifiedGroupKFold(5, shuffle=True, random_state=42)``);
    the binary task then drops the normal images. The same calls on the same order and the
    same hashes give their groups and exclusions (a test checks rows of their published
    ``busi_splits.csv``), but **not their split**: scikit-learn 1.8 fixed a bug of
    ``StratifiedGroupKFold(shuffle=True)`` (it shuffled the groups' class counts without the
    groups, PR 32540), and their split was drawn before the fix. Ours is the same protocol
    drawn with the fixed splitter: same grouping, exclusions and sizes, other members. The
    table has ``fold`` 0-4 for the cross-validated images, ``-1``
    otherwise, and a boolean column ``locked`` for the locked test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.errors import ConfigError, DataError

PEER_CLASSES = ("benign", "malignant", "normal")

#: Curated BUSI's protocol (their ``config.yaml``: ``CV: 4``, ``seed: 1993``,
#: ``train_size: 0.8``, ``classes: [benign, malignant, normal]``, 128 px images).
PEER_CURATED = {"n_folds": 4, "seed": 1993, "train_size": 0.8,
                "classes": ("benign", "malignant", "normal"), "image_size": 128}


def curated_multitask_folds(ids: Sequence[str], class_names_of_ids: Sequence[str],
                            keep_list: Sequence[str], *, n_folds: int = PEER_CURATED["n_folds"],
                            seed: int = PEER_CURATED["seed"],
                            train_size: float = PEER_CURATED["train_size"]) -> pd.DataFrame:
    """The Curated-BUSI multi-task protocol's folds for the images ``ids``.

    Parameters
    ----------
    ids : image ids of the data (``"benign (20)"``), in the data's order
    class_names_of_ids : the class name of each of ``ids``
    keep_list : the keep-list's ids **in the keep-list's order** (see
        :func:`busi_lib.data.splits.read_curated_list`); the folds depend on that order
    n_folds, seed, train_size : the peer's values (:data:`PEER_CURATED`)

    Returns
    -------
    DataFrame in the order of ``ids``: ``id``, ``class``, ``fold`` (``-1`` off the keep-list),
    ``group`` (the row number: this protocol does not group duplicates; the keep-list removed
    them) and ``val0`` ... ``val<n_folds-1>``.

    Raises
    ------
    DataError
        A keep-list id is not among ``ids`` (another copy of BUSI, or classes left out).
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    ids = [str(i) for i in ids]
    if len(ids) != len(class_names_of_ids):
        raise ConfigError(f"{len(ids)} ids but {len(class_names_of_ids)} class names: expected "
                          "one class name per id")
    where = {i: n for n, i in enumerate(ids)}
    missing = [i for i in keep_list if i not in where]
    if missing:
        raise DataError(f"{len(missing)} keep-list images are not in the data (first: "
                        f"{missing[:3]}); expected every one of them (load all three classes: "
                        f"{list(PEER_CURATED['classes'])})")
    if len(set(keep_list)) != len(keep_list):
        raise DataError("the keep-list names an image twice; expected each image once")
    if not 0 < train_size < 1:
        raise ConfigError(f"train_size={train_size!r}: expected a fraction in (0, 1)")
    rows = np.array([where[i] for i in keep_list])
    cls = np.asarray(class_names_of_ids, dtype=object)[rows].astype(str)
    fold = np.full(len(ids), -1, np.int64)
    val = np.zeros((n_folds, len(ids)), bool)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=int(seed))
    for k, (train_val, test) in enumerate(splitter.split(rows, cls)):
        fold[rows[test]] = k
        _, val_part = train_test_split(train_val, train_size=train_size, random_state=int(seed),
                                       shuffle=True, stratify=cls[train_val])
        val[k, rows[val_part]] = True
    out = pd.DataFrame({"id": ids, "class": [str(c) for c in class_names_of_ids],
                        "fold": fold, "group": np.arange(len(ids))})
    for k in range(n_folds):
        out[f"val{k}"] = val[k]
    return out


#: The segmentation benchmark's protocol (three repeats of a 70/30 split, 256 px).
PEER_SEGBENCH = {"n_splits": 3, "test_share": 0.3, "classes": ("benign", "malignant"),
                 "image_size": 256}
SEGBENCH_LISTS = Path(__file__).resolve().parent / "peer_lists" / "segbench_test_splits.csv"


def read_segbench_lists(path: str | Path = SEGBENCH_LISTS) -> list[list[str]]:
    """The benchmark's published test lists, one list of image ids per split, in order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{str(path)!r} not found; expected the benchmark's test lists "
                        "(busi_lib/data/peer_lists/segbench_test_splits.csv)")
    df = pd.read_csv(path, dtype={"id": str})
    if list(df.columns) != ["split", "id"]:
        raise DataError(f"{str(path)!r} has columns {list(df.columns)}; expected ['split', 'id']")
    return [df.loc[df["split"] == s, "id"].tolist() for s in sorted(df["split"].unique())]


def segbench_splits(ids: Sequence[str], class_names_of_ids: Sequence[str],
                    test_lists: Sequence[Sequence[str]] | None = None, *,
                    subset: bool = False) -> pd.DataFrame:
    """The segmentation benchmark's three splits for the images ``ids``.

    Parameters
    ----------
    ids, class_names_of_ids : the data's image ids and their class names
    test_lists : one list of test ids per split; default the published ones
        (:func:`read_segbench_lists`)
    subset : the data is a capped subset (the smoke profile): listed images it lacks are
        dropped instead of raising

    Returns
    -------
    DataFrame in the order of ``ids``: ``id``, ``class``, ``fold`` (0 for the benign and
    malignant images, -1 for the others), ``group`` (the row number) and ``test0`` ...
    ``test<n-1>``.

    Raises
    ------
    DataError
        A listed image is not among the benign and malignant ``ids``.
    """
    ids = [str(i) for i in ids]
    if len(ids) != len(class_names_of_ids):
        raise ConfigError(f"{len(ids)} ids but {len(class_names_of_ids)} class names: expected "
                          "one class name per id")
    lists = read_segbench_lists() if test_lists is None else [list(t) for t in test_lists]
    kept = np.isin(np.asarray(class_names_of_ids, dtype=object).astype(str),
                   PEER_SEGBENCH["classes"])
    where = {i: n for n, i in enumerate(ids) if kept[n]}
    out = pd.DataFrame({"id": ids, "class": [str(c) for c in class_names_of_ids],
                        "fold": np.where(kept, 0, -1), "group": np.arange(len(ids))})
    for k, test in enumerate(lists):
        missing = [i for i in test if i not in where]
        if subset:
            test, missing = [i for i in test if i in where], []
        if missing:
            raise DataError(f"split {k + 1}: {len(missing)} test images are not among the "
                            f"data's benign and malignant images (first: {missing[:3]})")
        col = np.zeros(len(ids), bool)
        col[[where[i] for i in test]] = True
        out[f"test{k}"] = col
    return out


def peer_oversample(labels: Sequence[int]) -> np.ndarray:
    """The Curated-BUSI peer's *deterministic oversampling* of a training set, as indices.

    Their ``deterministic_oversampling`` (``src/dataset/BUSI_dataloader.py``) repeats each
    class ``round(1 / its share)`` times in all (rounded half to even, as pandas does): with
    Curated BUSI's shares about x2 benign, x3 malignant and x7 normal, which makes the classes
    about equally frequent. Returns every index once, in order, then the extra copies, class by
    class from the most frequent (ties: the smaller label first).
    """
    y = np.asarray(labels)
    if y.ndim != 1 or not len(y):
        raise ConfigError(f"labels of shape {y.shape}: expected a non-empty 1-D array")
    classes, counts = np.unique(y, return_counts=True)
    extra = []
    for c, n in sorted(zip(classes, counts), key=lambda t: (-t[1], t[0])):
        factor = int(np.round(len(y) / n))
        if factor > 1:
            extra.append(np.tile(np.flatnonzero(y == c), factor - 1))
    return np.concatenate([np.arange(len(y))] + extra)


def fold_parts(folds: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, val, test)`` row indices of fold (or repeat) ``k``.

    The test part is the test fold ``k`` -- or, in a table of repeated splits, the rows of
    ``test<k>``; the validation part is ``val<k>`` where the table has it (else empty); the
    training part is the rest of the images the protocol keeps (``fold >= 0``). The three never
    share a row."""
    col = folds["fold"].to_numpy()
    kept = col >= 0
    if f"test{k}" in folds.columns:
        in_test = folds[f"test{k}"].to_numpy(bool)
    elif k in set(col[kept].tolist()):
        in_test = col == k
    else:
        raise ConfigError(f"fold {k!r}: expected one of {sorted(set(col[kept].tolist()))}")
    in_val = (folds[f"val{k}"].to_numpy(bool) if f"val{k}" in folds.columns
              else np.zeros(len(col), bool))
    test = np.nonzero(in_test & kept)[0]
    val = np.nonzero(in_val & ~in_test & kept)[0]
    train = np.nonzero(~in_val & ~in_test & kept)[0]
    return train, val, test


#: The grouped, locked-test protocol (their ``PHASH_THRESH``, ``SEED``, 6 and 5 splits).
PEER_GROUPED_LOCKED = {"phash_max": 4, "seed": 42, "locked_parts": 6, "n_folds": 5}


def phash_groups(hashes: Sequence[str], max_distance: int = PEER_GROUPED_LOCKED["phash_max"]
                 ) -> np.ndarray:
    """Union-find groups of images whose 64-bit perceptual hashes (hex strings) differ in at
    most ``max_distance`` bits; each group is named by its root's index, the pairs joined in
    index order ``(i, j), i < j`` with the root of ``i`` hung under the root of ``j`` (so that
    the names are the peer's)."""
    bits = np.array([[int(c, 16) >> b & 1 for c in h for b in (3, 2, 1, 0)] for h in hashes],
                    dtype=np.uint8)
    if bits.ndim != 2 or (len(bits) and bits.shape[1] != 64):
        raise DataError("expected 16-hex-digit (64-bit) hashes")
    parent = list(range(len(bits)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    for i, j in zip(*np.nonzero(np.triu(dist <= max_distance, k=1))):
        parent[find(int(i))] = find(int(j))
    return np.array([find(i) for i in range(len(bits))], dtype=np.int64)


def image_phashes(data_root: str | Path, ids: Sequence[str]) -> list[str]:
    """``imagehash.phash`` (hex) of each image file ``<data_root>/<class>/<id>.png``, read in
    grey as the peer reads it."""
    import imagehash
    from PIL import Image

    root = Path(data_root)
    out = []
    for i in ids:
        path = root / str(i).split(" ")[0] / f"{i}.png"
        if not path.is_file():
            raise DataError(f"{str(path)!r} not found; expected BUSI's image files")
        with Image.open(path) as im:
            out.append(str(imagehash.phash(im.convert("L"))))
    return out


def grouped_locked_folds(ids: Sequence[str], class_names_of_ids: Sequence[str],
                         hashes: Sequence[str], *, task_classes: Sequence[str] =
                         ("benign", "malignant")) -> pd.DataFrame:
    """The grouped, locked-test protocol's folds.

    Parameters
    ----------
    ids, class_names_of_ids, hashes : **every** BUSI image of the three classes (the split is
        drawn over all of them, normals included), their class names and perceptual hashes
        (:func:`image_phashes`), in any order
    task_classes : the classes the task keeps afterwards (the binary task: benign, malignant)

    Returns
    -------
    DataFrame in the order of ``ids``: ``id``, ``class``, ``fold`` (0-4, or ``-1`` for the
    locked test set, the excluded conflicting groups and the classes the task drops),
    ``group`` (the peer's group name), ``conflict``, ``locked``.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    ids = [str(i) for i in ids]
    if not len(ids) == len(class_names_of_ids) == len(hashes):
        raise ConfigError(f"{len(ids)} ids, {len(class_names_of_ids)} class names and "
                          f"{len(hashes)} hashes: expected one of each per image")
    cls = np.asarray(class_names_of_ids, dtype=object).astype(str)
    if set(cls) != set(PEER_CLASSES):
        raise DataError(f"classes {sorted(set(cls))}: the split is drawn over all of "
                        f"{list(PEER_CLASSES)}; load the normal images too")
    # the peer's order: classes in PEER_CLASSES order, files sorted by name within each
    order = sorted(range(len(ids)), key=lambda n: (PEER_CLASSES.index(cls[n]), f"{ids[n]}.png"))
    o_cls = cls[order]
    group = phash_groups([hashes[n] for n in order])
    labels_per_group = pd.Series(o_cls).groupby(group).transform("nunique").to_numpy()
    conflict = labels_per_group > 1
    use = np.nonzero(~conflict)[0]
    seed = PEER_GROUPED_LOCKED["seed"]
    sgkf = StratifiedGroupKFold(n_splits=PEER_GROUPED_LOCKED["locked_parts"], shuffle=True,
                                random_state=seed)
    test_pos = next(sgkf.split(use, o_cls[use], group[use]))[1]
    locked = np.zeros(len(ids), bool)
    locked[use[test_pos]] = True
    tv = np.setdiff1d(use, use[test_pos])        # in index order, as the peer's frame
    fold = np.full(len(ids), -1, np.int64)
    cv = StratifiedGroupKFold(n_splits=PEER_GROUPED_LOCKED["n_folds"], shuffle=True,
                              random_state=seed)
    for k, (_, va) in enumerate(cv.split(tv, o_cls[tv], group[tv])):
        fold[tv[va]] = k
    fold[~np.isin(o_cls, list(task_classes))] = -1
    back = np.empty(len(ids), np.int64)
    back[order] = np.arange(len(ids))            # peer order -> data order
    return pd.DataFrame({"id": ids, "class": cls.tolist(), "fold": fold[back],
                         "group": group[back], "conflict": conflict[back],
                         "locked": locked[back] & np.isin(cls, list(task_classes))})


def busi_image_ids(data_root: str | Path) -> list[str]:
    """Every image id of a BUSI folder (``benign (1)``, ...), masks left out."""
    root = Path(data_root)
    ids = [p.stem for c in PEER_CLASSES for p in sorted((root / c).glob("*.png"))
           if "_mask" not in p.name]
    if not ids:
        raise DataError(f"no BUSI images under {str(root)!r}; expected benign/, malignant/ and "
                        "normal/ folders of PNG files")
    return ids


def grouped_locked_for(data_root: str | Path, ids: Sequence[str],
                       task_classes: Sequence[str] = ("benign", "malignant")) -> pd.DataFrame:
    """:func:`grouped_locked_folds` drawn over every image of the BUSI folder ``data_root``,
    returned for the images ``ids`` (in their order; each must be in the folder)."""
    every = busi_image_ids(data_root)
    table = grouped_locked_folds(every, [i.split(" ")[0] for i in every],
                                 image_phashes(data_root, every), task_classes=task_classes)
    table = table.set_index("id")
    missing = [i for i in map(str, ids) if i not in table.index]
    if missing:
        raise DataError(f"{len(missing)} images are not in {str(data_root)!r} (first: "
                        f"{missing[:3]})")
    return table.loc[[str(i) for i in ids]].reset_index()
