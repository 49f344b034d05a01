"""k-fold cross-validation of one configuration: resumable, deterministic, recorded.

Entry point: :func:`run_cv`. For each fold it

1. skips the fold when ``fold<k>.json`` exists with the same config hash and data hash
   (and refuses to overwrite one with another config hash);
2. otherwise trains it epoch by epoch, saving a ``.keras`` checkpoint and a small state file
   after every epoch, so a run killed midway resumes from the last finished epoch;
3. evaluates on the test fold and writes the record, the per-image predictions and the
   predicted masks, each atomically.

Determinism: Keras' global seed is set per fold, TensorFlow op determinism is on, the epoch's
shuffle and augmentation come from ``(seed, fold, epoch)`` (:mod:`busi_lib.augment`), and the
dropout seed generators are reset from the same triple at each epoch start, so an interrupted and
resumed fold trains exactly like an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import records
from .augment import augment_batch, epoch_rng
from .config import config_hash, make_config
from .data import load_busi
from .errors import ConfigError, DataError
from .inference import predict, targets, to_input
from .splits import default_curated_path, load_or_make_folds, read_curated_ids, splits_path


# ----------------------------------------------------------------------------- numerics
def cpu_supports_bf16() -> bool:
    """True when the CPU advertises native bfloat16 (AVX512_BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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


def _epoch_seed(seed: int, fold: int, epoch: int) -> int:
    return int(epoch_rng(seed, fold, epoch).integers(0, 2**31 - 1))


# ----------------------------------------------------------------------------- inputs
def make_dataset(x: np.ndarray, y: dict, batch_size: int):
    """A ``tf.data`` pipeline with autotune off and a fixed ``prefetch(2)``.

    With autotune on, TF 2.21 stalls 11-17 s at the start of about half the epochs while the
    previous iterator's thread pool shuts down (``TOOLCHAIN_NOTES.md``, trap 2). Other backends
    get the arrays back unchanged (Keras batches them).
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


# ----------------------------------------------------------------------------- folds
def prepare(cfg: dict, data_dir=None, verbose: bool = False, results_dir=None,
            manifest_dir: Path | None = None):
    """Load the data and the fold table of a configuration.

    With ``manifest_dir``, the data is first checked against the manifest stored there (see
    :func:`busi_lib.records.check_manifest`), before anything else uses it.
    """
    data = load_busi(data_dir, image_size=cfg["image_size"], classes=cfg["classes"],
                     enhancement=cfg["enhancement"], max_per_class=cfg["max_per_class"],
                     verbose=verbose)
    if manifest_dir is not None:
        records.check_manifest(manifest_dir, data.manifest, data.data_sha256)
    kw: dict[str, Any] = dict(labels=data.labels, n_folds=cfg["n_folds"], seed=cfg["seed"],
                              mode=cfg["split"], class_names=data.class_names)
    if cfg["split"] == "grouped":
        kw.update(images=data.images, image_sha256=data.image_sha256)
    if cfg["split"] == "curated":
        path = default_curated_path(data.root)
        if path is None:
            raise DataError(f"split='curated' needs curation/mapping_curated_BUSI.csv next to "
                            f"{data.root}; it was not found")
        kw.update(curated_ids=read_curated_ids(path))
    csv = splits_path(cfg["classes"], cfg["split"], cfg["n_folds"], cfg["seed"],
                      cfg["max_per_class"], folder=records.results_root(results_dir) / "splits")
    folds = load_or_make_folds(csv, data.ids, **kw)
    return data, folds


def run_cv(profile: str = "cpu", experiment: str = "multitask", *, data_dir=None,
           results_dir=None, verbose: int = 1, stop_after_epochs: int | None = None,
           **overrides) -> list[dict]:
    """Cross-validate ``experiment`` in ``profile``; returns the fold records (recorded or new).

    Parameters
    ----------
    profile, experiment : names from :mod:`busi_lib.config`
    data_dir : path, optional (see :func:`busi_lib.data.locate_data`)
    results_dir : path, optional; default ``<project>/results``
    verbose : 0 silent, 1 one line per epoch, 2 Keras progress bars
    stop_after_epochs : int, optional
        Stop (leaving the checkpoint) after this many epochs *in this call*: pieces of work
        that fit a time budget. The next call resumes.
    **overrides : configuration values (see ``busi_lib.config.DEFAULTS``)
    """
    cfg = make_config(profile, experiment, **overrides)
    out = records.experiment_dir(profile, experiment, results_dir)
    records.check_writable(out)
    chash = config_hash(cfg)
    data, folds = prepare(cfg, data_dir, verbose=verbose > 0, results_dir=results_dir,
                          manifest_dir=out)
    todo = cfg["folds"] if cfg["folds"] is not None else list(range(cfg["n_folds"]))
    result = []
    for k in todo:
        path = out / f"fold{k}.json"
        if path.is_file():
            rec = json.loads(path.read_text())
            if rec.get("config_hash") != chash:
                raise ConfigError(
                    f"{path} was recorded with config_hash {rec.get('config_hash')}, not {chash}: "
                    "the configuration changed. Use another experiment name or results_dir, or "
                    "delete the old records deliberately; nothing was overwritten.")
            if rec.get("data_sha256") != data.data_sha256:
                raise DataError(f"{path} was recorded on data {rec.get('data_sha256')}, not "
                                f"{data.data_sha256}")
            if verbose:
                print(f"[{experiment}] fold {k}: recorded, skipped ({path.name})")
            result.append(rec)
            continue
        rec = train_fold(cfg, data, folds, k, out, profile=profile, experiment=experiment,
                         chash=chash, verbose=verbose, stop_after_epochs=stop_after_epochs)
        if rec is None:  # stopped early on purpose
            break
        result.append(rec)
    return result


def train_fold(cfg: dict, data, folds: pd.DataFrame, k: int, out: Path, *, profile: str,
               experiment: str, chash: str, verbose: int = 1,
               stop_after_epochs: int | None = None) -> dict | None:
    """Train and evaluate fold ``k``; write its record. Returns ``None`` if stopped early."""
    import keras

    from .losses import class_weights_from_labels, compile_losses
    from .metrics import classification_metrics, per_image_segmentation, segmentation_metrics
    from .model import build_model

    t_start = time.time()
    fold_col = folds["fold"].to_numpy()
    test_idx = np.nonzero(fold_col == k)[0]
    train_idx = np.nonzero((fold_col != k) & (fold_col >= 0))[0]
    val_idx = np.array([], np.int64)
    if cfg["early_stopping"]:
        rng = np.random.default_rng([cfg["seed"], k, 10**6])
        from sklearn.model_selection import train_test_split

        train_idx, val_idx = train_test_split(train_idx, test_size=cfg["val_fraction"],
                                              stratify=data.labels[train_idx], random_state=int(
                                                  rng.integers(2**31 - 1)))
    precision = resolve_precision(cfg["precision"])
    ckpt_dir = out / "checkpoints" / f"fold{k}"
    state_path, model_path, best_path = (ckpt_dir / "state.json", ckpt_dir / "model.keras",
                                         ckpt_dir / "best.keras")
    task = cfg["task"]
    x_all = to_input(data.images, cfg["in_channels"])
    n_cls = len(cfg["classes"])
    weights = class_weights_from_labels(data.labels[train_idx], n_cls,
                                        normalize=cfg["class_weight_norm"])
    steps = math.ceil(len(train_idx) / cfg["batch_size"])

    # the training seed: weights, shuffle, augmentation, dropout (the split has its own)
    seed = cfg["seed"] if cfg.get("train_seed") is None else cfg["train_seed"]
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        set_determinism(seed + k, cfg["deterministic"])
        state = {"epoch": 0, "history": [], "train_seconds": 0.0, "best": None, "wait": 0,
                 "resumed_at": [], "build_note": None}
        if state_path.is_file() and model_path.is_file():
            state = json.loads(state_path.read_text())
            if state.get("config_hash") != chash:
                raise ConfigError(f"checkpoint {ckpt_dir} belongs to config {state.get('config_hash')}"
                                  f", not {chash}; delete it to start this fold again")
            model = keras.saving.load_model(model_path, safe_mode=True, compile=True)
            state["resumed_at"].append(state["epoch"])
            if verbose:
                print(f"[{experiment}] fold {k}: resuming after epoch {state['epoch']}")
        else:
            model, build_note = build_for_config(cfg)
            gamma = cfg["focal_gamma"] if cfg["cls_loss"] == "focal" else 0.0
            cw = weights if cfg["cls_loss"] == "focal" else None
            loss, lw = compile_losses(task, smooth=cfg["seg_smooth"], gamma=gamma,
                                      class_weights=cw, loss_weights=cfg["loss_weights"])
            schedule = keras.optimizers.schedules.ExponentialDecay(
                cfg["lr"], decay_steps=cfg["lr_drop_every"] * steps,
                decay_rate=cfg["lr_drop_factor"], staircase=True)
            model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, loss_weights=lw)
            state["build_note"] = build_note
        x_tr, m_tr, y_tr = x_all[train_idx], data.masks[train_idx], data.labels[train_idx]
        epochs_this_call = 0
        while state["epoch"] < cfg["epochs"]:
            epoch = state["epoch"]
            if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs:
                if verbose:
                    print(f"[{experiment}] fold {k}: stopping after {epochs_this_call} epochs as "
                          f"asked; checkpoint at epoch {epoch} in {ckpt_dir}")
                return None
            t0 = time.time()
            rng = epoch_rng(seed, k, epoch)
            order = rng.permutation(len(train_idx))
            xe, me = x_tr[order], m_tr[order]
            if cfg["augment"]:
                xe, me = augment_batch(xe, me, rng, rotation=cfg["rotation"])
            _reset_seed_generators(model, _epoch_seed(seed, k, epoch))
            tgt = targets(task, me, y_tr[order])
            ds = make_dataset(xe, tgt, cfg["batch_size"])
            if ds is not None:
                h = model.fit(ds, epochs=epoch + 1, initial_epoch=epoch, shuffle=False,
                              verbose=0)
            else:
                h = model.fit(xe, tgt, batch_size=cfg["batch_size"], epochs=epoch + 1,
                              initial_epoch=epoch, shuffle=False, verbose=0)
            row = {"epoch": epoch + 1, **{n: float(v[-1]) for n, v in h.history.items()},
                   "lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
            if len(val_idx):
                vx = x_all[val_idx]
                vt = targets(task, data.masks[val_idx], data.labels[val_idx])
                vl = model.evaluate(vx, vt, batch_size=32, verbose=0, return_dict=True)
                row.update({f"val_{n}": float(v) for n, v in vl.items()})
            row["seconds"] = time.time() - t0
            state["train_seconds"] += row["seconds"]
            state["history"].append(row)
            state["epoch"] = epoch + 1
            state["config_hash"] = chash
            stop = False
            if len(val_idx):
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
                print(f"[{experiment}] fold {k} epoch {epoch + 1}/{cfg['epochs']} "
                      + " ".join(f"{n}={v:.4g}" for n, v in row.items() if n != "epoch"),
                      flush=True)
            if stop:
                state["stopped_early_at"] = epoch + 1
                records.write_json(state_path, state)
                break
        if state.get("stopped_early_at") and best_path.is_file():
            model = keras.saving.load_model(best_path, safe_mode=True, compile=True)

        # ---------------- evaluation on the test fold
        t_eval = time.time()
        pred = predict(model, x_all[test_idx])
        metrics: dict[str, float] = {}
        ids = data.ids[test_idx]
        y_true = data.labels[test_idx]
        table = pd.DataFrame({"id": ids, "true_class": [data.class_names[i] for i in y_true]})
        if "mask" in pred:
            pm = pred["mask"][..., 0] >= 0.5
            tm = data.masks[test_idx]
            # segmentation metrics over lesion images only (normal images have empty masks)
            lesion = np.array([data.class_names[i] != "normal" for i in y_true])
            metrics.update(segmentation_metrics(tm[lesion], pm[lesion]))
            table["dice"] = per_image_segmentation(tm, pm)["DC"]
            records.write_masks(out / f"fold{k}_masks.npz", ids, pm)
        if "label" in pred:
            mal = data.class_names.index("malignant")
            prob = pred["label"][:, mal]
            y_pred = pred["label"].argmax(1)
            metrics.update(classification_metrics(y_true, prob, y_pred, positive=mal))
            table["prob_malignant"] = prob
            table["pred_class"] = [data.class_names[i] for i in y_pred]
            if n_cls == 3:
                for j, c in enumerate(data.class_names):
                    table[f"prob_{c}"] = pred["label"][:, j]
        records.write_csv(out / f"fold{k}_predictions.csv", table)
        external = None
        if cfg["external"]:
            from .external import evaluate_external

            ext = evaluate_external(model, cfg)
            if ext is not None:
                records.write_csv(out / f"fold{k}_external.csv", ext)
                external = {"n": int(len(ext)), "file": f"fold{k}_external.csv"}
            else:
                external = {"n": 0, "note": "BUS-BRA not found; external evaluation skipped"}
        rec = {
            "experiment": experiment, "profile": profile, "fold": k, "seed": cfg["seed"],
            "config": cfg, "config_hash": chash, "data_sha256": data.data_sha256,
            "git_commit": records.git_commit(), "versions": records.versions(),
            "precision": precision,
            "determinism": {"keras_seed": seed + k, "op_determinism": cfg["deterministic"],
                            "augmentation_rng": "numpy default_rng([seed, fold, epoch])"},
            "wall_seconds": state["train_seconds"] + (time.time() - t_eval),
            "train_seconds": state["train_seconds"], "eval_seconds": time.time() - t_eval,
            "epochs_run": state["epoch"], "resumed_at": state["resumed_at"],
            "stopped_early_at": state.get("stopped_early_at"),
            "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
            "n_test": int(len(test_idx)), "class_weights": weights,
            "n_params": int(model.count_params()), "build_note": state.get("build_note"),
            "metrics": metrics, "history": state["history"], "external": external,
        }
        records.write_json(out / f"fold{k}.json", rec)
        models_dir = out / "models"
        models_dir.mkdir(exist_ok=True)
        _atomic_save(model, models_dir / f"fold{k}.keras")
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        if verbose:
            shown = {n: round(v, 4) for n, v in metrics.items()
                     if n in ("seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_AUC")}
            print(f"[{experiment}] fold {k}: done in {time.time() - t_start:.0f} s {shown}",
                  flush=True)
        return rec
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


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
                           dense_units=cfg["dense_units"], dropout=cfg["dropout"]), None
    from .baselines import build_baseline

    return build_baseline(cfg["model"], image_size=cfg["image_size"],
                          in_channels=cfg["in_channels"], n_classes=n_cls,
                          pretrained=cfg["pretrained"], dropout=cfg["dropout"])


def _atomic_save(model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def work_plan(profile: str, names, overrides: dict | None = None) -> list[tuple[str, int]]:
    """The (experiment, fold) pairs to run, in order.

    Experiments of the full protocol come first, each fold in turn; the ``light`` experiments
    (ablations and baselines, :data:`busi_lib.config.LIGHT`) follow breadth first: fold 1 of
    every one of them, then fold 2 of every one, and so on, so that a budget that runs out
    midway leaves every comparison with the same folds rather than some complete and others
    empty.
    """
    from .config import EXPERIMENTS

    overrides = overrides or {}
    full, light = [], []
    for name in names:
        cfg = make_config(profile, name, **overrides)    # fails on a bad override first
        folds = cfg["folds"] if cfg["folds"] is not None else list(range(cfg["n_folds"]))
        (light if EXPERIMENTS[name].get("light") else full).append((name, [int(k) for k in folds]))
    plan = [(name, k) for name, folds in full for k in folds]
    for k in sorted({k for _, folds in light for k in folds}):
        plan += [(name, k) for name, folds in light if k in folds]
    return plan


def main(argv: list[str] | None = None) -> int:
    """``python -m busi_lib.train --profile cpu --experiment multitask [--folds 0 1]``.

    ``--experiment`` takes several names, or ``book`` for every experiment the book shows (in
    the order of :func:`work_plan`: full-protocol experiments fold by fold, then the light ones
    breadth first). ``--hours H`` makes a resumable
    piece of work: no new fold is started once H hours have passed (the fold under way is
    finished and recorded). Recorded folds are skipped, so the same command continues the work.
    """
    import argparse

    from .config import BOOK_EXPERIMENTS, EXPERIMENTS

    p = argparse.ArgumentParser(description=main.__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--experiment", nargs="+", default=["multitask"],
                   help="experiment name(s), or 'book' for all of the book's experiments")
    p.add_argument("--hours", type=float, default=None,
                   help="start no new fold after this many hours (a resumable piece)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--folds", type=int, nargs="*", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--stop-after-epochs", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a configuration value, e.g. --set external=false")
    a = p.parse_args(argv)
    ov = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a JSON value")
        try:
            ov[key] = json.loads(value)
        except ValueError:
            ov[key] = value
    if a.folds:
        ov["folds"] = a.folds
    if a.epochs:
        ov["epochs"] = a.epochs
    names = [n for e in a.experiment for n in (BOOK_EXPERIMENTS if e == "book" else (e,))]
    bad = [n for n in names if n not in EXPERIMENTS]
    if bad:
        raise ConfigError(f"--experiment {bad}: expected names from {sorted(EXPERIMENTS)} or 'book'")
    if a.hours is not None and not a.hours > 0:
        raise ConfigError(f"--hours={a.hours}: expected a positive number of hours")
    t0 = time.time()
    for name, k in work_plan(a.profile, names, ov):
        if a.hours is not None and time.time() - t0 > a.hours * 3600:
            print(f"--hours {a.hours}: time is up, stopping before {name} fold {k}; "
                  "run the same command again to continue", flush=True)
            return 0
        run_cv(a.profile, name, data_dir=a.data_dir, results_dir=a.results_dir,
               stop_after_epochs=a.stop_after_epochs, **{**ov, "folds": [int(k)]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
