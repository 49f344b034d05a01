"""Losses of the paper, written with ``keras.ops`` (backend-neutral).

* :class:`DiceLoss`, Eq. 2 (smoothed Dice loss); :class:`DiceBCELoss`, the Dice loss plus the
  pixel-wise binary cross-entropy (not in the paper; a common, better-conditioned choice);
* :class:`FocalLoss`, Eq. 3-4 (class-weighted focal loss, gamma = 2);
* Eq. 5, ``Global = Seg + Cls``, is the sum that ``model.compile(loss={...}, loss_weights={...})``
  computes; :func:`compile_losses` builds those dicts.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from busi_lib.errors import ConfigError

EPS = 1e-7


@keras.saving.register_keras_serializable(package="busi_lib")
class DiceLoss(keras.losses.Loss):
    r"""Smoothed Dice loss, per image, averaged over the batch (Eq. 2).

    .. math::

        L_\mathrm{Dice}(P, Y) = 1 - \frac{2 \sum_i p_i y_i + s}{\sum_i p_i + \sum_i y_i + s}

    where the sums run over the pixels of one image, ``p`` are predicted probabilities,
    ``y`` the binary mask and ``s`` the smoothing term (1 by default, as in the paper). The
    smoothing makes the loss 0, not undefined, for an empty mask predicted empty.

    Parameters
    ----------
    smooth : float, >= 0
        The smoothing term ``s``.
    """

    def __init__(self, smooth: float = 1.0, name: str = "dice_loss", **kwargs):
        if smooth < 0:
            raise ConfigError(f"smooth={smooth!r}: expected a number >= 0")
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        axes = tuple(range(1, len(y_pred.shape)))
        inter = ops.sum(y_true * y_pred, axis=axes)
        denom = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
        return 1.0 - (2.0 * inter + self.smooth) / (denom + self.smooth)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="busi_lib")
class DiceBCELoss(DiceLoss):
    r"""Dice loss plus mean pixel binary cross-entropy, per image.

    .. math::

        L(P, Y) = L_\mathrm{Dice}(P, Y) - \frac{1}{n} \sum_i \left[ y_i \log p_i +
        (1 - y_i) \log (1 - p_i) \right]

    with ``p`` clipped to ``[eps, 1 - eps]`` (eps = 1e-7) inside the logarithms and ``n`` the
    number of pixels. The cross-entropy gives every pixel a gradient even when the Dice term is
    flat (an empty or a nearly perfect prediction).
    """

    def __init__(self, smooth: float = 1.0, name: str = "dice_bce_loss", **kwargs):
        super().__init__(smooth=smooth, name=name, **kwargs)

    def call(self, y_true, y_pred):
        dice = super().call(y_true, y_pred)
        p = ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0 - EPS)
        y = ops.cast(y_true, "float32")
        axes = tuple(range(1, len(p.shape)))
        bce = -ops.mean(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p), axis=axes)
        return dice + bce


@keras.saving.register_keras_serializable(package="busi_lib")
class FocalLoss(keras.losses.Loss):
    r"""Class-weighted focal loss on softmax probabilities (Eq. 3-4), per sample.

    .. math::

        L_\mathrm{focal} = - \sum_c w_c \, y_c \, (1 - p_c)^\gamma \log p_c

    with ``y`` the one-hot label (given here as an integer class index), ``p`` the softmax
    output clipped to ``[eps, 1 - eps]`` (eps = 1e-7), ``gamma`` the focusing parameter (2 in the
    paper) and ``w_c`` the class weights (the paper: ``1 / N_c``, see
    :func:`class_weights_from_labels`). ``gamma = 0`` with no weights is plain cross-entropy.

    Parameters
    ----------
    gamma : float, >= 0
    class_weights : sequence of float, optional
        One weight per class; ``None`` means all 1.
    """

    def __init__(self, gamma: float = 2.0, class_weights: Sequence[float] | None = None,
                 name: str = "focal_loss", **kwargs):
        if gamma < 0:
            raise ConfigError(f"gamma={gamma!r}: expected a number >= 0")
        if class_weights is not None:
            class_weights = [float(w) for w in class_weights]
            if any(w < 0 for w in class_weights) or not class_weights:
                raise ConfigError(f"class_weights={class_weights!r}: expected non-negative numbers")
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)
        self.class_weights = class_weights

    def call(self, y_true, y_pred):
        y_pred = ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0 - EPS)
        n_classes = y_pred.shape[-1]
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        onehot = ops.one_hot(y_true, n_classes, dtype="float32")
        ce = -onehot * ops.log(y_pred)
        loss = ops.power(1.0 - y_pred, self.gamma) * ce
        if self.class_weights is not None:
            if len(self.class_weights) != n_classes:
                raise ConfigError(f"class_weights has {len(self.class_weights)} entries for "
                                  f"{n_classes} classes")
            loss = loss * ops.convert_to_tensor(self.class_weights, dtype="float32")
        return ops.sum(loss, axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "class_weights": self.class_weights}


def class_weights_from_labels(labels: Sequence[int], n_classes: int, *,
                              normalize: str = "mean1") -> list[float]:
    r"""Inverse-frequency class weights ``w_c \propto 1 / N_c`` from a training fold's labels.

    Parameters
    ----------
    normalize : {"mean1", "raw"}
        ``"raw"``: exactly ``1 / N_c`` as the paper writes (about 1/350 and 1/170 on a BUSI
        training fold, which shrinks the classification term of Eq. 5 to well under 1% of the
        Dice term). ``"mean1"`` (default): the same ratios rescaled so that the weights average
        1, keeping Seg and Cls on comparable scales.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    if len(counts) != n_classes or (counts == 0).any():
        raise ConfigError(f"class counts {counts.tolist()} for n_classes={n_classes}: every "
                          "class needs at least one training image")
    w = 1.0 / counts
    if normalize == "mean1":
        w = w / w.mean()
    elif normalize != "raw":
        raise ConfigError(f"normalize={normalize!r}: expected 'mean1' or 'raw'")
    return [float(x) for x in w]


