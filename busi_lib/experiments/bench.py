"""Benchmark of the training path (issue 5): ``python -m busi_lib.experiments.bench [--quick] [--table]``.

One run, on one machine, measures

* **train_img_per_s**: images per second of the project's real training path,
  :func:`busi_lib.experiments.crossval.train_fold` itself (augmentation, ``tf.data`` pipeline, ``fit``, checkpoint
  save: everything an epoch costs), on synthetic images and masks of the right shapes, in the
  precision that ``precision`` resolves to (``"auto"``: ``mixed_bfloat16`` on a bf16 CPU);
  the epochs after the first (which traces) are timed from the end of one epoch's ``fit`` to the
  end of the next, so a period includes the previous epoch's checkpoint save;
* **reference_img_per_s**: the same network trained by a plain float32 ``model.fit(x, y)`` on
  in-memory numpy arrays (no augmentation), counted over its *pure* train steps (the time inside
  the step calls only), which favours the reference; **speedup** = train / reference;
* the sum of the real path's pure step times per epoch (**epoch_overhead_fraction** = epoch / steps
  - 1, the time an epoch spends outside its steps), augmentation and checkpoint seconds per epoch;
* **infer_img_per_s**: :func:`busi_lib.eval.inference.run_network` on the trained model, after its warm-up;
* **flops_per_img**: analytic training FLOPs (:func:`busi_lib.nn.model.training_flops_per_image`,
  3 x forward, 2 FLOPs per multiply-add of every convolution and dense layer), with the forward
  count checked against TensorFlow's profiler on the traced graph (``flops_check_ratio``);
* **achieved_gflops** = flops_per_img x train_img_per_s, **peak_gflops**: a large ``tf.matmul``
  timed in the same run in the training precision (float32, and bfloat16 where the CPU has it),
  **peak_fraction** = achieved / peak;
* **peak_rss_mb**: the process' peak resident memory (``resource.getrusage``).

It prints one JSON line. ``--quick`` (128 px, width 32, 2 epochs of 2 steps of 16 images) takes
about 2 minutes on the 2-core machine (its short epochs overstate the per-epoch overhead); ``--table`` runs the image size x width grid, each point in
a fresh process, and prints a markdown table of seconds per epoch of 518 images (long).

The figures are a benchmark, not a test: the tests only check that it runs and that its numbers
are consistent. Timings on a shared machine are noisy; the JSON carries the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from busi_lib.config import PROFILES, config_hash, make_config
from busi_lib.eval import inference
from busi_lib.eval.inference import targets, to_input
from busi_lib.experiments import crossval, trainer
from busi_lib.nn.build import build_for_config, compile_for_config
from busi_lib.nn.losses import class_weights_from_labels
from busi_lib.nn.machine import cpu_supports_bf16, machine_info, resolve_precision
from busi_lib.nn.model import forward_flops_per_image, training_flops_per_image
from busi_lib.records import append_result, load_average

#: training images of one fold of the 2-class BUSI set (647 images, 5 folds)
FOLD_TRAIN_IMAGES = 518
QUICK = dict(size=128, width=32, batch=16, steps=2, epochs=2)


# ----------------------------------------------------------------------------- small helpers
def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1024.0 * 1024.0) if sys.platform == "darwin" else kb / 1024.0


def _say(msg: str) -> None:
    """A progress line on stderr (the JSON result alone goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def synthetic_data(n: int, size: int, seed: int = 0, n_test: int | None = None):
    """``(data, folds)`` shaped like :func:`busi_lib.data.busi.load_busi`'s output, random content.

    Fold 0 holds the first ``n_test`` images (default ``n // 5``); both classes occur in it.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_test = max(2, n // 5) if n_test is None else n_test
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.uniform(0.3, 0.7, (3, n, 1, 1)) * size
    masks = ((yy - cy) ** 2 + (xx - cx) ** 2) <= (r / 3) ** 2
    labels = (np.arange(n) % 3 == 1).astype(np.int64)      # about 1/3 malignant, as BUSI
    data = types.SimpleNamespace(
        images=images, masks=masks, labels=labels, ids=np.array([f"syn{i}" for i in range(n)]),
        class_names=["benign", "malignant"], data_sha256="synthetic", root=None)
    fold = np.where(np.arange(n) < n_test, 0, 1 + np.arange(n) % 4)
    return data, pd.DataFrame({"id": data.ids, "fold": fold})


def bench_config(size: int, width: int, batch: int, precision: str, epochs: int) -> dict:
    """The ``cpu`` multitask configuration at another size and width (filters width*[1,2,4,8]),
    for ``epochs`` epochs (the warm-up shortened to fit them)."""

    warmup = min(PROFILES["cpu"].get("warmup_epochs", 0), int(epochs) - 1)
    return make_config("cpu", "multitask", image_size=int(size),
                       filters=[width, 2 * width, 4 * width, 8 * width],
                       bridge_filters=16 * width, batch_size=int(batch), precision=precision,
                       epochs=int(epochs), warmup_epochs=warmup, external=False)


# ----------------------------------------------------------------------------- FLOPs
def profiler_forward_flops(model) -> int:
    """Forward FLOPs of one image as TensorFlow's profiler counts them on the traced graph.

    An independent count of what :func:`busi_lib.nn.model.forward_flops_per_image` computes
    analytically: the profiler uses TensorFlow's own per-op statistics (``Conv2D``, ``MatMul``,
    ``BiasAdd``, ...), so it also counts a few element-wise FLOPs the analytic count leaves out.
    """
    import tensorflow as tf

    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]
    fn = tf.function(lambda x: model(x, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec(shape, tf.float32)).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops)


# ----------------------------------------------------------------------------- matmul peak
def matmul_peak_gflops(dtype: str = "float32", n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` ``tf.matmul`` of two ``n x n`` matrices (2 n^3 FLOPs)."""
    return matmul_peak(dtype, n, repeats)[0]


