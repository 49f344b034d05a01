"""busi_lib.experiments.tune: the recipe is chosen on an inner validation split of the training images.

The central check: while a trial runs, no image of the outer test fold reaches the training or
the validation code, and BUS-BRA is never loaded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import tune_report
from busi_lib.data import splits
from busi_lib.errors import ConfigError
from busi_lib.eval import occlusion
from busi_lib.eval.metrics import fast_auc
from busi_lib.experiments import shift, tune

TINY = dict(image_size=32, filters=[4, 4, 8, 8], bridge_filters=8, dense_units=8, epochs=2,
            warmup_epochs=1, batch_size=8, max_per_class=None)


def _folds(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 3 == 0).astype(int)
    groups = np.arange(n)
    groups[1::7] = groups[0::7][: len(groups[1::7])]          # some duplicate pairs
    return pd.DataFrame({"id": [f"im{i}" for i in range(n)], "fold": rng.integers(0, 5, n),
                         "group": groups}), labels


def test_inner_split_is_grouped_stratified_and_disjoint():
    folds, labels = _folds()
    tr, va = tune.inner_split(folds, labels, seed=42)
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == len(labels)
    assert not set(folds["group"].iloc[tr]) & set(folds["group"].iloc[va])
    assert 0.1 < len(va) / len(labels) < 0.35
    assert labels[va].mean() == pytest.approx(labels.mean(), abs=0.12)
    tr2, va2 = tune.inner_split(folds, labels, seed=42)
    np.testing.assert_array_equal(va, va2)                    # deterministic


def test_selection_rule():
    table = pd.DataFrame({"score": [1.30, 1.315, 1.36, 1.25]},
                         index=["ref", "small", "big", "worse"])
    assert tune_report.select(table, "ref", ["small", "big", "worse"]) == ["big"]
    assert tune_report.select(table, "ref", ["small"], min_gain=0.01) == ["small"]
    with pytest.raises(ConfigError, match="'nope' is not recorded"):
        tune_report.select(table, "nope", ["big"])
    hist = [{"val_dice": d, "val_auc": a} for d, a in [(0.1, 0.5), (0.5, 0.8), (0.6, 0.8),
                                                        (0.7, 0.9)]]
    assert tune.trial_score(hist) == pytest.approx((1.3 + 1.4 + 1.6) / 3)


def test_capacity_sentence_names_gain_cost_and_verdict():
    table = pd.DataFrame({"score": [1.50, 1.53, 1.51, 1.67, 1.675],
                          "val Dice": [0.70, 0.72, 0.70, 0.75, 0.76],
                          "val AUC": [0.80, 0.81, 0.81, 0.92, 0.915],
                          "s/epoch": [10.0, 25.0, 16.0, 12.0, 18.0]},
                         index=["cos_lr1e-3", "width32", "px160", "combo_e30", "combo_px160"])
    s = tune_report.capacity_sentence(table)
    assert "width32): score 1.530, +0.030 over cos_lr1e-3 (val Dice +0.020, AUC +0.010) at 2.5x" in s
    assert "would be kept" in s and "px160): score 1.510, +0.010" in s and "1.6x" in s
    assert "combo_px160): score 1.675, +0.005 over combo_e30" in s and "1.5x" in s
    assert s.count("not kept") == 2
    assert "(px160): px160 not recorded" in tune_report.capacity_sentence(table.drop("px160"))
    assert "(width32): its reference cos_lr1e-3 not recorded" in tune_report.capacity_sentence(
        table.drop("cos_lr1e-3"))


def test_recorded_trials_match_todays_trial_configurations():
    """A trial's configuration must not drift when the profile changes (the recipe became the
    cpu profile after stages 1 and 2 ran): every committed trial record still has the
    configuration hash that ``trial_config`` (and ``trial_fraction``) give today."""
    from busi_lib.records import PROJECT_ROOT

    recs = tune_report.load_trials("cpu", PROJECT_ROOT / "results")
    assert len(recs) >= 15
    for r in recs:
        assert tune.trial_hash(r["trial"]) == r["config_hash"], r["trial"]
    # stages 1-2 start from the old profile, stage 3 from the combination
    assert tune.trial_config("px160")["enhancement"] == "ghe"
    assert tune.trial_config("combo_px160")["enhancement"] == "none"


def test_unknown_trial_is_refused():
    with pytest.raises(ConfigError, match="trial='nope'"):
        tune.trial_config("nope")


@pytest.mark.slow
def test_a_trial_never_sees_the_test_fold_or_busbra(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    from synthetic import make_busi, spy_model_inputs


    root = make_busi(tmp_path / "Dataset_BUSI_with_GT", n_benign=12, n_malignant=12)
    seen = spy_model_inputs(monkeypatch)
    occluded: list[np.ndarray] = []
    real_occlude = occlusion.occlude

    def spy_occlude(images, masks, keep, **kw):
        seen.append(images.copy())                   # the inputs are shown too
        out = real_occlude(images, masks, keep, **kw)
        occluded.append(out.copy())
        return out

    real_shift = shift.shift_images

    def spy_shift(images, masks, name, **kw):
        seen.append(images.copy())                   # the inputs are shown too
        out = real_shift(images, masks, name, **kw)
        occluded.append(out[0].copy())               # perturbed copies of development images
        return out

    monkeypatch.setattr(occlusion, "occlude", spy_occlude)
    monkeypatch.setattr(shift, "shift_images", spy_shift)
    rec = tune.run_trial("cos_lr1e-3", "smoke", data_dir=root, results_dir=tmp_path / "r",
                         verbose=0, **TINY)

    cfg = tune.trial_config("cos_lr1e-3", "smoke", **TINY)
    data, folds = splits.prepare(cfg, root, results_dir=tmp_path / "r")
    test = data.images[folds["fold"].to_numpy() == tune.TUNE_FOLD]
    dev = data.images[folds["fold"].to_numpy() != tune.TUNE_FOLD]
    assert len(test) > 0 and seen
    shown = np.concatenate(seen)
    for img in test:                                 # no test image in anything shown
        assert not (shown == img).all(axis=(1, 2)).any()
    made = np.concatenate(occluded) if occluded else shown[:0]
    for img in shown:       # everything shown is a development image, or one with parts hidden
        assert (dev == img).all(axis=(1, 2)).any() or (made == img).all(axis=(1, 2)).any()
    # lesion hidden (silhouette, square), lesion alone, shifts
    assert len(occluded) == len(occlusion.KEEP) + len(shift.SHIFTS)
    assert set(rec["reliance"]) == {"auc", "auc_no_lesion", "auc_no_lesion_box",
                                    "auc_lesion_only"}
    assert set(rec["shift"]) == set(shift.SHIFTS)
    # each validation image's outcome, the same images and AUCs as the summary
    per = pd.DataFrame(rec["val_predictions"])
    assert len(per) == rec["n_val"] and tune._ids_hash(per["id"]) == rec["val_ids_sha256"]
    assert set(per.columns) == {"id", "true_class", "dice", "prob_malignant", "prob_no_lesion",
                                "prob_no_lesion_box", "prob_lesion_only"}
    mal = (per["true_class"] == "malignant").to_numpy()
    assert fast_auc(mal, per["prob_malignant"].to_numpy()) == pytest.approx(
        rec["reliance"]["auc"], abs=1e-5)
    assert fast_auc(mal, per["prob_no_lesion_box"].to_numpy()) == pytest.approx(
        rec["reliance"]["auc_no_lesion_box"], abs=1e-5)
    assert rec["n_inner_train"] + rec["n_val"] == len(dev)
    assert len(rec["history"]) == 2 and "val_dice" in rec["history"][-1]
    assert {"tta", "postprocess", "mask_threshold", "val_dice"} <= set(
        rec["inference_choices"][0])
    assert rec["machine"]["cpu"] and rec["cpu_seconds"] > 0
    # recorded: a second call skips it; a changed trial is refused, nothing overwritten
    assert tune.run_trial("cos_lr1e-3", "smoke", data_dir=root, results_dir=tmp_path / "r",
                          verbose=0, **TINY)["config_hash"] == rec["config_hash"]
    with pytest.raises(ConfigError, match="configuration changed"):
        tune.run_trial("cos_lr1e-3", "smoke", data_dir=root, results_dir=tmp_path / "r",
                       verbose=0, **{**TINY, "epochs": 3})


def test_best_inference_prefers_the_simplest_on_a_tie():
    rows = [{"tta": t, "postprocess": p, "mask_threshold": th, "val_dice": 0.7, "val_auc": 0.8}
            for t in (False, True) for p in ("none", "largest_fill") for th in (0.4, 0.5, 0.6)]
    assert tune_report.best_inference({"inference_choices": rows}) == {
        "tta": False, "postprocess": "none", "mask_threshold": 0.5}
    rows[-1] = {**rows[-1], "val_dice": 0.75}            # TTA, post-processing, 0.6 wins
    assert tune_report.best_inference({"inference_choices": rows}) == {
        "tta": True, "postprocess": "largest_fill", "mask_threshold": 0.6}


def _lc_rec(trial, share, images, dice, auc):
    hist = [{"val_dice": dice, "val_auc": auc, "cpu_seconds": 10.0}] * 3
    return {"trial": trial, "stage": 5, "train_fraction": share, "n_inner_train": images,
            "config": {"epochs": 30}, "history": hist, "score": dice + auc,
            "cpu_seconds": 30.0, "seconds_per_epoch": 10.0, "machine": {"cpu": "x"}}


def test_learning_curve_on_known_points():
    recs = [_lc_rec("combo_e30", 1.0, 400, 0.75, 0.90), _lc_rec("data25", 0.25, 100, 0.65, 0.80),
            _lc_rec("data50", 0.5, 200, 0.70, 0.85), _lc_rec("cos_lr1e-3", 1.0, 400, 0.1, 0.1)]
    t = tune_report.learning_curve_table(recs)
    assert list(t.index) == ["data25", "data50", "combo_e30"]   # by images; other trials out
    assert list(t["images"]) == [100, 200, 400] and list(t["share"]) == [0.25, 0.5, 1.0]
    s = tune_report.learning_curve_slopes(t)                          # +0.05 Dice per doubling exactly
    assert s["Dice"] == pytest.approx(0.05) and s["AUC"] == pytest.approx(0.05)
    assert s["score"] == pytest.approx(0.10)
    text = tune_report.learning_curve_sentence(t)
    assert "25% (100 images): 1.450" in text and "100% (400 images): 1.650" in text
    assert "+0.050 Dice and +0.050 AUC" in text and "more images would still pay" in text
    flat = tune_report.learning_curve_table([_lc_rec("combo_e30", 1.0, 400, 0.75, 0.90),
                                      _lc_rec("data50", 0.5, 200, 0.745, 0.895)])
    assert "the curve has flattened" in tune_report.learning_curve_sentence(flat)
    assert "not recorded yet" in tune_report.learning_curve_sentence(t.iloc[:1])
    assert np.isnan(tune_report.learning_curve_slopes(t.iloc[:1])["Dice"])


def test_data_trials_differ_from_the_recipe_only_in_length_and_share():
    ref = tune.trial_config(tune.DATA_REFERENCE)
    for name in tune.DATA_TRIALS:
        cfg, f = tune.trial_config(name), tune.trial_fraction(name)
        assert "train_fraction" not in cfg and 0 < f < 1
        assert {k for k in cfg if cfg[k] != ref[k]} == {"epochs", "warmup_epochs"}
        assert cfg["epochs"] == round(ref["epochs"] / f)        # about equal optimiser steps
        assert tune.trial_hash(name) != tune.trial_hash(tune.DATA_REFERENCE)
    assert tune.trial_fraction("combo_e30") == 1.0


def test_robust_follow_up_rule():
    t = pd.DataFrame({"score": [1.66, 1.70, 1.62, 1.665], "shift score": [1.59, 1.60, 1.65, 1.595]},
                     index=["robust_aug_e40", "a", "b", "c"])
    text = tune_report.robust_follow_up(t, {"a": "robust_aug_e40", "b": "robust_aug_e40",
                                     "c": "robust_aug_e40", "d": "robust_aug_e40"})
    assert "a against robust_aug_e40: clean score 1.700 (+0.040), shift score 1.600 (+0.010): " \
           "the extra epochs pay" in text
    assert "b against robust_aug_e40: clean score 1.620 (-0.040), shift score 1.650 (+0.060): " \
           "the extra epochs do not pay" in text                # clean fell by more than 0.02
    assert "(+0.005): the extra epochs do not pay" in text       # c: neither rose enough
    assert "d: d not recorded" in text


@pytest.mark.slow
def test_a_data_trial_trains_on_its_nested_share_only(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    from synthetic import make_busi

    from busi_lib.data import splits
    from busi_lib.experiments import trainer

    root = make_busi(tmp_path / "Dataset_BUSI_with_GT", n_benign=16, n_malignant=16)
    trained: list[np.ndarray] = []
    real_fit = trainer.fit_model

    def spy_fit(cfg, images, masks, labels, **kw):
        trained.append(images.copy())
        return real_fit(cfg, images, masks, labels, **kw)

    monkeypatch.setattr(trainer, "fit_model", spy_fit)
    rec = tune.run_trial("data50", "smoke", data_dir=root, results_dir=tmp_path / "r",
                         verbose=0, **TINY)
    cfg = tune.trial_config("data50", "smoke", **TINY)
    data, folds = splits.prepare(cfg, root, results_dir=tmp_path / "r")
    dev, dev_folds = tune.development_set(data, folds)
    tr, va = tune.inner_split(dev_folds, dev.labels, cfg["seed"])
    share = tr[splits.nested_share(dev.labels[tr], dev_folds["group"].to_numpy()[tr], 0.5,
                                   seed=cfg["seed"])]
    assert rec["train_fraction"] == 0.5 and rec["n_inner_train"] == len(share) < len(tr)
    assert rec["n_val"] == len(va)                               # the same validation images
    np.testing.assert_array_equal(np.sort(trained[0].reshape(len(share), -1), axis=0),
                                  np.sort(dev.images[share].reshape(len(share), -1), axis=0))


def test_seed_spread_and_its_sentence():
    recs = [{"trial": "combo_e30", "score": 1.67}, {"trial": "recipe_s1", "score": 1.64},
            {"trial": "recipe_s2", "score": 1.70}, {"trial": "data25", "score": 1.2}]
    s = tune_report.trial_seed_spread(recs)
    assert s["n"] == 3 and s["range"] == pytest.approx(0.06) and s["sd"] == pytest.approx(0.03)
    text = tune_report.seed_sentence(s)
    assert "combo_e30 1.670, recipe_s1 1.640, recipe_s2 1.700: a range of 0.060 (sd 0.030" in text
    assert "larger than the rule's threshold of 0.02" in text and "can be seed noise" in text
    small = tune_report.trial_seed_spread([{"trial": "combo_e30", "score": 1.67},
                              {"trial": "recipe_s1", "score": 1.66}])
    assert "within the rule's threshold" in tune_report.seed_sentence(small)
    assert tune_report.trial_seed_spread(recs[:1]) is None
    assert "not recorded yet" in tune_report.seed_sentence(None)
    for name in tune.SEED_TRIALS:                # only the training seed differs from the recipe
        a, b = tune.trial_config(name), tune.trial_config(tune.DATA_REFERENCE)
        assert {k for k in a if a[k] != b[k]} == {"train_seed"}


def test_stage6_candidates_pair_seed_by_seed_with_the_reference():
    """Each stage-6 candidate's three trials differ from the reference's three (same seeds, in
    order) only in the candidate's own keys."""
    ref = [tune.trial_config(t) for t in tune.SEEDED_REFERENCE]
    assert [c["train_seed"] for c in ref] == [None, 1, 2]
    for name, trials in tune.SEEDED_CANDIDATES.items():
        assert len(trials) == 3
        for t, r in zip(trials, ref):
            cfg = tune.trial_config(t)
            assert {k for k in cfg if cfg[k] != r[k]} == tune.SEEDED_KEYS[name], (name, t)
    assert set(tune.SEEDED_KEYS) == set(tune.SEEDED_CANDIDATES)


