"""The multi-task Residual-U-Net of Chowdary et al. (2022) and the variants the ablations need.

Written with the Keras 3 functional API only (no backend-specific code), so the same model runs
on TensorFlow (CPU, the default) and JAX (``KERAS_BACKEND=jax``, GPU).

Architecture (as the paper describes it, Fig. 3 and section 3; choices it leaves open are
arguments)::

    input (S x S x C)
     ├─ stem (full_res="stem": 3x3 conv-BN-ReLU, filters[0]//2, full resolution) ──────────┐
    enc1  residual unit, first conv stride 2 -> S/2,  filters[0]  ────────────────────┐    │
    enc2  residual unit, stride 2            -> S/4,  filters[1]  ──────────────┐     │    │
    enc3  residual unit, stride 2            -> S/8,  filters[2]  ────────┐     │     │    │
    enc4  residual unit, stride 2            -> S/16, filters[3]  ──┐     │     │     │    │
    bridge residual unit, stride 1           -> S/16, bridge        │     │     │     │    │
    dec1  up x2 -> S/8,  concat enc3, residual unit, filters[3] ◄───┘(*)  │     │     │    │
    dec2  up x2 -> S/4,  concat enc2, residual unit, filters[2] ◄─────────┘     │     │    │
    dec3  up x2 -> S/2,  concat enc1, residual unit, filters[1] ◄───────────────┘     │    │
    dec4  up x2 -> S,    concat stem/input/nothing, residual unit, filters[0] ◄───────┘────┘
    mask  3x3 conv, sigmoid

(*) ``dec1`` is "stage 6". The classification branch takes global average pooling of stage 4
(``enc4``), stage 5 (``bridge``) and stage 6 (``dec1``), concatenates them, then
Dense(256, ReLU) -> Dropout(0.5) -> Dense(n_classes, softmax). With ``cls_from="encoder"`` it uses
``enc4`` only (the Wang et al. baseline the paper improves on). With ``cls_head="gap_crop"`` (not
in the paper) the classifier also takes a second look at the lesion: the input image cropped
around the predicted mask (:class:`LesionCrop`), through a small convolutional encoder whose
pooled features join the concatenation.

Because the encoder downsamples with strided convolutions, each decoder stage concatenates the
encoder map one level *above* the one it came from, and the last stage, at full resolution, has
no encoder map: ``full_res`` decides what it gets.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers, ops

from busi_lib.errors import ConfigError

TASKS = ("multi", "seg", "cls")
BLOCKS = ("residual", "plain")
CLS_FROM = ("456", "encoder")
CLS_HEADS = ("gap", "gap_crop")
FULL_RES = ("stem", "input", "none")
TOTAL_STRIDE = 16


def conv_bn_relu(x, filters: int, *, strides: int = 1, name: str):
    """3x3 convolution (no bias) -> batch norm -> ReLU."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def projection(x, filters: int, *, strides: int, name: str):
    """1x1 projection shortcut with the given stride.

    A stride-2 1x1 convolution is written as ``MaxPooling2D(pool_size=1, strides=2)`` (a pure
    subsampling: a 1x1 window's max is the pixel itself) followed by a stride-1 1x1 convolution.
    The result is exactly the same, but it avoids a heap corruption in TensorFlow 2.21's oneDNN
    float32 gradient of a 1x1 stride-2 convolution on inputs with <= 8 channels
    (found and measured in this project; regression test ``test_projection_stride2_trains``).
    """
    if strides != 1:
        x = layers.MaxPooling2D(pool_size=1, strides=strides, name=f"{name}_subsample")(x)
    return layers.Conv2D(filters, 1, padding="same", use_bias=False,
                         kernel_initializer="he_normal", name=f"{name}_proj")(x)


