"""busi_lib.data.augment.context_swap (aug_policy="context_swap"): a lesion moved into another
image's surroundings, over that image's own lesion."""

from __future__ import annotations

import numpy as np
import pytest

from busi_lib.config import make_config
from busi_lib.data import augment as A


def _scenes(n=24, size=96, seed=0, empty=()):
    """Image k: background 0.01 k, its lesion a rectangle of 0.6 + 0.01 k (all values distinct)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size, 1), np.float32)
    m = np.zeros((n, size, size), np.uint8)
    for k in range(n):
        x[k] = 0.01 * k
        if k in empty:
            continue
        r, c = rng.integers(10, size - 40, 2)
        m[k, r:r + rng.integers(10, 28), c:c + rng.integers(10, 28)] = 1
        x[k, m[k] == 1] = 0.6 + 0.01 * k
    return x, m


def test_a_swapped_image_has_the_lesion_in_the_partners_surroundings():
    x, m = _scenes()
    xi, mi, donors = A.context_swap(x, m, np.random.default_rng(0), p=0.5)
    moved = np.flatnonzero(donors >= 0)
    assert 3 < moved.size < len(x)
    for k in moved:
        j = donors[k]
        assert j != k and set(np.unique(mi[k])) <= {0, 1}
        # the mask is the moved lesion's, zoomed by at most 1.5 in length
        assert m[k].sum() / 1.5**2 * 0.8 <= mi[k].sum() <= m[k].sum() * 1.5**2 * 1.2
        assert np.median(xi[k, mi[k] == 1, 0]) == pytest.approx(0.6 + 0.01 * k, abs=1e-5)
        # the surroundings are the partner's background, and its lesion is covered whole
        assert np.isclose(xi[k, ..., 0], 0.01 * j, atol=1e-6).mean() > 0.5
        assert not np.isclose(xi[k, m[j] == 1, 0], 0.6 + 0.01 * j, atol=1e-4).any()
    kept = donors < 0
    assert (xi[kept] == x[kept]).all() and (mi[kept] == m[kept]).all()


def test_context_swap_is_a_function_of_the_generator():
    x, m = _scenes()
    a = A.context_swap(x, m, np.random.default_rng(7))
    b = A.context_swap(x, m, np.random.default_rng(7))
    assert all((u == v).all() for u, v in zip(a, b))
    c = A.context_swap(x, m, np.random.default_rng(8))
    assert not (a[2] == c[2]).all()
    none = A.context_swap(x, m, np.random.default_rng(7), p=0.0)
    assert (none[0] == x).all() and (none[2] == -1).all()


def test_images_without_a_lesion_are_never_moved_nor_partners():
    x, m = _scenes(empty=(0, 1, 2, 3))
    xi, mi, donors = A.context_swap(x, m[..., None], np.random.default_rng(1), p=1.0)
    assert mi.shape == m[..., None].shape
    assert (donors[:4] == -1).all() and not np.isin(donors, [0, 1, 2, 3]).any()
    assert (xi[:4] == x[:4]).all()
    assert (donors[4:] >= 0).mean() > 0.5


def test_no_partner_of_a_fitting_size_leaves_the_image_as_it_is():
    x, m = _scenes(n=2, empty=())
    m[:] = 0
    m[0, 10:14, 10:14] = 1          # 4 px against 40 px: a zoom of 10 is out of range
    m[1, 20:60, 20:60] = 1
    xi, mi, donors = A.context_swap(x, m, np.random.default_rng(0), p=1.0)
    assert (donors == -1).all() and (xi == x).all()


def test_context_swap_refuses_bad_inputs():
    x, m = _scenes(4)
    with pytest.raises(ValueError, match=r"expected float \(N, H, W, 1\)"):
        A.context_swap(x[..., 0], m, np.random.default_rng(0))
    with pytest.raises(ValueError, match="4 images but 3 masks"):
        A.context_swap(x, m[:3], np.random.default_rng(0))
    with pytest.raises(ValueError, match="p=-0.1"):
        A.context_swap(x, m, np.random.default_rng(0), p=-0.1)
    with pytest.raises(ValueError, match="max_zoom=0.5"):
        A.context_swap(x, m, np.random.default_rng(0), max_zoom=0.5)


def test_the_trainer_swaps_before_the_other_augmentation_when_configured():
    from busi_lib.experiments.trainer import epoch_inputs

    cfg = make_config("smoke", "multitask_grouped", aug_policy="context_swap", rotation=0.0,
                      augment=True)
    x, m = _scenes(8)
    u8 = np.round(x[..., 0] * 255).astype(np.uint8)
    got, gm = epoch_inputs(cfg, u8, m, np.random.default_rng(0))
    off, om = epoch_inputs({**cfg, "aug_policy": "none"}, u8, m, np.random.default_rng(0))
    assert got.shape == off.shape and not (gm == om).all()
