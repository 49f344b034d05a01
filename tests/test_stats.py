"""busi_lib.analysis.stats: intervals and verdicts on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import stats
from busi_lib.errors import ConfigError


def test_t_interval_known_value():
    mean, lo, hi = stats.t_interval([1, 2, 3, 4, 5])
    half = 2.7764451 * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)
    assert mean == 3 and lo == pytest.approx(3 - half) and hi == pytest.approx(3 + half)
    assert stats.t_interval([0.1] * 4)[1:] == (pytest.approx(0.1), pytest.approx(0.1))
    with pytest.raises(ConfigError, match="at least one"):
        stats.t_interval([np.nan])


@pytest.mark.parametrize("lo,hi,v", [(0.01, 0.2, "better"), (-0.3, -0.02, "worse"),
                                     (-0.1, 0.1, "no detectable difference"),
                                     (np.nan, np.nan, "no detectable difference")])
def test_verdict(lo, hi, v):
    assert stats.verdict(lo, hi) == v


def _preds(seed=0, shift=0.0, n=40, folds=3):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(folds):
        for i in range(n):
            mal = i % 3 == 0
            rows.append({"fold": k, "id": f"{k}-{i}", "true_class": "malignant" if mal else "benign",
                         "dice": float(np.clip(rng.random() * 0.5 + 0.3, 0, 1)),
                         "prob_malignant": float(rng.random() * 0.8 + 0.2 * mal)})
    df = pd.DataFrame(rows)
    df["dice"] = df["dice"] + shift
    return df


def test_paired_bootstrap_identities():
    ref = _preds()
    same = stats.paired_bootstrap(ref, ref, "dice", n_boot=50)
    assert same == (0.0, 0.0, 0.0)
    up = stats.paired_bootstrap(ref, _preds(shift=0.1), "dice", n_boot=50)
    assert up == pytest.approx((0.1, 0.1, 0.1))
    auc = stats.paired_bootstrap(ref, _preds(seed=1), "auc", n_boot=200)
    assert auc[1] <= auc[0] <= auc[2] and auc[1] < auc[2]
    with pytest.raises(ConfigError, match="share no"):
        stats.paired_bootstrap(ref, ref.assign(fold=9), "dice")


def test_fold_metric_auc_is_mann_whitney():
    from sklearn.metrics import roc_auc_score

    p = _preds(seed=3)
    y = (p["true_class"] == "malignant").astype(int)
    assert stats.fold_metric(p, "auc") == pytest.approx(roc_auc_score(y, p["prob_malignant"]))


def test_compare_pairs_shared_folds_only():
    rec = lambda k, v: {"fold": k, "metrics": {"seg_DC_mean": v}}  # noqa: E731
    ref = [rec(0, 0.70), rec(1, 0.72), rec(2, 0.71), rec(3, 0.69)]
    var = [rec(0, 0.75), rec(1, 0.78), rec(2, 0.76)]
    c = stats.compare(ref, var, "seg_DC_mean")
    assert c["n_folds"] == 3 and c["folds"] == [0, 1, 2]
    assert c["mean"] == pytest.approx(np.mean([0.05, 0.06, 0.05]))
    assert c["verdict"] == "better"
    assert stats.compare(ref, [], "seg_DC_mean")["verdict"] == "not recorded"
    assert stats.seed_spread([0.71, 0.73, 0.72]) == pytest.approx(0.02)
