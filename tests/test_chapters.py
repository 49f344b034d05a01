"""The chapter modules of busi_lib.book (chapters 4, 5, 6 and 8): what they glue, from known
inputs, and what they say when records are missing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from busi_lib.book import (ablations_chapter, baselines_chapter, birads_chapter, peers_chapter,
                           try_model_chapter)
from busi_lib.config import make_config


@pytest.fixture
def glued(monkeypatch):
    """What the chapters glue, show and say (nothing is displayed)."""
    out = {"glue": {}, "shown": [], "md": [], "note": []}
    for mod in (ablations_chapter, baselines_chapter, birads_chapter, peers_chapter,
                try_model_chapter):
        monkeypatch.setattr(mod.booktext, "glue",
                            lambda k, v, display=False: out["glue"].__setitem__(k, v))
        monkeypatch.setattr(mod.view, "show",
                            lambda df, caption="", **k: out["shown"].append((caption, df)))
        monkeypatch.setattr(mod.view, "md", lambda s: out["md"].append(s))
        monkeypatch.setattr(mod.view, "note", lambda s: out["note"].append(s))
    return out


def test_birads_without_records_glues_not_recorded(glued):
    birads_chapter.glue_opening(None, None, None, pd.DataFrame())
    g = glued["glue"]
    assert g["cv_ece"] == g["ext_auc"] == g["ext_dice"] == birads_chapter.NA
    assert g["ext_rad_auc"] == "n/a (BUS-BRA not found)"
    assert g["ext_calibration"].startswith("no number yet")


def test_birads_glues_the_calibration_table_and_the_ensemble_row(glued):
    cal = pd.DataFrame({"ECE before": [0.1234, 0.3], "ECE after": [0.0456, 0.2],
                        "Brier before": [0.15, 0.2], "Brier of the base rate": [0.22, 0.23]},
                       index=["BUSI (cross-validation)", "BUS-BRA (external)"])
    ens_t = pd.DataFrame([{"AUC": 0.7, "AUC 95% CI low": 0.65, "AUC 95% CI high": 0.75,
                           "Dice mean": 0.7123},
                          {"AUC": 0.92, "AUC 95% CI low": 0.9, "AUC 95% CI high": 0.94,
                           "Dice mean": float("nan")}])
    birads_chapter.glue_opening(cal, object(), object(), ens_t)
    g = glued["glue"]
    assert g["cv_ece"] == "0.123" and g["cv_ece_after"] == "0.046"
    assert g["ext_calibration"] == "an ECE of 0.300 before and 0.200 after"
    assert g["ext_auc"] == "0.700 (95% CI 0.650-0.750)" and g["ext_dice"] == "71.2%"
    assert g["ext_rad_auc"] == "0.920 (95% CI 0.900-0.940)"


def _cls_table(variants):
    return pd.DataFrame({"variant": variants, "metric": "AUC", "folds": 0})


@pytest.mark.parametrize("recorded,no_imagenet,start", [
    ([], [], "No classification baseline is recorded yet"),
    (["base_vgg19"], ["base_vgg19"], "ImageNet weights were not used for any of the 1"),
    (["base_vgg19", "base_resnet50"], ["base_vgg19"], "ImageNet weights were not used for 1 of the 2"),
    (["base_vgg19"], [], "The build notes of the classification baselines name no missing"),
])
def test_baselines_say_where_imagenet_weights_were_missing(glued, monkeypatch, recorded,
                                                           no_imagenet, start):
    for name in ("verdict_tally", "baseline_claim"):
        monkeypatch.setattr(baselines_chapter.comparisons, name, lambda *a, **k: "x")
    monkeypatch.setattr(baselines_chapter.cost, "to_go_sentence", lambda *a, **k: "x")
    recs = {e: ([{"fold": 0}] if e in recorded else []) for e in baselines_chapter.CLS}
    cfg = make_config("smoke", baselines_chapter.REFERENCE)
    baselines_chapter.glue_opening("smoke", cfg, pd.DataFrame(), pd.DataFrame(), recs,
                                   no_imagenet, pd.DataFrame(), None)
    assert glued["glue"]["baseline_weights"].startswith(start)


def test_ablations_count_the_variants_recorded_on_all_folds(glued, monkeypatch):
    monkeypatch.setattr(ablations_chapter.comparisons, "claim_tally", lambda t: "x")
    monkeypatch.setattr(ablations_chapter.comparisons, "yardstick_sentence", lambda y, a: "y")
    cfg = make_config("smoke", ablations_chapter.REFERENCE)
    n = len(ablations_chapter.runs.planned_folds("smoke", ablations_chapter.REFERENCE))
    recs = {v: [{"fold": k} for k in range(n)] for v in ablations_chapter.VARIANTS}
    recs[ablations_chapter.REFERENCE] = [{"fold": 0}]
    ablations_chapter.glue_opening("smoke", cfg, pd.DataFrame(), pd.DataFrame(), recs, 0.02)
    assert glued["glue"]["ablation_recorded"] == (
        f"All {len(ablations_chapter.VARIANTS)} variants are recorded on all {n} folds")
    recs[ablations_chapter.VARIANTS[0]] = []
    ablations_chapter.glue_opening("smoke", cfg, pd.DataFrame(), pd.DataFrame(), recs, 0.02)
    assert glued["glue"]["ablation_recorded"].startswith(
        f"So far {len(ablations_chapter.VARIANTS) - 1} of the {len(ablations_chapter.VARIANTS)}")


class _Predictor:
    name, fold_weights = "m_cpu", [0, 1, 2]


def test_try_model_counts_lesions_and_bands(glued, monkeypatch):
    monkeypatch.setattr(try_model_chapter.transfer, "selection_view", lambda profile: None)
    ok = [(Path("a.png"), {"lesion_found": True, "birads_band": "4A"}),
          (Path("b.png"), {"lesion_found": True, "birads_band": "4A"}),
          (Path("c.png"), {"lesion_found": False, "birads_band": None})]
    try_model_chapter.glue_opening(_Predictor(), False, "cpu", [p for p, _ in ok] + [Path("d")],
                                   ok, None, None, None, None)
    g = glued["glue"]
    assert g["try_model"] == "m_cpu (3 fold models)" and g["try_n"] == "4"
    assert g["try_found"] == "2" and g["try_bands"] == "4A (2), none (1)"
    assert g["try_expect"] == "nothing (no release record)"
    assert g["try_external"] == "This model was not evaluated on BUS-BRA."
    assert "--bench 20" in g["try_speed"]


def test_try_model_without_busbra_notes_it(glued, tmp_path):
    assert try_model_chapter.on_busbra(tmp_path) == (None, None)
    assert "not evaluated on BUS-BRA" in glued["note"][-1]
    assert try_model_chapter.release_record(tmp_path) is None


def test_busbra_failures_are_counted_by_pathology_and_scanner():
    ens = pd.DataFrame({"dice": [0.0, 0.05, 0.5, 0.9, float("nan")],
                        "pathology": ["benign", "malignant", "benign", "malignant", "benign"],
                        "device": ["A", "A", "B", "A", "B"]})
    s = birads_chapter.failure_sentence(ens)
    assert s.startswith("2 of 4 BUS-BRA images (50 %) have a Dice below 0.1")
    assert "(benign 1, malignant 1)" in s and "by scanner: A 2 of 3." in s


def test_headline_rows_quote_the_paper_and_compute_ours(monkeypatch):
    recs = [{"metrics": {"seg_DC_mean": d, "cls_AUC": a}} for d, a in ((0.7, 0.8), (0.8, 0.9))]
    monkeypatch.setattr(try_model_chapter.runs, "experiment_records", lambda *a, **k: recs)
    rows = try_model_chapter.headline_rows("cpu", 42, None, None).set_index("what")
    assert rows.loc["paper, as reported", "Dice"] == pytest.approx(0.8481)   # Table 1, as printed
    r = rows.loc["ours, duplicate-grouped folds"]
    assert r["Dice"] == pytest.approx(0.75) and r["AUC"] == pytest.approx(0.85)
    assert r["Dice low"] < 0.75 < r["Dice high"] and r["n"] == "2 folds"
    assert "released model" not in rows.index          # no BUS-BRA without a release record


def test_the_bottom_line_figure_is_written_without_a_release(tmp_path, monkeypatch):
    recs = [{"metrics": {"seg_DC_mean": 0.7, "cls_AUC": 0.8}}] * 2
    monkeypatch.setattr(try_model_chapter.runs, "experiment_records", lambda *a, **k: recs)
    png = tmp_path / "bottom_line.png"
    rows = try_model_chapter.save_headline_figure(png, "smoke", 42, tmp_path / "no_release")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(rows["data"]) == ["BUSI"] * 4                 # the paper and our three rows


def _curated_rows(normal_lesions: int = 0):
    """Four folds of predictions; ``normal_lesions`` benign images per fold called normal by
    a small margin (their normal probability just above their benign one)."""
    rows = []
    for k, d in enumerate((0.70, 0.72, 0.74, 0.76)):
        rows += [dict(fold=k, true_class="benign", dice=d, pred_area_frac=0.1,
                      pred_class="benign", prob_benign=0.7, prob_malignant=0.2, prob_normal=0.1),
                 dict(fold=k, true_class="malignant", dice=d - 0.1, pred_area_frac=0.1,
                      pred_class="malignant", prob_benign=0.1, prob_malignant=0.8,
                      prob_normal=0.1),
                 dict(fold=k, true_class="normal", dice=0.0, pred_area_frac=0.0,
                      pred_class="normal", prob_benign=0.05, prob_malignant=0.1,
                      prob_normal=0.85)]
        rows += [dict(fold=k, true_class="benign", dice=0.6, pred_area_frac=0.1,
                      pred_class="normal", prob_benign=0.4, prob_malignant=0.15,
                      prob_normal=0.45)] * normal_lesions
    return rows


def _rec(fold: int, weights: list, epochs: int = 60, oversample: str = "none") -> dict:
    """The parts of a curated fold record the chapter reads."""
    return {"fold": fold, "class_weights": weights, "epochs_run": epochs,
            "config": {"batch_size": 8, "oversample": oversample}}


def _only_reference(recs):
    """``runs.experiment_records`` with ``recs`` for every experiment but the curated
    candidate, which has no fold yet."""
    return lambda profile, name, **k: [] if name == peers_chapter.CURATED_CANDIDATE else recs


def _curated_val(right: int, wrong: int) -> pd.DataFrame:
    """Validation predictions of four folds: ``right`` images called right, then ``wrong``
    called wrong, per fold (the same ids in every training)."""
    rows = []
    for k in range(4):
        rows += [dict(fold=k, id=f"v{k}_{i}", true_class="benign",
                      pred_class="benign" if i < right else "normal",
                      prob_benign=0.7 if i < right else 0.4, prob_malignant=0.2,
                      prob_normal=0.1 if i < right else 0.4, pred_area_frac=0.1)
                 for i in range(right + wrong)]
    return pd.DataFrame(rows)


def test_peers_curated_candidate_replaces_the_reference_only_when_its_rule_keeps_it(
        glued, monkeypatch):
    """All four candidate folds recorded: the candidate, clearly better on the validation
    parts, is shown on the test folds; equal to the reference, it is not."""
    recs = [_rec(k, [1.0, 1.0, 1.0]) for k in range(4)]
    monkeypatch.setattr(peers_chapter.runs, "experiment_records", lambda *a, **k: recs)
    test = {peers_chapter.CURATED: _curated_rows(normal_lesions=3),
            peers_chapter.CURATED_CANDIDATE: _curated_rows()}
    monkeypatch.setattr(peers_chapter.runs, "predictions",
                        lambda profile, name, **k: pd.DataFrame(test[name]))
    val = {peers_chapter.CURATED: _curated_val(10, 10),
           peers_chapter.CURATED_CANDIDATE: _curated_val(18, 2)}
    monkeypatch.setattr(peers_chapter, "load_predictions",
                        lambda profile, name, *a, **k: val[name])
    assert peers_chapter.curated_training("cpu", 42) == peers_chapter.CURATED_CANDIDATE
    assert "so it replaces `peer_curated` below" in glued["md"][-1]
    summary = peers_chapter.curated("cpu", 42).set_index("metric")
    assert summary.loc["3-class accuracy", "ours, mean of folds"] == pytest.approx(1.0)
    assert any("training `peer_curated_os`" in c for c, _ in glued["shown"])
    val[peers_chapter.CURATED_CANDIDATE] = _curated_val(10, 10)
    assert peers_chapter.curated_training("cpu", 42) == peers_chapter.CURATED
    assert "`peer_curated` stays" in glued["md"][-1]


def test_peers_curated_candidate_verdict_says_when_the_trainings_ran_unequal_lengths(
        glued, monkeypatch):
    """The candidate ran half the epochs over oversampled images: the chapter shows both
    trainings' steps, from the committed fold table, and says the verdict mixes the two."""
    recs = {peers_chapter.CURATED: [_rec(k, [1.0, 1.0, 1.0]) for k in range(4)],
            peers_chapter.CURATED_CANDIDATE: [_rec(k, [1.0, 1.0, 1.0], 30, "peer")
                                              for k in range(4)]}
    monkeypatch.setattr(peers_chapter.runs, "experiment_records",
                        lambda profile, name, **k: recs[name])
    val = {peers_chapter.CURATED: _curated_val(10, 10),
           peers_chapter.CURATED_CANDIDATE: _curated_val(18, 2)}
    monkeypatch.setattr(peers_chapter, "load_predictions",
                        lambda profile, name, *a, **k: val[name])
    classes = ["benign"] * 10 + ["malignant"] * 7 + ["normal"] * 3
    table = pd.DataFrame({"class": classes * 4, "fold": [k for k in range(4) for _ in classes]})
    monkeypatch.setattr(peers_chapter, "split_table", lambda *a: table)
    assert peers_chapter.curated_training("cpu", 42) == peers_chapter.CURATED_CANDIDATE
    caption, shown = glued["shown"][-1]
    assert caption.startswith("How long each training ran")
    # 60 training images per fold: 60 epochs x 8 steps against 30 x ceil(186 / 8) = 30 x 24
    assert shown["gradient steps per fold"].tolist() == [480, 720]
    assert "(1.50 times as many steps)" in glued["md"][-1]