def _seeded_recs(cand_scores, ref_scores, hidden=(0.8, 0.8, 0.8), ref_hidden=(0.8, 0.82, 0.78)):
    def rec(name, score, h):
        shift_ = {s: {"val_dice": score / 2, "val_auc": score / 2} for s in ("blur", "gain_low")}
        return {"trial": name, "score": score, "shift": shift_, "reliance": {"auc_no_lesion": h}}
    recs = [rec(t, s, h) for t, s, h in zip(("r0", "r1", "r2"), ref_scores, ref_hidden)]
    recs += [rec(t, s, h) for t, s, h in zip(("c0", "c1", "c2"), cand_scores, hidden)]
    return recs


def test_stage6_rule_on_known_numbers():
    kw = dict(reference=("r0", "r1", "r2"), candidates={"c": ("c0", "c1", "c2")})
    ref = (1.60, 1.62, 1.64)
    clear = tune_report.seeded_table(_seeded_recs((1.80, 1.81, 1.82), ref), **kw)
    assert tune_report.seeded_select(clear)["c"].startswith("kept: clean score and shift score")
    g = clear.set_index("signal").loc["clean score"]
    assert g["difference"] == pytest.approx(0.19) and g["low"] > 0
    noisy = tune_report.seeded_table(_seeded_recs((1.55, 1.70, 1.66), ref), **kw)
    assert tune_report.seeded_select(noisy)["c"] == "not kept: no difference clears the seed noise"
    worse = tune_report.seeded_table(_seeded_recs((1.40, 1.41, 1.42), ref), **kw)
    assert tune_report.seeded_select(worse)["c"].startswith("not kept: clean score and shift")
    context = tune_report.seeded_table(_seeded_recs((1.80, 1.81, 1.82), ref, hidden=(0.95, 0.96, 0.97)), **kw)
    assert tune_report.seeded_select(context)["c"] == ("not kept: more reliant on the lesion's "
                                                       "surroundings")
    with pytest.raises(ConfigError, match="reference"):
        tune_report.seeded_table(_seeded_recs(ref, ref)[3:], **kw)


