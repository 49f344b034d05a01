"""busi_lib.comparisons: paired tables, yardstick and claim sentences from records with known
differences."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from busi_lib import comparisons
from busi_lib.records import experiment_dir


def _write(exp, dice_by_fold, auc_by_fold, shift_prob=0.0, n=30):
    d = experiment_dir("smoke", exp)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k, (dc, auc) in enumerate(zip(dice_by_fold, auc_by_fold)):
        (d / f"fold{k}.json").write_text(json.dumps({
            "fold": k, "experiment": exp, "config": {"epochs": 3}, "train_seconds": 36.0,
            "metrics": {"seg_DC_mean": dc, "cls_AUC": auc}}))
        mal = np.arange(n) % 3 == 0
        pd.DataFrame({"id": [f"{k}-{i}" for i in range(n)],
                      "true_class": np.where(mal, "malignant", "benign"),
                      "dice": np.full(n, dc), "prob_malignant": np.clip(
                          mal * 0.3 + rng.random(n) * 0.7 + shift_prob, 0, 1)}).to_csv(
            d / f"fold{k}_predictions.csv", index=False)


def test_paired_table_verdicts_and_sentences():
    _write("ablation_reference", [0.70, 0.72, 0.71], [0.85, 0.86, 0.84])
    _write("seg_only", [0.60, 0.61, 0.62], [0.85, 0.86, 0.84])          # 10 points worse
    _write("enh_ghe", [0.65, 0.68, 0.64], [0.86, 0.85, 0.85])           # worse Dice, AUC same
    t = comparisons.paired_table("smoke", "ablation_reference", ["seg_only", "enh_ghe",
                                                                  "ce_loss"], n_boot=50)
    so = t[(t["variant"] == "seg_only") & (t["metric"] == "Dice")].iloc[0]
    assert so["folds"] == 3 and so["mean"] == pytest.approx(-0.10, abs=1e-9)
    assert so["verdict"] == "worse"
    assert so["boot_low"] == pytest.approx(-0.10) and so["boot_high"] == pytest.approx(-0.10)
    en = t[(t["variant"] == "enh_ghe") & (t["metric"] == "Dice")].iloc[0]
    assert en["verdict"] == "worse" and en["reference"] == pytest.approx(0.71)
    assert t[(t["variant"] == "ce_loss")]["folds"].eq(0).all()
    g = comparisons.glance(t)
    assert g.loc["ce_loss", "Dice Δ"] == "not recorded"
    assert g.loc["seg_only", "Dice verdict"] == "worse"
    text = " ".join(comparisons.claim_sentences(t))
    assert "multi-task training helps segmentation*: **supported**" in text
    assert "multi-peak GHE helps segmentation*: **contradicted**" in text
    assert "multi-peak GHE helps classification*: **not detectable" in text
    assert "focal loss helps classification*: not recorded yet" in text
    assert comparisons.forest(t, "Dice") is not None


def test_seed_yardstick_and_across_profiles():
    _write("ablation_reference", [0.70, 0.72, 0.71], [0.85, 0.86, 0.84])
    _write("ablation_reference_s1", [0.72, 0.74, 0.73], [0.84, 0.85, 0.83])
    y = comparisons.seed_yardstick("smoke", ["ablation_reference", "ablation_reference_s1"])
    assert y.loc["spread (max - min)", "seg_DC_mean"] == pytest.approx(0.02)
    assert y.loc["spread (max - min)", "cls_AUC"] == pytest.approx(0.01)
    a = comparisons.across_profiles([("recipe", "smoke", "ablation_reference")])
    assert a.loc["recipe", "Dice"] == pytest.approx(0.71) and a.loc["recipe", "folds"] == 3
    assert a.loc["recipe", "train hours"] == pytest.approx(0.03)
