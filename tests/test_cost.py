"""Cost accounting, the aim table, benchmark records and the resumable training CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from busi_lib import bench, book, report
from busi_lib.config import BOOK_EXPERIMENTS, EXPERIMENTS, config_hash, make_config
from busi_lib.errors import ConfigError
from busi_lib.records import experiment_dir


def _write_record(profile, experiment, fold, wall, train, epochs, metrics=None, chash=None):
    cfg = make_config(profile, experiment)
    rec = {"fold": fold, "experiment": experiment, "profile": profile, "config": cfg,
           "config_hash": chash or config_hash(cfg), "wall_seconds": wall,
           "train_seconds": train, "epochs_run": epochs, "metrics": metrics or {},
           "precision": "float32", "versions": {"platform": "Linux-x86_64"}}
    d = experiment_dir(profile, experiment)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"fold{fold}.json").write_text(json.dumps(rec))


def test_cost_table_sums_records_and_estimates_what_is_left():
    # smoke/multitask plans 2 folds; one recorded: 360 s wall, 300 s training over 2 epochs
    _write_record("smoke", "multitask", 0, wall=360.0, train=300.0, epochs=2)
    # a record of another configuration is not counted
    _write_record("smoke", "ce_loss", 0, wall=9999.0, train=1.0, epochs=1, chash="other")
    t = report.cost_table("smoke", ["multitask", "ce_loss"])
    row = t.loc["multitask"]
    assert (row["folds recorded"], row["folds planned"]) == (1, 2)
    assert row["s per epoch"] == pytest.approx(150.0)
    assert row["hours recorded"] == pytest.approx(0.1)
    assert row["hours to go (est.)"] == pytest.approx(0.1)      # one more fold like the first
    assert t.loc["ce_loss", "folds recorded"] == 0
    assert np.isnan(t.loc["ce_loss", "hours to go (est.)"])      # nothing to estimate from
    assert t.loc["total", "hours recorded"] == pytest.approx(0.1)
    assert t.loc["total", "folds planned"] == 4


def test_cost_table_counts_the_light_protocol_folds():
    cfg = make_config("cpu", "random_light")
    assert cfg["folds"] == [0, 1, 2] and cfg["image_size"] == 64
    t = report.cost_table("cpu", ["random_light", "multitask"])
    assert t.loc["random_light", "folds planned"] == 3
    assert t.loc["multitask", "folds planned"] == 5


def test_book_experiments_are_all_known_and_cover_the_notebooks():
    assert set(BOOK_EXPERIMENTS) <= set(EXPERIMENTS)
    assert len(set(BOOK_EXPERIMENTS)) == len(BOOK_EXPERIMENTS)
    assert BOOK_EXPERIMENTS[0] == "multitask"
    for exp, ref, _ in report.ABLATIONS:
        assert exp in BOOK_EXPERIMENTS and ref in BOOK_EXPERIMENTS


def test_evidence_run_keeps_the_hash_of_the_old_cpu_profile():
    # multitask_w32_e40 must reproduce the configuration under which its fold 0 was recorded
    # (the cpu profile before it was cut: 128 px, width 32, 40 epochs)
    cfg = make_config("cpu", "multitask_w32_e40")
    assert cfg["filters"] == [32, 64, 128, 256] and cfg["epochs"] == 40
    assert config_hash(cfg) == "f4f3fd02147d"


def test_aim_table_shortfall_and_met():
    recs = [{"metrics": {"seg_DC_mean": 0.70, "cls_AUC": 0.95}},
            {"metrics": {"seg_DC_mean": 0.80, "cls_AUC": 0.93}}]
    t = report.aim_table(recs)
    assert t.loc["DC", "mean"] == pytest.approx(0.75)
    assert t.loc["DC", "shortfall"] == pytest.approx(0.03)
    assert t.loc["DC", "sd"] == pytest.approx(np.std([0.7, 0.8], ddof=1))
    assert not t.loc["DC", "met"] and t.loc["AUC", "met"]
    assert t.loc["AUC", "folds"] == 2


def test_fold_evidence_uses_matching_records_only():
    m = {"seg_DC_mean": 0.5, "seg_JSI_mean": 0.4, "cls_ACC": 0.7, "cls_AUC": 0.75}
    _write_record("smoke", "multitask", 0, 3600.0, 3000.0, 2, metrics=m)
    _write_record("smoke", "ce_loss", 0, 10.0, 5.0, 1, metrics=m, chash="stale")
    ev = report.fold_evidence([("smoke", "multitask"), ("smoke", "ce_loss"), ("smoke", "nope")])
    assert list(ev.index) == ["smoke / multitask"]
    assert ev.loc["smoke / multitask", "DC"] == pytest.approx(50.0)
    assert ev.loc["smoke / multitask", "AUC"] == pytest.approx(0.75)
    assert ev.loc["smoke / multitask", "hours"] == pytest.approx(1.0)


def test_bench_results_append_and_read_back(tmp_path):
    out = tmp_path / "bench" / "bench.jsonl"
    quick = {"size": 128, "width": 32, "batch": 16, "train_img_per_s": 2.5, "speedup": 0.9,
             "peak_fraction": 0.5, "epoch_overhead_fraction": 0.1, "load_before": [0.5]}
    bench.append_result(out, quick, "quick")
    bench.append_result(out, {**quick, "train_img_per_s": 3.0}, "quick")
    for s, w, sec in [(128, 16, 60.0), (128, 32, 180.0), (192, 16, 130.0), (128, 16, 70.0)]:
        bench.append_result(out, {"size": s, "width": w, "epoch_seconds_518": sec}, "table")
    b = report.load_bench(out)
    assert len(b) == 6 and {"date", "git_commit", "kind"} <= set(b.columns)
    summ = report.bench_summary(b)
    assert summ.loc["project path, images/s", "value"] == "3"     # the latest run
    assert report.bench_value(b, "train_img_per_s") == 3.0 and report.bench_value(b, "speedup") == 0.9
    assert np.isnan(report.bench_value(b, "peak_gflops"))           # not in these runs
    with pytest.raises(ConfigError, match="speed_up"):
        report.bench_value(b, "speed_up")
    sw = report.bench_size_width(b)
    assert sw.loc["128 px", "width 16"] == 70.0                   # the latest point wins
    assert np.isnan(sw.loc["192 px", "width 32"])
    assert report.load_bench(tmp_path / "none.jsonl").empty


def test_train_cli_rejects_unknown_experiments_and_bad_hours():
    from busi_lib.train import main
    with pytest.raises(ConfigError, match="nope"):
        main(["--profile", "smoke", "--experiment", "multitask", "nope"])
    with pytest.raises(ConfigError, match="--hours=0"):
        main(["--profile", "smoke", "--experiment", "book", "--hours", "0"])


def test_train_cli_stops_before_a_new_fold_when_time_is_up(capsys):
    from busi_lib.train import main
    # a negative elapsed budget is refused above; a tiny one stops before the first fold
    assert main(["--profile", "smoke", "--experiment", "book", "--hours", "1e-9"]) == 0
    assert "time is up, stopping before multitask fold 0" in capsys.readouterr().out
    assert not experiment_dir("smoke", "multitask").exists()


def test_book_renders_cpu_records_without_training(monkeypatch):
    monkeypatch.delenv("BUSI_NO_TRAIN", raising=False)
    book.main(["--profile", "cpu", "--no-execute", "--no-build"])
    assert os.environ.get("BUSI_NO_TRAIN") == "1"
    monkeypatch.delenv("BUSI_NO_TRAIN")
    book.main(["--profile", "cpu", "--no-execute", "--no-build", "--train"])
    assert "BUSI_NO_TRAIN" not in os.environ


def test_growth_summary_ratios():
    import pandas as pd
    sw = pd.DataFrame({"width 16": [10.0, 40.0], "width 64": [100.0, 300.0]},
                      index=["128 px", "256 px"])
    text = report.growth_summary(sw)
    assert "3.0-4.0x as long (over the widths)" in text      # 300/100, 40/10
    assert "7.5-10.0x as long (over the sizes)" in text      # 300/40, 100/10
    assert "4x and 16x" in text