def test_stage7_confirms_trivial_with_five_seeds_a_side_at_a_bonferroni_level():
    """Stage 7 extends stage 6's trivial and reference trials by seeds 3 and 4 (paired, only
    ``aug_policy`` differs) and judges at 1 - 0.05 / 4."""
    ref = [tune.trial_config(t) for t in tune.CONFIRM_REFERENCE]
    assert [c["train_seed"] for c in ref] == [None, 1, 2, 3, 4]
    (name, trials), = tune.CONFIRM_CANDIDATES.items()
    assert name == "trivial" and trials[:3] == tune.SEEDED_CANDIDATES["trivial"]
    for t, r in zip(trials, ref):
        cfg = tune.trial_config(t)
        assert {k for k in cfg if cfg[k] != r[k]} == {"aug_policy"}, t
    assert tune.CONFIRM_LEVEL == pytest.approx(0.9875)


def test_stage7_interval_is_wider_than_stage6s_on_the_same_numbers():
    recs = _seeded_recs((1.70, 1.72, 1.66), (1.60, 1.62, 1.64))
    kw = dict(reference=("r0", "r1", "r2"), candidates={"c": ("c0", "c1", "c2")})
    t95 = tune_report.seeded_table(recs, **kw).set_index("signal").loc["shift score"]
    t99 = tune_report.seeded_table(recs, level=tune.CONFIRM_LEVEL, **kw)
    assert t99.attrs["level"] == pytest.approx(0.9875)
    t99 = t99.set_index("signal").loc["shift score"]
    assert t99["difference"] == pytest.approx(t95["difference"])
    assert t99["low"] < t95["low"] and t99["high"] > t95["high"]
    with pytest.raises(ConfigError, match="reference"):      # stage 7 not run: no table
        tune_report.confirm_table(recs)


