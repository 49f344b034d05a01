"""Training one network on given arrays: numerics, the resumable epoch loop, and evaluation.

Used by cross-validation (:mod:`busi_lib.experiments.crossval`, one fold) and tuning (:mod:`busi_lib.experiments.tune`,
one trial on an inner split). Nothing here knows about folds or test sets: the caller decides
which images a model is trained on and which it is evaluated on.

Determinism: Keras' global seed is set from the training seed and a key (the fold), TensorFlow
op determinism is on, each epoch's shuffle and augmentation come from ``(seed, key, epoch)``
(:mod:`busi_lib.data.augment`), and the dropout seed generators are reset from the same triple at each
epoch start, so an interrupted and resumed run trains exactly like an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.config import setting
from busi_lib.data.protocols import peer_oversample
from busi_lib.data.augment import (augment_batch, context_swap, epoch_rng, lesion_crop,
                                   trivial_augment)
from busi_lib.errors import ConfigError
from busi_lib.eval.inference import binarize, standardize, targets, to_input
from busi_lib.eval.metrics import (classification_metrics, per_image_segmentation,
                                   segmentation_metrics)
from busi_lib.eval.shape import predicted_descriptors
from busi_lib.nn.build import build_for_config, compile_for_config, load_saved_model
from busi_lib.nn.losses import class_weights_from_labels
from busi_lib.nn.machine import set_determinism

# ----------------------------------------------------------------------------- machine


def _reset_seed_generators(model, seed: int) -> None:
    """Put every layer's random state (dropout) at a value that depends on ``seed`` only."""
    for i, layer in enumerate(model.layers):
        sg = getattr(layer, "seed_generator", None)
        if sg is not None:
            sg.state.assign(np.array([seed % (2**31), i], dtype=sg.state.dtype))


def _epoch_seed(seed: int, key: int, epoch: int) -> int:
    return int(epoch_rng(seed, key, epoch).integers(0, 2**31 - 1))


def training_seed(cfg: dict) -> int:
    """The seed of weights, shuffle, augmentation and dropout (the split has its own)."""
    return cfg["seed"] if cfg.get("train_seed") is None else cfg["train_seed"]


# ----------------------------------------------------------------------------- inputs
def make_dataset(x: np.ndarray, y: dict, batch_size: int):
    """A ``tf.data`` pipeline with autotune off and a fixed ``prefetch(2)``.

    With autotune on, TF 2.21 stalls 11-17 s at the start of about half the epochs while the
    previous iterator's thread pool shuts down (measured in this project). Other backends
    get ``None`` (Keras batches the arrays itself).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(2)
    opts = tf.data.Options()
    opts.autotune.enabled = False
    opts.deterministic = True
    opts.threading.private_threadpool_size = 1
    return ds.with_options(opts)


def epoch_inputs(cfg: dict, images: np.ndarray, masks: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Augmented (``cfg["augment"]`` and its extras) and scaled inputs of one epoch.

    ``images`` are ``uint8`` ``(N, S, S)`` in the order of the epoch. Augmentation works on
    [0, 1] grey images; the per-image normalisation and the channel repeat come after it.
    """
    x = images.astype(np.float32)[..., None] / 255.0
    m = masks
    if cfg["augment"]:
        if cfg["aug_policy"] == "context_swap":    # first, so the rest acts on the composite
            x, m, _ = context_swap(x, m, rng)
        x, m = augment_batch(x, m, rng, rotation=cfg["rotation"],
                             scale=setting(cfg, "aug_scale"),
                             intensity=setting(cfg, "aug_intensity"),
                             noise=setting(cfg, "aug_noise"))
        if cfg["aug_policy"] == "trivial":
            x, m, _ = trivial_augment(x, m, rng)
        elif cfg["aug_policy"] == "lesion_crop":
            x, m, _ = lesion_crop(x, m, rng)
    x = standardize(x, setting(cfg, "normalize"))
    if cfg["in_channels"] == 3:
        x = np.repeat(x, 3, axis=-1)
    return x, m


# ----------------------------------------------------------------------------- model


