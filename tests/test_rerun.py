"""busi_lib.experiments.rerun: a recorded fold trained again from scratch, compared with its record."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from busi_lib.errors import ConfigError, DataError
from busi_lib.experiments import rerun


def _rec(**metrics):
    return {"config_hash": "abc", "fold": 0, "data_sha256": "d", "metrics": metrics}


def test_compare_identical_records_agree():
    a = _rec(seg_DC_mean=0.5, cls_AUC=0.7)
    c = rerun.compare_records(a, json.loads(json.dumps(a)))
    assert c["agree"] and c["max_abs_diff"] == 0.0
    assert list(rerun.comparison_table(c).index) == ["cls_AUC", "seg_DC_mean"]


def test_compare_reports_the_largest_difference():
    c = rerun.compare_records(_rec(seg_DC_mean=0.5, cls_AUC=0.7), _rec(seg_DC_mean=0.5, cls_AUC=0.72))
    assert not c["agree"]
    assert c["max_abs_diff"] == pytest.approx(0.02)
    assert c["metrics"]["cls_AUC"]["abs_diff"] == pytest.approx(0.02)
    # a looser tolerance is a deliberate choice, and then they agree
    assert rerun.compare_records(_rec(a=0.5), _rec(a=0.52), tolerance=0.05)["agree"]


def test_compare_nan_equal_nan():
    c = rerun.compare_records(_rec(cls_AUC=float("nan")), _rec(cls_AUC=float("nan")))
    assert c["agree"]


def test_compare_per_image_differences():
    p1 = pd.DataFrame({"id": ["a", "b"], "prob_malignant": [0.1, 0.9], "dice": [0.5, 0.7]})
    p2 = pd.DataFrame({"id": ["b", "a"], "prob_malignant": [0.8, 0.1], "dice": [0.7, 0.5]})
    c = rerun.compare_records(_rec(x=1.0), _rec(x=1.0), p1, p2)
    assert c["n_images"] == 2
    assert c["max_abs_diff_prob"] == pytest.approx(0.1)
    assert c["max_abs_diff_dice"] == 0.0
    with pytest.raises(DataError, match="only one"):
        rerun.compare_records(_rec(x=1.0), _rec(x=1.0), p1, p2.assign(id=["b", "c"]))


@pytest.mark.parametrize("key", ["config_hash", "fold", "data_sha256"])
def test_compare_refuses_different_runs(key):
    b = _rec(x=1.0)
    b[key] = "other"
    with pytest.raises(ConfigError, match=key):
        rerun.compare_records(_rec(x=1.0), b)


def test_compare_refuses_different_metric_sets():
    with pytest.raises(ConfigError, match="cls_AUC"):
        rerun.compare_records(_rec(x=1.0), _rec(x=1.0, cls_AUC=0.5))


def test_rerun_needs_a_record(tmp_path):
    with pytest.raises(DataError, match="no record"):
        rerun.rerun_fold("smoke", "multitask", 0, results_dir=tmp_path)
    with pytest.raises(ConfigError, match="nonexistent"):
        rerun.rerun_fold("smoke", "nonexistent", 0, results_dir=tmp_path)


@pytest.mark.slow
def test_rerun_reproduces_a_fold_bit_for_bit(tmp_path):
    """Train fold 0 (tiny synthetic data), rerun it from scratch: every metric is identical."""
    pytest.importorskip("keras")
    from synthetic import make_busi

    from busi_lib.experiments import crossval

    data = make_busi(tmp_path / "busi" / "Dataset_BUSI_with_GT")
    res = tmp_path / "results"
    os.environ["BUSI_CACHE"] = str(tmp_path / "cache")
    tiny = dict(epochs=2, external=False)
    crossval.run_cv("smoke", "multitask", data_dir=data, results_dir=res, verbose=0, folds=[0], **tiny)
    with pytest.raises(ConfigError, match="config_hash"):   # not the recorded configuration
        rerun.rerun_fold("smoke", "multitask", 0, data_dir=data, results_dir=res, verbose=0)
    out = rerun.rerun_fold("smoke", "multitask", 0, data_dir=data, results_dir=res, verbose=0,
                           **tiny)
    assert out["agree"] and out["max_abs_diff"] == 0.0 and out["max_abs_diff_prob"] == 0.0
    assert out["n_images"] == 8
    saved = rerun.load_reruns("smoke", res)
    assert len(saved) == 1 and saved[0]["experiment"] == "multitask" and saved[0]["agree"]
    # the rerun trained in its own folder: beside the records only the comparison was added
    assert sorted(p.name for p in (res / "smoke").iterdir()) == ["multitask", "reruns"]


def test_rerun_tables(tmp_path):
    from busi_lib import records
    from busi_lib.book import repro_checks

    assert repro_checks.rerun_table("cpu", tmp_path).empty
    assert repro_checks.rerun_metrics("cpu", "multitask", 0, tmp_path).empty
    comp = rerun.compare_records(_rec(seg_DC_mean=0.5, cls_AUC=0.7), _rec(seg_DC_mean=0.5, cls_AUC=0.7))
    path = rerun.rerun_path("cpu", "multitask", 0, tmp_path)
    path.parent.mkdir(parents=True)
    records.write_json(path, {"experiment": "multitask", "fold": 0, "recorded_git_commit": "a" * 40,
                              "rerun_git_commit": "b" * 40 + "+dirty", "date": "2026-11-26",
                              "rerun_wall_seconds": 900.0, **comp})
    t = repro_checks.rerun_table("cpu", tmp_path)
    assert t.loc[0, "fold"] == 1 and t.loc[0, "rerun minutes"] == 15.0
    assert t.loc[0, "recorded by"] == "aaaaaaa" and t.loc[0, "rerun by"] == "bbbbbbb+dirty"
    assert t.loc[0, "same (tolerance)"] == "yes (1e-06)"
    m = repro_checks.rerun_metrics("cpu", "multitask", 0, tmp_path)
    assert list(m.columns) == ["recorded", "rerun", "abs_diff"] and m.loc["cls_AUC", "rerun"] == 0.7