def test_peers_curated_candidate_with_folds_missing_is_not_judged(glued, monkeypatch):
    recs = [_rec(0, [1.0, 1.0, 1.0])]
    monkeypatch.setattr(peers_chapter.runs, "experiment_records", lambda *a, **k: recs)
    monkeypatch.setattr(peers_chapter, "load_predictions",
                        lambda *a, **k: pytest.fail("read predictions before all folds exist"))
    assert peers_chapter.curated_training("cpu", 42) == peers_chapter.CURATED
    assert "1 of its 4 folds is trained" in glued["md"][-1]
    assert not glued["shown"]


def test_peers_curated_applies_the_call_chosen_on_validation(glued, monkeypatch):
    """Validation predictions where undoing the class weights clearly helps: the chapter shows
    the choice and the test folds are called that way (the lesions called normal by arg-max
    become benign)."""
    recs = [_rec(k, [0.5, 0.7, 1.8]) for k in range(4)]
    monkeypatch.setattr(peers_chapter.runs, "experiment_records", _only_reference(recs))
    monkeypatch.setattr(peers_chapter.runs, "predictions",
                        lambda *a, **k: pd.DataFrame(_curated_rows(normal_lesions=2)))
    monkeypatch.setattr(peers_chapter, "load_predictions",
                        lambda *a, **k: pd.DataFrame(_curated_rows(normal_lesions=6)))
    summary = peers_chapter.curated("cpu", 42).set_index("metric")
    assert summary.loc["3-class accuracy", "ours, mean of folds"] == pytest.approx(1.0)
    captions = [c for c, _ in glued["shown"]]
    assert captions[0].startswith("The three-class call, chosen on the validation parts")
    assert "three-class call: class weights undone" in captions[1]
    assert "None of its 4 folds is trained yet" in glued["md"][0]
    assert "So the test folds are called by class weights undone" in glued["md"][1]
    assert not glued["note"]


