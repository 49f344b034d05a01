"""Result tables, provenance lines and book sentences computed from records (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from busi_lib.book import booktext, runs, tables


def _r(fold, dc, auc):
    return {"fold": fold, "metrics": {"seg_DC_mean": dc, "seg_JSI_mean": dc / 2, "cls_ACC": 0.5,
                                      "cls_F1": 0.5, "cls_AUC": auc}}


def test_ablation_delta_is_paired_over_common_folds():
    ref = [_r(0, 0.50, 0.70), _r(1, 0.60, 0.80), _r(2, 0.40, 0.60)]
    # seg_only recorded on folds 0 and 1 only: its Δ must not compare with the reference's fold 2
    var = [_r(0, 0.55, 0.72), _r(1, 0.62, 0.78)]
    t = tables.ablation_table({"random_light": ref, "seg_only": var})
    row = t.loc["seg_only"]
    assert row["folds"] == "2/3" and row["Δ folds"] == 2
    assert row["DC"] == pytest.approx(58.5)                    # its own mean, in %
    assert row["ΔDC"] == pytest.approx((5 + 2) / 2)            # paired: +5 and +2 points
    # an unpaired difference of means would say 58.5 - 50 = 8.5 points
    assert row["sd ΔDC"] == pytest.approx(np.std([5, 2], ddof=1))
    assert row["ΔAUC"] == pytest.approx(0.0)                    # +0.02 and -0.02 (fraction)
    assert np.isnan(t.loc["random_light (reference)", "ΔDC"])
    # a variant with no record: NaN, zero common folds
    assert t.loc["cls_only", "Δ folds"] == 0 and np.isnan(t.loc["cls_only", "ΔDC"])


def test_ablation_single_common_fold_has_no_spread():
    t = tables.ablation_table({"random_light": [_r(0, 0.5, 0.7)], "seg_only": [_r(0, 0.6, 0.7)]})
    assert t.loc["seg_only", "ΔDC"] == pytest.approx(10.0)
    assert np.isnan(t.loc["seg_only", "sd ΔDC"])


def test_ablation_headline_names_extremes_and_fold_counts():
    ref = [_r(0, 0.50, 0.70), _r(1, 0.60, 0.80)]
    recs = {"random_light": ref, "seg_only": [_r(0, 0.55, 0.70), _r(1, 0.65, 0.80)],
            "enh_none": [_r(0, 0.40, 0.75)]}
    h = booktext.ablation_headline(tables.ablation_table(recs))
    assert h == ("ΔDC from -10.0 Dice points (enh_none, 1 fold) to +5.0 Dice points (seg_only, 2 folds); "
                 "ΔAUC from +0.000 AUC (seg_only, 2 folds) to +0.050 AUC (enh_none, 1 fold)")
    assert booktext.ablation_headline(tables.ablation_table({})) == \
        "no ablation has a fold in common with its reference yet"


def test_best_against_reference_on_common_folds():
    recs = {"random_light": [_r(0, 0.5, 0.70), _r(1, 0.6, 0.80)],
            "base_unet": [_r(0, 0.7, 0.5)], "base_fpn": [_r(0, 0.4, 0.9), _r(1, 0.5, 0.9)],
            "base_far": [_r(4, 0.99, 0.99)]}                       # no fold in common: ignored
    got = booktext.best_against_reference(recs, "random_light", "seg_DC_mean",
                                        ["base_unet", "base_fpn", "base_far", "base_x"])
    assert got == "DC: best base_unet 70.0% against random_light 50.0% (same 1 fold)"
    got = booktext.best_against_reference(recs, "random_light", "cls_AUC", ["base_unet", "base_fpn"])
    assert got == "AUC: best base_fpn 0.900 against random_light 0.750 (same 2 folds)"
    assert booktext.best_against_reference({}, "random_light", "cls_AUC", ["base_fpn"]) == \
        "AUC: random_light: no record"
    assert booktext.best_against_reference(recs, "random_light", "cls_AUC", ["base_far"]) == \
        "AUC: no candidate shares a fold with random_light yet"


def test_planned_folds_and_provenance():
    assert runs.planned_folds("cpu_v1", "seg_only") == [0, 1, 2]     # light protocol
    assert runs.planned_folds("cpu", "seg_only") == [0, 1, 2, 3, 4]
    assert runs.planned_folds("cpu", "multitask") == [0, 1, 2, 3, 4]
    rec = {"experiment": "seg_only", "profile": "cpu", "seed": 42, "data_sha256": "ab" * 32,
           "git_commit": "c" * 40, "precision": "float32", "fold": 1,
           "config": {"n_folds": 5, "image_size": 64, "epochs": 4}}
    line = runs.provenance([rec])
    assert "fold(s) 2 of the 5-fold split" in line and "commit ccccccc" in line
    assert runs.provenance([], "seg_only") == "`seg_only`: no records"


def test_glued_text_carries_no_raw_markdown(monkeypatch):
    """A {glue:text} role shows its value as plain text: glue drops code backticks and bold or
    italic asterisks from text, and leaves arithmetic and other values alone."""
    import sys
    import types

    from busi_lib.book import booktext

    got = {}
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=False: got.__setitem__(name, value)
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    booktext.glue("claim", "contradicted by `base_unet` and **`base_fpn`**; *not* 2 * 3")
    booktext.glue("n", 3)
    assert got == {"claim": "contradicted by base_unet and base_fpn; not 2 * 3", "n": 3}
    assert booktext.plain("4**2 and a * b") == "4**2 and a * b"


def test_a_numbered_table_is_shown_without_its_row_numbers(capsys):
    import pandas as pd

    from busi_lib.book import view

    df = pd.DataFrame({"metric": ["Dice", "AUC"], "ours": [0.7361, 0.9]})
    view.show(df, "caption")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "**caption**"
    assert out[1].split() == ["metric", "ours"] and out[2].split() == ["Dice", "0.74"]
    html = view.Table(view.fmt(df))._repr_html_()
    assert "<th>0</th>" not in html and "<td>0.74</td>" in html and 'class="dataframe"' in html
    view.show(df.set_index("metric"))                 # a named index is part of the table
    assert capsys.readouterr().out.splitlines()[-1].split() == ["AUC", "0.90"]
