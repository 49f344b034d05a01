"""Optimiser and learning-rate schedule of a configuration (the paper's, or the tuned recipe's).

* ``schedule="step"`` (the paper): Adam at ``lr``, multiplied by ``lr_drop_factor`` every
  ``lr_drop_every`` epochs;
* ``schedule="cosine"``: a linear warm-up from 0 to ``lr`` over ``warmup_epochs``, then a cosine
  decay to 0 at the last epoch (:class:`WarmupCosine`).

``weight_decay > 0`` swaps Adam for AdamW (decoupled weight decay).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from busi_lib.config import setting
from busi_lib.errors import ConfigError

SCHEDULES = ("step", "cosine")


@keras.saving.register_keras_serializable(package="busi_lib")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    r"""Linear warm-up, then cosine decay to 0.

    .. math::

        \eta(t) = \begin{cases} \eta_0 \, t / W & t < W \\
        \tfrac{1}{2} \eta_0 \left(1 + \cos\left(\pi \frac{t - W}{T - W}\right)\right) & W \le t \le T
        \end{cases}

    with ``t`` the optimiser step, ``W`` the warm-up steps and ``T`` the total steps; the rate
    stays 0 after ``T``.

    Parameters
    ----------
    lr : float > 0
        Peak rate :math:`\eta_0`.
    total_steps : int >= 1
    warmup_steps : int in [0, total_steps)
    """

    def __init__(self, lr: float, total_steps: int, warmup_steps: int = 0):
        if not lr > 0:
            raise ConfigError(f"lr={lr!r}: expected a positive number")
        if not (isinstance(total_steps, int) and total_steps >= 1):
            raise ConfigError(f"total_steps={total_steps!r}: expected an integer >= 1")
        if not (isinstance(warmup_steps, int) and 0 <= warmup_steps < total_steps):
            raise ConfigError(f"warmup_steps={warmup_steps!r}: expected an integer in "
                              f"[0, {total_steps})")
        self.lr = float(lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        t = ops.cast(step, "float32")
        w = float(max(self.warmup_steps, 1))
        warm = self.lr * t / w
        frac = ops.clip((t - self.warmup_steps) / float(self.total_steps - self.warmup_steps),
                        0.0, 1.0)
        cos = 0.5 * self.lr * (1.0 + ops.cos(math.pi * frac))
        return ops.where(t < self.warmup_steps, warm, cos)

    def get_config(self):
        return {"lr": self.lr, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def make_schedule(cfg: dict, steps_per_epoch: int):
    """The learning-rate schedule of ``cfg`` for ``steps_per_epoch`` optimiser steps an epoch."""
    kind = setting(cfg, "schedule")
    if kind == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            cfg["lr"], decay_steps=cfg["lr_drop_every"] * steps_per_epoch,
            decay_rate=cfg["lr_drop_factor"], staircase=True)
    if kind == "cosine":
        return WarmupCosine(cfg["lr"], total_steps=cfg["epochs"] * steps_per_epoch,
                            warmup_steps=setting(cfg, "warmup_epochs") * steps_per_epoch)
    raise ConfigError(f"schedule={kind!r}: expected one of {list(SCHEDULES)}")


def make_optimizer(cfg: dict, steps_per_epoch: int):
    """Adam (or AdamW when ``cfg["weight_decay"] > 0``) on the schedule of ``cfg``."""
    schedule = make_schedule(cfg, steps_per_epoch)
    wd = float(setting(cfg, "weight_decay"))
    if wd > 0:
        return keras.optimizers.AdamW(schedule, weight_decay=wd)
    return keras.optimizers.Adam(schedule)