def test_peers_curated_glues_ours_beside_theirs(glued, monkeypatch):
    """Ours from the fold predictions (mean of folds, t interval), the peer's as reported."""
    rows = _curated_rows()
    recs = [_rec(k, [1.0, 1.0, 1.0]) for k in range(4)]
    monkeypatch.setattr(peers_chapter.runs, "experiment_records", _only_reference(recs))
    monkeypatch.setattr(peers_chapter.runs, "predictions", lambda *a, **k: pd.DataFrame(rows))
    monkeypatch.setattr(peers_chapter, "load_predictions", lambda *a, **k: pd.DataFrame())
    summary = peers_chapter.curated("cpu", 42).set_index("metric")
    assert "validation predictions are not all recorded" in glued["note"][0]
    assert summary.loc["Dice, benign images", "ours, mean of folds"] == pytest.approx(0.73)
    assert summary.loc["Dice, normal images", "ours, mean of folds"] == pytest.approx(1.0)
    text = glued["glue"]["peer_curated_opening"]
    assert text.startswith("our network reaches Dice on benign images 0.730 (")
    assert "3-class accuracy 1.000" in text and text.endswith("they report 0.773, 0.711 and 0.802")
    captions = [c for c, _ in glued["shown"]]
    assert captions[1] == "Ours per test fold" and captions[-1] == "What differs"
    assert captions[2].startswith("The same predictions with the peer's prediction refining")
    # nothing to refine here (masks and classes agree): the same numbers, said in words
    assert glued["md"][-2].startswith("With the peer's refining, ours moves from 0.730 to 0.730")
    assert "ours calls 0 of 8 lesions normal" in glued["md"][-2]
    # every lesion has a mask: the benign gap (0.730 < 0.773) is in the outlines
    assert captions[3].startswith("Where the lesion Dice is lost")
    assert glued["md"][-1].startswith("On benign images, 0% get no mask at all")
    assert "outlines fall short too" in glued["md"][-1]


