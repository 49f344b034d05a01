"""The recipe's building blocks: schedule, losses, augmentation, resizing, normalisation,
inference choices and the lesion-crop head, each against a value known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from busi_lib.config import DEFAULTS, LEGACY, config_hash, make_config
from busi_lib.data.images import pad_geometry, resize_mask
from busi_lib.errors import ConfigError
from busi_lib.eval.inference import postprocess_masks, restore_mask, run_network, to_input


def test_warmup_cosine_known_values():
    from busi_lib.nn.optim import WarmupCosine

    s = WarmupCosine(1e-3, total_steps=100, warmup_steps=10)
    at = lambda t: float(np.asarray(s(t)))  # noqa: E731
    assert at(0) == 0.0
    assert at(5) == pytest.approx(5e-4)
    assert at(10) == pytest.approx(1e-3)
    assert at(55) == pytest.approx(5e-4, rel=1e-5)        # half-way through the cosine
    assert at(100) == pytest.approx(0.0, abs=1e-12)
    assert at(150) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigError, match="warmup_steps=100"):
        WarmupCosine(1e-3, total_steps=100, warmup_steps=100)


def test_step_schedule_is_the_papers():
    from busi_lib.nn.optim import make_schedule

    s = make_schedule({"schedule": "step", "lr": 1e-4, "lr_drop_every": 20,
                       "lr_drop_factor": 0.1}, steps_per_epoch=10)
    assert float(np.asarray(s(199))) == pytest.approx(1e-4)
    assert float(np.asarray(s(200))) == pytest.approx(1e-5)


def test_dice_bce_known_values():
    from busi_lib.nn.losses import DiceBCELoss, DiceLoss

    y = np.zeros((1, 4, 4, 1), np.float32)
    y[0, :2] = 1
    half = np.full_like(y, 0.5)
    dice = float(np.asarray(DiceLoss(1.0)(y, half)))
    both = float(np.asarray(DiceBCELoss(1.0)(y, half)))
    assert dice == pytest.approx(1 - (2 * 4 + 1) / (8 + 8 + 1), rel=1e-5)
    assert both - dice == pytest.approx(math.log(2), rel=1e-5)      # BCE of p = 0.5
    assert float(np.asarray(DiceBCELoss(1.0)(y, y))) == pytest.approx(0.0, abs=1e-5)


def test_compile_losses_rejects_unknown_seg_loss():
    from busi_lib.nn.losses import compile_losses

    with pytest.raises(ConfigError, match="seg_loss='focal'"):
        compile_losses("multi", seg_loss="focal")


def test_warp_at_zoom_one_is_scipy_rotate():
    from scipy import ndimage

    from busi_lib.data.augment import warp

    a = np.zeros((40, 50))
    a[5:15, 20:35] = 1
    ref = ndimage.rotate(a, 17, axes=(1, 0), reshape=False, order=1, mode="constant", cval=0)
    np.testing.assert_allclose(warp(a, 17, 1.0, 1), ref, atol=1e-12)


def test_extras_off_reproduce_the_papers_augmentation():
    from busi_lib.data.augment import augment_batch, epoch_rng

    rng = np.random.default_rng(0)
    x = rng.random((6, 32, 32, 1)).astype(np.float32)
    m = rng.random((6, 32, 32)) > 0.7
    a = augment_batch(x, m, epoch_rng(1, 2, 3))
    b = augment_batch(x, m, epoch_rng(1, 2, 3), scale=0.0, intensity=False, noise=False)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_extras_keep_masks_binary_and_images_in_range():
    from busi_lib.data.augment import augment_batch, epoch_rng

    x = np.full((20, 32, 32, 1), 0.5, np.float32)
    m = np.zeros((20, 32, 32), bool)
    m[:, 12:20, 12:20] = True
    xi, mi = augment_batch(x, m, epoch_rng(0, 0, 0), rotation=0, hflip=False, vflip=False,
                           intensity=True, noise=True)
    np.testing.assert_array_equal(mi, m)              # intensity and noise leave the mask alone
    assert xi.min() >= 0 and xi.max() <= 1 and not np.allclose(xi, 0.5)
    _, mz = augment_batch(x, m, epoch_rng(0, 0, 1), rotation=0, hflip=False, vflip=False,
                          scale=0.3)
    ratio = mz.reshape(20, -1).sum(1) / 64
    assert ratio.min() < 0.9 and ratio.max() > 1.1    # zoom in and out: area ~ zoom^2
    with pytest.raises(ValueError, match="float images"):
        augment_batch((x * 255).astype(np.uint8), m, epoch_rng(0, 0, 0), intensity=True)


def test_pad_geometry_and_restore_roundtrip():
    assert pad_geometry(300, 500) == (100, 0, 500)
    assert pad_geometry(500, 300) == (0, 100, 500)
    m = np.zeros((300, 500), bool)
    m[100:200, 150:300] = True
    for mode in ("squash", "pad"):
        small = resize_mask(m, 128, mode)
        back = restore_mask(small.astype(np.float32), (300, 500), mode) >= 0.5
        assert back.shape == (300, 500)
        assert 2 * (back & m).sum() / (back.sum() + m.sum()) > 0.95
    # padding keeps the aspect ratio: the 150 x 100 box stays 1.5 times wider than tall
    ys, xs = np.nonzero(resize_mask(m, 128, "pad"))
    assert (np.ptp(xs) + 1) / (np.ptp(ys) + 1) == pytest.approx(1.5, rel=0.05)


def test_zscore_input_is_standardised_per_image():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 16, 16)).astype(np.uint8)
    imgs[1] = imgs[1] // 4 + 100                      # another gain and offset
    x = to_input(imgs, 1, "zscore")
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(to_input(imgs, 1)[..., 0], imgs / 255.0, atol=1e-7)
    with pytest.raises(ConfigError, match="normalize='minmax'"):
        to_input(imgs, 1, "minmax")


def test_postprocess_keeps_largest_component_and_fills_holes():
    p = np.zeros((1, 20, 20), np.float32)
    p[0, 2:12, 2:12] = 0.9
    p[0, 5:8, 5:8] = 0.1                              # a hole
    p[0, 15:18, 15:18] = 0.8                          # a small second component
    raw = postprocess_masks(p, 0.5)
    assert raw.sum() == 100 - 9 + 9
    clean = postprocess_masks(p, 0.5, largest=True, fill_holes=True)
    assert clean.sum() == 100 and not clean[0, 16, 16] and clean[0, 6, 6]
    with pytest.raises(ConfigError, match="threshold=1.5"):
        postprocess_masks(p, 1.5)


class _Stub:
    """A 'model' whose mask is its input and whose label is the mean of the left half."""

    def predict_on_batch(self, x):
        left = x[:, :, : x.shape[2] // 2].mean(axis=(1, 2, 3))
        return {"mask": x.copy(), "label": np.stack([1 - left, left], 1)}


def test_flip_tta_averages_the_mirror():
    x = np.zeros((2, 4, 4, 1), np.float32)
    x[:, :, :2] = 1.0                                 # bright left half
    plain = run_network(_Stub(), x)
    tta = run_network(_Stub(), x, tta=True)
    np.testing.assert_allclose(plain["label"][:, 1], 1.0)
    np.testing.assert_allclose(tta["label"][:, 1], 0.5)   # the mirror's left half is dark
    np.testing.assert_allclose(tta["mask"], x)            # mirrored back before averaging


def test_lesion_crop_zooms_on_the_mask_and_keeps_empty_frames():
    pytest.importorskip("keras")
    from busi_lib.nn.model import LesionCrop

    img = np.zeros((2, 64, 64, 1), np.float32)
    img[:, 20:30, 30:50] = 1.0
    mask = np.zeros_like(img)
    mask[0, 20:30, 30:50] = 1.0                       # image 1: no predicted lesion
    out = np.asarray(LesionCrop()([img, mask]))
    assert out[0].mean() > 5 * img[0].mean()          # the lesion fills most of the crop
    np.testing.assert_allclose(out[1], img[1], atol=1e-5)   # whole frame kept


def test_crop_head_needs_the_mask():
    pytest.importorskip("keras")
    from busi_lib.nn.model import build_model

    with pytest.raises(ConfigError, match="cls_head='gap_crop' with task='cls'"):
        build_model(64, filters=[4, 4, 4, 4], bridge_filters=4, task="cls", cls_head="gap_crop")


def test_new_keys_at_legacy_values_leave_the_hash_unchanged():
    cfg = make_config("cpu_v1", "multitask")
    assert all(cfg[k] == v for k, v in LEGACY.items())
    old = {k: v for k, v in cfg.items() if k not in LEGACY or k == "train_seed"}
    assert config_hash(cfg) == config_hash(old)
    assert config_hash({**cfg, "schedule": "cosine"}) != config_hash(cfg)
    assert config_hash({**cfg, "aug_intensity": True}) != config_hash(cfg)
    assert set(LEGACY) <= set(DEFAULTS)


@pytest.mark.parametrize("key,value,expected", [
    ("resize", "crop", "one of ['squash', 'pad']"),
    ("warmup_epochs", 40, "an integer in [0, epochs)"),
    ("aug_scale", 0.7, "a number in [0, 0.5)"),
    ("mask_threshold", 0, "a probability in (0, 1)"),
    ("net_size", 256, "at most image_size (128)"),
    ("net_size", 72, "divisible by 16"),
])
def test_recipe_keys_are_validated(key, value, expected):
    with pytest.raises(ConfigError, match=f"{key}=") as e:
        make_config("cpu", "multitask", **{key: value})
    assert expected in str(e.value)


def test_a_crop_head_model_reloads_in_a_fresh_process(tmp_path):
    """Regression: a saved model with the crop head must load where busi_lib.nn.model was never
    imported (resuming a fold, the BUS-BRA ensemble, the release)."""
    pytest.importorskip("keras")
    import subprocess
    import sys

    from busi_lib.nn.model import build_model

    m = build_model(32, filters=[4, 4, 4, 4], bridge_filters=4, dense_units=4,
                    cls_head="gap_crop")
    m.save(tmp_path / "m.keras")
    code = ("from busi_lib.experiments.trainer import load_saved_model; "
            f"m = load_saved_model({str(tmp_path / 'm.keras')!r}); "
            "print(type(m.get_layer('lesion_crop')).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("LesionCrop")