def atomic_save(model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- training
def fit_model(cfg: dict, images: np.ndarray, masks: np.ndarray, labels: np.ndarray, *,
              key: int, ckpt_dir: Path, chash: str, label: str = "run", verbose: int = 1,
              stop_after_epochs: int | None = None, val: tuple | None = None,
              on_epoch: Callable | None = None):
    """Train a network of ``cfg`` on these arrays, epoch by epoch, resumable from ``ckpt_dir``.

    Call it inside :func:`precision_scope`. Parameters
    ----------
    images, masks, labels : the training images (``uint8`` ``(N, S, S)``), masks and labels
    key : int
        Mixed into every seed with the training seed (the fold index in cross-validation).
    ckpt_dir : folder of the per-epoch checkpoint (``model.keras``, ``state.json``)
    chash : config hash; a checkpoint of another configuration is refused
    label : name shown in progress lines
    stop_after_epochs : stop (checkpoint kept) after this many epochs in this call
    val : ``(images, masks, labels)``, optional
        Early stopping on their loss (``cfg["early_stopping"]`` epochs of patience); the best
        epoch's model is returned.
    on_epoch : callable ``(model, epoch) -> dict``, optional
        Extra numbers for the epoch's history row (e.g. validation Dice and AUC); its time is
        recorded as ``eval_seconds``, apart from the training time.

    Returns
    -------
    ``(model, state)``; ``model`` is ``None`` when stopped on purpose by ``stop_after_epochs``.
    ``state`` holds ``history`` (one row per epoch: losses, lr, seconds, cpu_seconds, extras),
    ``train_seconds``, ``cpu_seconds``, ``epoch``, ``resumed_at``, ``build_note``. When an
    epoch's training loss is not finite (NaN or infinite), training stops there and
    ``state["diverged_at"]`` is that epoch: the model's weights are then unusable, and a
    resumed checkpoint of such a run is not trained further.
    """
    ck = _Checkpoint(ckpt_dir)
    if setting(cfg, "oversample") == "peer":     # the curated peer's oversampling, before all
        take = peer_oversample(labels)
        images, masks, labels = images[take], masks[take], labels[take]
    weights = class_weights_from_labels(labels, len(cfg["classes"]),
                                        normalize=cfg["class_weight_norm"])
    seed = training_seed(cfg)
    set_determinism(seed + key, cfg["deterministic"])
    model, state = _resume_or_build(cfg, ck, chash, weights,
                                    math.ceil(len(images) / cfg["batch_size"]), label, verbose)
    vx = vt = None
    if val is not None and len(val[0]):
        vx = to_input(val[0], cfg["in_channels"], setting(cfg, "normalize"))
        vt = targets(cfg["task"], val[1], val[2])
    epochs_this_call = 0
    while state.epoch < cfg["epochs"] and not state.diverged_at:
        epoch = state.epoch
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs:
            if verbose:
                print(f"[{label}]: stopping after {epochs_this_call} epochs as asked; "
                      f"checkpoint at epoch {epoch} in {ckpt_dir}")
            return None, state.as_dict()
        row = _train_epoch(model, cfg, images, masks, labels, seed, key, epoch, (vx, vt),
                           on_epoch)
        state.add_epoch(row, chash)
        stop = _after_epoch(model, cfg, state, row, ck)
        epochs_this_call += 1
        if verbose:
            print(f"[{label}] epoch {epoch + 1}/{cfg['epochs']} "
                  + " ".join(f"{n}={v:.4g}" for n, v in row.items()
                             if n != "epoch" and isinstance(v, (int, float))), flush=True)
        if state.diverged_at:
            if verbose:
                print(f"[{label}] training diverged: loss {row['loss']} at epoch {epoch + 1}; "
                      "stopped", flush=True)
            break
        if stop:
            break
    if state.stopped_early_at and ck.best.is_file():
        model = load_saved_model(ck.best, compile=True)
    return model, state.as_dict()


@dataclasses.dataclass
class TrainingState:
    """Where a training run stands: written to ``state.json`` after every epoch, read back to
    resume (the same keys as the dictionary :func:`fit_model` returns)."""
    epoch: int = 0                        # epochs done
    history: list[dict] = dataclasses.field(default_factory=list)   # one row per epoch
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0
    best: float | None = None             # best validation loss (early stopping)
    wait: int = 0                         # epochs since it improved
    resumed_at: list[int] = dataclasses.field(default_factory=list)
    build_note: str | None = None
    class_weights: Any = None
    config_hash: str | None = None
    best_epoch: int | None = None
    diverged_at: int | None = None        # the epoch whose training loss was not finite
    stopped_early_at: int | None = None

    #: keys written only once they are set (a state file written before one existed lacks it)
    OPTIONAL = ("config_hash", "best_epoch", "diverged_at", "stopped_early_at")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingState":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self.OPTIONAL or v is not None}

    def add_epoch(self, row: dict, chash: str) -> None:
        self.train_seconds += row["seconds"]
        self.cpu_seconds += row["cpu_seconds"]
        self.history.append(row)
        self.epoch = row["epoch"]
        self.config_hash = chash


@dataclasses.dataclass
class _Checkpoint:
    """The files of a run's checkpoint folder."""
    folder: Path

    @property
    def state(self) -> Path:
        return self.folder / "state.json"

    @property
    def model(self) -> Path:
        return self.folder / "model.keras"

    @property
    def best(self) -> Path:
        return self.folder / "best.keras"


def _resume_or_build(cfg: dict, ck: _Checkpoint, chash: str, weights, steps: int, label: str,
                     verbose: int):
    """``(model, state)``: the checkpoint's when one of this configuration exists (a
    checkpoint of another configuration is refused), else a new network, compiled."""
    if not (ck.state.is_file() and ck.model.is_file()):
        model, note = build_for_config(cfg)
        compile_for_config(model, cfg, weights, steps)
        return model, TrainingState(build_note=note, class_weights=weights)
    saved = json.loads(ck.state.read_text())
    if saved.get("config_hash") != chash:
        raise ConfigError(f"checkpoint {ck.folder} belongs to config {saved.get('config_hash')}"
                          f", not {chash}; delete it to start this run again")
    model = load_saved_model(ck.model, compile=True)
    state = TrainingState.from_dict({"class_weights": weights, **saved})
    state.resumed_at.append(state.epoch)
    bad = [r["epoch"] for r in state.history if not math.isfinite(r.get("loss", 0.0))]
    if bad and not state.diverged_at:   # a checkpoint written before this check
        state.diverged_at = bad[0]
    if verbose:
        print(f"[{label}]: resuming after epoch {state.epoch}")
    return model, state


def _train_epoch(model, cfg: dict, images, masks, labels, seed: int, key: int, epoch: int,
                 val: tuple, on_epoch: Callable | None) -> dict:
    """One epoch: the epoch's order and augmentation from ``(seed, key, epoch)``, one pass of
    ``fit``, validation loss and ``on_epoch``'s numbers; returns the history row."""
    import keras

    t0, c0 = time.time(), time.process_time()
    rng = epoch_rng(seed, key, epoch)
    order = rng.permutation(len(images))
    xe, me = epoch_inputs(cfg, images[order], masks[order], rng)
    _reset_seed_generators(model, _epoch_seed(seed, key, epoch))
    tgt = targets(cfg["task"], me, labels[order])
    ds = make_dataset(xe, tgt, cfg["batch_size"])
    if ds is not None:
        h = model.fit(ds, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
    else:
        h = model.fit(xe, tgt, batch_size=cfg["batch_size"], epochs=epoch + 1,
                      initial_epoch=epoch, shuffle=False, verbose=0)
    row = {"epoch": epoch + 1, **{n: float(v[-1]) for n, v in h.history.items()},
           "lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
    vx, vt = val
    if vx is not None:
        vl = model.evaluate(vx, vt, batch_size=32, verbose=0, return_dict=True)
        row.update({f"val_{n}": float(v) for n, v in vl.items()})
    row["seconds"] = time.time() - t0
    row["cpu_seconds"] = time.process_time() - c0
    if on_epoch is not None:
        t1 = time.time()
        row.update(on_epoch(model, epoch + 1))
        row["eval_seconds"] = time.time() - t1
    return row


def _after_epoch(model, cfg: dict, state: TrainingState, row: dict, ck: _Checkpoint) -> bool:
    """The stop rules after an epoch, with the checkpoint written: the best model so far
    (validation loss), divergence (a training loss that is not finite) and early stopping
    (``cfg["early_stopping"]`` epochs without improvement). True when training should stop
    early."""
    stop = False
    if "val_loss" in row:
        if state.best is None or row["val_loss"] < state.best:
            state.best, state.wait, state.best_epoch = row["val_loss"], 0, row["epoch"]
            atomic_save(model, ck.best)
        else:
            state.wait += 1
            stop = bool(cfg["early_stopping"]) and state.wait >= cfg["early_stopping"]
    atomic_save(model, ck.model)
    records.write_json(ck.state, state.as_dict())
    if not math.isfinite(row.get("loss", 0.0)):
        state.diverged_at = row["epoch"]
        records.write_json(ck.state, state.as_dict())
        return False
    if stop:
        state.stopped_early_at = row["epoch"]
        records.write_json(ck.state, state.as_dict())
    return stop


# ----------------------------------------------------------------------------- evaluation


def evaluate_outputs(cfg: dict, pred: dict, masks: np.ndarray, labels: np.ndarray,
                     class_names, orig_sizes=None) -> tuple[dict, pd.DataFrame, np.ndarray | None]:
    """Metrics, a per-image table and the binary masks from a model's raw outputs.

    Segmentation metrics are over lesion images only (normal images have empty masks). With
    ``orig_sizes`` (rows ``(H, W)``), the table also holds the shape descriptors of each
    predicted mask (``pred_<descriptor>``, :mod:`busi_lib.eval.shape`).
    """

    metrics: dict[str, float] = {}
    labels = np.asarray(labels)
    table = pd.DataFrame({"true_class": [class_names[i] for i in labels]})
    pm = None
    if "mask" in pred:
        pm = binarize(cfg, pred["mask"])
        lesion = np.array([class_names[i] != "normal" for i in labels])
        metrics.update(segmentation_metrics(masks[lesion], pm[lesion]))
        table["dice"] = per_image_segmentation(masks, pm)["DC"]
        if orig_sizes is not None:

            desc = predicted_descriptors(pm, orig_sizes, setting(cfg, "resize"))
            for c in desc.columns:
                table[f"pred_{c}"] = desc[c].to_numpy()
    if "label" in pred:
        mal = list(class_names).index("malignant")
        prob = pred["label"][:, mal]
        y_pred = pred["label"].argmax(1)
        metrics.update(classification_metrics(labels, prob, y_pred, positive=mal))
        table["prob_malignant"] = prob
        table["pred_class"] = [class_names[i] for i in y_pred]
        if len(class_names) == 3:
            for j, c in enumerate(class_names):
                table[f"prob_{c}"] = pred["label"][:, j]
    return metrics, table, pm