def test_peers_curated_without_records_says_so(glued, monkeypatch):
    monkeypatch.setattr(peers_chapter.runs, "experiment_records", lambda *a, **k: [])
    assert peers_chapter.curated("cpu", 42) is None
    assert glued["glue"]["peer_curated_opening"] == "our network on this protocol is not recorded yet"


def test_peers_segbench_pairs_the_splits_recorded_at_both_sizes(glued, monkeypatch):
    def recs(size, dice):
        return [{"fold": k, "config": {"image_size": size}, "epochs_run": 60,
                 "metrics": {"seg_DC_mean": d, "seg_JSI_mean": d - 0.1, "seg_DC_pooled": d,
                             "seg_JSI_pooled": d - 0.1, "cls_AUC": 0.9}}
                for k, d in dice.items()]
    by = {"peer_segbench_128": recs(128, {0: 0.70, 1: 0.72, 2: 0.76}),
          "peer_segbench": recs(256, {0: 0.74, 1: 0.73})}
    monkeypatch.setattr(peers_chapter.runs, "experiment_records", lambda p, e, **k: by[e])
    out = peers_chapter.segbench("cpu", 42)
    assert out["peer_segbench"].set_index("metric").loc["Dice, mean per image",
                                                         "splits"] == 2
    (caption, table), (last, differs) = glued["shown"][-2:]
    assert caption.startswith("The same splits at both image sizes")
    assert last == "What differs" and "60 epochs" in differs.set_index("aspect").loc[
        "training", "ours"]
    assert table["difference"].round(3).tolist() == [0.04, 0.01]
    assert "On the 2 of 3 splits trained at both sizes" in glued["md"][-1]
    assert glued["glue"]["peer_segbench_dice"].startswith("0.735 (")
    said = glued["glue"]["peer_segbench_opening"]
    assert said.startswith("our network's mean per-image Dice is 0.735 (")
    assert "at their 256 px (mean of 2 of its 3 splits) and 0.727 (" in said
    assert said.endswith("at our 128 px (mean of its 3 splits), against the 0.799 CMUNeXt reports")


