"""Near-duplicates across folds and the metrics without them (busi_lib.analysis.leakage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import leakage
from busi_lib.errors import ConfigError

FOLDS = pd.DataFrame({"id": ["a", "b", "c", "d", "e", "f"], "fold": [0, 0, 1, 1, 2, -1]})
PAIRS = pd.DataFrame({"image a": ["a", "a", "c", "e", "x"],
                      "image b": ["b", "c", "e", "f", "a"]})


def test_straddling_pairs_and_leaked_ids():
    st = leakage.straddling_pairs(FOLDS, PAIRS)
    # a-b share fold 0; e-f: f is in no fold; x is not in the table
    assert st[["image a", "image b"]].values.tolist() == [["a", "c"], ["c", "e"]]
    assert st["fold a"].tolist() == [1, 2] and st["fold b"].tolist() == [2, 3]
    assert leakage.leaked_ids(FOLDS, PAIRS) == ["a", "c", "e"]
    assert leakage.leaked_ids(FOLDS, PAIRS.iloc[:1]) == []
    with pytest.raises(ConfigError, match="pairs has no column 'image b'"):
        leakage.straddling_pairs(FOLDS, PAIRS.rename(columns={"image b": "b"}))


def _pred(fold, ids, cls, dice, prob):
    return pd.DataFrame({"fold": fold, "id": ids, "true_class": cls, "dice": dice,
                         "prob_malignant": prob})


PRED = pd.concat([
    _pred(0, ["a", "b", "g", "h"], ["benign", "malignant", "benign", "malignant"],
          [0.2, 0.6, 0.8, 1.0], [0.9, 0.8, 0.1, 0.7]),
    _pred(1, ["c", "d", "i", "j"], ["benign", "malignant", "benign", "malignant"],
          [0.4, 0.4, 0.4, 0.4], [0.2, 0.1, 0.3, 0.9]),
])


def test_fold_values_with_and_without_images():
    d = leakage.fold_values(PRED, "seg_DC_mean")
    assert d.tolist() == pytest.approx([0.65, 0.4])
    d = leakage.fold_values(PRED, "seg_DC_mean", ["a"])
    assert d.tolist() == pytest.approx([0.8, 0.4])
    a = leakage.fold_values(PRED, "cls_AUC")
    # fold 0: malignant 0.8, 0.7 against benign 0.9, 0.1 -> 2 of 4 pairs; fold 1: 2 of 4
    assert a.tolist() == pytest.approx([0.5, 0.5])
    a = leakage.fold_values(PRED, "cls_AUC", ["a", "c"])   # a: benign 0.9; c: benign 0.2
    assert a.tolist() == pytest.approx([1.0, 0.5])
    with pytest.raises(ConfigError, match="metric='dice'"):
        leakage.fold_values(PRED, "dice")
    with pytest.raises(ConfigError, match="no column 'dice'"):
        leakage.fold_values(PRED.drop(columns="dice"), "seg_DC_mean")


def _write(folder, pred):
    folder.mkdir(parents=True)
    for k, d in pred.groupby("fold"):
        d.drop(columns="fold").to_csv(folder / f"fold{k}_predictions.csv", index=False)


def test_leak_effect_and_paired_verdicts(tmp_path):
    ref = PRED.copy()
    var = PRED.copy()
    var["dice"] = var["dice"] + 0.1
    var.loc[var["id"] == "a", "dice"] = 0.2 + 0.5        # the leaked image gains most
    _write(tmp_path / "p" / "ref", ref)
    _write(tmp_path / "p" / "var", var)
    eff = leakage.leak_effect("p", ["ref", "var", "missing"], ["a"], results_dir=tmp_path)
    row = eff[(eff["experiment"] == "ref") & (eff["metric"] == "Dice")].iloc[0]
    assert row["images left out"] == 1 and row["folds"] == 2
    assert row["all"] == pytest.approx(0.525) and row["without"] == pytest.approx(0.6)
    assert row["change"] == pytest.approx(0.075)
    assert set(eff["experiment"]) == {"ref", "var"}
    pe = leakage.paired_leak_effect("p", "ref", ["var"], ["a"], results_dir=tmp_path)
    dice = pe[pe["metric"] == "Dice"].iloc[0]
    # with a: fold 0 +0.2 (0.5/4 + 0.3/4 ...): differences (0.85-0.65, 0.5-0.4) = (0.2, 0.1)
    assert dice["all"] == pytest.approx(0.15)
    # without a: fold 0 (0.7+0.9+1.1)/3 - 0.8 = 0.1, fold 1 0.1 -> identical: width 0
    assert dice["without"] == pytest.approx(0.1)
    assert dice["without verdict"] == "better" and dice["all verdict"] == "no detectable difference"
    assert bool(dice["verdict changed"])
    s = leakage.leak_sentence(leakage.straddling_pairs(FOLDS, PAIRS), ["a", "c", "e"], eff, pe)
    assert s.startswith("2 near-duplicate pair(s) straddle two folds, so 3 test images")
    assert "1 of 2 paired verdicts change" in s and "var Dice, no detectable difference -> better" in s


def test_committed_split_leaves_no_grouping_view_pair_across_folds():
    """The committed grouped split is what its grouping view makes: no pair found on that view
    straddles two folds (pairs found on other views may; chapter 3 measures them)."""
    from busi_lib.records import PROJECT_ROOT

    path = PROJECT_ROOT / "results" / "splits" / "benign-malignant_grouped_k5_seed42.csv"
    folds = pd.read_csv(path)
    groups = folds.groupby("group")["fold"].nunique()
    assert (groups == 1).all()                 # a group never straddles two folds
    assert sorted(folds["fold"].unique().tolist()) == [0, 1, 2, 3, 4]
    assert np.isin(folds["class"], ["benign", "malignant"]).all()


def test_grouped_split_leak_finds_a_copy_left_in_another_fold(busi_dir, tmp_path):
    import shutil

    from busi_lib.config import make_config
    from busi_lib.data import splits

    # benign (3) becomes an exact copy of benign (2); the split file puts them in two folds
    shutil.copy(busi_dir / "benign" / "benign (2).png", busi_dir / "benign" / "benign (3).png")
    cfg = make_config("smoke", "multitask_grouped", max_per_class=None)
    assert leakage.grouped_split_leak(cfg, busi_dir, results_dir=tmp_path / "r") is None
    ids = [f"benign ({i})" for i in range(1, 9)] + [f"malignant ({i})" for i in range(1, 9)]
    folds = pd.DataFrame({"id": ids, "class": [i.split(" ")[0] for i in ids],
                          "fold": [k % 2 for k in range(16)], "group": range(16)})
    path = splits.splits_path(cfg["classes"], "grouped", cfg["n_folds"], cfg["seed"],
                              cfg["max_per_class"], folder=tmp_path / "r" / "splits")
    splits.save_folds(folds, path)
    data, pairs, gone = leakage.grouped_split_leak(cfg, busi_dir, results_dir=tmp_path / "r")
    assert len(data) == 16 and data.images.shape[1:] == (128, 128)
    assert ["benign (2)", "benign (3)"] in pairs[["image a", "image b"]].values.tolist()
    assert {"benign (2)", "benign (3)"} <= set(gone)
    with pytest.raises(ConfigError, match="split='random'"):
        leakage.grouped_split_leak(make_config("smoke", "multitask"), busi_dir)
