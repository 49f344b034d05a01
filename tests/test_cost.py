"""Cost accounting, the aim table, benchmark records and the resumable training CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from busi_lib import records
from busi_lib.book import booktext, build, cost, repro_checks, runs, tables
from busi_lib.config import (ABLATIONS, BOOK_EXPERIMENTS, BOOK_EXPERIMENTS_V1, EXPERIMENTS,
                             EXPERIMENTS_V1, config_hash, make_config)
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
    t = cost.cost_table("smoke", ["multitask", "ce_loss"])
    row = t.loc["multitask"]
    assert (row["folds recorded"], row["folds planned"]) == (1, 2)
    assert row["s per epoch"] == pytest.approx(150.0)
    assert row["hours recorded"] == pytest.approx(0.1)
    assert row["hours to go (est.)"] == pytest.approx(0.1)      # one more fold like the first
    assert t.loc["ce_loss", "folds recorded"] == 0
    assert np.isnan(t.loc["ce_loss", "hours to go (est.)"])      # nothing to estimate from
    assert t.loc["total", "hours recorded"] == pytest.approx(0.1)
    assert t.loc["total", "folds planned"] == 4
    assert np.isnan(t.loc["total", "hours to go (est.)"])        # ce_loss: unknown, not zero
    t = cost.cost_table("smoke", ["multitask"])
    assert t.loc["total", "hours to go (est.)"] == pytest.approx(0.1)


def test_experiments_without_folds_are_estimated_from_the_step_benchmark():
    import pandas as pd

    machine = {"cpu": "x", "cores": 2, "cpu_bf16": True, "gpu": None}
    planned = len(runs.planned_folds("smoke", "base_unet"))
    # base_fpn: one fold recorded, 100 s of wall time on a 2-core bf16 CPU, 50 s of pure steps
    _write_record("smoke", "base_fpn", 0, wall=100.0, train=80.0, epochs=2)
    rec_path = experiment_dir("smoke", "base_fpn") / "fold0.json"
    rec = json.loads(rec_path.read_text())
    rec["machine"] = machine
    rec_path.write_text(json.dumps(rec))
    step = {"kind": "step", "profile": "smoke", "precision": "float32", "machine": machine}
    bench_rows = pd.DataFrame([
        {**step, "experiment": "base_fpn", "fold_train_s": 50.0},
        {**step, "experiment": "base_unet", "fold_train_s": 99.0},   # superseded by the next
        {**step, "experiment": "base_unet", "fold_train_s": 30.0},
        {**step, "experiment": "base_attunet", "fold_train_s": 40.0,
         "machine": {**machine, "cpu_bf16": False}},                 # no overhead for AVX2
    ])
    est = cost.step_estimates("smoke", bench_rows)
    assert est.loc["base_fpn", "overhead"] == pytest.approx(2.0)
    assert est.loc["base_unet", "fold_s"] == pytest.approx(60.0)     # 30 s x overhead 2
    assert np.isnan(est.loc["base_attunet", "fold_s"])
    t = cost.cost_table("smoke", ["base_fpn", "base_unet", "base_attunet"], bench=bench_rows)
    assert t.loc["base_unet", "hours to go (est.)"] == pytest.approx(60.0 * planned / 3600)
    assert t.loc["base_unet", "estimated from"] == "step benchmark"
    assert t.loc["base_fpn", "estimated from"] == "recorded folds"
    assert np.isnan(t.loc["base_attunet", "hours to go (est.)"])
    assert np.isnan(t.loc["total", "hours to go (est.)"])            # base_attunet unknown
    # no step rows at all: nothing is estimated for experiments without folds
    assert cost.step_estimates("smoke", pd.DataFrame()).empty
    t = cost.cost_table("smoke", ["base_unet"], bench=pd.DataFrame())
    assert np.isnan(t.loc["base_unet", "hours to go (est.)"])


def test_cost_table_total_is_the_book_experiments_only():
    _write_record("cpu_v1", "multitask", 0, wall=360.0, train=300.0, epochs=2)
    _write_record("cpu_v1", "multitask_w32_e40", 0, wall=3600.0, train=3500.0, epochs=2)
    t = cost.cost_table("cpu_v1")
    assert list(t.index[-2:]) == ["total", "multitask_w32_e40"]  # evidence run after the total
    assert t.loc["total", "hours recorded"] == pytest.approx(0.1)
    assert t.loc["multitask_w32_e40", "hours recorded"] == pytest.approx(1.0)


def test_cost_markdown_is_the_cost_table(tmp_path):
    _write_record("smoke", "multitask", 0, wall=360.0, train=300.0, epochs=2)
    md = cost.cost_markdown("smoke")
    assert md.startswith("<!-- generated by busi_lib.book.build from the fold records of profile smoke")
    row = next(line for line in md.splitlines() if line.startswith("| `multitask` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    t = cost.cost_table("smoke")
    assert cells[0] == "`multitask`" and len(cells) == 1 + len(t.columns)
    assert cells[list(t.columns).index("s per epoch") + 1] == "150"
    assert cells[list(t.columns).index("hours recorded") + 1] == "0.10"
    assert "| **total** |" in md
    assert "| — |" in md                                        # unrecorded values, not 'nan'
    assert "nan" not in md
    (tmp_path / "book").mkdir()
    build.write_generated(tmp_path, "smoke")
    assert (tmp_path / "book" / "cost_table.md").read_text() == md
    assert (tmp_path / "book" / "profiles_table.md").is_file()


def test_cost_table_counts_the_light_protocol_folds():
    cfg = make_config("cpu_v1", "random_light")
    assert cfg["folds"] == [0, 1, 2] and cfg["image_size"] == 64
    t = cost.cost_table("cpu_v1", ["random_light", "multitask"])
    assert t.loc["random_light", "folds planned"] == 3
    assert t.loc["multitask", "folds planned"] == 5


def test_book_experiments_are_all_known_and_cover_the_notebooks():
    for book, table in ((BOOK_EXPERIMENTS, EXPERIMENTS), (BOOK_EXPERIMENTS_V1, EXPERIMENTS_V1)):
        assert set(book) <= set(table)
        assert len(set(book)) == len(book)
    assert BOOK_EXPERIMENTS[0] == "multitask_grouped"          # the headline protocol first
    for exp in [*ABLATIONS, "ablation_reference", "paper_recipe"]:
        assert exp in BOOK_EXPERIMENTS
    for exp in ABLATIONS:       # an ablation differs from its reference in its own keys only
        a, r = make_config("cpu", exp), make_config("cpu", "ablation_reference")
        assert {k for k in a if a[k] != r[k]} <= set(ABLATIONS[exp])


def test_evidence_run_keeps_the_hash_of_the_old_cpu_profile():
    # multitask_w32_e40 must reproduce the configuration under which its fold 0 was recorded
    # (the cpu profile before it was cut: 128 px, width 32, 40 epochs)
    cfg = make_config("cpu_v1", "multitask_w32_e40")
    assert cfg["filters"] == [32, 64, 128, 256] and cfg["epochs"] == 40
    assert config_hash(cfg) == "f4f3fd02147d"


def test_every_committed_cpu_record_matches_todays_configuration():
    # a change of how configurations are put together (e.g. the order of the light protocol
    # and an experiment's own keys) must not orphan the committed records of the book
    from busi_lib.records import PROJECT_ROOT, load_records
    committed = PROJECT_ROOT / "results"
    for exp in BOOK_EXPERIMENTS_V1:                  # the records made before the recipe
        recs = load_records("cpu_v1", exp, committed)
        assert recs, exp
        _, current = runs.current_records("cpu_v1", exp, committed)
        assert len(current) == len(recs), exp
    for exp in BOOK_EXPERIMENTS:                     # the recipe's records made so far
        recs = load_records("cpu", exp, committed)
        _, current = runs.current_records("cpu", exp, committed)
        assert len(current) == len(recs), exp


def test_an_experiments_own_folds_win_over_the_light_protocol():
    cfg, ref = make_config("cpu_v1", "random_light_bf16"), make_config("cpu_v1", "random_light")
    assert cfg["folds"] == [0] and ref["folds"] == [0, 1, 2]
    assert cfg["precision"] == "mixed_bfloat16" and cfg["image_size"] == 64 == ref["image_size"]
    assert {k for k in cfg if cfg[k] != ref[k]} == {"folds", "precision"}


def _preds(exp, dice, prob, cls):
    import pandas as pd
    pd.DataFrame({"id": ["a", "b"], "true_class": ["benign"] * 2, "dice": dice,
                  "prob_malignant": prob, "pred_class": cls}).to_csv(
        experiment_dir("cpu_v1", exp) / "fold0_predictions.csv", index=False)


def _metrics(dc, auc):
    return {"seg_DC_mean": dc, "seg_JSI_mean": dc / 2, "cls_ACC": 0.6, "cls_AUC": auc}


def test_precision_check_compares_one_fold_against_noise():
    import pandas as pd
    assert repro_checks.precision_check("cpu_v1").empty and repro_checks.precision_paired("cpu_v1") == {}
    for fold, dc, auc in [(0, 0.40, 0.70), (1, 0.50, 0.60)]:
        _write_record("cpu_v1", "random_light", fold, 90.0, 80.0, 1, metrics=_metrics(dc, auc))
    # the bf16 run: Dice 5 points lower (sd over the two folds: 7.07), AUC 0.1 lower (sd 0.0707)
    _write_record("cpu_v1", "random_light_bf16", 0, 900.0, 850.0, 1, metrics=_metrics(0.35, 0.6))
    rec = experiment_dir("cpu_v1", "random_light_bf16") / "fold0.json"
    rec.write_text(rec.read_text().replace('"precision": "float32"',
                                           '"precision": "mixed_bfloat16"'))
    # without reseeds the yardstick is the fold-to-fold sd
    t = repro_checks.precision_check("cpu_v1")
    assert list(t.columns[:2]) == ["float32", "mixed_bfloat16"]
    assert t.loc["DC", "delta"] == pytest.approx(-5.0)
    assert t.loc["DC", "sd folds"] == pytest.approx(np.std([40, 50], ddof=1))
    assert t.loc["DC", "seeds"] == 1 and np.isnan(t.loc["DC", "sd seeds"])
    assert t.loc["DC", "within noise"] and not t.loc["AUC", "within noise"]
    _preds("random_light", [0.5, 0.7], [0.2, 0.9], ["benign"] * 2)
    _preds("random_light_bf16", [0.4, 0.7], [0.3, 0.9], ["benign", "malignant"])
    p = repro_checks.precision_paired("cpu_v1")
    v = p["variant"]
    assert v["n"] == 2 and v["dice_delta_mean"] == pytest.approx(-5.0)
    assert v["class_agreement"] == 0.5 and v["prob_max_abs_diff"] == pytest.approx(0.1)
    assert (p["reference_seconds"], p["variant_seconds"]) == (90.0, 900.0) and p["reseeds"] == []
    text = booktext.precision_sentence(t, p)
    assert "DC by -5.0 points and AUC by -0.100" in text and "sd over folds is 7.1 points" in text
    assert "lower by more than that noise in AUC" in text and "50% of the predicted" in text
    # with two reseeds (3 float32 runs on fold 0: DC 40, 44, 42 -> mean 42, sd 2) the yardstick
    # is the seed-to-seed sd: 35 < 42 - 2*2, so Dice is now lower by more than noise
    for exp, dc in [("random_light_s1", 0.44), ("random_light_s2", 0.42)]:
        _write_record("cpu_v1", exp, 0, 90.0, 80.0, 1, metrics=_metrics(dc, 0.62))
        _preds(exp, [0.5, 0.8], [0.2, 0.8], ["benign"] * 2)
    t = repro_checks.precision_check("cpu_v1")
    assert t.loc["DC", "seeds"] == 3 and t.loc["DC", "mean seeds"] == pytest.approx(42.0)
    assert t.loc["DC", "sd seeds"] == pytest.approx(2.0)
    assert not t.loc["DC", "within noise"] and not t.loc["JSI", "within noise"]  # 17.5 < 21 - 2
    p = repro_checks.precision_paired("cpu_v1")
    assert len(p["reseeds"]) == 2 and p["reseeds"][0]["dice_delta_mean"] == pytest.approx(5.0)
    text = booktext.precision_sentence(t, p)
    assert "3 float32 runs on this fold" in text and "agreed on 100% to 100%" in text
    assert booktext.precision_sentence(pd.DataFrame(), {}) == "not recorded yet"


def test_train_seed_changes_training_but_not_the_hash_when_unset():
    base = make_config("cpu_v1", "random_light")
    assert base["train_seed"] is None
    cfg = make_config("cpu_v1", "random_light_s1")
    assert cfg["train_seed"] == 1 and cfg["folds"] == [0]
    assert config_hash(cfg) != config_hash(base)
    # unset, the key is left out of the hash: same hash as without it
    assert config_hash({k: v for k, v in base.items() if k != "train_seed"}) == config_hash(base)
    with pytest.raises(ConfigError, match="train_seed=-1"):
        make_config("smoke", "multitask", train_seed=-1)


def test_aim_table_shortfall_and_met():
    recs = [{"metrics": {"seg_DC_mean": 0.70, "cls_AUC": 0.95}},
            {"metrics": {"seg_DC_mean": 0.80, "cls_AUC": 0.93}}]
    t = tables.aim_table(recs)
    assert t.loc["DC", "mean"] == pytest.approx(0.75)
    assert t.loc["DC", "shortfall"] == pytest.approx(0.03)
    assert t.loc["DC", "sd"] == pytest.approx(np.std([0.7, 0.8], ddof=1))
    assert not t.loc["DC", "met"] and t.loc["AUC", "met"]
    assert t.loc["AUC", "folds"] == 2


def test_fold_evidence_uses_matching_records_only():
    m = {"seg_DC_mean": 0.5, "seg_JSI_mean": 0.4, "cls_ACC": 0.7, "cls_AUC": 0.75}
    _write_record("smoke", "multitask", 0, 3600.0, 3000.0, 2, metrics=m)
    _write_record("smoke", "ce_loss", 0, 10.0, 5.0, 1, metrics=m, chash="stale")
    ev = tables.fold_evidence([("smoke", "multitask"), ("smoke", "ce_loss"), ("smoke", "nope")])
    assert list(ev.index) == ["smoke / multitask"]
    assert ev.loc["smoke / multitask", "DC"] == pytest.approx(50.0)
    assert ev.loc["smoke / multitask", "AUC"] == pytest.approx(0.75)
    assert ev.loc["smoke / multitask", "hours"] == pytest.approx(1.0)


def test_bench_results_append_and_read_back(tmp_path):
    out = tmp_path / "bench" / "bench.jsonl"
    quick = {"size": 128, "width": 32, "batch": 16, "train_img_per_s": 2.5, "speedup": 0.9,
             "peak_fraction": 0.5, "epoch_overhead_fraction": 0.1, "load_before": [0.5]}
    records.append_result(out, quick, "quick")
    records.append_result(out, {**quick, "train_img_per_s": 3.0}, "quick")
    for s, w, sec in [(128, 16, 60.0), (128, 32, 180.0), (192, 16, 130.0), (128, 16, 70.0)]:
        records.append_result(out, {"size": s, "width": w, "epoch_seconds_518": sec}, "table")
    # a step run has no size or width: the table's labels stay integers all the same
    records.append_result(out, {"experiment": "base_unet", "step_s": 0.1}, "step")
    b = cost.load_bench(out)
    assert list(cost.bench_size_width(b).index) == ["128 px", "192 px"]
    assert "192 px" in booktext.growth_summary(cost.bench_size_width(b))
    b = b[b["kind"] != "step"]
    assert len(b) == 6 and {"date", "git_commit", "kind"} <= set(b.columns)
    summ = cost.bench_summary(b)
    assert summ.loc["project path, images/s", "value"] == "3"     # the latest run
    assert cost.bench_value(b, "train_img_per_s") == 3.0 and cost.bench_value(b, "speedup") == 0.9
    assert np.isnan(cost.bench_value(b, "peak_gflops"))           # not in these runs
    with pytest.raises(ConfigError, match="speed_up"):
        cost.bench_value(b, "speed_up")
    sw = cost.bench_size_width(b)
    assert sw.loc["128 px", "width 16"] == 70.0                   # the latest point wins
    assert np.isnan(sw.loc["192 px", "width 32"])
    assert cost.load_bench(tmp_path / "none.jsonl").empty
    assert booktext.bench_table_check(b) == ""                       # no full run
    records.append_result(out, {"size": 128, "width": 16, "batch": 16, "train_img_per_s": 9.0,
                              "epoch_seconds": 56.0, "epoch_images": 518}, "bench")
    text = booktext.bench_table_check(cost.load_bench(out))
    assert "table gives 70 s" in text and "measured 56 s" in text and "(+25%)" in text


def test_latest_bench_prefers_full_runs_in_the_auto_precision(tmp_path):
    out = tmp_path / "bench.jsonl"
    row = {"size": 128, "width": 32, "batch": 16, "precision": "float32",
           "train_img_per_s": 4.0, "train_step_img_per_s": 4.4, "peak_gflops_float32": 80.0}
    records.append_result(out, {**row, "precision_requested": "auto"}, "bench")
    records.append_result(out, {**row, "train_img_per_s": 2.0}, "quick")   # older row: no key
    bf = {**row, "precision": "mixed_bfloat16", "precision_requested": "mixed_bfloat16",
          "train_img_per_s": 0.5, "train_step_img_per_s": 0.55, "peak_gflops_bfloat16": 8.0}
    records.append_result(out, bf, "quick")
    b = cost.load_bench(out)
    # the full run wins over a later quick one; the forced bf16 run is never "the" run
    assert cost.bench_value(b, "train_img_per_s") == 4.0
    assert cost.latest_training_bench(b[b["kind"] == "quick"])["train_img_per_s"] == 2.0
    # the comparison pairs the bf16 run with the float32 run of the same kind, size and width
    t = cost.bench_precision(b)
    assert list(t.index) == ["float32", "mixed_bfloat16"]
    assert t.loc["float32", "images/s (epoch)"] == 2.0
    assert t.loc["mixed_bfloat16", "matmul peak GFLOP/s"] == 8.0
    assert "8.0x slower" in booktext.bench_precision_sentence(b)
    # no float32 run of that size: no comparison, and the sentence says so
    assert cost.bench_precision(b[b["precision"] != "float32"]).empty
    assert "no run with" in booktext.bench_precision_sentence(b.iloc[:1])


def test_train_cli_rejects_unknown_experiments_and_bad_hours():
    from busi_lib.experiments.crossval import main
    with pytest.raises(ConfigError, match="nope"):
        main(["--profile", "smoke", "--experiment", "multitask", "nope"])
    with pytest.raises(ConfigError, match="--hours=0"):
        main(["--profile", "smoke", "--experiment", "book", "--hours", "0"])


def test_train_cli_stops_before_a_new_fold_when_time_is_up(capsys):
    from busi_lib.experiments.crossval import main

    # a negative elapsed budget is refused above; a tiny one stops before the first fold
    assert main(["--profile", "smoke", "--experiment", "book", "--hours", "1e-9"]) == 0
    assert "time is up, stopping before multitask_grouped fold 0" in capsys.readouterr().out
    assert not experiment_dir("smoke", "multitask_grouped").exists()


def test_work_plan_runs_light_experiments_breadth_first():
    from busi_lib.experiments.crossval import work_plan
    plan = work_plan("cpu_v1", ["random_light", "multitask", "seg_only", "base_unet"])
    # full protocol first, all five folds; then fold 0 of every light experiment, then fold 1, ...
    assert plan[:5] == [("multitask", k) for k in range(5)]
    assert plan[5:8] == [("random_light", 0), ("seg_only", 0), ("base_unet", 0)]
    assert plan[8:11] == [("random_light", 1), ("seg_only", 1), ("base_unet", 1)]
    assert len(plan) == 5 + 3 * 3
    # --folds narrows every experiment
    assert work_plan("cpu_v1", ["multitask", "seg_only"], {"folds": [2]}) == [("multitask", 2), ("seg_only", 2)]
    # the current profile: every experiment at the full protocol; breadth first on demand
    assert work_plan("cpu", ["multitask", "seg_only"])[:2] == [("multitask", 0), ("multitask", 1)]
    assert work_plan("cpu", ["multitask", "seg_only"], breadth_first=True)[:2] == [
        ("multitask", 0), ("seg_only", 0)]
    with pytest.raises(ConfigError):
        work_plan("cpu", ["multitask"], {"no_such_key": 1})


def test_views_never_train_they_name_what_is_missing(monkeypatch, tmp_path):
    from busi_lib.book import runs

    monkeypatch.setenv("BUSI_RESULTS", str(tmp_path))
    notes = []
    monkeypatch.setattr(runs, "note", notes.append)
    assert runs.experiment_records("smoke", "multitask_grouped") == []
    assert not list(tmp_path.rglob("*.json")), "a view wrote records"
    assert "fold(s) 1, 2 not recorded" in notes[0]
    assert "busi-train --profile smoke --experiment multitask_grouped" in notes[0]
    notes.clear()
    assert runs.experiment_records("smoke", "multitask_grouped", seed=7) == []
    assert "--set seed=7 --results-dir results/seed7" in notes[0]


def test_growth_summary_ratios():
    import pandas as pd
    sw = pd.DataFrame({"width 16": [10.0, 40.0], "width 64": [100.0, 300.0]},
                      index=["128 px", "256 px"])
    text = booktext.growth_summary(sw)
    assert "3.0-4.0x as long (over the widths)" in text      # 300/100, 40/10
    assert "7.5-10.0x as long (over the sizes)" in text      # 300/40, 100/10
    assert "4x and 16x" in text


def test_to_go_sentence_counts_folds_and_hours():
    import pandas as pd

    t = pd.DataFrame({"folds recorded": [5, 2, 0], "folds planned": [5, 5, 5],
                      "hours to go (est.)": [0.0, 1.5, 2.0]}, index=["a", "b", "c"])
    assert cost.to_go_sentence(t, ["a"]) == "all 1 rows have every planned fold"
    assert cost.to_go_sentence(t, ["a", "b", "c"]) == (
        "2 of 3 rows have fewer folds than planned: 8 folds to go, about 3.5 hours by the cost "
        "table's estimates")
    t.loc["c", "hours to go (est.)"] = np.nan
    assert cost.to_go_sentence(t, ["b", "c"]).endswith("the time of `c` is not known yet")
    with pytest.raises(ConfigError, match="'zz'"):
        cost.to_go_sentence(t, ["a", "zz"])
    t["folds diverged"] = [0, 3, 0]          # b: 2 recorded + 3 diverged = 5 planned
    t.loc["c", "hours to go (est.)"] = 2.0
    assert cost.to_go_sentence(t, ["a", "b", "c"]) == (
        "1 of 3 rows have fewer folds than planned: 5 folds to go, about 2.0 hours by the cost "
        "table's estimates; 3 folds of `b` diverged (recorded as failures, not to go)")
    assert cost.to_go_sentence(t, ["a", "b"]) == (
        "all 2 rows have every planned fold; 3 folds of `b` diverged (recorded as failures, "
        "not to go)")


def test_gpu_timings_come_from_the_gpu_records_only():
    def write(fold, gpu, wall, epochs_s):
        _write_record("smoke", "multitask", fold, wall=wall, train=wall, epochs=len(epochs_s))
        p = experiment_dir("smoke", "multitask") / f"fold{fold}.json"
        rec = json.loads(p.read_text())
        rec["machine"] = {"gpu": gpu, "backend": "jax"}
        rec["history"] = [{"seconds": s} for s in epochs_s]
        p.write_text(json.dumps(rec))

    assert cost.gpu_timings("smoke").empty
    assert "No fold of this profile was trained on a GPU" in cost.gpu_timings_markdown("smoke")
    write(0, "H200", 85.2, [39.0, 1.0, 3.0])
    write(1, "H200", 174.4, [76.4, 2.0, 2.0])
    write(2, None, 900.0, [20.0, 20.0])                  # a CPU fold: not a GPU timing
    t = cost.gpu_timings("smoke")
    assert t.values.tolist() == [["multitask", "H200", 2, "85-174", "39-76", 2.0]]
    md = cost.gpu_timings_markdown("smoke")
    assert "| `multitask` | H200 | 2 | 85-174 | 39-76 | 2.0 |" in md