def test_try_model_candidate_pairs_with_base_and_release_and_states_the_verdict(glued,
                                                                                monkeypatch):
    def recs(dice, auc):
        return [{"fold": k, "metrics": {"seg_DC_mean": d, "cls_AUC": a}}
                for k, (d, a) in enumerate(zip(dice, auc))]

    by = {"multitask_grouped": recs([0.70, 0.71, 0.72, 0.70, 0.71], [0.88] * 5),
          "robust_grouped_e60": recs([0.73, 0.74, 0.75, 0.73, 0.74], [0.90, 0.89, 0.91, 0.90,
                                                                      0.90]),
          "trivial_grouped": recs([0.72, 0.73, 0.74, 0.72, 0.735], [0.90, 0.89, 0.90, 0.91,
                                                                    0.90])}
    monkeypatch.setattr(try_model_chapter.runs, "experiment_records",
                        lambda profile, e, **k: by[e])
    ens = pd.DataFrame({"id": range(40), "pathology": ["benign", "malignant"] * 20,
                        "case": range(40),
                        "prob_malignant": [0.2, 0.7] * 20, "dice": [0.6] * 40})
    monkeypatch.setattr(try_model_chapter.external, "load_ensemble",
                        lambda *a, **k: (ens, "src"))
    v = try_model_chapter.candidate("cpu", 42, n_boot=20)["trivial_grouped"]
    assert not v["replace"] and v["reason"] == "Dice below the release's"     # -0.009 a fold
    paired = glued["shown"][0][1]
    assert list(paired.index) == ["multitask_grouped", "robust_grouped_e60"]
    assert paired.loc["multitask_grouped", "Δ Dice (95% CI)"].startswith("+0.021 (+0.018 to")
    bb = glued["shown"][1][1]
    assert bb.loc["trivial_grouped", "BUS-BRA AUC (95% CI)"].startswith("1.000")
    assert bb.loc["trivial_grouped", "Δ AUC against the candidate's base (paired, 95% CI)"] \
        == "+0.000 (+0.000 to +0.000)"                      # the same ensemble twice
    assert bb.loc["multitask_grouped", "Δ AUC against the candidate's base (paired, 95% CI)"] \
        == "—"
    text = glued["glue"]["try_candidate"]
    assert "so the release stays as it is. On BUS-BRA, looked at once" in text
    assert text.endswith("(paired difference +0.000 (+0.000 to +0.000)) and 1.000 (1.000-1.000) "
                         "for the release.")