def test_stage8_pairs_the_release_recipe_seed_by_seed():
    """Stage 8's candidate differs from the released recipe's trials only in aug_policy, seed
    by seed (None, 1, 2); the reference's first seed is the stage-4 trial."""
    ref = [tune.trial_config(t) for t in tune.RELEASE_SEEDED_REFERENCE]
    assert [c["train_seed"] for c in ref] == [None, 1, 2]
    assert all(c["epochs"] == 60 and c["aug_intensity"] for c in ref)
    assert list(tune.RELEASE_SEEDED_CANDIDATES) == ["release + trivial", "release + lesion crop",
                                                    "release + context swap", "release at 192 px",
                                                    "release + lesion crop at 256 px",
                                                    "release + histogram equalisation",
                                                    "release + marks inpainted"]
    changes = ({"aug_policy": "trivial"}, {"aug_policy": "lesion_crop"},
               {"aug_policy": "context_swap"}, {"image_size": 192},
               {"image_size": 256, "net_size": 128}, {"enhancement": "he"},
               {"enhancement": "unmark"})
    for (name, trials), change in zip(tune.RELEASE_SEEDED_CANDIDATES.items(), changes):
        for t, r in zip(trials, ref):
            cfg = tune.trial_config(t)
            assert {k: cfg[k] for k in cfg if cfg[k] != r[k]} == change, t


