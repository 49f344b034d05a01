"""busi_lib.book.training_chapter: chapter 3's sections glue what the records say, and report
(never train) what is missing."""

from __future__ import annotations

import pandas as pd
import pytest

from busi_lib.book import training_chapter as ch
from busi_lib.records import PROJECT_ROOT, load_records


@pytest.fixture
def captured(monkeypatch):
    """Everything the chapter functions glue, show and say, instead of displaying it."""
    out = {"glue": {}, "shown": [], "md": [], "note": []}
    monkeypatch.setattr(ch.booktext, "glue", lambda k, v, display=False: out["glue"].__setitem__(k, v))
    monkeypatch.setattr(ch.view, "show", lambda df, caption="", **k: out["shown"].append((caption, df)))
    monkeypatch.setattr(ch.view, "md", lambda s: out["md"].append(s))
    monkeypatch.setattr(ch.view, "note", lambda s: out["note"].append(s))
    return out


def _table(**cols):
    return pd.DataFrame(cols, index=["mean"])


def test_first_page_values_come_from_the_mean_row(captured):
    seg = _table(DC=71.234, JSI=60.5)
    cls = _table(ACC=85.04, REC=66.0, AUC=0.8912)
    ch.glue_first_page("cpu", [{"fold": 0}], seg, cls)
    g = captured["glue"]
    assert g["ours_seg_dc"] == "0.712" and g["ours_seg_jsi"] == "0.605"
    assert g["ours_cls_acc"] == "85.0 %" and g["ours_cls_rec"] == "66.0 %"
    assert g["ours_cls_auc"] == "0.891" and g["ours_folds"] == "1" and g["ours_profile"] == "cpu"


def test_first_page_without_records_says_so(captured):
    ch.glue_first_page("cpu", [], _table(DC=1.0, JSI=1.0), _table(ACC=1.0, REC=1.0, AUC=1.0))
    assert {v for k, v in captured["glue"].items() if k.startswith("ours_") and k not in
            ("ours_profile", "ours_folds")} == {ch.NA}


def test_missing_trials_are_reported_not_trained(captured, tmp_path, monkeypatch):
    monkeypatch.setenv("BUSI_RESULTS", str(tmp_path))
    assert ch.tuning_trials("smoke", 42) == []
    assert captured["note"] and "busi_lib.experiments.tune --stage 1" in captured["note"][0]
    ch.robustness([])
    assert "--stage 4" in captured["note"][-1]
    ch.reruns("smoke")
    assert captured["glue"]["rerun_result"] == "n/a (no rerun recorded)"


def test_aim_glue_matches_the_records(captured):
    recs = load_records("smoke", "multitask_grouped", PROJECT_ROOT / "results")
    assert recs, "the committed smoke records of multitask_grouped are missing"
    ch.against_the_aim("smoke", recs)
    dice = sum(r["metrics"]["seg_DC_mean"] for r in recs) / len(recs)
    assert captured["glue"]["head_dc"].startswith(f"{dice:.3f} (sd ")
    assert captured["glue"]["aim_dc"].startswith(f"{dice:.3f} against 0.78")
    caption, aim = captured["shown"][0]
    assert f"over {len(recs)} fold(s)" in caption and aim.loc["DC", "mean"] == pytest.approx(dice)