#: The segmentation losses by name (``cfg["seg_loss"]``; ``config.CHOICES`` lists the same names,
#: checked by ``tests/test_losses.py``).
SEG_LOSSES = {"dice": DiceLoss, "dice_bce": DiceBCELoss}
#: The classification losses by name (``cfg["cls_loss"]``): the class-weighted focal loss, and
#: plain cross-entropy (the focal loss with gamma 0 and no class weights).
CLS_LOSSES = {"focal": FocalLoss, "ce": FocalLoss}


def compile_losses(task: str, *, smooth: float = 1.0, gamma: float = 2.0,
                   class_weights: Sequence[float] | None = None,
                   loss_weights: Sequence[float] = (1.0, 1.0), seg_loss: str = "dice"):
    """``(loss, loss_weights)`` dicts for ``model.compile`` (Eq. 5: weighted sum Seg + Cls).

    ``seg_loss`` is ``"dice"`` (:class:`DiceLoss`, the paper) or ``"dice_bce"``
    (:class:`DiceBCELoss`).
    """
    if seg_loss not in SEG_LOSSES:
        raise ConfigError(f"seg_loss={seg_loss!r}: expected one of {list(SEG_LOSSES)}")
    loss, weights = {}, {}
    if task in ("multi", "seg"):
        seg = SEG_LOSSES[seg_loss](smooth)
        loss["mask"], weights["mask"] = seg, float(loss_weights[0])
    if task in ("multi", "cls"):
        loss["label"] = FocalLoss(gamma, class_weights)
        weights["label"] = float(loss_weights[1])
    if not loss:
        raise ConfigError(f"task={task!r}: expected 'multi', 'seg' or 'cls'")
    return loss, weights
