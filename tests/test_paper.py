"""busi_lib.analysis.paper: the paper's numbers as read out, and the claims audit computed from them."""

from __future__ import annotations

import numpy as np
import pytest

from busi_lib.analysis import paper as P


def test_tables_hold_the_reported_values():
    t1, t2 = P.table1(), P.table2()
    assert list(t1.columns) == ["JSI", "DC", "ACC", "REC", "PRE"]
    assert t1.loc[1, "JSI"] == 84.37 and t1.loc["mean", "PRE"] == 86.13
    assert list(t2.columns) == ["ACC", "PRE", "REC", "SPE", "F1", "AUC"]
    assert t2.loc[5, "SPE"] == 96.96 and t2.loc["mean", "AUC"] == 0.99
    assert P.table4().loc["Ours"].tolist() == [88.08, 85.62, 86.13, 84.72, 84.81]
    assert P.table7().loc["InceptionV3", "ACC"] == 88.00
    assert len(P.table6()) == 5 and len(P.table8()) == 9
    assert set(P.T7_EXPERIMENTS) == set(P.table7().index)


def test_dice_from_jaccard_percent_and_fraction():
    assert P.implied_dice(0.5) == pytest.approx(2 / 3)
    assert P.implied_dice(50.0) == pytest.approx(200 / 3)
    j = np.linspace(0.01, 0.99, 50)
    assert np.all(P.implied_dice(j) >= j)


def test_dice_jaccard_audit_finds_fold_1():
    a = P.audit_dice_jaccard()
    assert not a.loc[1, "DC >= JSI"]           # 83.45 < 84.37
    assert a.loc[4, "DC >= JSI"]               # 83.72 > 83.65 (the notes' "fold 4" is not a violation)
    assert a.loc[1, "DC implied by JSI (pooled)"] == pytest.approx(91.52, abs=0.01)


def test_implied_accuracy_and_precision_with_real_counts():
    imp = P.implied_classification(98.79, 94.65, 210, 437)
    assert imp["ACC"] == pytest.approx(96.0, abs=0.05)
    assert imp["PRE"] == pytest.approx(89.9, abs=0.05)
    # a consistent confusion matrix round-trips
    imp2 = P.implied_classification(100 * 40 / 42, 100 * 80 / 88, 42, 88)
    assert imp2["TP"] == pytest.approx(40) and imp2["TN"] == pytest.approx(80)
    assert imp2["ACC"] == pytest.approx(100 * 120 / 130)
    ratio = P.implied_class_ratio()
    assert ratio["neg_per_pos"] == pytest.approx(0.354, abs=0.001)
    assert ratio["real neg_per_pos"] == pytest.approx(437 / 210)


def test_fold_granularity():
    assert P.achievable(100 * 41 / 42, 42) and not P.achievable(98.65, 42)
    assert P.smallest_denominator(50.0) == 2
    assert P.smallest_denominator(98.65) == 74
    assert P.fold_counts(210, 437, 5) == [(42, 87), (42, 88)]
    g = P.audit_fold_granularity()
    assert not g.iloc[:, 2].any() and not g.iloc[:, 3].any()


def test_f1_audit():
    f1 = P.audit_f1()
    three = f1.loc["3-class sentence"]
    assert three["F1 = harmonic mean"] == pytest.approx(98.56, abs=0.01)
    assert not three["F1 between PRE and REC"]
    assert f1.loc["Table 2 mean", "F1 between PRE and REC"]


def test_improvements_and_least_recall():
    imp = P.audit_improvements()
    rec = imp[(imp.task == "classification") & (imp.metric == "REC")]
    assert rec["computed (points)"].iloc[0] == pytest.approx(2.34)
    assert set(rec.loc[rec["matches"], "claimed in"]) == {"abstract", "discussion"}
    assert not rec.loc[rec["claimed in"] == "conclusion", "matches"].iloc[0]
    lr = P.audit_least_recall()
    assert lr.loc["segmentation", "consistent"] and not lr.loc["classification", "consistent"]
    assert lr.loc["classification", "its fold"] == 3


def test_table4_swap_and_means():
    sw = P.audit_table4_swap()
    assert not sw.loc["PRE", "equal"] and not sw.loc["REC", "equal"]
    assert sw.loc["PRE", "Table 4 'Ours'"] == sw.loc["REC", "Table 1 mean"]
    assert sw.loc[["ACC", "JSI", "DC"], "equal"].all()
    m = P.audit_means()
    assert m["consistent"].all()
    assert not m.loc[("Table 1", "DC"), "rounded"] and m.loc[("Table 1", "DC"), "truncated"]


def test_class_counts_and_summary():
    cc = P.audit_class_counts({"benign": 437, "malignant": 210, "normal": 133})
    assert cc.loc["benign", "paper states"] == 133 and not cc.loc["benign", "equal"]
    audit = P.claims_audit()
    assert list(audit.columns) == ["claim", "paper", "computed from the paper / data", "consistent"]
    assert len(audit) >= 12
    assert audit["consistent"].sum() == 1          # only the mean rows hold up
    # counts that would satisfy the paper's class-count claims flip those rows
    alt = P.claims_audit({"benign": 133, "malignant": 210, "normal": 437})
    assert alt.set_index("claim").loc["Class counts (benign, malignant, normal)", "consistent"]


def test_birads_bands():
    got = P.birads_band([0, 0.02, 0.021, 0.10, 0.5, 0.51, 0.9499, 0.95, 1.0])
    assert got.tolist() == ["3", "3", "4A", "4A", "4B", "4C", "4C", "5", "5"]
    with pytest.raises(ValueError):
        P.birads_band([1.2])
    with pytest.raises(ValueError):
        P.birads_band([float("nan")])


def test_implied_classification_with_no_predicted_positive():
    import math

    from busi_lib.analysis import paper

    r = paper.implied_classification(0.0, 100.0, n_pos=5, n_neg=7)
    assert r["TP"] == 0 and r["FP"] == 0 and r["ACC"] == pytest.approx(100 * 7 / 12)
    assert math.isnan(r["PRE"]) and r["F1"] == 0.0