def matmul_peak(dtype: str = "float32", n: int = 2048, repeats: int = 5) -> tuple[float, float]:
    """``(best GFLOP/s, GFLOP per CPU-second)`` of ``repeats`` ``n x n`` ``tf.matmul``.

    The second figure divides by the process' CPU time instead of wall time, so other processes'
    load changes it less; multiplied by the number of cores it is an idle-machine estimate.
    """
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    if dtype != "float32":
        a, b = tf.cast(a, dtype), tf.cast(b, dtype)
    float(tf.matmul(a, b)[0, 0])       # warm-up: allocations, oneDNN primitive creation
    best, c0 = math.inf, cpu_seconds()
    for _ in range(repeats):
        t = time.perf_counter()
        c = tf.matmul(a, b)
        float(c[0, 0])
        best = min(best, time.perf_counter() - t)
    cpu = cpu_seconds() - c0
    return 2.0 * n ** 3 / best / 1e9, 2.0 * n ** 3 * repeats / cpu / 1e9


# ----------------------------------------------------------------------------- instrumentation
class _StepTimer:
    """A Keras callback factory that records each ``fit`` call's pure step times."""

    def __init__(self):
        self.fits: list[dict] = []

    def callback(self):
        import keras

        rec = {"steps": []}
        self.fits.append(rec)

        class _CB(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                rec["begin"] = time.perf_counter()

            def on_train_batch_begin(self, batch, logs=None):
                rec["_t"] = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                rec["steps"].append(time.perf_counter() - rec["_t"])

            def on_train_end(self, logs=None):
                rec["end"] = time.perf_counter()

        return _CB()


@contextlib.contextmanager
def _instrument_train(timer: _StepTimer, log: dict):
    """Time the real path from outside: wrap ``Model.fit`` (adds a step-timer callback) and the
    functions of :mod:`busi_lib.experiments.trainer` that an epoch calls. Everything is restored on exit."""
    import keras

    saved = {"fit": keras.Model.fit}
    orig_fit = keras.Model.fit

    def fit(self, *args, **kwargs):
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [timer.callback()]
        t = time.perf_counter()
        out = orig_fit(self, *args, **kwargs)
        log.setdefault("fit_wall", []).append(time.perf_counter() - t)
        log.setdefault("fit_end", []).append(time.perf_counter())
        log.setdefault("fit_end_cpu", []).append(cpu_seconds())
        _say(f"project path: epoch {len(log['fit_wall'])} fit in {log['fit_wall'][-1]:.1f} s")
        return out

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            log.setdefault(name, []).append(time.perf_counter() - t)
            if name == "predict":
                log["predict_args"] = (args, kwargs)
            return out
        return wrapper

    # (module, function, log name): the functions an epoch looks up in their module at call time
    targets_ = [(trainer, "augment_batch", "augment_batch"), (trainer, "atomic_save", "atomic_save"),
                (trainer, "make_dataset", "make_dataset"), (inference, "run_network", "predict")]
    for mod, n, label in targets_:
        saved[(mod, n)] = getattr(mod, n)
        setattr(mod, n, timed(label, saved[(mod, n)]))
    keras.Model.fit = fit
    try:
        yield
    finally:
        keras.Model.fit = saved["fit"]
        for mod, n, _ in targets_:
            setattr(mod, n, saved[(mod, n)])


# ----------------------------------------------------------------------------- the two paths
def _compile_like_train_fold(model, cfg: dict, labels, steps: int) -> None:
    """Compile exactly as :func:`busi_lib.experiments.crossval.train_fold` does (losses, schedule, optimiser)."""

    compile_for_config(model, cfg, class_weights_from_labels(
        labels, len(cfg["classes"]), normalize=cfg["class_weight_norm"]), steps)


def reference_fit(cfg: dict, data, n_images: int) -> dict:
    """The same network, float32, a plain ``model.fit`` on numpy arrays; step-timed."""
    import keras

    old = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        model, _ = build_for_config(cfg)
        b = cfg["batch_size"]
        _compile_like_train_fold(model, cfg, data.labels, math.ceil(n_images / b))
        idx = np.arange(n_images) % len(data.images)
        x = to_input(data.images[idx], cfg["in_channels"])
        y = targets(cfg["task"], data.masks[idx], data.labels[idx])
        timer = _StepTimer()
        t = time.perf_counter()
        w = min(2, n_images)     # warm-up: traces the train function (batch dim is None)
        model.fit(x[:w], {k: v[:w] for k, v in y.items()}, batch_size=b, epochs=1, verbose=0,
                  callbacks=[timer.callback()])
        warm = time.perf_counter() - t
        t, c = time.perf_counter(), cpu_seconds()
        model.fit(x, y, batch_size=b, epochs=1, verbose=0, callbacks=[timer.callback()])
        wall, cpu = time.perf_counter() - t, cpu_seconds() - c
        steps = timer.fits[-1]["steps"]
        return {"reference_img_per_s": n_images / sum(steps),
                "reference_cpu_s_per_img": cpu / n_images,
                "reference_fit_img_per_s": n_images / wall,
                "reference_step_median_s": float(np.median(steps)),
                "reference_warmup_s": warm, "reference_images": n_images}
    finally:
        keras.mixed_precision.set_dtype_policy(old)


def real_path(cfg: dict, data, folds, workdir: Path, infer_batch: int = 32) -> dict:
    """Train fold 0 with :func:`busi_lib.experiments.crossval.train_fold` (instrumented) and time it."""

    timer, log = _StepTimer(), {}
    n_train = int((folds["fold"] != 0).sum())
    t0 = time.perf_counter()
    with _instrument_train(timer, log):
        rec = crossval.train_fold(cfg, data, folds, 0, Path(workdir), profile="bench",
                               experiment="bench", chash=config_hash(cfg), verbose=0)
    total = time.perf_counter() - t0
    fits = [f for f in timer.fits if f["steps"]]
    ends = log["fit_end"]
    # period of epoch e (e >= 1): end of fit e-1 -> end of fit e (save of e-1, aug, data, fit)
    periods = [ends[e] - ends[e - 1] for e in range(1, len(ends))]
    cpu = log["fit_end_cpu"]
    cpu_periods = [cpu[e] - cpu[e - 1] for e in range(1, len(cpu))]
    steps = [sum(f["steps"]) for f in fits[1:]]
    if not periods:
        raise ValueError("the benchmark needs at least 2 epochs (the first one traces)")
    epoch_s, steps_s = float(np.median(periods)), float(np.median(steps))
    out = {
        "precision": rec["precision"], "n_params": rec["n_params"], "epoch_images": n_train,
        "train_img_per_s": n_train / epoch_s,
        "train_step_img_per_s": n_train / steps_s,
        "train_cpu_s_per_img": float(np.median(cpu_periods)) / n_train,
        "epoch_seconds": epoch_s, "epoch_steps_seconds": steps_s,
        "epoch_overhead_fraction": epoch_s / steps_s - 1.0,
        "epoch_seconds_recorded": float(np.median([h["seconds"] for h in rec["history"][1:]])),
        "first_epoch_seconds": rec["history"][0]["seconds"],
        "augment_seconds": float(np.median(log.get("augment_batch", [0.0])[1:] or [0.0])),
        "checkpoint_seconds": float(np.median(log.get("atomic_save", [0.0]))),
        "dataset_seconds": float(np.median(log.get("make_dataset", [0.0]))),
        "step_median_s": float(np.median([s for f in fits[1:] for s in f["steps"]])),
        "fold_seconds": total, "eval_seconds": rec["eval_seconds"],
        "steps_per_epoch": len(fits[-1]["steps"]),
    }
    # inference: the real path's predict again, now that the test fold's evaluation has traced
    # it for whole batches (the test fold has at least ``infer_batch`` images)
    args, kwargs = log["predict_args"]
    model, x = args[0], args[1]
    used_batch = kwargs.get("batch_size", args[2] if len(args) > 2 else 32)
    n_inf = max(2 * infer_batch, len(x)) // infer_batch * infer_batch
    xi = np.resize(x, (n_inf,) + x.shape[1:])                # whole batches only
    if len(x) < infer_batch or used_batch != infer_batch:
        inference.run_network(model, xi[:infer_batch], batch_size=infer_batch)   # warm-up
    t = time.perf_counter()
    inference.run_network(model, xi, batch_size=infer_batch)
    out["infer_img_per_s"] = len(xi) / (time.perf_counter() - t)
    out["infer_batch"] = infer_batch
    return out


# ----------------------------------------------------------------------------- the benchmark
def run_bench(size: int = 128, width: int = 32, batch: int = 16, steps: int | None = None,
              epochs: int = 3, precision: str = "auto", reference: bool = True,
              peak: bool = True, peak_n: int = 2048, flops_check: bool = True,
              seed: int = 0, workdir: str | os.PathLike | None = None) -> dict:
    """Run the benchmark; returns the figures (see the module docstring).

    ``steps`` training steps per epoch (``None``: a whole fold, 518 images); ``epochs`` >= 2,
    the first one (tracing) is not timed.
    """

    t_start = time.perf_counter()
    res: dict = {"size": size, "width": width, "batch": batch, "epochs": epochs,
                 "precision_requested": precision, "load_before": load_average()}
    import keras
    import tensorflow as tf

    n_train = FOLD_TRAIN_IMAGES if steps is None else int(steps) * batch
    n_test = max(32, round(n_train / 4))     # >= one inference batch (see real_path)
    data, folds = synthetic_data(n_train + n_test, size, seed=seed, n_test=n_test)
    cfg = bench_config(size, width, batch, precision, epochs)
    prec = resolve_precision(precision)
    _say(f"{size} px, width {width}, {prec}: {epochs} epochs of {n_train} synthetic images "
         f"(the first one traces){', plus a float32 reference fit' if reference else ''}")

    # FLOPs: analytic, checked against the profiler's count of the traced forward graph
    model, _ = build_for_config(cfg)
    res["flops_per_img"] = training_flops_per_image(model)
    res["forward_flops_per_img"] = forward_flops_per_image(model)
    if flops_check:
        res["profiler_forward_flops"] = profiler_forward_flops(model)
        res["flops_check_ratio"] = res["profiler_forward_flops"] / res["forward_flops_per_img"]
    del model
    keras.backend.clear_session()

    # machine peak, same run
    if peak:
        _say("matrix-multiply peak")
        for dt in ("float32", "bfloat16"):
            if dt == "float32" or cpu_supports_bf16() or prec == "mixed_bfloat16":
                res[f"peak_gflops_{dt}"], res[f"peak_gflops_per_cpu_s_{dt}"] = matmul_peak(
                    dt, peak_n)

    # the reference first: train_fold turns op determinism on for the rest of the process
    if reference:
        _say(f"reference: plain float32 fit of {n_train} images")
        res.update(reference_fit(cfg, data, n_train))
        _say(f"reference: {res['reference_img_per_s']:.2f} images/s in its steps")
        keras.backend.clear_session()

    _say(f"project path: train_fold, {epochs} epochs")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        res.update(real_path(cfg, data, folds, Path(tmp)))
    _say(f"project path: {res['train_img_per_s']:.2f} images/s per epoch")
    if reference:
        res["speedup"] = res["train_img_per_s"] / res["reference_img_per_s"]
        # the same ratio in CPU seconds per image: less sensitive to other processes' load
        res["speedup_cpu"] = res["reference_cpu_s_per_img"] / res["train_cpu_s_per_img"]
    res["achieved_gflops"] = res["flops_per_img"] * res["train_img_per_s"] / 1e9
    res["achieved_step_gflops"] = res["flops_per_img"] * res["train_step_img_per_s"] / 1e9
    if peak:
        key = "peak_gflops_bfloat16" if prec == "mixed_bfloat16" else "peak_gflops_float32"
        res["peak_gflops"] = res.get(key, res["peak_gflops_float32"])
        res["peak_precision"] = key.rsplit("_", 1)[1]
        res["peak_fraction"] = res["achieved_gflops"] / res["peak_gflops"]
        # the same fraction per CPU-second (training and matmul), less sensitive to load
        res["peak_fraction_cpu"] = (res["flops_per_img"] / res["train_cpu_s_per_img"] / 1e9
                                    / res[f"peak_gflops_per_cpu_s_{res['peak_precision']}"])
    res["peak_rss_mb"] = peak_rss_mb()
    res["cpu_bf16"] = cpu_supports_bf16()
    res["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or
                      platform.machine(), "tensorflow": tf.__version__,
                      "keras": keras.__version__}
    res["load_after"] = load_average()
    res["bench_seconds"] = time.perf_counter() - t_start
    return res


def experiment_step_seconds(profile: str, experiment: str, steps: int = 6,
                            seed: int = 0) -> dict:
    """Seconds per training step of ``experiment``'s network in ``profile`` (a cost estimate for
    experiments with no recorded fold yet).

    The network, losses, optimiser, batch size, image size and precision are those of the
    experiment's configuration; the batch is synthetic. One step traces (``first_step_s``, not
    counted); then ``steps`` steps are timed, ``step_s`` is their median. ``fold_train_s`` =
    epochs x steps per epoch (:data:`FOLD_TRAIN_IMAGES` images) x ``step_s``: the pure training
    time of one fold, without augmentation, evaluation or checkpoints (the cost table scales it
    by the overhead measured on recorded folds).
    """
    import keras

    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps={steps!r}: expected an integer >= 1")
    cfg = make_config(profile, experiment)
    prec = resolve_precision(cfg["precision"])
    old = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_dtype_policy(prec)
    try:
        model, _ = build_for_config(cfg)
        b = cfg["batch_size"]
        data, _ = synthetic_data(max(b, 4), cfg["image_size"], seed=seed)
        per_epoch = math.ceil(FOLD_TRAIN_IMAGES / b)
        _compile_like_train_fold(model, cfg, data.labels, per_epoch)
        idx = np.arange(b) % len(data.images)
        x = to_input(data.images[idx], cfg["in_channels"])
        y = targets(cfg["task"], data.masks[idx], data.labels[idx])
        t = time.perf_counter()
        model.train_on_batch(x, y)
        first = time.perf_counter() - t
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - t)
        n_params = model.count_params()
    finally:
        keras.mixed_precision.set_dtype_policy(old)
        keras.backend.clear_session()
    step = float(np.median(times))
    return {"profile": profile, "experiment": experiment, "image_size": cfg["image_size"],
            "batch": b, "precision": prec, "params": n_params, "steps": steps,
            "first_step_s": first, "step_s": step, "epoch_s": per_epoch * step,
            "fold_train_s": cfg["epochs"] * per_epoch * step, "load": load_average(),
            "machine": machine_info(prec)}