def test_stage12_reruns_are_the_release_reference_seed_by_seed():
    for rerun, ref in zip(tune.RELEASE_REFERENCE_RERUN, tune.RELEASE_SEEDED_REFERENCE):
        assert tune.trial_config(rerun) == tune.trial_config(ref)
        assert tune.trial_hash(rerun) == tune.trial_hash(ref)
    assert not set(tune.RELEASE_REFERENCE_RERUN) & set(
        sum(tune.RELEASE_SEEDED_CANDIDATES.values(), ()))      # judged by no rule


def _stage8_recs(cand_scores, ref_scores):
    recs = _seeded_recs(cand_scores, ref_scores)
    names = dict(zip(("r0", "r1", "r2", "c0", "c1", "c2"),
                     tune.RELEASE_SEEDED_REFERENCE + next(iter(
                         tune.RELEASE_SEEDED_CANDIDATES.values()))))
    return [{**r, "trial": names[r["trial"]]} for r in recs]    # stage 8's only: 9 not run


def test_stage8_table_and_rule_on_known_numbers():
    recs = _stage8_recs((1.80, 1.81, 1.82), (1.60, 1.62, 1.64))
    t = tune_report.release_seeded_table(recs)
    assert t.attrs["level"] == 0.95 and set(t["candidate"]) == {"release + trivial"}
    assert t.attrs["missing"] == ["release + lesion crop",               # stages 9-14 not run
                                  "release + context swap", "release at 192 px",
                                  "release + lesion crop at 256 px",
                                  "release + histogram equalisation",
                                  "release + marks inpainted"]
    g = t.set_index("signal").loc["shift score"]
    assert g["difference"] == pytest.approx(0.19) and g["low"] > 0
    assert tune_report.release_seeded_select(t)["release + trivial"].startswith("kept")
    # a candidate trial missing: no row, named as missing; a reference trial missing: an error
    part = tune_report.release_seeded_table(recs[:-1])
    assert len(part) == 0 and part.attrs["missing"] == ["release + trivial",
                                                         "release + lesion crop",
                                                         "release + context swap",
                                                         "release at 192 px",
                                                         "release + lesion crop at 256 px",
                                                         "release + histogram equalisation",
                                  "release + marks inpainted"]
    with pytest.raises(ConfigError, match="reference"):
        tune_report.release_seeded_table(recs[1:])
    assert tune_report.stage_progress(recs[1:], [r["trial"] for r in recs]) == (5, 6)


