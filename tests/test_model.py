"""busi_lib.nn.model: shapes and parameter counts of every variant; the 1x1 stride-2 trap."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from busi_lib.errors import ConfigError  # noqa: E402
from busi_lib.nn.model import build_model, forward_flops_per_image  # noqa: E402

# Parameter counts at 128 px, filters 32-64-128-256, bridge 512 (regression values; the
# differences between them are checked analytically below).
PARAMS = {
    "multi": 12_050_227, "seg": 11_787_313, "cls": 11_122_370, "encoder": 11_853_619,
    "plain": 11_658_515, "3class": 12_050_484, "input": 12_045_219, "none": 12_044_899,
}
VARIANTS = {
    "multi": {}, "seg": {"task": "seg"}, "cls": {"task": "cls"},
    "encoder": {"cls_from": "encoder"}, "plain": {"block": "plain"}, "3class": {"n_classes": 3},
    "input": {"full_res": "input"}, "none": {"full_res": "none"},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_shapes_and_params(name):
    m = build_model(128, **VARIANTS[name])
    assert m.count_params() == PARAMS[name]
    shapes = {k: tuple(v.shape) for k, v in m.output.items()}
    n_cls = 3 if name == "3class" else 2
    if name != "cls":
        assert shapes["mask"] == (None, 128, 128, 1)
    if name != "seg":
        assert shapes["label"] == (None, n_cls)
    assert set(shapes) == {"seg": {"mask"}, "cls": {"label"}}.get(name, {"mask", "label"})


def test_param_differences_are_the_heads():
    # Dense(256) on 256+512+256 pooled features vs on 256 alone
    assert PARAMS["multi"] - PARAMS["encoder"] == (1024 - 256) * 256
    # a third softmax unit: 256 weights + 1 bias
    assert PARAMS["3class"] - PARAMS["multi"] == 257
    # the seg-only model lacks exactly the classification head
    assert PARAMS["multi"] - PARAMS["seg"] == 1024 * 256 + 256 + 256 * 2 + 2


def test_outputs_are_probabilities():
    m = build_model(32, filters=(4, 8, 8, 16), bridge_filters=16, dense_units=8)
    out = m.predict_on_batch(np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32))
    assert out["mask"].min() >= 0 and out["mask"].max() <= 1
    np.testing.assert_allclose(out["label"].sum(1), 1, rtol=1e-5)


@pytest.mark.parametrize("bad,match", [
    ({"image_size": 100}, "multiple of 16"), ({"task": "both"}, "task"),
    ({"n_classes": 4}, "n_classes"), ({"block": "dense"}, "block"),
    ({"full_res": "skip"}, "full_res"), ({"filters": (8, 16)}, "filters"),
])
def test_bad_arguments_raise(bad, match):
    kw = {"image_size": 32, **bad}
    with pytest.raises(ConfigError, match=match):
        build_model(**kw)


def test_flops_count_one_conv_by_hand():
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Conv2D(5, 3, padding="same")(inp)
    m = keras.Model(inp, out)
    assert forward_flops_per_image(m) == 2 * 8 * 8 * 3 * 3 * 3 * 5


@pytest.mark.parametrize("channels", [1, 3])
def test_projection_stride2_trains(channels):
    """Regression for a TensorFlow 2.21 oneDNN crash (busi_lib.nn.model._projection): backprop through the first encoder unit's
    stride-2 projection on a 1- or 3-channel input must not crash (it used to kill the process
    with a heap corruption when written as a 1x1 stride-2 Conv2D)."""
    m = build_model(32, in_channels=channels, filters=(4, 8, 8, 16), bridge_filters=16,
                    dense_units=8, task="seg")
    assert any(layer.name == "enc1_subsample" for layer in m.layers)
    m.compile(optimizer="adam", loss={"mask": "binary_crossentropy"})
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, channels), dtype=np.float32)
    y = (rng.random((4, 32, 32, 1)) > 0.5).astype(np.float32)
    losses = [float(np.asarray(m.train_on_batch(x, {"mask": y}))) for _ in range(3)]
    assert all(np.isfinite(losses))


def test_subsampling_projection_equals_strided_conv():
    """MaxPooling(1, stride 2) + 1x1 conv computes exactly a 1x1 stride-2 conv (forward only)."""
    rng = np.random.default_rng(0)
    x = rng.random((1, 8, 8, 3), dtype=np.float32)
    conv = keras.layers.Conv2D(4, 1, strides=2, use_bias=False)
    ref = np.asarray(conv(x))
    sub = keras.layers.MaxPooling2D(1, strides=2)(x)
    conv1 = keras.layers.Conv2D(4, 1, use_bias=False)
    conv1.build(sub.shape)
    conv1.set_weights(conv.get_weights())
    np.testing.assert_array_equal(np.asarray(conv1(sub)), ref)


def test_lesion_crop_can_hide_the_context():
    """mask_context=True: the crop shows the lesion and a thin rim; the corners of the crop,
    context without it, are zero; the layer saves and loads with the option."""
    import keras

    from busi_lib.nn.model import LesionCrop

    img = np.ones((1, 32, 32, 1), np.float32)
    mask = np.zeros((1, 32, 32, 1), np.float32)
    mask[0, 12:20, 12:20, 0] = 1.0
    keep = np.asarray(LesionCrop()([img, mask]))
    hide = np.asarray(LesionCrop(mask_context=True, context_px=3)([img, mask]))
    assert keep[0, 0, 0, 0] > 0.5 and hide[0, 0, 0, 0] == 0.0       # a corner: context
    assert hide[0, 16, 16, 0] == pytest.approx(1.0)                  # the centre: lesion
    layer = LesionCrop.from_config(LesionCrop(mask_context=True, context_px=5).get_config())
    assert layer.mask_context and layer.context_px == 5
    m = build_model(32, filters=(4, 4, 4, 4), bridge_filters=4, dense_units=4,
                    cls_head="gap_crop", crop_context="mask")
    assert m.get_layer("lesion_crop").mask_context
    with pytest.raises(ConfigError, match="crop_context"):
        build_model(32, filters=(4, 4, 4, 4), bridge_filters=4, cls_head="gap_crop",
                    crop_context="blur")


def test_net_size_runs_the_unet_smaller_and_crops_the_full_size_input():
    """net_size below image_size: the same weights as the network at net_size (resizing has
    none), a mask at image_size, and a lesion crop at net_size sampled from the full-size
    input -- so a fine pattern inside the lesion, averaged away at net_size, survives in the
    crop. Saved and loaded with its out_size; a bad net_size is refused."""
    import keras

    from busi_lib.nn.model import LesionCrop

    kw = dict(filters=(4, 4, 4, 4), bridge_filters=4, dense_units=4, cls_head="gap_crop")
    small, big = build_model(32, **kw), build_model(64, net_size=32, **kw)
    assert small.count_params() == big.count_params()
    out = big.predict_on_batch(np.random.default_rng(0).random((2, 64, 64, 1), dtype=np.float32))
    assert out["mask"].shape == (2, 64, 64, 1) and out["label"].shape == (2, 2)
    assert big.get_layer("lesion_crop").output.shape[1:] == (32, 32, 1)
    # a one-pixel checkerboard inside a lesion covering a quarter of the side: at half the
    # size it averages to flat grey, in the crop (twice the detail of that half size) it stays
    img = np.full((1, 64, 64, 1), 0.5, np.float32)
    img[0, 24:40, 24:40, 0] = (np.indices((16, 16)).sum(0) % 2).astype(np.float32)
    mask = np.zeros((1, 64, 64, 1), np.float32)
    mask[0, 24:40, 24:40, 0] = 1.0
    crop = np.asarray(LesionCrop(out_size=32)([img, mask]))[0, 8:24, 8:24, 0]
    flat = np.asarray(keras.ops.image.resize(img, (32, 32)))[0, 12:20, 12:20, 0]
    assert flat.std() < 0.01 and crop.std() > 0.1
    layer = LesionCrop.from_config(LesionCrop(out_size=32).get_config())
    assert layer.out_size == 32 and "out_size" not in LesionCrop().get_config()
    for bad in (48, 24, 40):                       # above image_size, under 32, not /16
        with pytest.raises(ConfigError, match="net_size"):
            build_model(32 if bad == 48 else 64, net_size=bad, **kw)
