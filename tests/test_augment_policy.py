"""busi_lib.data.augment's library policy (aug_policy="trivial": albumentations + usaugment)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("albumentations")
pytest.importorskip("usaugment")

from busi_lib.config import config_hash, make_config  # noqa: E402
from busi_lib.data import augment as A  # noqa: E402
from busi_lib.errors import ConfigError  # noqa: E402


def _batch(n=48):
    x = np.random.default_rng(1).random((n, 64, 64, 1)).astype(np.float32) * 0.8
    m = np.zeros((n, 64, 64), np.uint8)
    m[:, 20:40, 25:45] = 1
    return x, m


def test_the_pool_is_what_the_policy_draws_from():
    assert set(A._trivial_ops()) == set(A.TRIVIAL_POOL)
    x, m = _batch(240)
    _, _, names = A.trivial_augment(x, m, np.random.default_rng(0))
    assert set(names) == set(A.TRIVIAL_POOL)               # 240 draws cover the 12 operations


def test_same_generator_same_epoch_and_global_state_untouched():
    import random

    x, m = _batch()
    np.random.seed(7)
    random.seed(7)
    before = (np.random.random(), random.random())
    np.random.seed(7)
    random.seed(7)
    a = A.trivial_augment(x, m, np.random.default_rng(3))
    b = A.trivial_augment(x, m, np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert (np.random.random(), random.random()) == before  # the global generators restored
    c = A.trivial_augment(x, m, np.random.default_rng(4))
    assert not np.array_equal(a[0], c[0])


def test_images_stay_in_range_and_masks_move_only_with_geometry():
    x, m = _batch(120)
    xi, mi, names = A.trivial_augment(x, m, np.random.default_rng(5))
    assert xi.shape == x.shape and xi.dtype == x.dtype and mi.dtype == m.dtype
    assert xi.min() >= 0 and xi.max() <= 1 and set(np.unique(mi)) <= {0, 1}
    for n, a, b, ma, mb in zip(names, x, xi, m, mi):
        if n == "identity":
            assert np.array_equal(a, b) and np.array_equal(ma, mb)
        elif n != "affine":
            assert np.array_equal(ma, mb), n                 # intensity-only operations


def test_bad_inputs_are_refused():
    x, m = _batch(4)
    with pytest.raises(ValueError, match="expected float"):
        A.trivial_augment((x * 255).astype(np.uint8), m, np.random.default_rng(0))
    with pytest.raises(ValueError, match="as many"):
        A.trivial_augment(x, m[:2], np.random.default_rng(0))
    with pytest.raises(ConfigError, match="aug_policy"):
        make_config("cpu", "multitask_grouped", aug_policy="randaugment")


def test_the_policy_is_off_by_default_and_leaves_recorded_hashes_alone():
    from busi_lib.experiments.trainer import epoch_inputs

    cfg = make_config("smoke", "multitask_grouped")
    assert cfg["aug_policy"] == "none"
    assert config_hash(make_config("cpu", "multitask_grouped")) == "6755efd39643"   # records
    x, m = _batch(8)
    imgs = (x[..., 0] * 255).astype(np.uint8)
    a, _ = epoch_inputs(cfg, imgs, m, np.random.default_rng(0))
    b, _ = epoch_inputs({**cfg, "aug_policy": "trivial"}, imgs, m, np.random.default_rng(0))
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_a_non_finite_result_falls_back_to_the_input(monkeypatch):
    """An operation that returns NaN never reaches the network: the image is left as it was."""
    import albumentations as alb

    class NaNOp(alb.ImageOnlyTransform):
        def apply(self, img, **params):
            return np.full_like(img, np.nan)

    ops = {n: NaNOp(p=1.0) for n in A.TRIVIAL_POOL}
    monkeypatch.setattr(A, "_OPS", ops)
    x, m = _batch(6)
    xi, mi, names = A.trivial_augment(x, m, np.random.default_rng(0))
    assert np.isfinite(xi).all() and np.array_equal(xi, x) and np.array_equal(mi, m)
    assert all(n.startswith("identity (") for n in names)


def test_speckle_reduction_is_finite_at_its_weakest():
    x, m = _batch(30)
    ops = A._trivial_ops()
    import albumentations as alb

    t = alb.Compose([ops["speckle_reduction"]], seed=0)
    for k in range(30):
        out = t(image=x[k, ..., 0], mask=m[k], scan_mask=A.scan_mask(x[k, ..., 0]))["image"]
        assert np.isfinite(out).all()


def _lesions(n=24, size=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 1)).astype(np.float32)
    m = np.zeros((n, size, size), np.uint8)
    for k in range(n):
        r, c = rng.integers(5, size - 35, 2)
        m[k, r:r + rng.integers(8, 30), c:c + rng.integers(8, 30)] = 1
    return x, m


def test_lesion_box_is_the_masks_extent():
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 1
    assert A.lesion_box(m) == (3, 2, 9, 5)
    assert A.lesion_box(np.zeros((4, 4))) is None


def test_lesion_crop_keeps_every_lesion_whole_and_only_zooms_in():
    """A cropped image is a sub-window resized up: the lesion's box stays inside the frame and
    its area never shrinks; the aspect ratio changes; uncropped images are untouched."""
    x, m = _lesions()
    xi, mi, cropped = A.lesion_crop(x, m, np.random.default_rng(3), p=0.5)
    assert 0 < cropped.sum() < len(x)
    assert (xi[~cropped] == x[~cropped]).all() and (mi[~cropped] == m[~cropped]).all()
    stretch = []
    for k in np.flatnonzero(cropped):
        assert set(np.unique(mi[k])) <= {0, 1}
        assert mi[k].sum() >= 0.95 * m[k].sum(), k                    # zoomed in, never cut
        x0, y0, x1, y1 = A.lesion_box(m[k])
        u0, v0, u1, v1 = A.lesion_box(mi[k])
        stretch.append(((u1 - u0) / (x1 - x0)) / ((v1 - v0) / (y1 - y0)))
    assert np.ptp(np.log(stretch)) > 0.1                                # aspect ratios vary
    assert xi.dtype == np.float32 and 0 <= xi.min() and xi.max() <= 1


def test_lesion_crop_is_a_function_of_the_generator():
    x, m = _lesions()
    a = A.lesion_crop(x, m, np.random.default_rng(7))
    b = A.lesion_crop(x, m, np.random.default_rng(7))
    assert all((u == v).all() for u, v in zip(a, b))
    assert (A.lesion_crop(x, m, np.random.default_rng(7), p=0.0)[0] == x).all()
    c = A.lesion_crop(x, m, np.random.default_rng(8))
    assert not (a[0] == c[0]).all()


def test_lesion_crop_refuses_bad_inputs():
    x, m = _lesions(4)
    with pytest.raises(ValueError, match=r"expected float \(N, H, W, 1\)"):
        A.lesion_crop(x[..., 0], m, np.random.default_rng(0))
    with pytest.raises(ValueError, match="4 images but 3 masks"):
        A.lesion_crop(x, m[:3], np.random.default_rng(0))
    with pytest.raises(ValueError, match="p=1.5"):
        A.lesion_crop(x, m, np.random.default_rng(0), p=1.5)


def test_the_trainer_applies_lesion_crop_when_configured():
    from busi_lib.experiments.trainer import epoch_inputs

    cfg = make_config("smoke", "multitask_grouped", aug_policy="lesion_crop", rotation=0.0)
    x, m = _lesions(8)
    u8 = (x[..., 0] * 255).astype(np.uint8)
    got, gm = epoch_inputs(cfg, u8, m, np.random.default_rng(0))
    off, om = epoch_inputs({**cfg, "aug_policy": "none"}, u8, m, np.random.default_rng(0))
    assert got.shape == off.shape and not (gm == om).all()