def test_selection_sentence_reports_stage8_verdict_or_progress():
    from busi_lib.book import transfer

    recs = _stage8_recs((1.50, 1.52, 1.55), (1.60, 1.62, 1.64))
    t = tune_report.release_seeded_table(recs)
    view = {"release_seeded": t, "release_verdicts": tune_report.release_seeded_select(t),
            "release_progress": (6, 12), "release_missing": t.attrs["missing"][:1]}
    text = transfer.selection_sentence(view)
    assert text.startswith("On the released recipe (strong augmentation, 60 epochs; three seeds "
                           "against three), release + trivial changed the shift score by -0.097")
    assert "not kept: clean score and shift score below the reference" in text
    assert text.endswith("release + lesion crop has no verdict yet (6 of the 12 trials of stages "
                         "8 to 14 recorded).")
    text = transfer.selection_sentence({"release_progress": (2, 12), "release_missing": [
        "release + trivial", "release + lesion crop"]})
    assert text == ("On the released recipe, release + trivial and release + lesion crop have no "
                    "verdict yet (2 of the 12 trials of stages 8 to 14 recorded).")


def test_every_stage_has_its_own_look_in_the_cost_figure():
    stages = sorted({stage for stage, _ in tune.TRIALS.values()})
    looks = [tune_report.stage_style(s) for s in stages]
    assert len(set(looks)) == len(looks), dict(zip(stages, looks))
    assert tune_report.stage_style(1) == ("#0072B2", "-")
    assert tune_report.stage_style(8) == ("#0072B2", "-.")


