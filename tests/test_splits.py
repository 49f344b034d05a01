"""busi_lib.data.splits: stratified, disjoint, reproducible folds; duplicate grouping; keep-list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from busi_lib.data import busi, splits
from busi_lib.errors import ConfigError, DataError


def _labels(n0=40, n1=20):
    ids = [f"benign ({i})" for i in range(1, n0 + 1)] + [f"malignant ({i})" for i in range(1, n1 + 1)]
    return ids, np.array([0] * n0 + [1] * n1)


def test_random_folds_stratified_disjoint_complete():
    ids, y = _labels()
    df = splits.make_folds(ids, y, n_folds=5, seed=1)
    assert sorted(df["fold"].unique()) == [0, 1, 2, 3, 4]
    assert df["id"].is_unique and len(df) == 60          # each image in exactly one fold
    per = df.groupby("fold")["class"].value_counts().unstack()
    assert (per["benign"] == 8).all() and (per["malignant"] == 4).all()


def test_folds_depend_on_seed_only():
    ids, y = _labels()
    a = splits.make_folds(ids, y, seed=3)
    b = splits.make_folds(ids, y, seed=3)
    c = splits.make_folds(ids, y, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert (a["fold"] != c["fold"]).any()


def test_grouped_folds_keep_duplicates_together():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (30, 32, 32), dtype=np.uint8)
    ids = [f"benign ({i})" for i in range(20)] + [f"malignant ({i})" for i in range(10)]
    y = np.array([0] * 20 + [1] * 10)
    hashes = [f"h{i}" for i in range(30)]
    hashes[25] = hashes[3]                            # exact cross-class duplicate
    imgs[7] = np.clip(imgs[2].astype(int) + 1, 0, 255)  # near-duplicate (brightness +1)
    groups = splits.duplicate_groups(imgs, hashes)
    assert groups[25] == groups[3] and groups[7] == groups[2]
    assert len(set(groups)) == 28
    for seed in range(5):
        df = splits.make_folds(ids, y, n_folds=3, seed=seed, mode="grouped", images=imgs,
                               image_sha256=hashes)
        assert df.loc[25, "fold"] == df.loc[3, "fold"] and df.loc[7, "fold"] == df.loc[2, "fold"]


def test_near_duplicate_thresholds():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    b = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    pairs = splits.near_duplicate_pairs(np.stack([a, b, a]))
    assert [(i, j) for i, j, _, _ in pairs] == [(0, 2)]
    with pytest.raises(ConfigError, match="corr_min"):
        splits.near_duplicate_pairs(np.stack([a, b]), corr_min=1.5)


def test_curated_mode_uses_keep_list_only(tmp_path):
    keep = tmp_path / "keep.csv"
    keep.write_bytes(b"class;id\r\n" + b"".join(f"benign;{i}\r\n".encode() for i in range(1, 21))
                     + b"".join(f"malignant;{i}\r\n".encode() for i in range(1, 11)))
    cur = splits.read_curated_ids(keep)
    assert len(cur) == 30 and "benign (20)" in cur
    ids, y = _labels()
    df = splits.make_folds(ids, y, n_folds=5, mode="curated", curated_ids=cur)
    assert (df.loc[df["id"].isin(cur), "fold"] >= 0).all()
    assert (df.loc[~df["id"].isin(cur), "fold"] == -1).all()


def test_fold_csv_written_and_checked(tmp_path):
    ids, y = _labels()
    path = tmp_path / "s.csv"
    a = splits.load_or_make_folds(path, ids, labels=y, n_folds=5, seed=0)
    assert path.is_file() and list(pd.read_csv(path).columns) == ["id", "class", "fold", "group"]
    b = splits.load_or_make_folds(path, ids, labels=y, n_folds=5, seed=99)  # read, not remade
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(DataError, match="does not match"):
        splits.load_or_make_folds(path, ids[:-1], labels=y[:-1], n_folds=5, seed=0)


def test_too_many_folds_for_smallest_class():
    ids, y = _labels(10, 3)
    with pytest.raises(ConfigError, match="n_folds=5"):
        splits.make_folds(ids, y, n_folds=5)


@pytest.mark.data
def test_real_cross_class_duplicate_grouped(real_busi, real_cache):
    d = busi.load_busi(real_busi, image_size=32, cache_dir=real_cache, download=False)
    assert len(d) == 647
    df = splits.make_folds(d.ids, d.labels, n_folds=5, seed=42, mode="grouped",
                           images=d.images, image_sha256=d.image_sha256)
    f = dict(zip(df["id"], df["fold"]))
    g = dict(zip(df["id"], df["group"]))
    assert g["benign (433)"] == g["malignant (145)"]
    assert f["benign (433)"] == f["malignant (145)"]
    # class balance survives grouping: malignant share per fold within 5 points of overall
    share = df.groupby("fold")["class"].apply(lambda s: (s == "malignant").mean())
    assert (share - 210 / 647).abs().max() < 0.05
    cur = splits.read_curated_ids(real_busi.parent / "curation" / "mapping_curated_BUSI.csv")
    assert sum(i in cur for i in d.ids) == 222 + 164
    assert "benign (433)" not in cur and "malignant (145)" not in cur


def test_nested_share_is_nested_stratified_and_keeps_groups_whole():
    labels = np.array([0] * 60 + [1] * 40)
    groups = np.arange(100)
    groups[1:9:2] = groups[0:8:2]                  # four duplicate pairs in class 0
    groups[61:65] = 60                              # a group of five in class 1
    shares = {f: splits.nested_share(labels, groups, f, seed=3) for f in (0.25, 0.5, 0.75, 1.0)}
    np.testing.assert_array_equal(shares[1.0], np.arange(100))
    for small, big in ((0.25, 0.5), (0.5, 0.75), (0.75, 1.0)):
        assert set(shares[small]) < set(shares[big])            # nested
    for f, pos in shares.items():
        for c, n in ((0, 60), (1, 40)):                          # at least the share per class,
            got = np.sum(labels[pos] == c)                       # at most one group over it
            assert np.ceil(f * n) <= got < np.ceil(f * n) + 5
        inside = set(groups[pos])                                # a group is all in or all out
        assert set(np.nonzero(np.isin(groups, list(inside)))[0]) == set(pos)
    np.testing.assert_array_equal(splits.nested_share(labels, groups, 0.5, seed=3), shares[0.5])
    assert not np.array_equal(splits.nested_share(labels, groups, 0.5, seed=4), shares[0.5])


def test_nested_share_refuses_bad_input():
    with pytest.raises(ConfigError, match=r"fraction=0: expected a number in \(0, 1\]"):
        splits.nested_share([0, 1], [0, 1], 0)
    with pytest.raises(ConfigError, match="fraction=1.5"):
        splits.nested_share([0, 1], [0, 1], 1.5)
    with pytest.raises(ConfigError, match="same length"):
        splits.nested_share([0, 1, 1], [0, 1], 0.5)


def test_grouped_split_does_not_depend_on_the_experiments_preprocessing(busi_dir, tmp_path):
    """Near-duplicates are looked for in one fixed view (splits.GROUPING_VIEW), so two
    configurations with other image sizes and enhancements make the same split file."""
    from busi_lib.config import make_config

    made = []
    for i, ov in enumerate(({"image_size": 32, "enhancement": "none"},
                            {"image_size": 64, "enhancement": "clahe"})):
        cfg = make_config("smoke", "multitask_grouped", max_per_class=None, **ov)
        _, folds = splits.prepare(cfg, busi_dir, results_dir=tmp_path / f"r{i}")
        made.append(folds)
    pd.testing.assert_frame_equal(made[0], made[1])
    view = busi.load_busi(busi_dir, classes=["benign", "malignant"], **splits.GROUPING_VIEW)
    want = splits.make_folds(view.ids, view.labels, n_folds=made[0]["fold"].max() + 1, seed=42,
                             mode="grouped", images=view.images, image_sha256=view.image_sha256)
    pd.testing.assert_frame_equal(made[0], want)


@pytest.mark.data
def test_a_new_results_folder_makes_the_committed_grouped_split(real_busi, tmp_path):
    """The book's records were trained on results/splits/benign-malignant_grouped_k5_seed42.csv;
    from an empty results folder the code makes that same file again."""
    from busi_lib.config import make_config

    cfg = make_config("cpu", "multitask_grouped")
    assert cfg["enhancement"] != splits.GROUPING_VIEW["enhancement"]   # the recipe's own view
    _, folds = splits.prepare(cfg, real_busi, results_dir=tmp_path / "r")
    committed = pd.read_csv(splits.SPLITS_DIR / "benign-malignant_grouped_k5_seed42.csv",
                            dtype={"id": str, "class": str})
    pd.testing.assert_frame_equal(folds, committed)
