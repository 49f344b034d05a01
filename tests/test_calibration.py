"""busi_lib.eval.calibration: bands, Platt and isotonic calibration, cross-fitting, evidence tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import paper
from busi_lib.errors import ConfigError
from busi_lib.eval import calibration as C

ROOT = Path(__file__).resolve().parents[1]


def test_bands_are_defined_once():
    assert paper.BIRADS_BANDS is C.BIRADS_BANDS and paper.birads_band is C.birads_band


def test_band_of_a_scalar_and_of_an_array():
    assert C.birads_band(0.155) == "4B" and isinstance(C.birads_band(0.155), str)
    assert C.birads_band(np.array([[0.01, 0.97]])).tolist() == [["3", "5"]]


def test_birads_table_counts():
    t = C.birads_table([0, 0, 1, 1], [0.01, 0.3, 0.3, 0.99])
    assert t["images"].tolist() == [1, 0, 2, 0, 1]
    assert t.loc["4B", "observed malignant (%)"] == 50.0 and np.isnan(t.loc["4A",
                                                                             "observed malignant (%)"])


def _sample(n=4000, a=2.0, b=-0.5, seed=0):
    """Probabilities p whose true malignancy probability is sigmoid(a logit(p) + b)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    true = 1 / (1 + np.exp(-(a * np.log(p / (1 - p)) + b)))
    return (rng.uniform(size=n) < true).astype(int), p


def test_platt_recovers_a_known_curve():
    y, p = _sample()
    cal = C.fit_calibrator(y, p, "platt")
    assert cal.params_["a"] == pytest.approx(2.0, abs=0.2)
    assert cal.params_["b"] == pytest.approx(-0.5, abs=0.15)
    before = C.calibration_scores(y, p)["ECE"]
    after = C.calibration_scores(y, cal.transform(p))["ECE"]
    assert after < before / 2


def test_platt_stays_finite_when_classes_separate_and_never_reverses_ranking():
    y = np.array([0, 0, 0, 1, 1, 1])
    cal = C.fit_calibrator(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], "platt")
    assert np.isfinite([cal.params_["a"], cal.params_["b"]]).all() and cal.params_["a"] > 0
    flipped = C.fit_calibrator(y, [0.9, 0.8, 0.7, 0.3, 0.2, 0.1], "platt")
    assert flipped.params_["a"] == 0.0               # a constant: no reversal
    out = flipped.transform([0.1, 0.9])
    assert out[0] == pytest.approx(out[1]) == pytest.approx(0.5, abs=1e-6)


def test_isotonic_is_monotone_and_round_trips_through_json():
    y, p = _sample(500, seed=1)
    cal = C.fit_calibrator(y, p, "isotonic")
    grid = np.linspace(0, 1, 101)
    out = cal.transform(grid)
    assert (np.diff(out) >= 0).all() and out.min() >= 0 and out.max() <= 1
    again = C.Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(again.transform(grid), out)
    platt = C.fit_calibrator(y, p, "platt")
    np.testing.assert_allclose(C.Calibrator.from_dict(platt.to_dict()).transform(grid),
                               platt.transform(grid))


def test_none_is_the_identity():
    cal = C.fit_calibrator([0, 1], [0.2, 0.7], "none")
    np.testing.assert_array_equal(cal.transform([0.0, 0.3, 1.0]), [0.0, 0.3, 1.0])


def test_crossfit_uses_only_the_other_groups():
    y, p = _sample(600, seed=2)
    g = np.arange(600) % 3
    got = C.crossfit(y, p, g, "platt")
    for k in range(3):
        own = C.fit_calibrator(y[g != k], p[g != k], "platt").transform(p[g == k])
        np.testing.assert_allclose(got[g == k], own)
    assert not np.allclose(got, C.fit_calibrator(y, p).transform(p))


