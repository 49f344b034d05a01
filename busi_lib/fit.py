"""Training one network on given arrays: numerics, the resumable epoch loop, and evaluation.

Used by cross-validation (:mod:`busi_lib.train`, one fold) and tuning (:mod:`busi_lib.tune`,
one trial on an inner split). Nothing here knows about folds or test sets: the caller decides
which images a model is trained on and which it is evaluated on.

Determinism: Keras' global seed is set from the training seed and a key (the fold), TensorFlow
op determinism is on, each epoch's shuffle and augmentation come from ``(seed, key, epoch)``
(:mod:`busi_lib.augment`), and the dropout seed generators are reset from the same triple at each
epoch start, so an interrupted and resumed run trains exactly like an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import records
from .augment import augment_batch, epoch_rng
from .errors import ConfigError
from .inference import postprocess_masks, predict, standardize, targets, to_input


# ----------------------------------------------------------------------------- machine
def cpu_supports_bf16() -> bool:
    """True when the CPU advertises native bfloat16 (AVX512_BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(precision: str | None = None) -> dict:
    """What a record says about the machine: CPU, cores, bf16 support, backend, GPU."""
    import keras

    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_bf16": cpu_supports_bf16(),
            "backend": keras.backend.backend(), "gpu": None}
    if precision is not None:
        info["precision"] = precision
    if info["backend"] == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        info["gpu"] = getattr(gpus[0], "device_kind", "gpu") if gpus else None
    return info


def resolve_precision(precision: str) -> str:
    """``"auto"`` -> ``"mixed_bfloat16"`` on a bf16-capable CPU or any GPU, else ``"float32"``."""
    if precision != "auto":
        return precision
    import keras

    if keras.backend.backend() == "jax":
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            return "mixed_bfloat16"
    return "mixed_bfloat16" if cpu_supports_bf16() else "float32"


