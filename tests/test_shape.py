"""busi_lib.eval.shape: descriptors of known shapes."""

from __future__ import annotations

import numpy as np
import pytest

from busi_lib.data.images import resize_mask
from busi_lib.eval.shape import DESCRIPTORS, descriptors, predicted_descriptors


def test_rectangle_and_disc():
    rect = np.zeros((200, 200), bool)
    rect[20:180, 80:120] = True
    d = descriptors(rect)
    assert d["area_frac"] == pytest.approx(0.16)
    assert d["solidity"] == pytest.approx(1.0)
    assert d["extent"] == pytest.approx(1.0)
    assert d["taller_wide"] == pytest.approx(4.0)
    yy, xx = np.mgrid[:200, :200]
    disc = descriptors((yy - 100) ** 2 + (xx - 100) ** 2 < 60 ** 2)
    assert disc["taller_wide"] == pytest.approx(1.0)
    assert disc["circularity"] > 0.85 and d["circularity"] < 0.6
    assert disc["extent"] == pytest.approx(np.pi / 4, rel=0.02)


def test_rough_margin_and_empty_mask():
    yy, xx = np.mgrid[:200, :200]
    r = np.hypot(yy - 100, xx - 100)
    star = r < 50 + 15 * np.sin(10 * np.arctan2(yy - 100, xx - 100))
    d = descriptors(star)
    assert d["solidity"] < 0.9 and d["roughness"] > 1.1
    assert all(np.isnan(v) for v in descriptors(np.zeros((5, 5), bool)).values())
    assert list(descriptors(star)) == list(DESCRIPTORS)


def test_predicted_descriptors_undo_the_squash():
    m = np.zeros((300, 600), bool)
    m[100:200, 200:400] = True                        # 2 : 1, wider than tall
    small = resize_mask(m, 64, "squash")[None]        # squashed: looks square
    assert descriptors(small[0])["taller_wide"] == pytest.approx(1.0, rel=0.1)
    back = predicted_descriptors(small, [(300, 600)], "squash")
    assert back.loc[0, "taller_wide"] == pytest.approx(0.5, rel=0.1)