def test_calibration_table_known_values():
    y = np.array([0, 1, 0, 1])
    t = C.calibration_table({"x": (y, np.full(4, 0.5), np.array([0.0, 1.0, 0.0, 1.0]))})
    row = t.loc["x"]
    assert row["ECE before"] == pytest.approx(0.0) and row["Brier before"] == pytest.approx(0.25)
    assert row["ECE after"] == pytest.approx(0.0) and row["Brier after"] == pytest.approx(0.0)
    pts = C.reliability_table(y, [0.05, 0.95, 0.15, 0.95])
    assert pts["images"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert pts.loc["0.9-1.0", "observed malignant"] == 1.0
    s = C.calibration_summary(y, [0.05, 0.95, 0.15, 0.95]).loc["pooled"]
    assert s["images"] == 4 and s["Brier"] == pytest.approx((0.05**2 + 0.05**2 + 0.15**2 + 0.05**2) / 4)


@pytest.mark.parametrize("call,exc,words", [
    (lambda: C.Calibrator("beta"), ConfigError, "method='beta': expected one of"),
    (lambda: C.fit_calibrator([1, 1, 1], [0.2, 0.5, 0.9]), ValueError, "needs both classes"),
    (lambda: C.Calibrator().transform([0.5]), ValueError, "not fitted yet"),
    (lambda: C.fit_calibrator([0, 2], [0.2, 0.5]), ValueError, "expected 0 (benign) or 1"),
    (lambda: C.fit_calibrator([0, 1], [0.2, 1.5]), ValueError, "finite probabilities in [0, 1]"),
    (lambda: C.Calibrator.from_dict({"method": "platt", "params": {"a": 1}}), ConfigError,
     "lacks parameter(s) ['b']"),
    (lambda: C.crossfit([0, 1], [0.2, 0.5], [0, 0]), ValueError, "at least two groups"),
])
def test_errors_name_the_value_and_what_was_expected(call, exc, words):
    with pytest.raises(exc) as e:
        call()
    assert words in str(e.value)


def test_records_evidence_on_the_committed_smoke_records():
    ev = C.records_evidence("smoke", "multitask", results_dir=ROOT / "results")
    busi, busbra = ev["sets"]["BUSI (cross-validation)"], ev["sets"]["BUS-BRA (external)"]
    assert len(busi[0]) == 24 and busi[0].sum() == 12
    assert len(busbra[0]) == 761 and busbra[0].sum() == 247       # BUS-BRA folds 1-2
    assert len(ev["busbra"]) == 761 and set(ev["busbra"]["id"]).__len__() == 761
    # BUS-BRA "after": every fold's probability calibrated by the BUSI calibrator, then averaged
    from busi_lib.records import load_predictions

    ext = load_predictions("smoke", "multitask", ROOT / "results", kind="external")
    one = ext[ext["id"] == "bus_0007-l"]
    want = ev["calibrator"].transform(one["prob_malignant"].to_numpy()).mean()
    assert ev["busbra"].set_index("id").loc["bus_0007-l", "prob_cal"] == pytest.approx(want)
    table = C.calibration_table(ev["sets"])
    assert list(table.index) == ["BUSI (cross-validation)", "BUS-BRA (external)"]
    import matplotlib.pyplot as plt

    fig = C.plot_reliability_before_after(ev["sets"], show=False)
    assert len(fig.axes) == 2
    plt.close(fig)
    assert C.evidence("smoke", "multitask", models_dir=ROOT / "no_models",
                      results_dir=ROOT / "results")["source"].startswith("records of multitask")
    with pytest.raises(ValueError, match="no out-of-fold predictions"):
        C.records_evidence("smoke", "no_such_experiment", results_dir=ROOT / "results")


def test_discordant_sentence_counts_high_bands_for_low_bi_rads():
    from busi_lib.eval.calibration import birads_crosstab, discordant_sentence

    t = pd.DataFrame({"birads": [2, 2, 2, 3, 5, 5],
                      "p": [0.99, 0.6, 0.01, 0.03, 0.05, 0.97]})
    ct = birads_crosstab(t, "p")
    assert discordant_sentence(ct) == ("2 of 3 BI-RADS 2 images get band 4C or 5; 0 of 1 BI-RADS 3 "
                                       "images get band 4C or 5; 1 of 2 BI-RADS 5 images get band "
                                       "3 or 4A")
