"""Tests of busi_lib.data.enhance (synthetic images, fixed seeds; one optional real BUSI image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from busi_lib.data.enhance import METHODS, contrast_table, enhance, ghe, ghe_steps, lesion_contrast
from busi_lib.errors import ConfigError

H = W = 128
REAL_IMAGE = Path("/work/shared/data/BUSI/Dataset_BUSI_with_GT/benign/benign (1).png")


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _noise_image(mean: float, std: float, seed: int = 0) -> np.ndarray:
    return _u8(np.random.default_rng(seed).normal(mean, std, (H, W)))


def _bimodal(seed: int = 1) -> np.ndarray:
    """Two Gaussian blobs, around grey 60 (left half) and 180 (right half)."""
    rng = np.random.default_rng(seed)
    xx = np.arange(W)[None, :].repeat(H, 0)
    return _u8(np.where(xx < W // 2, rng.normal(60, 8, (H, W)), rng.normal(180, 8, (H, W))))


def _disc(seed: int = 2, bg: float = 40, fg: float = 120, noise: float = 10):
    """Bright disc (lesion) of radius 20 in a dark noisy background, and its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    mask = np.hypot(yy - H / 2, xx - W / 2) < 20
    return _u8(np.where(mask, fg, bg) + rng.normal(0, noise, (H, W))), mask


# ----------------------------------------------------------------------- enhance()

@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_uint8_same_shape(method):
    img = _noise_image(100, 30)[:, :100]            # non-square on purpose
    out = enhance(img, method)
    assert out.dtype == np.uint8
    assert out.shape == img.shape
    assert out is not img
    assert 0 <= out.min() <= out.max() <= 255


def test_none_is_identity_copy():
    img = _noise_image(100, 30)
    out = enhance(img, "none")
    np.testing.assert_array_equal(out, img)
    out[0, 0] ^= 1
    assert out[0, 0] != img[0, 0]                    # a copy, not a view


def test_default_method_is_ghe():
    img = _bimodal()
    np.testing.assert_array_equal(enhance(img), ghe(img))


def test_unknown_method_raises_config_error_naming_it():
    with pytest.raises(ConfigError, match="sharpen") as exc:
        enhance(_noise_image(100, 30), "sharpen")
    for m in METHODS:
        assert m in str(exc.value)


@pytest.mark.parametrize("bad, what", [
    (np.zeros((8, 8), np.float32), "float32"),
    (np.zeros((8, 8), np.uint16), "uint16"),
    (np.zeros((8, 8, 3), np.uint8), r"\(8, 8, 3\)"),
    (np.zeros(8, np.uint8), r"\(8,\)"),
])
def test_bad_image_raises_naming_dtype_or_shape(bad, what):
    with pytest.raises(ValueError, match=what):       # ConfigError is a ValueError
        enhance(bad, "ghe")
    with pytest.raises(ConfigError, match="expected"):
        enhance(bad, "none")


def test_unknown_keyword_raises():
    with pytest.raises(ConfigError, match="clip_limit"):
        enhance(_noise_image(100, 30), "ghe", clip_limit=0.02)
    out = enhance(_noise_image(100, 30), "clahe", clip_limit=0.02)
    assert out.dtype == np.uint8


