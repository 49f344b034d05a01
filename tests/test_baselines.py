"""busi_lib.nn.baselines: tiny segmentation baselines, two classifiers, the ImageNet fallback."""

from __future__ import annotations

import functools

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from busi_lib.config import CLS_BASELINES, SEG_BASELINES  # noqa: E402
from busi_lib.errors import ConfigError  # noqa: E402
from busi_lib.nn import baselines  # noqa: E402
from busi_lib.nn.baselines import (BASELINE_INFO, aspp_rates, build_baseline,  # noqa: E402
                                   imagenet_preprocessing)

RNG = np.random.default_rng(0)
X1 = RNG.random((2, 32, 32, 1), dtype=np.float32)


@functools.cache
def _tiny(name: str):
    """A 32 px, width-4 segmentation baseline (built once per test session)."""
    return build_baseline(name, image_size=32, width=4)[0]


def test_info_covers_every_baseline():
    assert set(BASELINE_INFO) == set(SEG_BASELINES) | set(CLS_BASELINES)
    assert all(BASELINE_INFO[n]["kind"] == "seg" for n in SEG_BASELINES)
    assert all(BASELINE_INFO[n]["kind"] == "cls" for n in CLS_BASELINES)


@pytest.mark.parametrize("name", SEG_BASELINES)
def test_seg_outputs(name):
    m = _tiny(name)
    assert m.inputs[0].name == "image"
    assert m.count_params() > 0
    out = m(X1, training=False)
    assert set(out) == {"mask"}
    mask = keras.ops.convert_to_numpy(out["mask"])
    assert mask.shape == (2, 32, 32, 1) and mask.dtype == np.float32
    assert np.all((mask >= 0) & (mask <= 1))


def test_unetpp_is_bigger_than_unet():
    assert _tiny("unetpp").count_params() > _tiny("unet").count_params()


def test_unet_train_step():
    m = build_baseline("unet", image_size=32, width=4)[0]
    m.compile(optimizer="adam", loss={"mask": "binary_crossentropy"})
    y = (RNG.random((2, 32, 32, 1)) > 0.5).astype(np.float32)
    loss = float(np.asarray(m.train_on_batch(X1, {"mask": y})))
    assert np.isfinite(loss)


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="segnet"):
        build_baseline("segnet")
    with pytest.raises(ConfigError, match="image_size=40"):
        build_baseline("unet", image_size=40, width=4)
    with pytest.raises(ConfigError, match="pretrained"):
        build_baseline("mobilenet", image_size=32, pretrained="random")


def test_aspp_rates_scale_with_the_feature_map():
    assert aspp_rates(32) == (6, 12, 18)
    assert aspp_rates(8) == (2, 3, 5)          # 128 px input
    assert aspp_rates(2) == (1, 2, 3)          # strictly increasing even when tiny


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
@pytest.mark.parametrize("channels", [1, 3])
def test_preprocessing_matches_keras(mode, channels):
    inp = keras.Input((8, 8, channels))
    pre = keras.Model(inp, imagenet_preprocessing(inp, mode))
    x = RNG.random((2, 8, 8, channels), dtype=np.float32)
    rgb = np.repeat(x, 3, axis=-1) if channels == 1 else x
    want = keras.applications.imagenet_utils.preprocess_input(rgb * 255.0, mode=mode)
    got = keras.ops.convert_to_numpy(pre(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_mobilenet_classifier():
    m, note = build_baseline("mobilenet", image_size=32, in_channels=1, n_classes=3,
                             pretrained=None)
    assert note == "random initialisation (pretrained=None)"
    out = m(X1, training=False)
    assert set(out) == {"label"}
    p = keras.ops.convert_to_numpy(out["label"])
    assert p.shape == (2, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_inceptionv3_resizes_small_inputs():
    m, note = build_baseline("inceptionv3", image_size=32, in_channels=3, pretrained=None)
    assert "resized from 32 to 75" in note
    assert m.get_layer("resize").output.shape[1:3] == (75, 75)
    p = keras.ops.convert_to_numpy(m(np.repeat(X1, 3, axis=-1), training=False)["label"])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_imagenet_fallback_is_tried_once(monkeypatch):
    original = keras.applications.MobileNet
    calls = []

    def offline(*args, weights=None, **kwargs):
        calls.append(weights)
        if weights == "imagenet":
            raise OSError("no network")
        return original(*args, weights=weights, **kwargs)

    monkeypatch.setattr(keras.applications, "MobileNet", offline)
    monkeypatch.setattr(baselines, "_IMAGENET_FAILED", {})
    for _ in range(2):
        _, note = build_baseline("mobilenet", image_size=32, pretrained="imagenet")
        assert note == ("ImageNet weights could not be downloaded (OSError); "
                        "trained from random initialisation")
    assert calls == ["imagenet", None, None]


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_seg_baselines_take_the_reference_width(profile):
    from busi_lib.config import config_hash, make_config

    ref = make_config(profile, "ablation_reference")
    for n in SEG_BASELINES:
        assert make_config(profile, f"base_{n}")["baseline_width"] == ref["filters"][0]
    # the classifiers have no width: their configuration (and its hash) does not change
    cls = make_config(profile, "base_mobilenet")
    assert cls["baseline_width"] == 32
    assert config_hash(cls) == config_hash({k: v for k, v in cls.items() if k != "baseline_width"})


def test_seg_baseline_is_built_at_the_configured_width():
    from busi_lib.config import make_config
    from busi_lib.nn.build import build_for_config

    cfg = make_config("smoke", "base_unet")
    model, note = build_for_config(cfg)
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert first.filters == cfg["baseline_width"] == 4
    assert "width 4" in note
    with pytest.raises(ConfigError, match="baseline_width=0"):
        make_config("cpu", "base_unet", baseline_width=0)


def test_inception_baselines_train_in_float32_the_others_keep_the_profile_precision():
    from busi_lib.config import make_config

    for e in ("base_inceptionv3", "base_inceptionresnetv2"):
        assert make_config("cpu", e)["precision"] == "float32"
    for e in ("base_resnet50", "base_mobilenet", "ablation_reference"):
        assert make_config("cpu", e)["precision"] == "auto"