def _demo_folder(root: Path) -> Path:
    from busi_lib.data import busbra

    for i in busbra.DEMO_IDS:
        for sub, name in (("Images", i), ("Masks", i.replace("bus_", "mask_"))):
            (root / sub).mkdir(parents=True, exist_ok=True)
            (root / sub / f"{name}.png").write_bytes(b"png")
    (root / "bus_data.csv").write_text(busbra.DEMO_TABLE)
    return root


def test_try_model_fetches_the_demo_images_where_busbra_is_missing(glued, monkeypatch,
                                                                   tmp_path):
    from busi_lib.data import busbra

    monkeypatch.setattr(try_model_chapter, "locate_busbra", lambda: None)
    monkeypatch.setattr(try_model_chapter, "fetch_busbra_demo",
                        lambda: _demo_folder(tmp_path / "demo"))
    paths, meta, root = try_model_chapter.image_paths(list(busbra.DEMO_IDS), download=True)
    assert root == tmp_path / "demo"
    assert [p.name for p in paths] == [f"{i}.png" for i in busbra.DEMO_IDS]
    assert all(p.parent == root / "Images" for p in paths)
    assert meta.loc["bus_0059-l", "BIRADS"] == 5
    assert "Medical Physics 2024" in glued["note"][-1]
    # without leave to download, nothing is fetched and BUSI's examples stand in, said so
    monkeypatch.setattr(try_model_chapter, "fetch_busbra_demo",
                        lambda: pytest.fail("fetched without leave"))
    monkeypatch.setattr(try_model_chapter.transfer, "local_busi_examples",
                        lambda data_dir, download: [Path("benign (1).png")])
    paths, meta, root = try_model_chapter.image_paths(list(busbra.DEMO_IDS), download=False)
    assert paths == [Path("benign (1).png")] and meta is None and root is None
    assert "training images of the model" in glued["note"][-1]