def residual_unit(x, filters: int, *, strides: int = 1, block: str = "residual", name: str):
    """The paper's residual unit (Fig. 1b, Eq. 1): three [3x3 conv -> BN -> ReLU] plus a shortcut.

    ``y = F(x) + x`` where ``F`` is the three conv-BN-ReLU layers, the first one with ``strides``.
    When the shapes differ (stride or channel count) the shortcut is a 1x1 projection
    (:func:`projection`); the paper does not say. ``block="plain"`` drops the shortcut (ablation).
    """
    if block not in BLOCKS:
        raise ConfigError(f"block={block!r}: expected one of {list(BLOCKS)}")
    y = x
    for i in range(3):
        y = conv_bn_relu(y, filters, strides=strides if i == 0 else 1, name=f"{name}_{i + 1}")
    if block == "plain":
        return y
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = projection(x, filters, strides=strides, name=name)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def build_model(image_size: int = 128, *, in_channels: int = 1,
                filters: Sequence[int] = (32, 64, 128, 256), bridge_filters: int = 512,
                n_classes: int = 2, task: str = "multi", cls_from: str = "456",
                block: str = "residual", full_res: str = "stem", dense_units: int = 256,
                dropout: float = 0.5, cls_head: str = "gap", crop_context: str = "keep",
                net_size: int | None = None, name: str | None = None) -> keras.Model:
    """Build the (multi-task) Residual-U-Net.

    Parameters
    ----------
    image_size : int
        Side of the square input; must be a multiple of the total stride 16.
    in_channels : int
        1 for grey input (default: BUSI is grey), 3 to feed RGB.
    filters : 4 ints
        Filters of encoder units 1-4 (decoder units mirror them). Not given in the paper.
    bridge_filters : int
        Filters of the bridge (level 5).
    n_classes : int
        2 (benign/malignant) or 3 (with normal).
    task : {"multi", "seg", "cls"}
        Outputs: ``{"mask", "label"}``, ``{"mask"}`` or ``{"label"}``. ``"cls"`` keeps the
        encoder, bridge and first decoder stage (all that stage 6 needs) and drops the rest.
    cls_from : {"456", "encoder"}
        Classification features from stages 4, 5 and 6 (paper) or from stage 4 alone.
    block : {"residual", "plain"}
        Residual units or plain triple-conv blocks (ablation).
    full_res : {"stem", "input", "none"}
        What the last decoder stage concatenates at full resolution: a conv stem of the input
        (default), the input itself, or nothing.
    dense_units, dropout : classification head's hidden width and dropout rate.
    cls_head : {"gap", "gap_crop"}
        The paper's pooled features (``"gap"``), or those plus the features of the image cropped
        around the predicted mask (``"gap_crop"``; needs ``task="multi"``).
    crop_context : {"keep", "mask"}
        With ``"gap_crop"``: the crop keeps the lesion's surroundings (``"keep"``) or hides them
        outside a thin rim of the predicted mask (``"mask"``, see :class:`LesionCrop`).
    net_size : int or None
        Side at which the U-Net runs (``None``: ``image_size``). Below ``image_size``, the input
        is resized to it (bilinear), the mask logits are brought back to ``image_size``
        (bilinear), and with ``"gap_crop"`` the lesion crop is sampled from the full-size input
        and resampled to ``net_size``: the classifier's second look sees the lesion with
        ``image_size / net_size`` times the detail that the U-Net sees, at the crop encoder's
        usual cost.

    Returns
    -------
    keras.Model whose outputs are a dict with keys ``"mask"`` (``(B, S, S, 1)`` sigmoid) and/or
    ``"label"`` (``(B, n_classes)`` softmax); both are float32 under a mixed precision policy.
    """
    _check("image_size", image_size, isinstance(image_size, int) and image_size >= 32
           and image_size % TOTAL_STRIDE == 0, f"a multiple of {TOTAL_STRIDE}, at least 32")
    _check("in_channels", in_channels, in_channels in (1, 3), "1 or 3")
    _check("filters", filters, len(filters) == 4 and all(int(f) >= 1 for f in filters),
           "four positive integers")
    _check("bridge_filters", bridge_filters, int(bridge_filters) >= 1, "a positive integer")
    _check("n_classes", n_classes, n_classes in (2, 3), "2 or 3")
    _check("task", task, task in TASKS, f"one of {list(TASKS)}")
    _check("cls_from", cls_from, cls_from in CLS_FROM, f"one of {list(CLS_FROM)}")
    _check("block", block, block in BLOCKS, f"one of {list(BLOCKS)}")
    _check("full_res", full_res, full_res in FULL_RES, f"one of {list(FULL_RES)}")
    _check("dropout", dropout, 0 <= dropout < 1, "a rate in [0, 1)")
    _check("cls_head", cls_head, cls_head in CLS_HEADS, f"one of {list(CLS_HEADS)}")
    _check("crop_context", crop_context, crop_context in ("keep", "mask"), "'keep' or 'mask'")
    if cls_head == "gap_crop" and task != "multi":
        raise ConfigError(f"cls_head='gap_crop' with task={task!r}: expected task='multi' (the "
                          "crop follows the predicted mask)")
    net_size = image_size if net_size is None else net_size
    _check("net_size", net_size, isinstance(net_size, int) and 32 <= net_size <= image_size
           and net_size % TOTAL_STRIDE == 0,
           f"None or a multiple of {TOTAL_STRIDE}, at least 32 and at most image_size "
           f"({image_size})")
    f1, f2, f3, f4 = (int(f) for f in filters)

    inputs = keras.Input((image_size, image_size, in_channels), name="image")
    x = inputs
    if net_size != image_size:
        x = layers.Resizing(net_size, net_size, interpolation="bilinear", name="to_net_size")(x)
    e1 = residual_unit(x, f1, strides=2, block=block, name="enc1")
    e2 = residual_unit(e1, f2, strides=2, block=block, name="enc2")
    e3 = residual_unit(e2, f3, strides=2, block=block, name="enc3")
    e4 = residual_unit(e3, f4, strides=2, block=block, name="enc4")               # stage 4
    b = residual_unit(e4, int(bridge_filters), strides=1, block=block, name="bridge")  # stage 5
    d1 = _up_block(b, e3, f4, block, "dec1")                                         # stage 6
    outputs = {}
    if task in ("multi", "seg"):
        d2 = _up_block(d1, e2, f3, block, "dec2")
        d3 = _up_block(d2, e1, f2, block, "dec3")
        skip = None
        if full_res == "stem":
            skip = conv_bn_relu(x, max(f1 // 2, 4), name="stem")
        elif full_res == "input":
            skip = x
        d4 = _up_block(d3, skip, f1, block, "dec4")
        m = layers.Conv2D(1, 3, padding="same", name="mask_logits")(d4)
        if net_size != image_size:
            m = layers.Resizing(image_size, image_size, interpolation="bilinear",
                                name="mask_logits_to_image_size")(m)
        outputs["mask"] = layers.Activation("sigmoid", dtype="float32", name="mask")(m)
    if task in ("multi", "cls"):
        feats = [e4] if cls_from == "encoder" else [e4, b, d1]
        pooled = [layers.GlobalAveragePooling2D(name=f"gap_{i}")(f) for i, f in enumerate(feats)]
        if cls_head == "gap_crop":
            crop = LesionCrop(mask_context=crop_context == "mask",
                              out_size=None if net_size == image_size else net_size,
                              name="lesion_crop")([inputs, outputs["mask"]])
            for i, nf in enumerate((f1, f2, f3, f4)):
                crop = conv_bn_relu(crop, nf, strides=2, name=f"crop{i + 1}")
            pooled.append(layers.GlobalAveragePooling2D(name="gap_crop")(crop))
        h = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="gap_concat")(pooled)
        h = layers.Dense(dense_units, activation="relu", name="cls_dense")(h)
        h = layers.Dropout(dropout, name="cls_dropout")(h)
        c = layers.Dense(n_classes, name="cls_logits")(h)
        outputs["label"] = layers.Activation("softmax", dtype="float32", name="label")(c)
    return keras.Model(inputs, outputs, name=name or f"resunet_{task}")


@keras.saving.register_keras_serializable(package="busi_lib")
class LesionCrop(layers.Layer):
    r"""The image cropped around a (predicted) lesion mask, resampled to the image's size.

    From the mask probabilities ``m`` (gradient stopped) the crop's centre is their centroid
    :math:`(\bar y, \bar x)` and its half-sides are :math:`2 (1 + margin)\,\sigma_y` and
    :math:`2 (1 + margin)\,\sigma_x` (their standard deviations; a uniform blob of half-side
    ``a`` has :math:`\sigma = a / \sqrt 3`), at least ``min_half`` of the image side. An image
    whose mask sums to under one pixel keeps its whole frame. Bilinear sampling, zero outside.

    With ``mask_context=True`` the surroundings are hidden first: the image is multiplied by the
    mask probabilities dilated by a ``context_px``-pixel max filter, so the crop shows the lesion
    and a thin rim only (a classifier that cannot read the context).

    Inputs ``[image (B, S, S, C), mask (B, S, S, 1)]``; output ``(B, S, S, C)`` float32, or
    ``(B, out_size, out_size, C)`` with ``out_size`` (the crop sampled at ``S``, then resized,
    bilinear).
    """

    def __init__(self, margin: float = 0.25, min_half: float = 0.125,
                 mask_context: bool = False, context_px: int = 7, out_size: int | None = None,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.margin = float(margin)
        self.min_half = float(min_half)
        self.mask_context = bool(mask_context)
        self.context_px = int(context_px)
        self.out_size = None if out_size is None else int(out_size)

    def call(self, inputs):
        image, mask = inputs
        image = ops.cast(image, "float32")
        if self.mask_context:
            soft = ops.stop_gradient(ops.cast(mask, "float32"))
            soft = ops.max_pool(soft, pool_size=self.context_px, strides=1, padding="same")
            image = image * soft
        m = ops.stop_gradient(ops.cast(mask, "float32"))[..., 0]
        h, w = image.shape[1], image.shape[2]
        ys = ops.reshape(ops.arange(h, dtype="float32"), (1, h, 1))
        xs = ops.reshape(ops.arange(w, dtype="float32"), (1, 1, w))
        tot = ops.sum(m, axis=(1, 2))
        den = ops.maximum(tot, 1e-6)
        cy = ops.sum(m * ys, axis=(1, 2)) / den
        cx = ops.sum(m * xs, axis=(1, 2)) / den
        sy = ops.sqrt(ops.sum(m * (ys - cy[:, None, None]) ** 2, axis=(1, 2)) / den)
        sx = ops.sqrt(ops.sum(m * (xs - cx[:, None, None]) ** 2, axis=(1, 2)) / den)
        hy = ops.maximum(2.0 * (1.0 + self.margin) * sy, self.min_half * h)
        hx = ops.maximum(2.0 * (1.0 + self.margin) * sx, self.min_half * w)
        empty = tot < 1.0
        cy = ops.where(empty, h / 2.0, cy)            # the identity transform
        cx = ops.where(empty, w / 2.0, cx)
        hy = ops.where(empty, h / 2.0, hy)
        hx = ops.where(empty, w / 2.0, hx)
        zero = ops.zeros_like(cy)
        # output pixel (x, y) samples the input at (a0 x + a2, b1 y + b2)
        a0, b1 = 2.0 * hx / w, 2.0 * hy / h
        transform = ops.stack([a0, zero, cx - hx, zero, b1, cy - hy, zero, zero], axis=1)
        out = ops.image.affine_transform(image, transform, interpolation="bilinear",
                                         fill_mode="constant", fill_value=0.0,
                                         data_format="channels_last")
        if self.out_size is not None and self.out_size != h:
            out = ops.image.resize(out, (self.out_size, self.out_size), interpolation="bilinear",
                                   data_format="channels_last")
        return out

    def compute_output_shape(self, input_shape):
        if self.out_size is None:
            return input_shape[0]
        b, _, _, c = input_shape[0]
        return (b, self.out_size, self.out_size, c)

    def get_config(self):
        cfg = {**super().get_config(), "margin": self.margin, "min_half": self.min_half,
               "mask_context": self.mask_context, "context_px": self.context_px}
        if self.out_size is not None:          # older saved models have no such key
            cfg["out_size"] = self.out_size
        return cfg


def _up_block(x, skip, filters: int, block: str, name: str):
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    if skip is not None:
        x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    return residual_unit(x, filters, strides=1, block=block, name=name)


def _check(name: str, value, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={value!r}: expected {expected}")


def training_flops_per_image(model: keras.Model) -> int:
    """Analytic FLOPs of one training image (forward + backward ~= 3x forward), counting
    2 FLOPs per multiply-add of every Conv2D and Dense layer; other layers are ignored.
    """
    return 3 * forward_flops_per_image(model)


def forward_flops_per_image(model: keras.Model) -> int:
    """Forward-pass FLOPs of one image: 2 * MACs of Conv2D and Dense layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            out = layer.output.shape  # (None, H, W, C_out)
            k = layer.kernel.shape    # (kh, kw, C_in, C_out)
            total += 2 * out[1] * out[2] * k[0] * k[1] * k[2] * k[3]
        elif isinstance(layer, layers.Dense):
            k = layer.kernel.shape
            total += 2 * k[0] * k[1]
    return int(total)
