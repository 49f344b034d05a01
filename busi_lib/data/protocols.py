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
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.errors import ConfigError, DataError

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
