"""busi_lib.nn.losses: values equal hand computations on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("keras")

from busi_lib.errors import ConfigError  # noqa: E402
from busi_lib.nn.losses import (DiceLoss, FocalLoss, class_weights_from_labels,  # noqa: E402
                                compile_losses)


def test_dice_loss_hand_computed():
    y = np.array([[[1.0, 0.0], [1.0, 0.0]]])[..., None]          # |Y| = 2
    p = np.array([[[0.5, 0.5], [1.0, 0.0]]])[..., None]          # |P| = 2, |P.Y| = 1.5
    expected = 1 - (2 * 1.5 + 1) / (2 + 2 + 1)                    # = 0.2
    assert float(DiceLoss()(y, p)) == pytest.approx(expected, abs=1e-6)
    assert float(DiceLoss(smooth=0)(y, p)) == pytest.approx(1 - 3 / 4, abs=1e-6)


def test_dice_loss_per_image_mean_and_empty_case():
    y = np.zeros((2, 2, 2, 1), np.float32)
    p = np.zeros((2, 2, 2, 1), np.float32)
    y[0, 0, 0] = p[0, 0, 0] = 1                                   # perfect: loss 0
    # image 2: empty mask predicted empty -> (0 + 1) / (0 + 1) -> loss 0 thanks to smoothing
    assert float(DiceLoss()(y, p)) == pytest.approx(0.0, abs=1e-6)
    p[1] = 1                                                      # 4 false positives
    assert float(DiceLoss()(y, p)) == pytest.approx((0 + (1 - 1 / 5)) / 2, abs=1e-6)


def test_focal_loss_hand_computed():
    p = np.array([[0.8, 0.2], [0.3, 0.7]], np.float32)
    y = np.array([0, 0])
    # sample 1: -(1-0.8)^2 log 0.8 ; sample 2: -(1-0.3)^2 log 0.3
    l1, l2 = -(0.2 ** 2) * math.log(0.8), -(0.7 ** 2) * math.log(0.3)
    assert float(FocalLoss(gamma=2)(y, p)) == pytest.approx((l1 + l2) / 2, rel=1e-5)
    w = [2.0, 0.5]
    y2 = np.array([0, 1])
    l2b = -(0.3 ** 2) * math.log(0.7)
    assert float(FocalLoss(2, w)(y2, p)) == pytest.approx((2 * l1 + 0.5 * l2b) / 2, rel=1e-5)


def test_focal_gamma0_is_cross_entropy():
    import keras

    p = np.array([[0.6, 0.4], [0.1, 0.9]], np.float32)
    y = np.array([1, 1])
    ce = keras.losses.SparseCategoricalCrossentropy()(y, p)
    assert float(FocalLoss(gamma=0)(y, p)) == pytest.approx(float(ce), rel=1e-5)


def test_class_weights_inverse_counts():
    labels = [0] * 30 + [1] * 10
    raw = class_weights_from_labels(labels, 2, normalize="raw")
    assert raw == pytest.approx([1 / 30, 1 / 10])
    mean1 = class_weights_from_labels(labels, 2)
    assert np.mean(mean1) == pytest.approx(1.0) and mean1[1] / mean1[0] == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="every class"):
        class_weights_from_labels([0, 0, 0], 2)


def test_bad_loss_arguments():
    with pytest.raises(ConfigError, match="smooth"):
        DiceLoss(smooth=-1)
    with pytest.raises(ConfigError, match="gamma"):
        FocalLoss(gamma=-0.5)


def test_compile_losses_eq5_weights():
    loss, w = compile_losses("multi", loss_weights=(1.0, 0.5))
    assert set(loss) == {"mask", "label"} and w == {"mask": 1.0, "label": 0.5}
    loss, w = compile_losses("seg")
    assert set(loss) == {"mask"}


def test_the_loss_registries_are_the_names_the_configuration_allows():
    from busi_lib.config import CHOICES
    from busi_lib.nn.losses import CLS_LOSSES, SEG_LOSSES

    assert set(SEG_LOSSES) == set(CHOICES["seg_loss"])
    assert set(CLS_LOSSES) == set(CHOICES["cls_loss"])
