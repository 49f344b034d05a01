"""busi_lib.eval.fusion: shape descriptors + the network's logit, fitted on out-of-fold rows only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import fusion_selection as FS
from busi_lib.errors import ConfigError, DataError
from busi_lib.eval import fusion as F
from busi_lib.eval.shape import DESCRIPTORS

ROOT = Path(__file__).resolve().parents[1]


def _table(n=200, seed=0, signal=2.0, folds=5):
    """Out-of-fold-like rows: solidity carries the label, the probability a little."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = pd.DataFrame({f"pred_{d}": rng.normal(size=n) for d in DESCRIPTORS})
    t["pred_solidity"] = -signal * y + rng.normal(size=n)
    t["prob_malignant"] = 1 / (1 + np.exp(-(0.3 * y + rng.normal(size=n))))
    t["true_class"] = np.where(y == 1, "malignant", "benign")
    t["fold"] = np.arange(n) % folds
    return t


def test_features_are_the_shape_descriptors_and_the_logit():
    assert F.FEATURES == tuple(f"pred_{d}" for d in DESCRIPTORS) + ("logit",)
    assert F.logit([0.5])[0] == 0.0
    assert np.isfinite(F.logit([0.0, 1.0])).all()           # clipped, not infinite
    assert F.logit([0.9])[0] == pytest.approx(np.log(9))


def test_a_missing_column_is_named():
    t = _table().drop(columns="pred_roughness")
    with pytest.raises(DataError, match="pred_roughness"):
        F.feature_table(t)


def test_fusion_learns_the_descriptor_and_round_trips_through_json():
    from busi_lib.eval.metrics import fast_auc

    t = F.lesion_rows(_table(signal=3.0))
    f = F.fit_all(t)
    p = f.predict_proba(F.feature_table(t))
    assert fast_auc(t["y"], p) > 0.9
    g = F.Fusion.from_dict(json.loads(json.dumps(f.to_dict())))
    np.testing.assert_allclose(g.predict_proba(F.feature_table(t)), p)
    assert f.describe().startswith("pred_solidity")          # the largest weight first


def test_an_empty_mask_gets_the_training_median():
    t = F.lesion_rows(_table())
    f = F.fit_all(t)
    row = F.feature_table(t.iloc[:1]).copy()
    row[[c for c in F.FEATURES if c != "logit"]] = np.nan
    assert np.isfinite(f.predict_proba(row)).all()


def test_fold_fitted_never_uses_the_scored_fold():
    """Relabelling fold 2 changes every fold's scores but fold 2's own."""
    t = F.lesion_rows(_table())
    a = F.fold_fitted(t)
    u = t.copy()
    k = u["fold"] == 2
    u.loc[k, "y"] = 1 - u.loc[k, "y"]
    b = F.fold_fitted(u)
    np.testing.assert_array_equal(a[k], b[k])
    assert not np.allclose(a[~k], b[~k])


def test_the_rule_keeps_a_clear_gain_and_rejects_none():
    strong = FS.selection(_table(n=400, signal=3.0))
    assert strong["keep"] and strong["ci"][0] > 0
    noise = FS.selection(_table(n=400, signal=0.0, seed=3))
    assert not noise["keep"]


def test_unfitted_and_bad_inputs_raise():
    with pytest.raises(ConfigError, match="not fitted"):
        F.Fusion().predict_proba(F.feature_table(_table()))
    with pytest.raises(ConfigError, match="C=0"):
        F.Fusion(C=0)
    one_class = F.lesion_rows(_table()).assign(y=1)
    with pytest.raises(DataError, match="both classes"):
        F.Fusion().fit(F.feature_table(one_class), one_class["y"])
    with pytest.raises(DataError, match="features"):
        F.Fusion.from_dict({"features": ["a"]})


def test_the_committed_selection_record_is_what_the_rule_gives():
    rec_path = ROOT / "results" / "cpu" / "selection" / "fusion.json"
    rec = json.loads(rec_path.read_text())
    from busi_lib import records

    for name, e in rec["experiments"].items():
        oof = records.load_predictions("cpu", name, ROOT / "results")
        s = FS.selection(oof)
        assert s["keep"] == e["keep"]
        assert s["mean_gain"] == pytest.approx(e["mean_gain"], abs=1e-12)
    # the released experiment's fusion was not kept: the predictor reports the network alone
    from busi_lib.config import RELEASED_EXPERIMENT

    assert rec["experiments"][RELEASED_EXPERIMENT]["keep"] is False


def _perturbed(clean, gain_shift=0.0, seed=1):
    """Rows as perturbed_rows gives them: each clean row under two 'perturbations'."""
    rng = np.random.default_rng(seed)
    frames = []
    for name in ("a", "b"):
        t = clean.copy()
        t["shift"] = name
        t["prob_malignant"] = np.clip(t["prob_malignant"] + rng.normal(0, 0.2, len(t)), 0, 1)
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def test_second_rule_fits_on_clean_rows_of_the_other_folds_only():
    clean = _table(n=400, signal=3.0)
    rows = _perturbed(clean)
    s = FS.perturbed_selection(rows, clean)
    assert set(s["per_shift"]["shift"]) == {"a", "b"} and len(s["per_fold"]) == 5
    assert s["keep"] and s["ci"][0] > 0
    # relabel the clean rows of fold index 3 (shown as fold 4): its own fused scores must not move
    other = clean.copy()
    k = other["fold"] == 3
    other.loc[k, "true_class"] = np.where(other.loc[k, "true_class"] == "malignant", "benign",
                                          "malignant")
    s2 = FS.perturbed_selection(rows, other)
    a = s["per_shift"].query("fold == 4")["auc_fused"].to_numpy()
    b = s2["per_shift"].query("fold == 4")["auc_fused"].to_numpy()
    np.testing.assert_allclose(a, b)
    no_signal = FS.perturbed_selection(_perturbed(_table(n=400, signal=0.0, seed=5)),
                                      _table(n=400, signal=0.0, seed=5))
    assert not no_signal["keep"]


def test_kept_reads_both_records(tmp_path):
    sel = F.selection_path("cpu", tmp_path)
    sel.parent.mkdir(parents=True)
    sel.write_text(json.dumps({"experiments": {"x": {"keep": False}}}))
    assert not F.kept("cpu", "x", tmp_path) and not F.kept("cpu", "y", tmp_path)
    F.perturbed_path("cpu", tmp_path).write_text(json.dumps({"experiments": {"x": {"keep": True}}}))
    assert F.kept("cpu", "x", tmp_path)