@contextlib.contextmanager
def precision_scope(precision: str):
    """Set Keras' global dtype policy for the duration of a ``with`` block."""
    import keras

    keras.mixed_precision.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def set_determinism(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend; turn on TensorFlow op determinism."""
    import keras

    keras.utils.set_random_seed(int(seed))
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


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
    previous iterator's thread pool shuts down (``TOOLCHAIN_NOTES.md``, trap 2). Other backends
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
        x, m = augment_batch(x, m, rng, rotation=cfg["rotation"],
                             scale=cfg.get("aug_scale", 0.0),
                             intensity=cfg.get("aug_intensity", False),
                             noise=cfg.get("aug_noise", False))
        if cfg["aug_policy"] == "trivial":
            from .augment import trivial_augment   # needs albumentations and usaugment

            x, m, _ = trivial_augment(x, m, rng)
    x = standardize(x, cfg.get("normalize", "none"))
    if cfg["in_channels"] == 3:
        x = np.repeat(x, 3, axis=-1)
    return x, m


# ----------------------------------------------------------------------------- model
def build_for_config(cfg: dict):
    """``(model, note)``: the paper's network or a baseline, as ``cfg["model"]`` says.

    ``note`` says how pretrained weights were obtained (``None`` for the paper's network).
    """
    n_cls = len(cfg["classes"])
    if cfg["model"] == "resunet":
        from .model import build_model

        return build_model(cfg["image_size"], in_channels=cfg["in_channels"],
                           filters=cfg["filters"], bridge_filters=cfg["bridge_filters"],
                           n_classes=n_cls, task=cfg["task"], cls_from=cfg["cls_from"],
                           block=cfg["block"], full_res=cfg["full_res"],
                           dense_units=cfg["dense_units"], dropout=cfg["dropout"],
                           cls_head=cfg.get("cls_head", "gap"),
                           crop_context=cfg["crop_context"]), None
    from .baselines import build_baseline

    return build_baseline(cfg["model"], image_size=cfg["image_size"],
                          in_channels=cfg["in_channels"], n_classes=n_cls,
                          pretrained=cfg["pretrained"], dropout=cfg["dropout"],
                          width=cfg.get("baseline_width", 32))


def compile_for_config(model, cfg: dict, class_weights, steps_per_epoch: int,
                       optimizer=None) -> None:
    """Compile with the configuration's losses (Eq. 5), optimiser and schedule (or with the
    given ``optimizer``)."""
    from .losses import compile_losses
    from .optim import make_optimizer

    focal = cfg["cls_loss"] == "focal"
    loss, lw = compile_losses(cfg["task"], smooth=cfg["seg_smooth"],
                              gamma=cfg["focal_gamma"] if focal else 0.0,
                              class_weights=class_weights if focal else None,
                              loss_weights=cfg["loss_weights"],
                              seg_loss=cfg.get("seg_loss", "dice"))
    model.compile(optimizer=optimizer or make_optimizer(cfg, steps_per_epoch), loss=loss,
                  loss_weights=lw)


def load_saved_model(path, compile: bool = False):
    """A ``.keras`` file saved by this project, loaded with ``safe_mode``: the modules whose
    classes it may hold (:class:`~busi_lib.model.LesionCrop`, the losses, the schedule) are
    imported first so that Keras finds them registered."""
    import keras

    from . import losses, model, optim  # noqa: F401  (registers the custom classes)

    return keras.saving.load_model(path, safe_mode=True, compile=compile)


def _atomic_save(model, path: Path) -> None:
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
    import keras

    from .losses import class_weights_from_labels

    state_path, model_path, best_path = (ckpt_dir / "state.json", ckpt_dir / "model.keras",
                                         ckpt_dir / "best.keras")
    task = cfg["task"]
    weights = class_weights_from_labels(labels, len(cfg["classes"]),
                                        normalize=cfg["class_weight_norm"])
    steps = math.ceil(len(images) / cfg["batch_size"])
    seed = training_seed(cfg)
    set_determinism(seed + key, cfg["deterministic"])
    state = {"epoch": 0, "history": [], "train_seconds": 0.0, "cpu_seconds": 0.0, "best": None,
             "wait": 0, "resumed_at": [], "build_note": None, "class_weights": weights}
    if state_path.is_file() and model_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("config_hash") != chash:
            raise ConfigError(f"checkpoint {ckpt_dir} belongs to config {state.get('config_hash')}"
                              f", not {chash}; delete it to start this run again")
        model = load_saved_model(model_path, compile=True)
        state["resumed_at"].append(state["epoch"])
        state.setdefault("cpu_seconds", 0.0)
        state.setdefault("class_weights", weights)
        bad = [r["epoch"] for r in state["history"] if not math.isfinite(r.get("loss", 0.0))]
        if bad and not state.get("diverged_at"):   # a checkpoint written before this check
            state["diverged_at"] = bad[0]
        if verbose:
            print(f"[{label}]: resuming after epoch {state['epoch']}")
    else:
        model, state["build_note"] = build_for_config(cfg)
        compile_for_config(model, cfg, weights, steps)
    vx = vt = None
    if val is not None and len(val[0]):
        vx = to_input(val[0], cfg["in_channels"], cfg.get("normalize", "none"))
        vt = targets(task, val[1], val[2])
    epochs_this_call = 0
    while state["epoch"] < cfg["epochs"] and not state.get("diverged_at"):
        epoch = state["epoch"]
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs:
            if verbose:
                print(f"[{label}]: stopping after {epochs_this_call} epochs as asked; "
                      f"checkpoint at epoch {epoch} in {ckpt_dir}")
            return None, state
        t0, c0 = time.time(), time.process_time()
        rng = epoch_rng(seed, key, epoch)
        order = rng.permutation(len(images))
        xe, me = epoch_inputs(cfg, images[order], masks[order], rng)
        _reset_seed_generators(model, _epoch_seed(seed, key, epoch))
        tgt = targets(task, me, labels[order])
        ds = make_dataset(xe, tgt, cfg["batch_size"])
        if ds is not None:
            h = model.fit(ds, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0)
        else:
            h = model.fit(xe, tgt, batch_size=cfg["batch_size"], epochs=epoch + 1,
                          initial_epoch=epoch, shuffle=False, verbose=0)
        row = {"epoch": epoch + 1, **{n: float(v[-1]) for n, v in h.history.items()},
               "lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
        if vx is not None:
            vl = model.evaluate(vx, vt, batch_size=32, verbose=0, return_dict=True)
            row.update({f"val_{n}": float(v) for n, v in vl.items()})
        row["seconds"] = time.time() - t0
        row["cpu_seconds"] = time.process_time() - c0
        if on_epoch is not None:
            t1 = time.time()
            row.update(on_epoch(model, epoch + 1))
            row["eval_seconds"] = time.time() - t1
        state["train_seconds"] += row["seconds"]
        state["cpu_seconds"] += row["cpu_seconds"]
        state["history"].append(row)
        state["epoch"] = epoch + 1
        state["config_hash"] = chash
        stop = False
        if vx is not None:
            if state["best"] is None or row["val_loss"] < state["best"]:
                state["best"], state["wait"], state["best_epoch"] = row["val_loss"], 0, epoch + 1
                _atomic_save(model, best_path)
            else:
                state["wait"] += 1
                stop = state["wait"] >= cfg["early_stopping"]
        _atomic_save(model, model_path)
        records.write_json(state_path, state)
        epochs_this_call += 1
        if verbose:
            print(f"[{label}] epoch {epoch + 1}/{cfg['epochs']} "
                  + " ".join(f"{n}={v:.4g}" for n, v in row.items()
                             if n != "epoch" and isinstance(v, (int, float))), flush=True)
        if not math.isfinite(row.get("loss", 0.0)):
            state["diverged_at"] = epoch + 1
            records.write_json(state_path, state)
            if verbose:
                print(f"[{label}] training diverged: loss {row['loss']} at epoch {epoch + 1}; "
                      "stopped", flush=True)
            break
        if stop:
            state["stopped_early_at"] = epoch + 1
            records.write_json(state_path, state)
            break
    if state.get("stopped_early_at") and best_path.is_file():
        model = load_saved_model(best_path, compile=True)
    return model, state


# ----------------------------------------------------------------------------- evaluation
def predict_arrays(model, cfg: dict, images: np.ndarray) -> dict[str, np.ndarray]:
    """Raw outputs on ``uint8`` images ``(N, S, S)`` with the configuration's input scaling and
    test-time augmentation (``cfg["tta"]``)."""
    return predict(model, to_input(images, cfg["in_channels"], cfg.get("normalize", "none")),
                   tta=cfg.get("tta", False))


def binarize(cfg: dict, mask_prob: np.ndarray) -> np.ndarray:
    """Binary masks from mask probabilities with the configuration's threshold and
    post-processing (``cfg["mask_threshold"]``, ``cfg["postprocess"]``)."""
    both = cfg.get("postprocess", "none") == "largest_fill"
    return postprocess_masks(mask_prob, cfg.get("mask_threshold", 0.5), largest=both,
                             fill_holes=both)


def evaluate_outputs(cfg: dict, pred: dict, masks: np.ndarray, labels: np.ndarray,
                     class_names, orig_sizes=None) -> tuple[dict, pd.DataFrame, np.ndarray | None]:
    """Metrics, a per-image table and the binary masks from a model's raw outputs.

    Segmentation metrics are over lesion images only (normal images have empty masks). With
    ``orig_sizes`` (rows ``(H, W)``), the table also holds the shape descriptors of each
    predicted mask (``pred_<descriptor>``, :mod:`busi_lib.shape`).
    """
    from .metrics import classification_metrics, per_image_segmentation, segmentation_metrics

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
            from .shape import predicted_descriptors

            desc = predicted_descriptors(pm, orig_sizes, cfg.get("resize", "squash"))
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
