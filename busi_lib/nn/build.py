"""Building, compiling and loading a network from a training configuration."""

from __future__ import annotations

from busi_lib.config import DEFAULTS, setting
from busi_lib.nn.baselines import build_baseline
from busi_lib.nn.losses import compile_losses
from busi_lib.nn.model import build_model
from busi_lib.nn.optim import make_optimizer  # importing losses, model and optim also registers

#                                              their Keras classes, which load_saved_model needs


def build_for_config(cfg: dict):
    """``(model, note)``: the paper's network or a baseline, as ``cfg["model"]`` says.

    ``note`` says how pretrained weights were obtained (``None`` for the paper's network).
    """
    n_cls = len(cfg["classes"])
    if cfg["model"] == "resunet":

        return build_model(cfg["image_size"], in_channels=cfg["in_channels"],
                           filters=cfg["filters"], bridge_filters=cfg["bridge_filters"],
                           n_classes=n_cls, task=cfg["task"], cls_from=cfg["cls_from"],
                           block=cfg["block"], full_res=cfg["full_res"],
                           dense_units=cfg["dense_units"], dropout=cfg["dropout"],
                           cls_head=setting(cfg, "cls_head"),
                           crop_context=cfg["crop_context"],
                           net_size=setting(cfg, "net_size")), None

    return build_baseline(cfg["model"], image_size=cfg["image_size"],
                          in_channels=cfg["in_channels"], n_classes=n_cls,
                          pretrained=cfg["pretrained"], dropout=cfg["dropout"],
                          width=setting(cfg, "baseline_width"))


def compile_for_config(model, cfg: dict, class_weights, steps_per_epoch: int,
                       optimizer=None) -> None:
    """Compile with the configuration's losses (Eq. 5), optimiser and schedule (or with the
    given ``optimizer``)."""

    focal = cfg["cls_loss"] == "focal"
    loss, lw = compile_losses(cfg["task"], smooth=cfg["seg_smooth"],
                              gamma=cfg["focal_gamma"] if focal else 0.0,
                              class_weights=class_weights if focal else None,
                              loss_weights=cfg["loss_weights"],
                              seg_loss=setting(cfg, "seg_loss"))
    model.compile(optimizer=optimizer or make_optimizer(cfg, steps_per_epoch), loss=loss,
                  loss_weights=lw)


def load_saved_model(path, compile: bool = False):
    """A ``.keras`` file saved by this project, loaded with ``safe_mode``: the modules whose
    classes it may hold (:class:`~busi_lib.nn.model.LesionCrop`, the losses, the schedule) are
    imported first so that Keras finds them registered."""
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=compile)


def build_float32(cfg: dict):
    """The network of a training configuration (:func:`busi_lib.nn.build.build_for_config`), built
    in float32 whatever the global Keras dtype policy is."""
    import keras

    old = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        return build_for_config({**DEFAULTS, **cfg})[0]   # keys added since: their defaults
    finally:
        keras.mixed_precision.set_dtype_policy(old)