def _round(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, float):
            out[k] = round(v, 4) if abs(v) < 100 else round(v, 1)
        else:
            out[k] = v
    return out


# ----------------------------------------------------------------------------- the table
def epoch_seconds_518(r: dict) -> float:
    """Seconds of an epoch of 518 images, from a run with shorter epochs: the per-image parts
    (steps, augmentation) scaled to 518 images, plus the per-epoch rest (checkpoint, set-up)."""
    n = r["epoch_images"]
    per_image = r["epoch_steps_seconds"] + r["augment_seconds"]
    rest = max(0.0, r["epoch_seconds"] - per_image)
    return FOLD_TRAIN_IMAGES * per_image / n + rest


def run_table(sizes=(128, 192, 256), widths=(16, 32, 64), batch: int = 16,
              steps: int | None = 1, precision: str = "auto", epochs: int = 3,
              out=None) -> str:
    """Seconds per epoch of 518 images over ``sizes`` x ``widths``, each point in a fresh
    process (its own peak RSS). With ``steps`` set (default 1: epochs of one batch; the first
    epoch traces, the others are timed) the epoch is extrapolated by :func:`epoch_seconds_518`."""
    rows = {}
    for s in sizes:
        for w in widths:
            cmd = [sys.executable, "-m", "busi_lib.experiments.bench", "--size", str(s), "--width", str(w),
                   "--batch", str(batch), "--epochs", str(epochs), "--precision", precision,
                   "--no-reference", "--no-peak"]
            if steps:
                cmd += ["--steps", str(steps)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            if p.returncode or not line:
                rows[s, w] = None
                print(f"size {s} width {w}: failed (exit {p.returncode})\n{p.stderr[-2000:]}",
                      file=sys.stderr)
                continue
            r = json.loads(line[-1])
            r["epoch_seconds_518"] = round(epoch_seconds_518(r), 1)
            rows[s, w] = r
            print(json.dumps(r), flush=True)
            if out:
                append_result(out, r, "table")
    head = "| size \\ width | " + " | ".join(str(w) for w in widths) + " |"
    lines = [f"Seconds per training epoch of {FOLD_TRAIN_IMAGES} images (real path, "
             f"incl. augmentation and checkpoint; [peak RSS MB]; load "
             f"{load_average()})", "", head, "|" + "---|" * (len(widths) + 1)]
    for s in sizes:
        cells = []
        for w in widths:
            r = rows[s, w]
            cells.append("failed" if r is None else
                         f"{epoch_seconds_518(r):.0f} [{r['peak_rss_mb']:.0f}]")
        lines.append(f"| {s} px | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m busi_lib.experiments.bench", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--width", type=int, default=32, help="filters width*[1,2,4,8], bridge 16*width")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per epoch (default: a whole fold, 518 images)")
    p.add_argument("--epochs", type=int, default=3, help="epochs, the first one untimed")
    p.add_argument("--precision", default="auto", choices=("auto", "float32", "mixed_bfloat16"))
    p.add_argument("--quick", action="store_true",
                   help="128 px, width 32, 2 steps per epoch, 2 epochs: about 2 minutes")
    p.add_argument("--table", action="store_true",
                   help="size (128, 192, 256) x width (16, 32, 64) table of seconds per "
                   "epoch (--steps, default 1 batch per timed epoch, extrapolated); long")
    p.add_argument("--step-of", nargs="+", default=None, metavar="EXPERIMENT",
                   help="time training steps of these experiments' networks instead (cost "
                        "estimates for experiments without a recorded fold); with --profile")
    p.add_argument("--profile", default="cpu", help="profile of --step-of (default cpu)")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--no-peak", action="store_true")
    p.add_argument("--out", default=None, metavar="FILE.jsonl",
                   help="also append each result (with date, run kind and git commit) to this "
                        "JSON-lines file, e.g. results/bench/bench.jsonl (read by the book)")
    a = p.parse_args(argv)
    if a.step_of:
        for e in a.step_of:
            _say(f"{e} ({a.profile}): {a.steps or 6} timed training steps")
            res = _round(experiment_step_seconds(a.profile, e, steps=a.steps or 6))
            print(json.dumps(res), flush=True)
            if a.out:
                append_result(a.out, res, "step")
        return 0
    if a.table:
        print(run_table(batch=a.batch, steps=a.steps or 1, precision=a.precision,
                        epochs=max(a.epochs, 2), out=a.out))
        return 0
    kw = dict(size=a.size, width=a.width, batch=a.batch, steps=a.steps, epochs=a.epochs)
    if a.quick:
        kw.update(QUICK)
    res = run_bench(precision=a.precision, reference=not a.no_reference, peak=not a.no_peak, **kw)
    print(json.dumps(_round(res)), flush=True)
    if a.out:
        append_result(a.out, _round(res), "quick" if a.quick else "bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