def test_try_model_falls_back_to_busi_when_the_demo_cannot_be_fetched(glued, monkeypatch):
    from busi_lib.data import busbra
    from busi_lib.errors import DataError

    def offline():
        raise DataError("could not download x; use your own images instead")

    monkeypatch.setattr(try_model_chapter, "locate_busbra", lambda: None)
    monkeypatch.setattr(try_model_chapter, "fetch_busbra_demo", offline)
    monkeypatch.setattr(try_model_chapter.transfer, "local_busi_examples",
                        lambda data_dir, download: [Path("malignant (1).png")])
    paths, meta, _ = try_model_chapter.image_paths(list(busbra.DEMO_IDS), download=True)
    assert paths == [Path("malignant (1).png")] and meta is None
    assert any("could not be fetched" in n for n in glued["note"])


def test_try_model_candidate_holds_busbra_back_until_five_folds_and_uses_its_own_base(
        glued, monkeypatch):
    """A candidate built on the release is paired with it once; with 3 of 5 folds it has no
    verdict, and BUS-BRA is neither loaded nor shown."""
    def recs(dice, auc):
        return [{"fold": k, "metrics": {"seg_DC_mean": d, "cls_AUC": a}}
                for k, (d, a) in enumerate(zip(dice, auc))]

    by = {"robust_grouped_e60": recs([0.73, 0.74, 0.75, 0.73, 0.74], [0.90, 0.89, 0.91, 0.90,
                                                                      0.90]),
          "robust_trivial_grouped_e60": recs([0.74, 0.75, 0.75], [0.91, 0.90, 0.91])}
    monkeypatch.setattr(try_model_chapter, "RELEASE_CANDIDATES", ("robust_trivial_grouped_e60",))
    monkeypatch.setattr(try_model_chapter, "experiments", lambda profile: set(by))
    monkeypatch.setattr(try_model_chapter.runs, "experiment_records",
                        lambda profile, e, **k: by[e])
    monkeypatch.setattr(try_model_chapter.external, "load_ensemble",
                        lambda *a, **k: pytest.fail("BUS-BRA read before the verdict"))
    v = try_model_chapter.candidate("cpu", 42, n_boot=20)["robust_trivial_grouped_e60"]
    assert not v["replace"] and v["reason"] == "only 3 of 5 folds paired: no verdict yet"
    assert len(glued["shown"]) == 1
    paired = glued["shown"][0][1]
    assert list(paired.index) == ["robust_grouped_e60 (its base, the release)"]
    assert paired.iloc[0]["folds paired"] == 3
    assert "BUS-BRA is shown once all five folds" in glued["note"][-1]
    assert glued["glue"]["try_candidate"] == ("`robust_trivial_grouped_e60` (3 of 5 folds "
                                              "trained): only 3 of 5 folds paired: no verdict "
                                              "yet.")


def test_grouped_locked_sentence_sets_ours_beside_their_ranges():
    summary = pd.DataFrame({"metric": ["pooled out-of-fold AUC", "locked-test ensemble AUC"],
                            "ours": [0.878, 0.905], "low": [0.843, 0.845],
                            "high": [0.908, 0.951]})
    text = peers_chapter.grouped_locked_sentence(summary, 5)
    assert text == ("with 5 fold models from scratch at 128 px against their ImageNet "
                    "DenseNet121 at 224 px, ours reaches pooled out-of-fold AUC 0.878 (0.843 to "
                    "0.908; theirs 0.924 to 0.940), locked-test ensemble AUC 0.905 (0.845 to "
                    "0.951; theirs 0.969 to 0.977)")


def test_grouped_locked_without_records_glues_not_recorded(glued, monkeypatch):
    monkeypatch.setattr(peers_chapter.runs, "experiment_records", lambda *a, **k: [])
    assert peers_chapter.grouped_locked("cpu", 42) is None
    assert glued["glue"]["peer_grouped_locked_opening"] == ("our network on this protocol is "
                                                           "not recorded yet")
