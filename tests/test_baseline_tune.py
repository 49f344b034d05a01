"""A baseline's learning rate chosen on the inner validation split (busi_lib.experiments.baseline_tune)."""

from __future__ import annotations

import numpy as np
import pytest

from busi_lib.data import splits
from busi_lib.errors import ConfigError
from busi_lib.experiments import baseline_tune as bt


def _rec(lr, aucs, span=0.3, diverged_at=None, experiment="base_vgg19"):
    hist = [{"val_auc": a, "val_span": span} for a in aucs]
    return {"experiment": experiment, "lr": lr, "history": hist, "diverged_at": diverged_at,
            "train_seconds": 3600.0}


def test_score_is_the_mean_auc_of_the_last_epochs():
    assert bt.lr_score(_rec(1e-4, [0.1, 0.6, 0.7, 0.8])) == pytest.approx(0.7)
    assert np.isnan(bt.lr_score(_rec(1e-4, [0.6, 0.7, 0.8], diverged_at=2)))


def test_rule_picks_the_best_score_among_networks_that_trained():
    recs = [_rec(1e-4, [0.80, 0.80, 0.80]), _rec(3e-5, [0.85, 0.85, 0.85])]
    df = bt.lr_table(recs)
    assert list(df["lr"]) == [1e-4, 3e-5] and df["chosen"].tolist() == [False, True]
    assert bt.chosen_lr(recs) == 3e-5
    # a higher score from a network that answers every image alike does not count
    recs = [_rec(1e-4, [0.80, 0.80, 0.80]), _rec(3e-5, [0.9, 0.9, 0.9], span=1e-6)]
    assert bt.chosen_lr(recs) == 1e-4
    # nor does a diverged one; with none left there is no choice
    recs = [_rec(1e-4, [0.8] * 3, diverged_at=1), _rec(3e-5, [0.5] * 3, span=0.0)]
    assert bt.chosen_lr(recs) is None
    assert not bt.lr_table(recs)["eligible"].any()
    with pytest.raises(ValueError, match="no learning-rate trials"):
        bt.lr_table([])


def test_only_the_fixed_candidates_can_be_tried():
    with pytest.raises(ConfigError, match="base_resnet50"):
        bt.trial_config("base_resnet50", 1e-4)
    with pytest.raises(ConfigError, match=r"lr=0\.01: expected one of"):
        bt.trial_config("base_vgg19", 1e-2)
    cfg = bt.trial_config("base_vgg19", 1e-4)
    assert cfg["lr"] == 1e-4 and cfg["model"] == "vgg19"
    assert bt.trial_name("base_vgg19", 3e-5) == "base_vgg19_lr3e-05"


def test_committed_vgg19_rate_is_the_one_the_trials_choose():
    from busi_lib.config import BASELINE_LR, make_config
    from busi_lib.records import PROJECT_ROOT

    recs = bt.load_lr_trials("base_vgg19", "cpu", PROJECT_ROOT / "results")
    if not recs:
        pytest.skip("no base_vgg19 learning-rate trials recorded")
    assert {r["lr"] for r in recs} == set(bt.CANDIDATES["base_vgg19"])
    lr = bt.chosen_lr(recs)
    if lr is None:
        assert "vgg19" not in BASELINE_LR
    else:
        assert BASELINE_LR["vgg19"] == lr and make_config("cpu", "base_vgg19")["lr"] == lr


TINY = dict(image_size=32, dense_units=8, epochs=2, warmup_epochs=1, batch_size=8,
            baseline_width=4, max_per_class=None)


def test_a_lr_trial_never_sees_the_test_fold(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    from synthetic import make_busi, spy_model_inputs

    from busi_lib.experiments import tune

    root = make_busi(tmp_path / "Dataset_BUSI_with_GT", n_benign=12, n_malignant=12)
    seen = spy_model_inputs(monkeypatch)
    rec = bt.run_lr_trial("base_vgg19", 1e-4, "smoke", data_dir=root,
                          results_dir=tmp_path / "r", verbose=0, **TINY)
    cfg = bt.trial_config("base_vgg19", 1e-4, "smoke", **TINY)
    data, folds = splits.prepare(cfg, root, results_dir=tmp_path / "r")
    test = data.images[folds["fold"].to_numpy() == tune.TUNE_FOLD]
    assert len(test) > 0 and seen
    shown = np.concatenate(seen)
    for img in test:
        assert not (shown == img).all(axis=(1, 2)).any()
    assert len(rec["history"]) == 2
    assert {"val_auc", "val_span"} <= set(rec["history"][-1])
    assert rec["n_inner_train"] + rec["n_val"] == int((folds["fold"] != tune.TUNE_FOLD).sum())
    assert (tmp_path / "r" / "smoke" / "tuning" / "baselines" /
            "base_vgg19_lr0.0001.json").is_file()
    # recorded: skipped the second time; a changed configuration is refused
    again = bt.run_lr_trial("base_vgg19", 1e-4, "smoke", data_dir=root,
                            results_dir=tmp_path / "r", verbose=0, **TINY)
    assert again["config_hash"] == rec["config_hash"]
    with pytest.raises(ConfigError, match="configuration changed"):
        bt.run_lr_trial("base_vgg19", 1e-4, "smoke", data_dir=root,
                        results_dir=tmp_path / "r", verbose=0, **{**TINY, "epochs": 3})


def test_lr_sentence_reports_each_trial_and_the_choice():
    recs = [_rec(1e-4, [0.8, 0.8, 0.8]), _rec(3e-5, [0.7] * 3, span=0.0)]
    t = bt.lr_table(recs)
    s = bt.lr_sentence(t, 1e-4)
    assert "at 0.0001, 0.800; at 3e-05, the same probability for every image." in s
    assert s.endswith("The rule chooses 0.0001, the rate it is trained with.")
    assert "retrain it" in bt.lr_sentence(t, 1e-3)
    none = bt.lr_table([_rec(1e-4, [0.8] * 3, diverged_at=2)])
    assert "diverged at epoch 2" in bt.lr_sentence(none, 1e-3)
    assert bt.lr_sentence(none, 1e-3).endswith("keeps the recipe's rate.")
