"""busi_lib.eval.operating: sensitivity and specificity at thresholds, with Wilson intervals."""

from __future__ import annotations

import numpy as np
import pytest

from busi_lib.errors import DataError
from busi_lib.eval import operating as O


def test_counts_and_rates_on_a_known_table():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    pos = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)
    s = O.sens_spec(y, pos)
    assert (s["tp"], s["fn"], s["tn"], s["fp"]) == (3, 1, 5, 1)
    assert s["sensitivity"] == 0.75 and s["specificity"] == pytest.approx(5 / 6)
    assert s["sens_low"] < 0.75 < s["sens_high"]


def test_wilson_interval_known_value():
    # Wilson 95 % interval of 0 / 10: [0, 0.2775]
    p, lo, hi = O.wilson(0, 10)
    assert p == 0 and lo == pytest.approx(0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-3)
    assert np.isnan(O.wilson(0, 0)[0])


def test_thresholds_are_strict_and_monotone():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.02, 0.10, 0.10, 0.9])
    t = O.model_points(y, p)
    assert list(t.index) == ["model, p > 2 %", "model, p > 10 %", "model, p > 50 %"]
    assert list(t["sensitivity"]) == [1.0, 0.5, 0.5]          # 0.10 is not above 10 %
    assert list(t["specificity"]) == [0.5, 1.0, 1.0]


def test_specificity_at_sensitivity_keeps_the_sensitivity():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = rng.random(300) + 0.5 * y
    for target in (0.8, 0.95, 1.0):
        r = O.specificity_at_sensitivity(y, p, target)
        assert r["sensitivity"] >= target
    with pytest.raises(DataError, match="sensitivity=1.5"):
        O.specificity_at_sensitivity(y, p, 1.5)


def test_radiologist_points_and_the_missed_sentence():
    y = np.array([1, 1, 0, 0])
    t = O.radiologist_points(y, [5, 4, 4, 2])
    assert t.loc["radiologists, BI-RADS >= 4", "sensitivity"] == 1.0
    assert t.loc["radiologists, BI-RADS >= 4", "specificity"] == 0.5
    assert t.loc["radiologists, BI-RADS >= 5", "sensitivity"] == 0.5
    assert O.missed_sentence(y, [0.9, 0.4, 0.6, 0.1]) == (
        "at a probability above 50 % the model misses 1 of 2 cancers (50 %) and sends 1 of 2 "
        "benign lesions (50 %) on as suspicious")
    with pytest.raises(DataError, match="BI-RADS"):
        O.radiologist_points(y, [5, "4A?", 4, 2])


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="same length"):
        O.sens_spec([0, 1], [True])
    with pytest.raises(DataError, match="expected 0"):
        O.sens_spec([0, 2], [True, False])
