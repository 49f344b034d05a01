"""busi_lib.analysis.comparisons: paired tables, yardstick and claim sentences from records with known
differences."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import comparisons
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
    assert g.loc["ce_loss", "Dice Δ (95% CI)"] == "not recorded"
    assert g.loc["seg_only", "Dice Δ (95% CI)"].startswith("-0.100 (")
    assert list(g.columns) == ["folds", "Dice Δ (95% CI)", "Dice verdict", "AUC Δ (95% CI)",
                               "AUC verdict"]
    assert g.loc["seg_only", "Dice verdict"] == "worse"
    text = " ".join(comparisons.claim_sentences(t))
    assert "multi-task training helps segmentation*: **supported**" in text
    assert "multi-peak GHE helps segmentation*: **contradicted**" in text
    assert "multi-peak GHE helps classification*: **not detectable" in text
    assert "focal loss helps classification*: not recorded yet" in text
    assert comparisons.forest(t, "Dice") is not None
    s = comparisons.variant_sentence(t, "seg_only", aims={"Dice": 0.62, "AUC": 0.90})
    assert s.startswith("seg_only over 3 paired folds: Dice 0.610 against 0.710 (difference "
                        "-0.100, 95% CI -0.125 to -0.075: worse; aim 0.62: short by 0.010)")
    assert "AUC 0.850 against 0.850 (difference +0.000" in s and "aim 0.9: short by 0.050" in s
    assert "aim 0.6: met" in comparisons.variant_sentence(t, "seg_only", aims={"Dice": 0.6})
    assert comparisons.variant_sentence(t, "ce_loss") == "ce_loss: not recorded yet"
    quick = comparisons.paired_table("smoke", "ablation_reference", ["seg_only"], n_boot=0)
    assert quick["boot_low"].isna().all() and quick["mean"].iloc[0] == pytest.approx(-0.10)


def test_seed_yardstick_and_across_profiles():
    _write("ablation_reference", [0.70, 0.72, 0.71], [0.85, 0.86, 0.84])
    _write("ablation_reference_s1", [0.72, 0.74, 0.73], [0.84, 0.85, 0.83])
    y = comparisons.seed_yardstick("smoke", ["ablation_reference", "ablation_reference_s1"])
    assert y.loc["spread (max - min)", "seg_DC_mean"] == pytest.approx(0.02)
    assert y.loc["spread (max - min)", "cls_AUC"] == pytest.approx(0.01)
    a = comparisons.across_profiles([("recipe", "smoke", "ablation_reference")])
    assert a.loc["recipe", "Dice"] == pytest.approx(0.71) and a.loc["recipe", "folds"] == 3
    assert a.loc["recipe", "train hours"] == pytest.approx(0.03)


def _table(rows):
    """A paired_table-like frame from (variant, metric, folds, mean, low, high, verdict)."""
    cols = ["variant", "metric", "folds", "mean", "low", "high", "verdict"]
    return pd.DataFrame(rows, columns=cols).assign(boot_low=np.nan, boot_high=np.nan,
                                                   reference=0.7, variant_value=0.7)


def test_glance_says_n_a_for_a_metric_the_variant_does_not_produce():
    t = _table([("seg_only", "Dice", 5, -0.01, -0.03, 0.01, "no detectable difference"),
                ("seg_only", "AUC", 0, np.nan, np.nan, np.nan, "not recorded"),
                ("x", "Dice", 1, 0.02, np.nan, np.nan, "no detectable difference"),
                ("x", "AUC", 1, 0.01, np.nan, np.nan, "no detectable difference")])
    g = comparisons.glance(t)
    assert g.loc["seg_only", "AUC Δ (95% CI)"] == "n/a" and g.loc["seg_only", "folds"] == 5
    assert g.loc["x", "Dice Δ (95% CI)"] == "+0.020 (one fold: no interval)"


def test_claim_tally_counts_each_status():
    rows = [("seg_only", "Dice", 5, -0.05, -0.08, -0.02, "worse"),          # supported
            ("cls_only", "AUC", 5, 0.03, 0.01, 0.05, "better"),           # contradicted
            ("enh_ghe", "Dice", 5, 0.03, 0.01, 0.05, "better"),           # supported
            ("enh_ghe", "AUC", 5, -0.01, -0.03, 0.01, "no detectable difference")]
    s = comparisons.claim_tally(_table(rows))
    n = len(comparisons.CLAIMS)
    assert s == (f"of the paper's {n} design claims tested here, 2 are supported, "
                 f"1 is contradicted, 1 is not detectable at this sample size and "
                 f"{n - 4} are not recorded yet")
    assert comparisons.claim_tally(_table([])).startswith("none of the paper's")


def test_verdict_tally_names_the_highest():
    rows = [("base_unet", "Dice", 5, -0.05, -0.08, -0.02, "worse"),
            ("base_fpn", "Dice", 5, -0.01, -0.03, 0.01, "no detectable difference"),
            ("base_vgg19", "Dice", 0, np.nan, np.nan, np.nan, "not recorded")]
    s = comparisons.verdict_tally(_table(rows), "Dice", "segmentation baselines")
    assert s == ("2 of the 3 segmentation baselines recorded: 1 worse than the reference and "
                 "1 not detectably different in Dice; the highest, base_fpn, -0.010 Dice "
                 "against the reference (95% CI -0.030 to +0.010, 5 folds)")
    assert comparisons.verdict_tally(_table(rows), "AUC", "x") == "none of the 0 x is recorded yet"


def test_baseline_claim_sorts_baselines_by_what_they_say_about_the_claim():
    rows = [("base_unet", "Dice", 5, -0.05, -0.08, -0.02, "worse"),
            ("base_fpn", "Dice", 5, 0.04, 0.01, 0.08, "better"),
            ("base_attunet", "Dice", 5, 0.01, -0.02, 0.03, "no detectable difference"),
            ("base_unetpp", "Dice", 2, 0.01, -0.5, 0.5, "no detectable difference"),
            ("base_deeplabv3p", "Dice", 0, np.nan, np.nan, np.nan, "not recorded"),
            ("base_vgg19", "AUC", 5, -0.1, -0.2, -0.05, "worse")]
    s = comparisons.baseline_claim(_table(rows), "Dice", 5, "segmentation baselines")
    assert s == ("The paper's claim that its network beats the segmentation baselines in Dice: "
                 "supported against `base_unet` (worse than our model), contradicted by "
                 "`base_fpn` (better than our model), not detectable against `base_attunet`, "
                 "still open for `base_unetpp` (2 of 5 folds) and untested for "
                 "`base_deeplabv3p` (not recorded).")
    assert comparisons.baseline_claim(_table(rows), "AUC", 5).endswith(
        "supported against `base_vgg19` (worse than our model).")
    assert comparisons.baseline_claim(_table([]), "AUC", 5) == "no baselines to compare in AUC"
    with pytest.raises(ValueError, match="folds=0"):
        comparisons.baseline_claim(_table(rows), "Dice", 0)


def test_yardstick_sentence_against_the_aim():
    _write("ablation_reference", [0.70, 0.72, 0.71], [0.85, 0.86, 0.84])
    _write("ablation_reference_s1", [0.72, 0.74, 0.73], [0.84, 0.85, 0.83])
    runs = ["ablation_reference", "ablation_reference_s1", "ablation_reference_s2"]
    y = comparisons.seed_yardstick("smoke", runs)          # s2 not recorded: left out
    assert y.loc["ablation_reference_s2", "seeds"] == 0 and np.isnan(
        y.loc["ablation_reference_s2", "seg_DC_mean"])
    assert y.loc["spread (max - min)", "seeds"] == 2
    assert comparisons.yardstick_sentence(y) == (
        "between 2 training seeds the 3-fold mean Dice spreads by 2.0 points (aim: below 2, "
        "not met) and the AUC by 0.010")
    assert "met)" in comparisons.yardstick_sentence(y, aim=0.03)
    one = comparisons.seed_yardstick("smoke", ["ablation_reference", "ablation_reference_s2"])
    assert comparisons.yardstick_sentence(one).startswith("not measurable yet: 1 of the 2")


def test_protocol_in_words():
    from busi_lib.config import make_config

    cfg = dict(make_config("cpu", "ablation_reference"), image_size=128, epochs=30, lr=1e-3,
               schedule="cosine", warmup_epochs=2, enhancement="none")
    assert comparisons.protocol(cfg) == ("128 px, 30 epochs, lr 0.001 (cosine decay after 2 "
                                         "warm-up epochs), no enhancement, 5 duplicate-grouped "
                                         "folds")
    old = make_config("cpu_v1", "random_light")
    assert comparisons.protocol(old) == ("64 px, 4 epochs, lr 0.001 (divided by 10 every 20 "
                                         "epochs), GHE, folds 1, 2, 3 of 5 random folds")


def test_noise_table_and_display_table():
    t = _table([("a", "Dice", 3, -0.05, -0.25, 0.15, "no detectable difference"),
                ("a", "AUC", 3, 0.01, -0.09, 0.11, "no detectable difference"),
                ("b", "Dice", 5, -0.05, -0.07, -0.03, "worse"),
                ("b", "AUC", 0, np.nan, np.nan, np.nan, "not recorded")])
    yard = pd.DataFrame({"seg_DC_mean": [0.7, 0.6, 0.1], "cls_AUC": [0.8, 0.7, 0.1],
                         "folds": [1, 1, 1], "seeds": [1, 1, 2]},
                        index=["r", "r_s1", "spread (max - min)"])
    n = comparisons.noise_table({"light": (t, yard)})
    r = n["light"]
    assert isinstance(r["comparisons"], int) and isinstance(r["folds each"], int)
    assert r["comparisons"] == 3 and r["folds each"] == 3 and r["better or worse"] == 1
    assert r["Dice CI half-width"] == pytest.approx(0.11)      # median of 0.20 and 0.02
    assert r["AUC CI half-width"] == pytest.approx(0.10)
    assert r["seed spread Dice"] == pytest.approx(0.1) and r["seeds"] == 2
    assert comparisons.noise_sentence(n, "light") == (
        "light: 1 of 3 paired comparisons could be told from zero; with 3 folds the median 95% "
        "interval of a Dice difference reached ±11.0 points, and 2 training seeds of the "
        "reference spread its Dice by 10.0 points (1 fold in common).")
    d = comparisons.display_table(t)
    assert d.loc[("b", "Dice"), "Δ"] == -0.05 and "bootstrap 95% low" in d.columns


def test_same_as_reference_finds_a_variant_that_changes_nothing(monkeypatch):
    from busi_lib import config

    monkeypatch.setitem(config.EXPERIMENTS, "noop", dict(config.EXPERIMENTS["ablation_reference"]))
    assert comparisons.same_as_reference("cpu", "ablation_reference",
                                         ["noop", "seg_only", "plain_blocks"]) == ["noop"]


def test_machine_mismatches_names_the_pairs_on_two_machines():
    _write("ablation_reference", [0.70, 0.72], [0.85, 0.86])
    _write("ce_loss", [0.70, 0.72], [0.85, 0.86])
    d = experiment_dir("smoke", "ce_loss")
    rec = json.loads((d / "fold1.json").read_text())
    rec.update(machine={"gpu": "NVIDIA H200"}, precision="mixed_bfloat16")
    (d / "fold1.json").write_text(json.dumps(rec))
    m = comparisons.machine_mismatches("smoke", "ablation_reference", ["ce_loss"])
    assert len(m) == 1 and m.iloc[0]["fold"] == 2
    assert m.iloc[0]["variant ran on"] == "NVIDIA H200 GPU (mixed_bfloat16)"
    assert comparisons.machine_mismatches("smoke", "ablation_reference", ["nope"]).empty


def test_constant_folds_finds_a_network_that_answers_every_image_alike():
    pred = pd.DataFrame({"fold": [0, 0, 0, 1, 1, 1, 2, 2],
                         "prob_malignant": [0.4996, 0.4996 + 1e-7, 0.4996, 0.1, 0.9, 0.5,
                                            0.3, 0.3]})
    assert comparisons.constant_folds(pred) == [0, 2]
    assert comparisons.constant_folds(pred, span=1e-9) == [2]
    assert comparisons.constant_folds(pd.DataFrame()) == []
    with pytest.raises(ValueError, match="span=0"):
        comparisons.constant_folds(pred, span=0)
    with pytest.raises(ValueError, match="column='p'"):
        comparisons.constant_folds(pred, column="p")


def test_paired_table_counts_folds_on_which_the_variant_did_not_train():
    _write("ablation_reference", [0.70, 0.72, 0.71], [0.85, 0.86, 0.84])
    _write("base_vgg19", [0.0, 0.0, 0.0], [0.5, 0.5, 0.5])
    d = experiment_dir("smoke", "base_vgg19")
    for k in (0, 2):       # folds 1 and 3 collapse to one probability
        p = pd.read_csv(d / f"fold{k}_predictions.csv").assign(prob_malignant=0.4996338)
        p.to_csv(d / f"fold{k}_predictions.csv", index=False)
    t = comparisons.paired_table("smoke", "ablation_reference", ["base_vgg19"], n_boot=0)
    assert t.set_index("metric").loc["AUC", "constant"] == 2
    assert t.set_index("metric").loc["Dice", "constant"] == 0
    assert comparisons.glance(t).loc["base_vgg19", "AUC verdict"] == (
        "worse (did not train: one output for every image on 2 of 3 folds)")
    assert comparisons.baseline_claim(t, "AUC", 3) == (
        "The paper's claim that its network beats the baselines in AUC: not tested by "
        "`base_vgg19` (one output for every image on 2 of 3 folds), which did not train under "
        "this recipe.")
    assert comparisons.verdict_tally(t, "AUC", "classification baselines").endswith(
        "; base_vgg19 (one output for every image on 2 of 3 folds) did not train")


def test_a_baseline_whose_training_diverged_did_not_train():
    from busi_lib.records import diverged_name

    _write("ablation_reference", [0.70, 0.72, 0.71], [0.85, 0.86, 0.84])
    d = experiment_dir("smoke", "base_inceptionv3")
    d.mkdir(parents=True, exist_ok=True)
    (d / diverged_name(0)).write_text(json.dumps({"fold": 0, "diverged_at": 7}))
    t = comparisons.paired_table("smoke", "ablation_reference", ["base_inceptionv3"],
                                 metrics=("cls_AUC",), n_boot=0)
    assert t.iloc[0]["folds"] == 0 and t.iloc[0]["diverged"] == 1
    g = comparisons.glance(t)
    assert g.loc["base_inceptionv3", "AUC verdict"] == "did not train: diverged on 1 fold"
    assert comparisons.baseline_claim(t, "AUC", 5).endswith(
        "not tested by `base_inceptionv3` (training diverged on 1 fold), which did not train "
        "under this recipe.")
    assert comparisons.verdict_tally(t, "AUC", "x") == (
        "none of the 1 x is recorded yet; base_inceptionv3 (training diverged on 1 fold) "
        "did not train")


def test_an_unknown_metric_is_named_in_the_error(tmp_path):
    with pytest.raises(comparisons.ConfigError, match=r"\['seg_IoU'\] unknown; expected some of"):
        comparisons.paired_table("cpu", "ref", ["var"], metrics=("seg_DC_mean", "seg_IoU"),
                                 results_dir=tmp_path)
    with pytest.raises(comparisons.ConfigError, match="cls_F1"):
        comparisons.across_profiles([("x", "cpu", "ref")], results_dir=tmp_path,
                                    metrics=("cls_F1",))
    assert comparisons.LABELS.keys() == comparisons.METRICS.keys()


def test_release_verdict_on_known_numbers():
    from busi_lib.analysis.comparisons import release_verdict

    def recs(dice, auc):
        return [{"fold": k, "metrics": {"seg_DC_mean": d, "cls_AUC": a}}
                for k, (d, a) in enumerate(zip(dice, auc))]

    rel = recs([0.70, 0.72, 0.74, 0.71, 0.73], [0.90, 0.88, 0.91, 0.89, 0.90])
    up = recs([0.72, 0.745, 0.75, 0.73, 0.745], [0.90, 0.885, 0.905, 0.895, 0.90])
    v = release_verdict(rel, up)
    assert v["replace"] and v["reason"] == "Dice above the release's, neither below"
    same = recs([0.71, 0.71, 0.75, 0.70, 0.73], [0.91, 0.87, 0.91, 0.90, 0.89])
    assert release_verdict(rel, same)["reason"] == "neither Dice nor AUC above the release's"
    down = recs([0.72, 0.745, 0.75, 0.73, 0.745], [0.86, 0.85, 0.87, 0.86, 0.86])
    v = release_verdict(rel, down)
    assert not v["replace"] and v["reason"] == "AUC below the release's"
    v = release_verdict(rel, up[:3])
    assert not v["replace"] and v["reason"].startswith("only 3 of 5 folds")
