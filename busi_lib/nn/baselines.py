"""Baselines of Tables 4 and 7: five segmentation networks and six ImageNet classifiers.

Written with the Keras 3 functional API only (no backend-specific code), like
:mod:`busi_lib.nn.model`, so they run on TensorFlow (CPU) and JAX (``KERAS_BACKEND=jax``).

Segmentation baselines (output ``{"mask": (B, S, S, 1) sigmoid}``) are written here from scratch
and trained from random initialisation, so that they differ from the paper's network only in
architecture. They share one plain encoder (:func:`encoder`: [conv-BN-ReLU x2] then 2x2 max
pooling, widths ``width * 2**i``, down to 1/16)::

    unet        U-Net (Ronneberger et al. 2015): decoder of 2x2 up-convolutions, skip concat
    unetpp      UNet++ (Zhou et al. 2018): nested dense skip pathways, no deep supervision
    fpn         FPN (Lin et al. 2017): top-down pathway + lateral 1x1 convs, merged seg head
    deeplabv3p  DeepLabV3+ (Chen et al. 2018): ASPP at output stride 16, 1/4 low-level decoder
    attunet     Attention U-Net (Oktay et al. 2018): U-Net with additive attention gates on the
                skips; stands in for the paper's DAF, which has no public Keras implementation

Classification baselines (output ``{"label": (B, n_classes) softmax}``) are
``keras.applications`` backbones (``include_top=False``) with a GlobalAveragePooling ->
Dropout -> Dense -> softmax head. Inputs in [0, 1] are mapped to what each backbone's
``preprocess_input`` expects with built-in layers (no ``Lambda``, so saved models load with
``safe_mode=True``). ImageNet weights are tried once per backbone and process; without internet
the backbone is built with random weights and the returned note says so.
"""

from __future__ import annotations

import socket

import keras
import numpy as np
from keras import layers

from busi_lib.config import CLS_BASELINES, SEG_BASELINES
from busi_lib.errors import ConfigError

#: Name -> kind ("seg" or "cls") and the reference, for the book's tables.
BASELINE_INFO: dict[str, dict[str, str]] = {
    "unet": {"kind": "seg", "reference": "Ronneberger et al. 2015"},
    "unetpp": {"kind": "seg", "reference": "Zhou et al. 2018"},
    "fpn": {"kind": "seg", "reference": "Lin et al. 2017"},
    "deeplabv3p": {"kind": "seg", "reference": "Chen et al. 2018"},
    "attunet": {"kind": "seg", "reference": "Oktay et al. 2018"},
    "resnet50": {"kind": "cls", "reference": "He et al. 2016"},
    "vgg19": {"kind": "cls", "reference": "Simonyan and Zisserman 2015"},
    "densenet201": {"kind": "cls", "reference": "Huang et al. 2017"},
    "inceptionv3": {"kind": "cls", "reference": "Szegedy et al. 2016"},
    "mobilenet": {"kind": "cls", "reference": "Howard et al. 2017"},
    "inceptionresnetv2": {"kind": "cls", "reference": "Szegedy et al. 2017"},
}

#: keras.applications constructor, ``preprocess_input`` mode, smallest input side it accepts.
APPLICATIONS: dict[str, tuple[str, str, int]] = {
    "resnet50": ("ResNet50", "caffe", 32),
    "vgg19": ("VGG19", "caffe", 32),
    "densenet201": ("DenseNet201", "torch", 32),
    "inceptionv3": ("InceptionV3", "tf", 75),
    "mobilenet": ("MobileNet", "tf", 32),
    "inceptionresnetv2": ("InceptionResNetV2", "tf", 75),
}

