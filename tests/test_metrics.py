"""busi_lib.eval.metrics: identities and known values."""

from __future__ import annotations

import numpy as np
import pytest

from busi_lib.eval import metrics


def test_dice_at_least_jaccard_on_random_masks():
    rng = np.random.default_rng(0)
    t = rng.random((50, 16, 16)) > 0.6
    p = rng.random((50, 16, 16)) > 0.5
    per = metrics.per_image_segmentation(t, p)
    assert (per["DC"] >= per["JSI"] - 1e-12).all()
    np.testing.assert_allclose(per["DC"], metrics.dice_from_jaccard(per["JSI"]))
    m = metrics.segmentation_metrics(t, p)
    assert m["seg_DC_mean"] >= m["seg_JSI_mean"] and m["seg_DC_pooled"] >= m["seg_JSI_pooled"]


def test_known_segmentation_values():
    t = np.zeros((1, 4, 4), bool)
    p = np.zeros((1, 4, 4), bool)
    t[0, :2, :2] = True        # 4 lesion pixels
    p[0, :2, :3] = True        # 6 predicted, 4 correct
    m = metrics.segmentation_metrics(t, p)
    assert m["seg_JSI_mean"] == pytest.approx(4 / 6)
    assert m["seg_DC_mean"] == pytest.approx(8 / 10)
    assert m["seg_PRE_mean"] == pytest.approx(4 / 6)
    assert m["seg_REC_mean"] == pytest.approx(1.0)
    assert m["seg_ACC_mean"] == pytest.approx(14 / 16)


def test_mean_and_pooled_differ_and_empty_convention():
    t = np.zeros((2, 4, 4), bool)
    p = np.zeros((2, 4, 4), bool)
    t[0, 0, 0] = p[0, 0, 0] = True      # image 1 perfect (1 px)
    t[1, :, :2] = True                  # image 2: 8 px lesion, nothing predicted
    m = metrics.segmentation_metrics(t, p)
    assert m["seg_DC_mean"] == pytest.approx(0.5)
    assert m["seg_DC_pooled"] == pytest.approx(2 / (2 + 8))
    empty = metrics.per_image_segmentation(np.zeros((1, 3, 3)), np.zeros((1, 3, 3)))
    assert empty["DC"][0] == 1.0 and empty["JSI"][0] == 1.0


def test_classification_known_values():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    prob = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.05])
    m = metrics.classification_metrics(y, prob)       # TP 2, FN 1, FP 1, TN 4
    assert m["cls_ACC"] == pytest.approx(6 / 8)
    assert m["cls_PRE"] == pytest.approx(2 / 3)
    assert m["cls_REC"] == pytest.approx(2 / 3)
    assert m["cls_SPE"] == pytest.approx(4 / 5)
    assert m["cls_F1"] == pytest.approx(2 / 3)
    # AUC: 15 positive/negative pairs, 13 ranked correctly (0.3 < 0.6 and 0.3 < 0.4 fail)
    assert m["cls_AUC"] == pytest.approx(13 / 15)


def test_three_class_uses_malignant_as_positive():
    y = np.array([0, 1, 2, 1, 2])
    pred = np.array([0, 1, 1, 1, 2])
    prob = np.array([0.1, 0.9, 0.6, 0.8, 0.2])
    m = metrics.classification_metrics(y, prob, pred, positive=1)
    assert m["cls_ACC"] == pytest.approx(4 / 5)
    assert m["cls_REC"] == 1.0 and m["cls_PRE"] == pytest.approx(2 / 3)


def test_implied_classification_and_ece():
    r = metrics.implied_classification(tp=90, fn=10, tn=80, fp=20)
    assert r["ACC"] == pytest.approx(170 / 200) and r["PRE"] == pytest.approx(90 / 110)
    assert metrics.expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    assert metrics.expected_calibration_error([0, 0], [0.95, 0.95]) == pytest.approx(0.95)


def test_shape_mismatch_message():
    with pytest.raises(ValueError, match="mask shapes differ"):
        metrics.pixel_counts(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
