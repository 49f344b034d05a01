"""busi_lib.experiments.external: the BUS-BRA tables on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from busi_lib.experiments.external import device_table, ensemble_table, probability_by_birads


def _ens(n=120, seed=0):
    rng = np.random.default_rng(seed)
    mal = rng.random(n) < 0.35
    return pd.DataFrame({"id": [f"bus_{i:04d}" for i in range(n)], "case": np.arange(n) // 2,
                         "pathology": np.where(mal, "malignant", "benign"),
                         "birads": np.where(mal, rng.integers(4, 6, n), rng.integers(2, 5, n)),
                         "device": np.where(np.arange(n) < 100, "A", "B"),
                         "prob_malignant": np.clip(mal * 0.4 + rng.random(n) * 0.6, 0, 1),
                         "dice": rng.random(n)})


def test_ensemble_table_beside_the_radiologists():
    from sklearn.metrics import roc_auc_score

    e = _ens()
    t = ensemble_table(e, e[["id", "case", "pathology", "birads", "device"]], n_boot=100)
    y = e["pathology"] == "malignant"
    model, rad = t.iloc[0], t.iloc[1]
    assert model["AUC"] == pytest.approx(roc_auc_score(y, e["prob_malignant"]))
    assert rad["AUC"] == pytest.approx(roc_auc_score(y, e["birads"]))
    assert model["AUC 95% CI low"] <= model["AUC"] <= model["AUC 95% CI high"]
    assert model["patients"] == 60 and model["Dice mean"] == pytest.approx(e["dice"].mean())
    assert np.isnan(rad["Dice mean"])
    alone = ensemble_table(None, e[["id", "case", "pathology", "birads", "device"]], n_boot=100)
    assert list(alone.index) == ["radiologists: BI-RADS category as a score"]
    assert alone.iloc[0]["AUC"] == pytest.approx(rad["AUC"])
    assert ensemble_table(None, None).empty


def test_device_table_pools_small_scanners():
    e = _ens()
    t = device_table(e, min_images=30)
    assert list(t.index) == ["A", "other"] and t.loc["other", "images"] == 20
    assert t.loc["A", "malignant"] == pytest.approx((e["pathology"][:100] == "malignant").mean())
    p = probability_by_birads(e)
    assert p[("images", "malignant")].sum() + p[("images", "benign")].sum() == len(e)
    assert str(p[("images", "benign")].dtype) == "Int64"          # counts stay whole numbers


def test_load_ensemble_prefers_the_ensemble_file_then_the_fold_mean():
    import json

    from busi_lib.experiments.external import load_ensemble
    from busi_lib.records import experiment_dir

    ens, why = load_ensemble("smoke", "multitask_grouped")
    assert ens is None and "no BUS-BRA predictions" in why
    d = experiment_dir("smoke", "multitask_grouped")
    d.mkdir(parents=True)
    e = _ens(n=4)
    for k, shift in enumerate((0.0, 0.2, 0.4)):
        e.assign(prob_malignant=0.1 + shift, dice=0.5 + shift / 2, pred_solidity=shift
                 ).to_csv(d / f"fold{k}_external.csv", index=False)
    ens, why = load_ensemble("smoke", "multitask_grouped")
    assert len(ens) == 4 and "mean over 3 fold models" in why
    assert ens["prob_malignant"].tolist() == pytest.approx([0.3] * 4)
    assert ens["dice"].tolist() == pytest.approx([0.6] * 4)
    assert ens["pred_solidity"].tolist() == pytest.approx([0.2] * 4)
    ens, why = load_ensemble("smoke", "multitask_grouped", folds=[0])
    assert ens["prob_malignant"].tolist() == pytest.approx([0.1] * 4) and "1 fold model " in why
    e.to_csv(d / "ensemble_external.csv", index=False)
    (d / "ensemble_external.json").write_text(json.dumps({"folds": [0, 1, 2, 3, 4]}))
    ens, why = load_ensemble("smoke", "multitask_grouped")
    assert ens["prob_malignant"].tolist() == pytest.approx(e["prob_malignant"].tolist())
    assert why.startswith("multitask_grouped: the 5 fold models' mean")


def test_paired_external_known_answers():
    from sklearn.metrics import roc_auc_score

    from busi_lib.experiments.external import paired_external

    a = _ens()
    same = paired_external(a, a.copy(), n_boot=50)
    assert same["d_auc"] == 0 and same["d_auc_low"] == 0 and same["d_auc_high"] == 0
    assert same["d_dice"] == 0 and same["patients"] == 60
    y = a["pathology"] == "malignant"
    perfect = a.assign(prob_malignant=y.astype(float), dice=a["dice"] + 0.1)
    r = paired_external(a, perfect.sample(frac=1, random_state=1), n_boot=200)   # order differs
    assert r["auc_b"] == pytest.approx(1.0)
    assert r["d_auc"] == pytest.approx(1.0 - roc_auc_score(y, a["prob_malignant"]))
    assert 0 < r["d_auc_low"] <= r["d_auc"] <= r["d_auc_high"]
    assert r["d_dice"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="1 only in the first"):
        paired_external(a, a.iloc[1:], n_boot=10)
