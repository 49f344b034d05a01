"""busi_lib.serve.release: from trained fold models and records to a released, checked model.

The smoke profile of ``multitask_grouped`` is trained (2 folds, 2 epochs) on 8 + 8 synthetic
images and released, with a 6-image synthetic BUS-BRA folder as the external set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from busi_lib.experiments import crossval
from busi_lib.nn import build

pytest.importorskip("keras")

from busi_lib.errors import ConfigError, DataError  # noqa: E402
from busi_lib.eval.calibration import fit_calibrator  # noqa: E402
from busi_lib.serve import modelfiles as MF, predictor as P, release as R  # noqa: E402

pytestmark = pytest.mark.slow
NAME = "multitask_grouped_smoke"


def _fake_busbra(root: Path) -> Path:
    from synthetic import _lesion_image

    rng = np.random.default_rng(5)
    (root / "Images").mkdir(parents=True)
    (root / "Masks").mkdir()
    rows = []
    for i in range(6):
        path = "malignant" if i % 2 else "benign"
        img, mask = _lesion_image(rng, (50, 40), path, 130)
        Image.fromarray(img).save(root / "Images" / f"bus_{i:04d}-l.png")
        Image.fromarray(mask).convert("1").save(root / "Masks" / f"mask_{i:04d}-l.png")
        rows.append({"ID": f"bus_{i:04d}-l", "Case": i // 2, "Pathology": path,
                     "BIRADS": 5 if i % 2 else 3, "Device": "synthetic"})
    pd.DataFrame(rows).to_csv(root / "bus_data.csv", index=False)
    return root


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """(model folder, results folder, BUSI folder, BUS-BRA folder, out folder)."""
    from synthetic import make_busi

    base = tmp_path_factory.mktemp("release")
    busi = make_busi(base / "Dataset_BUSI_with_GT")
    busbra = _fake_busbra(base / "BUS-BRA")
    old = os.environ.get("BUSI_CACHE")
    os.environ["BUSI_CACHE"] = str(base / "cache")
    try:
        crossval.run_cv("smoke", "multitask_grouped", data_dir=busi, results_dir=base / "results",
                        verbose=0)
        d = R.release("smoke", "multitask_grouped", results_dir=base / "results",
                      out=base / "models", data_dir=busi, busbra_dir=busbra,
                      n_boot=50, bench_repeats=1, verbose=False)
    finally:
        if old is None:
            os.environ.pop("BUSI_CACHE", None)
        else:
            os.environ["BUSI_CACHE"] = old
    return d, base / "results", busi, busbra, base / "models"


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_release_writes_the_files_and_a_card_that_checks_them(released):
    d, _, _, _, out = released
    assert d == out / NAME
    assert sorted(p.name for p in d.iterdir()) == [
        "busbra_predictions.csv", "calibration.json", "config.json", "fold0.weights.h5",
        "fold1.weights.h5", "ood.json", "oof_predictions.csv", "release.json"]
    card = (out / "README.md").read_text()
    listed = MF.read_card(out / "README.md")
    assert {f"{NAME}/{n}": h for n, h in _hashes(d).items()} == listed
    assert MF.verify_release(d).keys() == {n for n in _hashes(d)}
    for words in ("not a diagnostic device", "Data and licence", "Intended use", "Limits",
                  "How to retrain", "python -m busi_lib.serve.release --profile smoke", "BUS-BRA",
                  "float16 check"):
        assert words in card
    info = json.loads((d / "release.json").read_text())
    assert info["n_folds"] == 2 and info["profile"] == "smoke" and info["seed"] == 42
    assert info["weights_sha256"] == MF.ensemble_sha256(MF.weights_files(d))
    assert info["weights_sha256"] in card and info["data_sha256"] in card
    # numbers in the card come from the records and the measurements, not from constants
    assert f"AUC {info['oof']['auc']:.3f}" in card


def test_release_records_operating_points_and_the_ood_check(released):
    """The card's operating points are those of the recorded BUS-BRA predictions, and the
    out-of-distribution threshold is the one the predictor loads."""
    from busi_lib.eval.operating import sens_spec
    from busi_lib.serve.ood import Detector

    d, _, _, _, out = released
    info = json.loads((d / "release.json").read_text())
    ext = pd.read_csv(d / "busbra_predictions.csv")
    y = (ext["pathology"] == "malignant").to_numpy(int)
    op = info["busbra"]["operating_points"]
    for row, t in zip(op["model"], (0.02, 0.10, 0.50)):
        assert row["reader"] == f"model, p > {100 * t:g} %"
        want = sens_spec(y, ext["prob_calibrated"].to_numpy() > t)
        assert row["tp"] == want["tp"] and row["fp"] == want["fp"]
    rad = {r["reader"]: r for r in op["radiologists"]}
    assert rad["radiologists, BI-RADS >= 4"]["sensitivity"] == 1.0    # synthetic: malignant = 5
    assert info["busbra"]["no_lesion_found"] == float((~ext["lesion_found"]).mean())
    det = Detector.from_dict(json.loads((d / "ood.json").read_text()))
    assert det.threshold == info["ood"]["threshold"] and np.isfinite(det.threshold)
    assert "Out-of-distribution check" in (out / "README.md").read_text()
    p = P.Predictor.from_release(d)
    assert p.ood is not None and p.ood.threshold == det.threshold


def test_float16_decision_follows_the_measured_change(released):
    import h5py

    d = released[0]
    f16 = json.loads((d / "release.json").read_text())["float16"]
    moved = f16["moved"]
    assert f16["used"] == (moved["dice_mean"] < 0.005 and moved["auc"] < 0.005)
    with h5py.File(d / "fold0.weights.h5") as h:
        dtypes = set()
        h.visit(lambda n: dtypes.add(h[n].dtype) if isinstance(h[n], h5py.Dataset) else None)
    assert (np.dtype("float16") in dtypes) == f16["used"]


def test_calibration_is_fitted_on_the_out_of_fold_predictions(released):
    d = released[0]
    oof = pd.read_csv(d / "oof_predictions.csv")
    assert len(oof) == 16 and oof["id"].is_unique and set(oof["fold"]) == {0, 1}
    y = (oof["true_class"] == "malignant").to_numpy(int)
    want = fit_calibrator(y, oof["prob_raw"].to_numpy(), "platt").params_
    got = json.loads((d / "calibration.json").read_text())
    assert got["method"] == "platt" and got["n_fit"] == 16
    assert got["params"]["a"] == pytest.approx(want["a"]) and got["params"]["b"] == pytest.approx(
        want["b"])
    assert oof["prob_calibrated_crossfit"].between(0, 1).all()


def test_predictor_on_image_files_matches_the_out_of_fold_pipeline(released):
    """Reading, enhancing and resizing a file in the predictor is what training did."""
    d, _, busi, _, _ = released
    oof = pd.read_csv(d / "oof_predictions.csv")
    cfg = json.loads((d / "config.json").read_text())
    net = build.build_float32(cfg)
    for k, f in enumerate(MF.weights_files(d)):
        one = P.Predictor(cfg, [R.load_weights(net, f)], None, model=net)
        rows = oof[oof["fold"] == k].head(3)
        for _, r in rows.iterrows():
            path = busi / r["true_class"] / f"{r['id']}.png"
            out = one.predict(path)
            assert out["prob_malignant_uncalibrated"] == pytest.approx(r["prob_raw"], abs=1e-4)


def test_busbra_is_evaluated_not_fitted(released):
    d = released[0]
    ext = pd.read_csv(d / "busbra_predictions.csv")
    assert len(ext) == 6 and set(ext["band"]) <= {"3", "4A", "4B", "4C", "5"}
    info = json.loads((d / "release.json").read_text())
    assert info["busbra"]["images"] == 6 and info["busbra"]["patients"] == 3
    assert info["calibration"]["n_fit"] == 16          # BUSI only
    pred = P.load_model(d)
    assert pred.calibrator.params_ == json.loads((d / "calibration.json").read_text())["params"]
    from busi_lib.eval.calibration import evidence

    ev = evidence("smoke", models_dir=d.parent)              # what chapter 6 shows
    assert ev["source"] == f"released model {NAME}"
    y, before, after = ev["sets"]["BUS-BRA (external)"]
    np.testing.assert_allclose(after, ext["prob_calibrated"])
    assert len(y) == 6 and not np.allclose(before, after)
    assert len(ev["sets"]["BUSI (cross-validation)"][0]) == 16


def test_release_refuses_missing_fold_models_and_keeps_the_old_release(released, tmp_path):
    d, results, busi, _, out = released
    before = _hashes(d)
    card = (out / "README.md").read_text()
    models = results / "smoke" / "multitask_grouped" / "models"
    shutil.move(models / "fold1.keras", tmp_path / "fold1.keras")
    try:
        with pytest.raises(DataError, match=r"fold1\.keras.*missing"):
            R.release("smoke", "multitask_grouped", results_dir=results, out=out, data_dir=busi,
                      external=False, verbose=False)
    finally:
        shutil.move(tmp_path / "fold1.keras", models / "fold1.keras")
    assert _hashes(d) == before and (out / "README.md").read_text() == card


def test_release_refuses_stale_records(released, tmp_path):
    _, results, busi, _, _ = released
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    rec = copy / "smoke" / "multitask_grouped" / "fold0.json"
    r = json.loads(rec.read_text())
    r["config_hash"] = "0123456789ab"
    rec.write_text(json.dumps(r))
    with pytest.raises(ConfigError, match=r"recorded with different configurations \(config "
                                          r"hashes \['0123456789ab', "):
        R.release("smoke", "multitask_grouped", results_dir=copy, out=tmp_path / "m",
                  data_dir=busi, external=False, verbose=False)
    assert not (tmp_path / "m" / NAME).exists()


def test_release_refuses_files_over_the_size_limit(released, tmp_path):
    _, results, busi, _, _ = released
    with pytest.raises(DataError, match="exceed max_mib=0.01"):
        R.release("smoke", "multitask_grouped", results_dir=results, out=tmp_path / "m",
                  data_dir=busi, external=False, max_mib=0.01, bench_repeats=0, verbose=False)
    assert not (tmp_path / "m" / NAME).exists()
    assert [p.name for p in (tmp_path / "m").iterdir()] == []     # no temporary left behind


def test_release_cli_errors_are_one_line(capsys):
    assert R.main(["--profile", "laptop"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("busi_lib.serve.release: error: profile='laptop'") and len(
        err.strip().splitlines()) == 1


def test_records_trained_with_an_override_are_released_with_a_note(released, tmp_path):
    """The records' own configuration is released; where config.py now says otherwise, the
    differing keys are reported (for the card)."""
    from busi_lib.config import config_hash

    _, results, _, _, _ = released
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    for rec in (copy / "smoke" / "multitask_grouped").glob("fold*.json"):
        r = json.loads(rec.read_text())
        r["config"]["tta"] = True
        r["config_hash"] = config_hash(r["config"])
        rec.write_text(json.dumps(r))
    cfg, recs, differ = R.check_records("smoke", "multitask_grouped", copy)
    assert cfg["tta"] is True and differ == ["tta"] and [r["fold"] for r in recs] == [0, 1]
    rec = copy / "smoke" / "multitask_grouped" / "fold1.json"
    r = json.loads(rec.read_text())
    r["config"]["epochs"] = 99                      # no longer gives its recorded hash
    for f in (copy / "smoke" / "multitask_grouped").glob("fold*.json"):
        f.write_text(json.dumps({**json.loads(f.read_text()), "config": r["config"]}))
    with pytest.raises(ConfigError, match="does not give|gives config hash"):
        R.check_records("smoke", "multitask_grouped", copy)


def test_refresh_card_adds_the_latest_speed_row_and_keeps_the_rest(released, tmp_path):
    d, _, _, _, out = released
    card_path = out / "README.md"
    card = card_path.read_text()
    log = tmp_path / "predict.jsonl"
    rows = [{"kind": "predict", "date": f"2026-01-0{i}T00:00:00Z", "model": NAME, "folds": 2,
             "repeats": 20, "cpu_cores": 2, "cpu": "Test CPU", "load_average_before": [0.1, 0, 0],
             "load_s": 3.5 + i, "first_predict_s": 0.8, "predict_median_s": 0.2} for i in (1, 2)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        assert R.refresh_card(d, bench_log=log) == card_path
        new = card_path.read_text()
        assert "loading the 2 folds 5.5 s" in new and "loading the 2 folds 4.5 s" not in new
        # the rest of the card is unchanged: same lines, one more paragraph
        added = [ln for ln in new.splitlines() if ln not in card.splitlines()]
        assert len(added) == 1 and added[0].startswith("**Speed, latest")
        assert MF.read_card(card_path) == {f"{NAME}/{n}": h for n, h in _hashes(d).items()}
    finally:
        card_path.write_text(card)
    with pytest.raises(DataError, match="no release.json"):
        R.refresh_card(tmp_path)


def test_release_with_shape_fusion_ships_it_and_the_predictor_uses_it(released, tmp_path):
    """fusion='yes': fusion.json is fitted on the out-of-fold rows, the card says so, and the
    predictor's probability is the fold mean of the fusion of each fold's network output with
    the descriptors of the ensemble's mask."""
    from busi_lib.eval.fusion import Fusion

    _, results, busi, busbra, _ = released
    d = R.release("smoke", "multitask_grouped", results_dir=results, out=tmp_path / "m",
                  data_dir=busi, busbra_dir=busbra, n_boot=20, bench_repeats=0, fusion="yes",
                  verbose=False)
    info = json.loads((d / "release.json").read_text())
    fus = Fusion.from_dict(json.loads((d / "fusion.json").read_text()))
    assert info["fusion"]["used"] and fus.n_fit == info["n_lesion_images"]
    assert "Shape fusion (`fusion.json`" in (tmp_path / "m" / "README.md").read_text()
    p = P.Predictor.from_release(d)
    assert p.fusion is not None and p.info["shape_fusion"]
    img = np.asarray(Image.open(next((busbra / "Images").glob("*.png"))))
    r = p.predict(img)
    from busi_lib.eval.inference import prepare_image

    p_folds, mask_prob = p.forward(prepare_image(img, p.cfg)[None])
    want = p.fuse(p_folds, p.binarize(mask_prob), [img.shape])[0]
    assert r["prob_malignant"] == pytest.approx(want, abs=1e-4)
    assert "prob_malignant_network" in r
    ext = pd.read_csv(d / "busbra_predictions.csv")
    assert {"prob_network", "prob_calibrated"} <= set(ext.columns)
    with pytest.raises(ConfigError, match="fusion="):
        R.release("smoke", "multitask_grouped", results_dir=results, fusion="maybe")
