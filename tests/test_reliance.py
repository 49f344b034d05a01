"""busi_lib.analysis.reliance: occlusion and acquisition-leak checks on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import reliance
from busi_lib.errors import ConfigError
from busi_lib.eval import fusion, occlusion
from busi_lib.eval.metrics import fast_auc


def _scene():
    img = np.full((2, 32, 32), 100, np.uint8)
    img[:, 10:16, 10:16] = 30
    img[1, 0:2, :] = 200
    m = np.zeros((2, 32, 32), bool)
    m[0, 10:16, 10:16] = True                        # image 1 has no lesion mask
    return img, m


def test_occlude_hides_what_it_says():
    img, m = _scene()
    no_lesion = occlusion.occlude(img, m, "background", dilate=0)
    assert (no_lesion[0][m[0]] == 100).all()         # the lesion is now the median grey
    assert (no_lesion[0][~m[0]] == img[0][~m[0]]).all()
    lesion = occlusion.occlude(img, m, "lesion", margin=0.0)
    assert (lesion[0][m[0]] == 30).all() and lesion[0].sum() == 36 * 30
    np.testing.assert_array_equal(lesion[1], img[1])  # empty mask: unchanged
    with pytest.raises(ConfigError, match="keep='all'"):
        occlusion.occlude(img, m, "all")


def test_the_box_hides_the_outline_that_the_silhouette_keeps():
    """A tall, thin lesion: hidden as a silhouette its outline (its shape) is still there; a
    square grown by the margin hides all of it, and the shapes of two lesions of one size
    can no longer be told apart."""
    img = np.tile((60 + 2 * np.arange(40, dtype=np.uint8))[None, :, None], (2, 1, 40))
    img[:, 0:3, :] = 180                              # surroundings that must stay
    m = np.zeros((2, 40, 40), bool)
    m[0, 10:30, 18:22] = True                        # tall and thin: 20 x 4
    m[1, 18:22, 10:30] = True                        # wide and flat: 4 x 20
    img[m] = 20
    sil = occlusion.occlude(img, m, "background", dilate=0)
    flat = [sil[k][m[k]] for k in (0, 1)]            # each lesion one flat grey on a gradient:
    assert all((f == f[0]).all() for f in flat) and (sil[0] != sil[1]).any()   # shape readable
    box = occlusion.occlude(img, m, "background_box", margin=0.15)
    # the square: side 20 * 1.3 = 26, centred on the box (rows 7-33, columns 7-33), one grey
    for k in (0, 1):
        assert (box[k][7:33, 7:33] == np.uint8(np.median(img[k]))).all()
    outside = np.ones((40, 40), bool)
    outside[7:33, 7:33] = False
    assert (box[0][outside] == box[1][outside]).all()   # nothing of either shape is left
    assert (box[:, 0:3] == 180).all()                # the surroundings are kept
    assert occlusion.KEEP == ("background", "background_box", "lesion")


def test_within_size_auc_removes_a_size_shortcut():
    # malignant images are all 500x500, benign 400x600; within each size the score is random
    rng = np.random.default_rng(0)
    sizes = [(500, 500)] * 20 + [(400, 600)] * 20 + [(300, 300)] * 20
    y = np.r_[np.ones(15), np.zeros(5), np.zeros(15), np.ones(5), np.r_[np.ones(10), np.zeros(10)]]
    p = np.r_[np.full(20, 0.9), np.full(20, 0.1), rng.random(20)] + 0.01 * rng.random(60)
    r = reliance.within_size_auc(sizes, y, p)
    assert r["auc"] > 0.7 and r["n_groups"] == 3
    assert r["within_auc"] < 0.65


def test_leak_auc_finds_a_size_leak_and_not_noise():
    rng = np.random.default_rng(1)
    n = 200
    y = rng.integers(0, 2, n)
    sizes = np.where(y[:, None] == 1, [[500, 500]], [[400, 600]]) + rng.integers(-5, 5, (n, 2))
    assert reliance.leak_auc(reliance.acquisition_features(sizes), y) > 0.95
    noise = np.c_[rng.integers(300, 600, n), rng.integers(300, 600, n)]
    assert abs(reliance.leak_auc(reliance.acquisition_features(noise), y) - 0.5) < 0.15
    assert reliance.dark_fraction([np.zeros((4, 4)), np.full((2, 2), 50)]).tolist() == [1.0, 0.0]
    f = reliance.acquisition_features([(100, 200)], [0.25])
    assert list(f.columns) == ["height", "width", "aspect", "log_area", "dark_fraction"]
    assert f.loc[0, "aspect"] == 2.0 and isinstance(f, pd.DataFrame)


def test_fold_fitted_scores_never_fit_on_the_scored_fold(monkeypatch):
    rng = np.random.default_rng(2)
    n = 90
    y = rng.integers(0, 2, n)
    t = pd.DataFrame({"x": y + 0.3 * rng.standard_normal(n), "fold": np.arange(n) % 3})
    s = reliance.fold_fitted_scores(t, ["x"], y)
    assert fast_auc(y, s) > 0.9
    assert fast_auc(y, reliance.fold_fitted_scores(t, ["x"], y, model="forest")) > 0.85
    # poison fold 0's labels: fold 0's own scores must not change, the others' must
    y2 = y.copy()
    y2[t["fold"] == 0] = 1 - y2[t["fold"] == 0]
    s2 = reliance.fold_fitted_scores(t, ["x"], y2)
    np.testing.assert_allclose(s2[t["fold"] == 0], s[t["fold"] == 0])
    assert not np.allclose(s2[t["fold"] != 0], s[t["fold"] != 0])
    tr = reliance.transfer_scores(t, y, t.assign(x=[np.nan] + [0.0] * (n - 1)), ["x"])
    assert np.isfinite(tr).all()
    assert fusion.logit([0.5])[0] == 0.0


def test_predicted_shape_table_scores_each_fold_from_the_others():
    rng = np.random.default_rng(3)
    n = 150
    y = rng.integers(0, 2, n)
    oof = pd.DataFrame({"fold": np.arange(n) % 5, "id": [f"i{i}" for i in range(n)],
                        "true_class": np.where(y == 1, "malignant", "benign"),
                        "prob_malignant": rng.random(n)})
    for c in reliance.SHAPE:
        oof[f"pred_{c}"] = rng.random(n)
    oof["pred_solidity"] = 1 - 0.5 * y + 0.05 * rng.random(n)   # the shape gives the label away
    folds = pd.DataFrame({"id": oof["id"], "group": np.arange(n)})
    bra = oof.drop(columns=["fold", "true_class", "id"]).assign(
        pathology=np.where(y == 1, "malignant", "benign"), case=np.arange(n) // 2)
    t = reliance.predicted_shape_table(oof, bra, folds, n_boot=50)
    assert t.loc["shape of the predicted mask", "BUSI AUC (out of fold)"] > 0.95
    assert abs(t.loc["network probability", "BUSI AUC (out of fold)"] - 0.5) < 0.15
    assert t.loc["shape of the predicted mask", "BUS-BRA AUC"] > 0.95
    assert list(t.index) == ["network probability", "shape of the predicted mask",
                             "fused: shape + network probability"]


def test_giveaway_sentence_reads_the_table():
    t = pd.DataFrame({"BUSI AUC (out of fold)": [0.706, 0.74, 0.994],
                      "BUS-BRA AUC (fitted on BUSI)": [0.474, 0.5, np.nan]},
                     index=["image size (width, height, aspect, area)",
                            "image size + near-black share", "shape of the ground-truth outline"])
    assert reliance.giveaway_sentence(t) == (
        "the original image size alone tells malignant from benign with an AUC of 0.71 on BUSI "
        "(0.47 on BUS-BRA), and the shape of the annotators' lesion outline with 0.99 on BUSI "
        "(BUS-BRA not found)")