#: Socket timeout (s) while trying to download ImageNet weights.
DOWNLOAD_TIMEOUT_S = 15.0
#: Backbones whose ImageNet download failed in this process -> the error's type name.
_IMAGENET_FAILED: dict[str, str] = {}

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def build_baseline(name: str, *, image_size: int = 128, in_channels: int = 1,
                   n_classes: int = 2, pretrained: str | None = "imagenet",
                   dropout: float = 0.5, width: int = 32) -> tuple[keras.Model, str]:
    """Build baseline ``name``; return ``(model, note)``.

    Parameters
    ----------
    name : str
        One of :data:`busi_lib.config.SEG_BASELINES` or :data:`~busi_lib.config.CLS_BASELINES`.
    image_size : int
        Side of the square input. Segmentation baselines need a multiple of 16; classifiers
        resize inputs smaller than their backbone's minimum (75 for the Inceptions, else 32).
    in_channels : int
        1 (grey) or 3. Classifiers repeat a grey channel to RGB.
    n_classes, pretrained, dropout
        Classification only: classes of the softmax head; ``"imagenet"`` or ``None``; dropout
        rate before the last Dense layer.
    width : int
        Segmentation only: filters of the first encoder stage (doubling at each pooling).

    Returns
    -------
    model : keras.Model
        Input ``"image"`` ``(S, S, in_channels)``; outputs ``{"mask"}`` or ``{"label"}``
        (float32 under a mixed precision policy).
    note : str
        How the weights were initialised (and any input resizing), for the book.
    """
    if name in SEG_BASELINES:
        builder = {"unet": unet, "unetpp": unetpp, "fpn": fpn, "deeplabv3p": deeplabv3p,
                   "attunet": attention_unet}[name]
        model = builder(image_size, in_channels=in_channels, width=width)
        return model, (f"random initialisation, first-stage width {width} (segmentation "
                       "baselines are trained from scratch)")
    if name in CLS_BASELINES:
        return classifier(name, image_size=image_size, in_channels=in_channels,
                          n_classes=n_classes, pretrained=pretrained, dropout=dropout)
    raise ConfigError(f"baseline {name!r}: expected one of "
                      f"{list(SEG_BASELINES) + list(CLS_BASELINES)}")


# --------------------------------------------------------------------------- shared blocks


def cbr(x, filters: int, *, name: str, kernel: int = 3, dilation: int = 1):
    """Convolution (stride 1, no bias) -> batch norm -> ReLU."""
    x = layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def double_conv(x, filters: int, *, name: str):
    """The U-Net block: two 3x3 conv-BN-ReLU."""
    return cbr(cbr(x, filters, name=f"{name}_a"), filters, name=f"{name}_b")


def encoder(x, width: int, depth: int = 4, *, name: str = "enc") -> list:
    """Plain encoder: ``depth + 1`` double-conv stages separated by 2x2 max pooling.

    Returns the stage outputs, at strides ``1, 2, ..., 2**depth`` with ``width * 2**i`` filters.
    """
    feats = []
    for i in range(depth + 1):
        if i:
            x = layers.MaxPooling2D(2, name=f"{name}{i}_pool")(x)
        x = double_conv(x, width * 2**i, name=f"{name}{i}")
        feats.append(x)
    return feats


def up_conv(x, filters: int, *, name: str):
    """2x2 transposed convolution with stride 2 (U-Net's "up-convolution")."""
    return layers.Conv2DTranspose(filters, 2, strides=2, kernel_initializer="he_normal",
                                  name=f"{name}_upconv")(x)