def test_release_recipe_sentence_for_the_introduction():
    from busi_lib.book import transfer

    assert transfer.release_recipe_sentence(None) == ("No candidate has been tried on the "
                                                      "released recipe yet.")
    recs = _stage8_recs((1.50, 1.52, 1.55), (1.60, 1.62, 1.64))
    t = tune_report.release_seeded_table(recs)
    view = {"release_seeded": t, "release_verdicts": tune_report.release_seeded_select(t),
            "release_progress": (6, 12), "release_missing": t.attrs["missing"]}
    text = transfer.release_recipe_sentence(view)
    assert text.startswith("On the released recipe (strong augmentation, 60 epochs; three")
    assert text.endswith("(6 of the 12 trials of stages 8 to 14 recorded).")
    assert text in transfer.selection_sentence(view)


def test_release_recipe_sentence_names_the_recipe_once_for_two_candidates():
    import pandas as pd

    from busi_lib.book import transfer

    t = tune_report.release_seeded_table(_stage8_recs((1.50, 1.52, 1.55), (1.60, 1.62, 1.64)))
    both = pd.concat([t, t.assign(candidate="release + lesion crop")], ignore_index=True)
    view = {"release_seeded": both, "release_verdicts": tune_report.release_seeded_select(both)}
    text = transfer.release_recipe_sentence(view)
    assert text.count("on the released recipe") + text.count("On the released recipe") == 1
    assert "; release + lesion crop changed the shift score by -0.097" in text


def test_stage10_counts_less_context_as_a_gain_for_its_candidate_only():
    """The same numbers -- scores within the noise, the AUC with the lesion hidden clearly
    lower -- keep the context-swap candidate and not stage 8's; a score below the reference
    still rejects it."""
    ref = (1.60, 1.62, 1.64)
    kw = dict(reference=("r0", "r1", "r2"))
    lower = dict(hidden=(0.60, 0.61, 0.62))
    for name, expected in (("release + context swap",
                            "kept: less reliant on the lesion's surroundings"),
                           ("release + trivial", "not kept: no difference clears the seed noise")):
        t = tune_report.seeded_table(_seeded_recs((1.58, 1.63, 1.65), ref, **lower),
                                     candidates={name: ("c0", "c1", "c2")}, **kw)
        assert t.set_index("signal").loc["AUC, lesion hidden", "high"] < 0
        assert tune_report.release_seeded_select(t) == {name: expected}
    t = tune_report.seeded_table(_seeded_recs((1.40, 1.41, 1.42), ref, **lower),
                                 candidates={"release + context swap": ("c0", "c1", "c2")}, **kw)
    assert tune_report.release_seeded_select(t)["release + context swap"].startswith(
        "not kept: clean score and shift score below the reference")
    assert tune.CONTEXT_CANDIDATES == ("release + context swap",)