@pytest.mark.parametrize("kwargs, name", [
    ({"strength": -1.0}, "strength"), ({"sigma": -0.5}, "sigma"),
    ({"max_peaks": 0}, "max_peaks"), ({"min_distance": 0}, "min_distance"),
    ({"min_prominence": 2.0}, "min_prominence"), ({"local": "sobel"}, "sobel"),
    ({"max_peaks": 2.5}, "max_peaks"),
])
def test_ghe_argument_validation(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        ghe(_bimodal(), **kwargs)


# --------------------------------------------------------------------------- GHE

def test_ghe_bimodal_two_peaks_and_cut_between():
    img = _bimodal()
    s = ghe_steps(img)
    assert set(s) >= {"histogram", "generalized", "smoothed", "peaks", "cuts", "mapping",
                      "output"}
    for key in ("histogram", "generalized", "smoothed"):
        assert s[key].shape == (256,)
    assert s["histogram"].sum() == img.size
    # each pixel weighs between 1 and 1 + strength (= 2)
    assert img.size <= s["generalized"].sum() <= 2 * img.size
    assert len(s["peaks"]) == 2
    assert abs(s["peaks"][0] - 60) <= 5 and abs(s["peaks"][1] - 180) <= 5
    assert len(s["cuts"]) == 1 and 60 < s["cuts"][0] < 180
    assert s["mapping"].dtype == np.uint8 and s["mapping"].shape == (256,)
    np.testing.assert_array_equal(s["output"], s["mapping"][img])
    np.testing.assert_array_equal(s["output"], ghe(img))
    out = s["output"]
    # each mode stays in its own segment and is spread out within it
    left, right = out[:, : W // 2], out[:, W // 2:]
    assert left.max() <= s["cuts"][0] < right.min()
    assert left.std() > img[:, : W // 2].std() and right.std() > img[:, W // 2:].std()


@pytest.mark.parametrize("local", ["laplacian", "local_mean"])
def test_mapping_monotone_and_range(local):
    for img in (_bimodal(), _noise_image(50, 10), _disc()[0]):
        s = ghe_steps(img, local=local)
        assert np.all(np.diff(s["mapping"].astype(int)) >= 0)
        assert s["output"].min() >= img.min() and s["output"].max() <= img.max()


@pytest.mark.parametrize("mean", [50, 200])
def test_ghe_preserves_brightness_unlike_he(mean):
    img = _noise_image(mean, 10, seed=mean)
    out = ghe(img)
    assert abs(out.mean() - img.mean()) < 15
    assert out.std() > 1.5 * img.std()               # it still enhances contrast
    he_shift = abs(enhance(img, "he").mean() - img.mean())
    assert he_shift > 50                              # global HE recentres near 128


def test_max_peaks_limits_segments():
    s = ghe_steps(_bimodal(), max_peaks=1)
    assert len(s["peaks"]) == 1 and len(s["cuts"]) == 0


def test_strength_zero_is_plain_histogram():
    img = _bimodal()
    s = ghe_steps(img, strength=0.0)
    np.testing.assert_array_equal(s["generalized"], s["histogram"])


@pytest.mark.parametrize("value", [0, 77, 255])
def test_constant_image_stays_constant(value):
    img = np.full((32, 40), value, np.uint8)
    with np.errstate(all="raise"):                    # no division by zero anywhere
        s = ghe_steps(img)
    assert np.all(s["output"] == value)
    for method in METHODS:
        out = enhance(img, method)
        assert np.all(out == value), method


# ---------------------------------------------------------------- lesion contrast

def test_lesion_contrast_exact_value():
    img = np.where(np.indices((10, 10)).sum(0) % 2 == 0, 40, 60).astype(np.uint8)
    mask = np.zeros((10, 10), bool)
    mask[:2, :] = True
    img[mask] = 100
    # background: half 40, half 60 -> mean 50, std 10; lesion 100 -> (100 - 50) / 10
    assert lesion_contrast(img, mask) == pytest.approx(5.0)
    assert lesion_contrast(255 - img, mask) == pytest.approx(-5.0)   # dark lesion


def test_lesion_contrast_disc_per_method():
    img, mask = _disc()
    c = {m: lesion_contrast(enhance(img, m), mask) for m in METHODS}
    assert all(v > 0 for v in c.values())
    assert c["none"] > 5
    # Global HE gives most output levels to the dominant (background) grey levels and
    # so amplifies the background noise: the normalized contrast drops for this image.
    assert c["he"] < c["none"]


def test_lesion_contrast_errors():
    img, mask = _disc()
    with pytest.raises(ValueError, match="empty"):
        lesion_contrast(img, np.zeros_like(mask))
    with pytest.raises(ValueError, match="whole image"):
        lesion_contrast(img, np.ones_like(mask))
    with pytest.raises(ValueError, match="shape"):
        lesion_contrast(img, mask[:, :-1])


def test_contrast_table_skips_empty_masks():
    img, mask = _disc()
    img2, mask2 = _disc(seed=3, fg=90)
    table = contrast_table([img, _noise_image(80, 20), img2],
                           [mask, np.zeros_like(mask), mask2])
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == list(METHODS)
    assert list(table.index) == [0, 2]
    assert table.loc[0, "none"] == pytest.approx(lesion_contrast(img, mask))
    assert table.loc[2, "ghe"] == pytest.approx(lesion_contrast(ghe(img2), mask2))
    with pytest.raises(ConfigError, match="blur"):
        contrast_table([img], [mask], methods=["none", "blur"])


# ----------------------------------------------------------------- real BUSI image

@pytest.mark.skipif(not REAL_IMAGE.exists(), reason="BUSI data not available")
def test_ghe_on_real_busi_image():
    from PIL import Image

    img = np.asarray(Image.open(REAL_IMAGE).convert("L"))
    out = ghe(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert abs(out.mean() - img.mean()) < 20
    assert out.std() >= 0.9 * img.std()