def attention_gate(x, g, *, name: str):
    """Additive attention gate (Oktay et al. 2018, Fig. 2) on skip ``x``, gated by ``g``.

    ``g`` is one level coarser than ``x``. ``alpha = sigmoid(psi(relu(theta(x) + phi(g))))``,
    where ``theta`` is a 2x2 stride-2 conv (as in the authors' code; it brings ``x`` to ``g``'s
    grid), ``phi`` and ``psi`` are 1x1 convs; ``alpha`` is upsampled back (bilinear) and the
    output ``W(alpha * x)`` is a 1x1 conv + BN.
    """
    inter = max(x.shape[-1] // 2, 1)
    theta = layers.Conv2D(inter, 2, strides=2, use_bias=False, name=f"{name}_theta")(x)
    phi = layers.Conv2D(inter, 1, name=f"{name}_phi")(g)
    f = layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    alpha = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(f)
    alpha = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_alpha_up")(alpha)
    y = layers.Multiply(name=f"{name}_gate")([x, alpha])
    y = layers.Conv2D(x.shape[-1], 1, use_bias=False, name=f"{name}_w")(y)
    return layers.BatchNormalization(name=f"{name}_w_bn")(y)


def aspp_rates(feature_size: int, rates=(6, 12, 18), reference: int = 32) -> tuple[int, ...]:
    """ASPP dilation rates for a ``feature_size``-pixel map at output stride 16.

    DeepLab's rates (6, 12, 18) are meant for a 513-px crop, whose 1/16 map is ~32 px; on a
    smaller map they are scaled by ``feature_size / reference``, rounded half up, at least 1
    and strictly increasing (128 px input -> 8 px map -> (2, 3, 5)). The 1x1 branch is rate 1.
    """
    out: list[int] = []
    for r in rates:
        s = max(1, int(r * feature_size / reference + 0.5))
        out.append(max(s, out[-1] + 1) if out else s)
    return tuple(out)


def aspp(x, filters: int, rates, *, name: str = "aspp"):
    """Atrous spatial pyramid pooling: a 1x1 branch, one 3x3 branch per rate and image pooling,
    concatenated and projected by a 1x1 conv-BN-ReLU."""
    size = x.shape[1]
    branches = [cbr(x, filters, kernel=1, name=f"{name}_1x1")]
    branches += [cbr(x, filters, dilation=r, name=f"{name}_rate{r}") for r in rates]
    p = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    p = cbr(p, filters, kernel=1, name=f"{name}_pool")
    branches.append(layers.UpSampling2D(size, name=f"{name}_pool_up")(p))
    x = layers.Concatenate(name=f"{name}_concat")(branches)
    return cbr(x, filters, kernel=1, name=f"{name}_proj")


def _seg_input(image_size: int, in_channels: int, width: int, depth: int = 4):
    _check("image_size", image_size, isinstance(image_size, int) and image_size >= 16
           and image_size % 16 == 0 and image_size % 2**depth == 0,
           f"a positive multiple of {max(16, 2**depth)}")
    _check("in_channels", in_channels, in_channels in (1, 3), "1 or 3")
    _check("width", width, isinstance(width, int) and width >= 1, "a positive integer")
    return keras.Input((image_size, image_size, in_channels), name="image")


def _seg_model(inputs, x, name: str, upsample: int = 1) -> keras.Model:
    """1x1 conv to one logit, bilinear upsampling by ``upsample``, sigmoid named ``"mask"``."""
    m = layers.Conv2D(1, 1, name="mask_logits")(x)
    if upsample > 1:
        m = layers.UpSampling2D(upsample, interpolation="bilinear", name="mask_upsample")(m)
    return keras.Model(inputs, {"mask": layers.Activation("sigmoid", dtype="float32",
                                                          name="mask")(m)}, name=name)


def _check(name: str, value, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={value!r}: expected {expected}")


# --------------------------------------------------------------------------- segmentation


def unet(image_size: int = 128, *, in_channels: int = 1, width: int = 32,
         depth: int = 4) -> keras.Model:
    """U-Net (Ronneberger et al. 2015): ``depth`` poolings, widths ``width * 2**i``."""
    return _unet(image_size, in_channels, width, depth, attention=False, name="unet")


def attention_unet(image_size: int = 128, *, in_channels: int = 1, width: int = 32,
                   depth: int = 4) -> keras.Model:
    """Attention U-Net (Oktay et al. 2018): U-Net whose skips pass :func:`attention_gate`,
    gated by the decoder feature one level below."""
    return _unet(image_size, in_channels, width, depth, attention=True, name="attunet")


def _unet(image_size, in_channels, width, depth, *, attention: bool, name: str):
    inputs = _seg_input(image_size, in_channels, width, depth)
    feats = encoder(inputs, width, depth)
    x = feats[-1]
    for i in reversed(range(depth)):
        skip = attention_gate(feats[i], x, name=f"att{i}") if attention else feats[i]
        x = up_conv(x, width * 2**i, name=f"dec{i}")
        x = layers.Concatenate(name=f"dec{i}_concat")([x, skip])
        x = double_conv(x, width * 2**i, name=f"dec{i}")
    return _seg_model(inputs, x, name)


def unetpp(image_size: int = 128, *, in_channels: int = 1, width: int = 32,
           depth: int = 4) -> keras.Model:
    """UNet++ (Zhou et al. 2018) without deep supervision.

    Node ``X[i, j]`` (level ``i``, ``j``-th node along the skip pathway) is a double conv of
    the concatenation of ``X[i, 0..j-1]`` and the up-convolved ``X[i+1, j-1]``; ``X[i, 0]``
    is the encoder; the mask is predicted from ``X[0, depth]``.
    """
    inputs = _seg_input(image_size, in_channels, width, depth)
    X = {(i, 0): f for i, f in enumerate(encoder(inputs, width, depth, name="x"))}
    for j in range(1, depth + 1):
        for i in range(depth + 1 - j):
            f = width * 2**i
            up = up_conv(X[i + 1, j - 1], f, name=f"x{i}_{j}")
            cat = layers.Concatenate(name=f"x{i}_{j}_concat")([X[i, k] for k in range(j)] + [up])
            X[i, j] = double_conv(cat, f, name=f"x{i}_{j}")
    return _seg_model(inputs, X[0, depth], "unetpp")


def fpn(image_size: int = 128, *, in_channels: int = 1, width: int = 32) -> keras.Model:
    """FPN (Lin et al. 2017) with a semantic-segmentation head (Kirillov et al. 2019 style).

    Pyramid on the encoder stages at strides 2, 4, 8, 16 (``4 * width`` channels): lateral
    1x1 convs, a nearest-neighbour top-down pathway added to them, and a 3x3 conv on each
    merged map. Each pyramid level then gets a conv-BN-ReLU (``2 * width``) and is upsampled
    (bilinear) to stride 2; the levels are summed, predicted by a 1x1 conv and upsampled x2.
    """
    inputs = _seg_input(image_size, in_channels, width)
    c = encoder(inputs, width, 4)[1:]                       # strides 2, 4, 8, 16
    pyr, seg = 4 * width, 2 * width
    p = layers.Conv2D(pyr, 1, name="fpn_lat4")(c[-1])
    merged = [p]
    for k in (3, 2, 1):
        lat = layers.Conv2D(pyr, 1, name=f"fpn_lat{k}")(c[k - 1])
        top = layers.UpSampling2D(2, name=f"fpn_top{k}")(merged[0])
        merged.insert(0, layers.Add(name=f"fpn_add{k}")([top, lat]))
    heads = []
    for k, m in enumerate(merged, start=1):                 # level k at stride 2**k
        m = layers.Conv2D(pyr, 3, padding="same", name=f"fpn_p{k}")(m)
        h = cbr(m, seg, name=f"fpn_head{k}")
        if k > 1:
            h = layers.UpSampling2D(2 ** (k - 1), interpolation="bilinear",
                                    name=f"fpn_head{k}_up")(h)
        heads.append(h)
    x = layers.Add(name="fpn_merge")(heads)
    return _seg_model(inputs, x, "fpn", upsample=2)


def deeplabv3p(image_size: int = 128, *, in_channels: int = 1, width: int = 32,
               rates=None) -> keras.Model:
    """DeepLabV3+ (Chen et al. 2018) on the plain encoder (output stride 16).

    ASPP (``8 * width`` filters; rates from :func:`aspp_rates` unless given) on the 1/16
    stage; its output, upsampled x4 (bilinear), is concatenated with the 1/4 stage reduced to
    ``1.5 * width`` channels by a 1x1 conv (48 at width 32, as in the paper), refined by two
    3x3 conv-BN-ReLU, predicted by a 1x1 conv and upsampled x4.
    """
    inputs = _seg_input(image_size, in_channels, width)
    feats = encoder(inputs, width, 4)
    high, low = feats[4], feats[2]
    rates = tuple(rates) if rates is not None else aspp_rates(high.shape[1])
    x = aspp(high, 8 * width, rates)
    x = layers.UpSampling2D(4, interpolation="bilinear", name="aspp_up")(x)
    low = cbr(low, max(3 * width // 2, 1), kernel=1, name="low_proj")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = double_conv(x, 8 * width, name="decoder")
    return _seg_model(inputs, x, "deeplabv3p", upsample=4)


# --------------------------------------------------------------------------- classification


def classifier(name: str, *, image_size: int = 128, in_channels: int = 3, n_classes: int = 2,
               pretrained: str | None = "imagenet", dropout: float = 0.5
               ) -> tuple[keras.Model, str]:
    """A ``keras.applications`` backbone with a GAP -> Dropout -> Dense -> softmax head.

    The input (floats in [0, 1]) is resized up to the backbone's minimum side if smaller,
    repeated to 3 channels if grey and mapped by :func:`imagenet_preprocessing`. Returns
    ``(model, note)`` as :func:`build_baseline`.
    """
    _check("name", name, name in APPLICATIONS, f"one of {list(APPLICATIONS)}")
    _check("image_size", image_size, isinstance(image_size, int) and image_size >= 1,
           "a positive integer")
    _check("in_channels", in_channels, in_channels in (1, 3), "1 or 3")
    _check("n_classes", n_classes, isinstance(n_classes, int) and n_classes >= 2,
           "an integer >= 2")
    _check("pretrained", pretrained, pretrained in ("imagenet", None), "'imagenet' or None")
    _check("dropout", dropout, 0 <= dropout < 1, "a rate in [0, 1)")
    app, mode, min_size = APPLICATIONS[name]

    inputs = keras.Input((image_size, image_size, in_channels), name="image")
    x, size, notes = inputs, image_size, []
    if image_size < min_size:
        x = layers.Resizing(min_size, min_size, dtype="float32", name="resize")(x)
        size = min_size
        notes.append(f"input resized from {image_size} to {min_size} px "
                     f"({app} needs at least {min_size})")
    x = imagenet_preprocessing(x, mode)
    backbone, weights_note = _backbone(name, size, pretrained)
    x = backbone(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="cls_dropout")(x)
    x = layers.Dense(n_classes, name="cls_logits")(x)
    label = layers.Activation("softmax", dtype="float32", name="label")(x)
    return keras.Model(inputs, {"label": label}, name=f"{name}_cls"), "; ".join(
        [weights_note] + notes)


def imagenet_preprocessing(x, mode: str):
    """Map images in [0, 1] (1 or 3 channels) to what ``preprocess_input`` gives for
    ``255 * x`` in mode ``"tf"`` ([-1, 1]), ``"torch"`` (ImageNet mean/std) or ``"caffe"``
    (RGB -> BGR, minus the ImageNet BGR mean).

    Built-in layers only, in float32: a grey channel is repeated by ``Concatenate``; the
    caffe channel swap of a 3-channel input is a frozen 1x1 convolution (stride 1).
    """
    _check("mode", mode, mode in ("tf", "torch", "caffe"), "'tf', 'torch' or 'caffe'")
    if x.shape[-1] == 1:
        x = layers.Concatenate(dtype="float32", name="to_rgb")([x, x, x])
    elif mode == "caffe":
        swap = layers.Conv2D(3, 1, use_bias=False, trainable=False, dtype="float32",
                             name="rgb_to_bgr")
        x = swap(x)
        swap.set_weights([np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3)])
    if mode == "tf":
        scale, offset = 2.0, -1.0
    elif mode == "torch":
        scale = [1.0 / s for s in _TORCH_STD]
        offset = [-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD)]
    else:
        scale, offset = 255.0, [-m for m in _CAFFE_MEAN_BGR]
    return layers.Rescaling(scale, offset, dtype="float32", name="imagenet_scale")(x)


def _backbone(name: str, size: int, pretrained: str | None) -> tuple[keras.Model, str]:
    """``(backbone, note)``: ImageNet weights if asked and downloadable, else random ones.

    A failed download is remembered in :data:`_IMAGENET_FAILED`, so it is tried once per
    backbone and process; the socket timeout is lowered meanwhile so it fails fast.
    """
    constructor = getattr(keras.applications, APPLICATIONS[name][0])
    kwargs = dict(include_top=False, input_shape=(size, size, 3))
    if pretrained is None:
        return constructor(weights=None, **kwargs), "random initialisation (pretrained=None)"
    if name not in _IMAGENET_FAILED:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            return constructor(weights="imagenet", **kwargs), "ImageNet weights loaded"
        except Exception as e:  # noqa: BLE001 - any failure falls back to random weights
            _IMAGENET_FAILED[name] = _error_type(e)
        finally:
            socket.setdefaulttimeout(old)
    return constructor(weights=None, **kwargs), (
        f"ImageNet weights could not be downloaded ({_IMAGENET_FAILED[name]}); "
        "trained from random initialisation")


def _error_type(exc: BaseException) -> str:
    """Name of the first specific exception type in ``exc``'s chain (Keras wraps a
    ``URLError`` in a bare ``Exception``)."""
    e: BaseException | None = exc
    while e is not None:
        if type(e) is not Exception:
            return type(e).__name__
        e = e.__cause__ or e.__context__
    return type(exc).__name__