def test_trial_rerun_table_pairs_each_reference_seed_with_its_rerun():
    def rec(trial, score, dice):
        return {"trial": trial, "score": score, "precision": "mixed_bfloat16",
                "machine": {"cpu": "Xeon"},
                "history": [{"val_dice": dice, "val_auc": score - dice}] * tune.SCORE_EPOCHS}
    recs = [rec(tune.RELEASE_SEEDED_REFERENCE[0], 1.70, 0.78),
            rec(tune.RELEASE_REFERENCE_RERUN[0], 1.69, 0.79),
            rec(tune.RELEASE_SEEDED_REFERENCE[1], 1.68, 0.78)]          # its rerun not recorded
    t = tune_report.trial_rerun_table(recs)
    assert list(t["trial"]) == [tune.RELEASE_SEEDED_REFERENCE[0]]
    row = t.iloc[0]
    assert row["score difference"] == pytest.approx(-0.01)
    assert row["AUC, again"] == pytest.approx(0.90) and row["Dice, first"] == pytest.approx(0.78)
    assert row["machine, again"] == "mixed_bfloat16, Xeon"
    assert tune_report.trial_rerun_table([]).empty


def _with_predictions(name, probs, ids=None, classes=None):
    ids = ids or [f"i{k}" for k in range(len(probs))]
    classes = classes or ["benign", "malignant"] * (len(probs) // 2)
    return {"trial": name, "val_predictions": {"id": ids, "true_class": classes,
                                               "prob_malignant": list(probs)}}


def test_seed_ensemble_table_on_known_numbers():
    # four images, benign / malignant alternating; seed 1 ranks one pair wrong, seed 2
    # another, seed 3 none: each seed's AUC 0.75, 0.75, 1.0; their mean ranks all right
    ref = tune.RELEASE_REFERENCE_RERUN
    recs = [_with_predictions(ref[0], [0.6, 0.5, 0.1, 0.9]),
            _with_predictions(ref[1], [0.1, 0.9, 0.6, 0.5]),
            _with_predictions(ref[2], [0.2, 0.8, 0.3, 0.7])]
    t = tune_report.seed_ensemble_table(recs)
    assert list(t["recipe"]) == ["release recipe (reference seeds, run again)"]
    row = t.iloc[0]
    assert row["AUC, each seed (mean)"] == pytest.approx((0.75 + 0.75 + 1.0) / 3)
    assert (row["lowest"], row["highest"]) == (0.75, 1.0)
    assert row["AUC, seeds averaged"] == pytest.approx(1.0)
    assert row["difference"] == pytest.approx(1.0 - 2.5 / 3)
    assert "smaller than the spread between seeds" in tune_report.seed_ensemble_sentence(t)
    # three seeds each wrong on another pair (AUC 0.75 each, no spread); averaged, all right
    third = [_with_predictions(ref[2], [0.6, 0.9, 0.1, 0.5])]
    t3 = tune_report.seed_ensemble_table(recs[:2] + third)
    assert t3.iloc[0]["lowest"] == t3.iloc[0]["highest"] == 0.75
    assert t3.iloc[0]["AUC, seeds averaged"] == pytest.approx(1.0)
    assert "as large as the spread between seeds" in tune_report.seed_ensemble_sentence(t3)
    # a trial without predictions: no row; other images: an error
    assert tune_report.seed_ensemble_table(recs[:2] + [{"trial": ref[2]}]).empty
    bad = recs[:2] + [_with_predictions(ref[2], [0.2, 0.8, 0.3, 0.7], ids=list("abcd"))]
    with pytest.raises(ConfigError, match="validation images differ"):
        tune_report.seed_ensemble_table(bad)
