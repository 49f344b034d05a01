"""Tests of busi_lib.experiments.bench: it runs, and its figures are consistent. Not a timed test: no
assertion depends on how fast the machine is."""

from __future__ import annotations

import json
import math

import keras
import pytest

from busi_lib.book import cost
from busi_lib.eval import inference
from busi_lib.experiments import bench
from busi_lib.nn import machine
from busi_lib.nn.model import build_model, forward_flops_per_image, training_flops_per_image

POSITIVE = ("train_img_per_s", "reference_img_per_s", "speedup", "flops_per_img",
            "achieved_gflops", "peak_gflops", "peak_fraction", "peak_rss_mb", "infer_img_per_s",
            "epoch_seconds", "epoch_steps_seconds", "train_step_img_per_s")


def _tiny_model():
    """One 3x3 convolution, one strided 3x3 convolution, pooling and a dense layer."""
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(5, 3, padding="same")(inp)                          # 8x8x5
    x = keras.layers.Conv2D(7, 3, strides=2, padding="same", use_bias=False)(x)  # 4x4x7
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(2)(x))


def test_flops_by_hand():
    hand = 2 * (8 * 8 * 5) * (3 * 3 * 3) + 2 * (4 * 4 * 7) * (3 * 3 * 5) + 2 * 7 * 2
    m = _tiny_model()
    assert forward_flops_per_image(m) == hand
    assert training_flops_per_image(m) == 3 * hand
    # the profiler also counts the bias additions (8*8*5 + 2) and the pooling's sum (4*4*7)
    prof = bench.profiler_forward_flops(m)
    assert hand <= prof <= hand + (8 * 8 * 5 + 2) + 4 * 4 * 7


@pytest.mark.parametrize("size,width", [(32, 4), (64, 8)])
def test_flops_match_profiler(size, width):
    m = build_model(size, filters=[width, 2 * width, 4 * width, 8 * width],
                    bridge_filters=16 * width)
    ratio = bench.profiler_forward_flops(m) / forward_flops_per_image(m)
    assert abs(ratio - 1) < 0.05, ratio


def test_matmul_peak_positive():
    assert bench.matmul_peak_gflops("float32", n=128, repeats=2) > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    keras.utils.clear_session()
    fit_, predict = keras.Model.fit, inference.run_network
    res = bench.run_bench(size=32, width=4, batch=4, steps=2, epochs=2, peak_n=256,
                          workdir=tmp_path_factory.mktemp("bench"))
    # the instrumentation is gone
    assert keras.Model.fit is fit_ and inference.run_network is predict
    return res


@pytest.mark.slow
def test_bench_figures_consistent(tiny_run):
    r = tiny_run
    for k in POSITIVE:
        assert isinstance(r[k], (int, float)) and r[k] > 0 and math.isfinite(r[k]), k
    assert r["speedup"] == pytest.approx(r["train_img_per_s"] / r["reference_img_per_s"])
    assert r["achieved_gflops"] == pytest.approx(r["flops_per_img"] * r["train_img_per_s"] / 1e9)
    assert r["peak_fraction"] == pytest.approx(r["achieved_gflops"] / r["peak_gflops"])
    assert r["epoch_overhead_fraction"] == pytest.approx(
        r["epoch_seconds"] / r["epoch_steps_seconds"] - 1)
    assert r["train_img_per_s"] == pytest.approx(r["epoch_images"] / r["epoch_seconds"])
    assert r["epoch_images"] == 8 and r["steps_per_epoch"] == 2
    assert r["precision"] == machine.resolve_precision("auto")
    assert r["peak_precision"] == ("bfloat16" if r["precision"] == "mixed_bfloat16"
                                   else "float32")
    assert r["flops_per_img"] == 3 * r["forward_flops_per_img"]
    assert abs(r["flops_check_ratio"] - 1) < 0.05
    # pure steps cannot take longer than the epoch that contains them
    assert r["epoch_steps_seconds"] <= r["epoch_seconds"]


@pytest.mark.slow
def test_cli_prints_one_consistent_json_line(tiny_run, monkeypatch, capsys):
    seen = {}

    def fake(**kw):
        seen.update(kw)
        return dict(tiny_run)

    monkeypatch.setattr(bench, "run_bench", fake)
    assert bench.main(["--size", "32", "--width", "4", "--steps", "2", "--epochs", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert seen["size"] == 32 and seen["width"] == 4 and seen["steps"] == 2
    for k in ("train_img_per_s", "reference_img_per_s", "speedup", "flops_per_img",
              "achieved_gflops", "peak_gflops", "peak_fraction", "peak_rss_mb"):
        assert r[k] > 0, k
    # consistent within the printed rounding
    assert r["speedup"] == pytest.approx(r["train_img_per_s"] / r["reference_img_per_s"],
                                         rel=2e-3)
    assert r["achieved_gflops"] == pytest.approx(
        r["flops_per_img"] * r["train_img_per_s"] / 1e9, rel=2e-3, abs=1e-3)
    assert r["peak_fraction"] == pytest.approx(r["achieved_gflops"] / r["peak_gflops"],
                                               rel=2e-3, abs=1e-4)


def test_quick_preset():
    assert bench.QUICK["size"] == 128 and bench.QUICK["width"] == 32


def test_epoch_extrapolation():
    r = dict(epoch_images=16, epoch_steps_seconds=4.0, augment_seconds=0.5, epoch_seconds=6.0)
    # per-image parts (steps, augmentation) scale with the images, the rest stays per epoch
    assert bench.epoch_seconds_518(r) == pytest.approx(518 / 16 * 4.5 + 1.5)


def test_step_seconds_of_an_experiment(tmp_path):
    from busi_lib.config import make_config

    r = bench.experiment_step_seconds("smoke", "base_unet", steps=2)
    cfg = make_config("smoke", "base_unet")
    assert (r["experiment"], r["batch"], r["image_size"]) == ("base_unet", cfg["batch_size"], 32)
    per_epoch = math.ceil(bench.FOLD_TRAIN_IMAGES / cfg["batch_size"])
    assert r["epoch_s"] == pytest.approx(per_epoch * r["step_s"])
    assert r["fold_train_s"] == pytest.approx(cfg["epochs"] * r["epoch_s"])
    assert r["step_s"] > 0 and r["machine"]["cores"] >= 1
    with pytest.raises(ValueError, match="steps=0"):
        bench.experiment_step_seconds("smoke", "base_unet", steps=0)
    # the CLI appends one "step" row per experiment, read back by cost.load_bench
    out = tmp_path / "b.jsonl"
    assert bench.main(["--step-of", "base_fpn", "--profile", "smoke", "--steps", "1",
                       "--out", str(out)]) == 0
    rows = cost.load_bench(out)
    assert list(rows["kind"]) == ["step"] and list(rows["experiment"]) == ["base_fpn"]
