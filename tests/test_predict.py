"""busi_lib.serve.predictor: the CLI, the API and every bad input of issue 15.

The model here is a *fake release*: smoke-sized networks whose output layers are set by hand
(zero kernels, chosen biases), so that the answers are known exactly: fold k says
p(malignant) = ``PROBS[k]`` for any image, and the mask is everywhere (bias +10) or nowhere
(bias -10). The release command itself is tested in ``test_release.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from busi_lib.config import make_config
from busi_lib.errors import DataError
from busi_lib.eval import shape as S
from busi_lib.eval.calibration import Calibrator
from busi_lib.nn import build
from busi_lib.serve import modelfiles as MF, predictor as P, userimage as U

PROBS = (0.30, 0.01)          # the two fold models' p(malignant); mean 0.155 -> band 4B


def _cfg() -> dict:
    return {**make_config("smoke", "multitask_grouped"), "folds": None}


def _set_heads(net, p: float, mask_bias: float) -> None:
    ml = net.get_layer("mask_logits")
    ml.kernel.assign(np.zeros(ml.kernel.shape, np.float32))
    ml.bias.assign(np.array([mask_bias], np.float32))
    cl = net.get_layer("cls_logits")
    cl.kernel.assign(np.zeros(cl.kernel.shape, np.float32))
    cl.bias.assign(np.array([0.0, math.log(p / (1 - p))], np.float32))


def _fold_weights(probs=PROBS, mask_bias: float = 10.0) -> list[list[np.ndarray]]:
    import keras

    out = []
    for k, p in enumerate(probs):
        keras.utils.set_random_seed(k)
        net = build.build_float32(_cfg())
        _set_heads(net, p, mask_bias)
        out.append([np.asarray(w) for w in net.get_weights()])
    return out


def write_card(root: Path, name: str) -> Path:
    rows = [f"| {name}/{f.name} | {f.stat().st_size:,} | `{MF.sha256_file(f)}` |"
            for f in sorted((root / name).iterdir())]
    card = root / "README.md"
    card.write_text("# card\n\n| file | bytes | sha256 |\n| --- | --- | --- |\n"
                    + "\n".join(rows) + "\n")
    return card


def fake_release(root: Path, name: str = "fake_smoke", calibration: dict | None = None,
                 mask_bias: float = 10.0) -> Path:
    """A released-model folder (config, weights, calibration) and its card."""
    d = root / name
    d.mkdir(parents=True)
    net = build.build_float32(_cfg())
    for k, ws in enumerate(_fold_weights(mask_bias=mask_bias)):
        net.set_weights(ws)
        net.save_weights(d / f"fold{k}.weights.h5")
    (d / "config.json").write_text(json.dumps(_cfg()))
    (d / "calibration.json").write_text(json.dumps(calibration or {"method": "none",
                                                                   "params": {}}))
    write_card(root, name)
    return d


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return fake_release(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def predictor(model_dir) -> P.Predictor:
    return P.load_model(model_dir)


def _png(path: Path, arr, mode=None) -> Path:
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(path)
    return path


def _grey(h=37, w=53, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 230, (h, w)).astype(np.uint8)


def _cli(capsys, *args) -> tuple[int, list[dict], str]:
    rc = P.main([str(a) for a in args])
    cap = capsys.readouterr()
    lines = [json.loads(s) for s in cap.out.splitlines() if s.strip()]
    return rc, lines, cap.err


# ----------------------------------------------------------------------------- the API
def test_api_known_values(predictor, model_dir):
    img = _grey()
    out = P.predict(img, predictor)
    assert out["prob_malignant"] == pytest.approx(np.mean(PROBS), abs=1e-4)
    assert out["prob_malignant_folds"] == pytest.approx(list(PROBS), abs=1e-4)
    assert out["birads_band"] == "4B"                          # 0.155: 10-50 %
    assert out["mask"].shape == img.shape and out["mask"].dtype == bool
    assert out["mask"].all() and out["mask_area_fraction"] == 1.0 and out["lesion_found"]
    assert out["size"] == [53, 37]
    assert "not a diagnostic device" in out["note"]
    # the model is named with the sha256 of its weights, as `sha256sum fold*.weights.h5 | sha256sum`
    lines = "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n"
                    for f in sorted(model_dir.glob("fold*.weights.h5")))
    assert out["model"]["sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert out["model"]["name"] == "fake_smoke" and out["model"]["folds"] == 2
    assert out["model"]["verified_against_card"] is True
    assert "probability not calibrated" not in " ".join(out["warnings"])


def test_api_path_and_array_agree(predictor, tmp_path):
    img = _grey(60, 44, seed=3)
    a = P.predict(img, predictor)
    b = P.predict(_png(tmp_path / "x.png", np.stack([img] * 3, -1)), predictor)
    assert b["image"].endswith("x.png") and b["warnings"] == []
    assert a["prob_malignant"] == b["prob_malignant"]
    np.testing.assert_array_equal(a["mask"], b["mask"])


def test_calibration_is_applied_per_fold_then_averaged():
    cal = Calibrator.from_dict({"method": "platt", "params": {"a": 1.0, "b": 1.0}})
    pred = P.Predictor(_cfg(), _fold_weights(), cal, name="t")
    out = pred.predict(_grey())
    sig = lambda z: 1 / (1 + math.exp(-z))   # noqa: E731
    want = np.mean([sig(math.log(p / (1 - p)) + 1) for p in PROBS])
    assert out["prob_malignant"] == pytest.approx(want, abs=1e-4)
    assert out["prob_malignant_uncalibrated"] == pytest.approx(np.mean(PROBS), abs=1e-4)
    assert out["birads_band"] == "4B" and out["model"]["calibration"] == "platt"


def test_no_lesion_found_gives_no_band():
    pred = P.Predictor(_cfg(), _fold_weights(mask_bias=-10.0), None, name="t")
    out = pred.predict(_grey())
    assert not out["lesion_found"] and not out["mask"].any()
    assert out["mask_area_fraction"] == 0.0 and out["birads_band"] is None
    assert any("no lesion found" in w for w in out["warnings"])
    assert out["descriptors"]["solidity"] is None and out["descriptors"]["area_frac"] is None


def test_predictor_refuses_weights_of_another_network():
    ws = _fold_weights()
    with pytest.raises(DataError, match="do not fit the network"):
        P.Predictor({**_cfg(), "filters": [8, 8, 8, 16]}, ws, None)


def test_mask_descriptors_are_the_books_shape_descriptors():
    from busi_lib.eval.shape import DESCRIPTORS, descriptors

    m = np.zeros((100, 200), bool)
    m[40:60, 50:150] = True                                    # 100 wide, 20 tall
    d = S.mask_descriptors(m, side=256)                         # small: computed as it is
    assert list(d) == list(DESCRIPTORS)
    assert d == {k: round(v, 4) for k, v in descriptors(m).items()}
    assert d["taller_wide"] == pytest.approx(0.2) and d["solidity"] == pytest.approx(1.0)
    big = np.kron(m, np.ones((40, 40), bool))                   # 4000 x 8000: reduced to 256
    db = S.mask_descriptors(big)
    assert db["area_frac"] == pytest.approx(0.1, abs=0.01)
    assert db["taller_wide"] == pytest.approx(0.2, abs=0.02)
    assert set(S.mask_descriptors(np.zeros((5, 5), bool)).values()) == {None}


def test_overlay_draws_the_outline_only():
    img = np.full((40, 40), 100, np.uint8)
    m = np.zeros((40, 40), bool)
    m[10:30, 10:30] = True
    ov = U.overlay(img, m)
    red = (ov == U.OUTLINE_RGB).all(-1)
    assert red[10, 10:30].all() and red[29, 10:30].all() and red[10:30, 10].all()
    assert not red[20, 20] and (ov[20, 20] == 100).all() and (ov[0, 0] == 100).all()


# ----------------------------------------------------------------------------- the CLI
def test_cli_writes_mask_overlay_and_one_json_line(model_dir, tmp_path, capsys):
    img = _png(tmp_path / "bus_0001-l.png", _grey(37, 53))
    out = tmp_path / "out"
    rc, lines, err = _cli(capsys, img, "--out", out, "--model", model_dir)
    assert rc == 0 and len(lines) == 1 and err == ""
    r = lines[0]
    for key in ("image", "prob_malignant", "birads_band", "mask_area_fraction", "model", "note"):
        assert key in r
    assert r["birads_band"] == "4B" and r["model"]["name"] == "fake_smoke"
    mask = np.asarray(Image.open(out / "bus_0001-l_mask.png"))
    assert mask.shape == (37, 53) and set(np.unique(mask)) <= {0, 255}
    ov = Image.open(out / "bus_0001-l_overlay.png")
    assert ov.size == (53, 37) and ov.mode == "RGB"
    assert r["mask_file"] == str(out / "bus_0001-l_mask.png")


def test_cli_same_stem_twice_does_not_overwrite(model_dir, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _png(tmp_path / "a" / "img.png", _grey(seed=1))
    b = _png(tmp_path / "b" / "img.png", _grey(20, 30, seed=2))
    rc, lines, _ = _cli(capsys, a, b, "--out", tmp_path / "o", "--model", model_dir)
    assert rc == 0
    assert [Path(r["mask_file"]).name for r in lines] == ["img_mask.png", "img_2_mask.png"]
    assert Image.open(tmp_path / "o" / "img_2_mask.png").size == (30, 20)


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, expected words of the one-line message)."""
    good = tmp / "good.png"
    _png(good, _grey())
    text = tmp / "notes.png"
    text.write_text("not a picture")
    empty = tmp / "empty.png"
    empty.write_bytes(b"")
    trunc = tmp / "truncated.png"
    trunc.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    blank = _png(tmp / "blank.png", np.full((30, 30), 17, np.uint8))
    folder = tmp / "a_folder.png"
    folder.mkdir()
    return {"not an image": (text, "cannot read"), "empty": (empty, "empty (zero-byte)"),
            "truncated": (trunc, "cannot read"), "missing": (tmp / "nope.png", "does not exist"),
            "blank": (blank, "is blank"), "folder": (folder, "is a folder")}


@pytest.mark.parametrize("case", ["not an image", "empty", "truncated", "missing", "blank",
                                  "folder"])
def test_cli_bad_input_one_line_message(case, model_dir, tmp_path, capsys):
    path, words = _bad_files(tmp_path)[case]
    rc, lines, err = _cli(capsys, path, "--out", tmp_path / "o", "--model", model_dir)
    assert rc == 1
    assert lines == [{"image": str(path), "error": lines[0]["error"]}]
    assert words in lines[0]["error"] and path.name in lines[0]["error"]
    assert "Traceback" not in err
    assert err.splitlines() == [f"busi_lib.serve.predictor: error: {lines[0]['error']}",
                                "busi_lib.serve.predictor: 1 of 1 image(s) failed"]
    assert not list((tmp_path / "o").glob("*.png"))


def test_cli_batch_goes_on_after_bad_files(model_dir, tmp_path, capsys):
    bad = _bad_files(tmp_path)
    good2 = _png(tmp_path / "good2.png", _grey(seed=9))
    args = [tmp_path / "good.png"] + [p for p, _ in bad.values()] + [good2]
    rc, lines, err = _cli(capsys, *args, "--out", tmp_path / "o", "--model", model_dir)
    assert rc == 1
    assert [("error" in r) for r in lines] == [False] + [True] * len(bad) + [False]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "good2_mask.png", "good2_overlay.png", "good_mask.png", "good_overlay.png"]
    assert f"{len(bad)} of {len(args)} image(s) failed" in err and "Traceback" not in err


def test_sixteen_bit_image_is_rescaled_with_a_warning(predictor, tmp_path):
    arr = (_grey().astype(np.uint16) * 200)
    p = tmp_path / "deep.png"
    Image.fromarray(arr).save(p)
    assert Image.open(p).mode.startswith("I")
    img, warnings = U.read_input(p)
    lo, hi = arr.min(), arr.max()
    np.testing.assert_array_equal(img, np.round((arr - lo) * 255.0 / (hi - lo)).astype(np.uint8))
    assert "rescaled linearly" in warnings[0] and "16-bit" in warnings[0]
    out = P.predict(p, predictor)
    assert out["birads_band"] == "4B" and any("rescaled" in w for w in out["warnings"])


def test_colour_image_is_converted_with_a_warning(predictor, tmp_path):
    rgb = np.stack([_grey()] * 3, -1)
    rgb[5:15, 5:15] = (255, 0, 0)                        # a Doppler-like colour patch
    p = _png(tmp_path / "doppler.png", rgb)
    out = P.predict(p, predictor)
    assert any("colour image converted to grey" in w for w in out["warnings"])
    from busi_lib.data.busi import read_image

    np.testing.assert_array_equal(U.read_input(p)[0], read_image(p))   # as training reads it


def test_rgba_image_is_composited_with_a_warning(predictor, tmp_path):
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 255
    rgba[:, :10, 3] = 0                                   # a transparent strip
    p = _png(tmp_path / "alpha.png", rgba, "RGBA")
    img, warnings = U.read_input(p)
    assert (img[:, :10] == 0).all() and (img[:, 10:] == 200).all()
    assert "composited on black" in warnings[0]
    assert P.predict(p, predictor)["size"] == [40, 30]


def test_image_over_the_pixel_limit_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(U, "MAX_PIXELS", 1000)
    p = _png(tmp_path / "big.png", _grey(40, 40))
    with pytest.raises(DataError, match=r"40 x 40 .* expected at most"):
        U.read_input(p)


def test_very_large_image_gets_a_full_size_mask(model_dir, tmp_path, capsys):
    """8000 x 8000: reduced before enhancement, mask and overlay still at the full size."""
    band = (np.arange(8000) // 500 % 2).astype(np.uint8)
    arr = (band[:, None] ^ band[None, :]) * np.uint8(120) + np.uint8(60)   # a checkerboard
    p = tmp_path / "huge.png"
    Image.fromarray(arr).save(p, compress_level=1)
    del arr
    rc, lines, err = _cli(capsys, p, "--out", tmp_path / "o", "--model", model_dir)
    assert rc == 0, err
    assert lines[0]["size"] == [8000, 8000]
    assert any("large image (8000 x 8000): reduced to 2048 x 2048" in w
               for w in lines[0]["warnings"])
    with Image.open(tmp_path / "o" / "huge_mask.png") as m:
        assert m.size == (8000, 8000)


# ----------------------------------------------------------------------------- the model
def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    img = _png(tmp_path / "x.png", _grey())
    rc, lines, err = _cli(capsys, img, "--out", tmp_path / "o", "--model", tmp_path / "none")
    assert rc == 2 and lines == []
    assert err.strip() == f"busi_lib.serve.predictor: error: model {str(tmp_path / 'none')!r} not found."


def test_default_model_missing_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("BUSI_MODEL", str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="not found"):
        P.load_model()
    monkeypatch.delenv("BUSI_MODEL")
    monkeypatch.setattr(P, "MODELS_DIR", tmp_path)        # predict's default model folder
    with pytest.raises(DataError, match="make model"):
        P.load_model()


def test_tampered_weights_fail_the_card_check(tmp_path, capsys):
    d = fake_release(tmp_path / "m")
    f = d / "fold1.weights.h5"
    b = bytearray(f.read_bytes())
    b[-100] ^= 1
    f.write_bytes(bytes(b))
    rc, _, err = _cli(capsys, _png(tmp_path / "x.png", _grey()), "--out", tmp_path / "o",
                      "--model", d)
    assert rc == 2 and "fold1.weights.h5" in err and "the model card says" in err
    assert len(err.strip().splitlines()) == 1


def test_card_must_list_every_file(tmp_path):
    d = fake_release(tmp_path / "m")
    (d / "fold2.weights.h5").write_bytes((d / "fold1.weights.h5").read_bytes())
    with pytest.raises(DataError, match=r"fold2.weights.h5.*not listed in the model card"):
        MF.verify_release(d)
    (d / "fold2.weights.h5").unlink()
    (d / "fold0.weights.h5").unlink()
    with pytest.raises(DataError, match=r"fold0.weights.h5.*missing"):
        MF.verify_release(d)
    (tmp_path / "m" / "README.md").unlink()
    with pytest.raises(DataError, match="model card .* not found"):
        P.load_model(d, cache=False)


def test_keras_fold_model_with_its_record(tmp_path):
    """A training checkpoint (.keras) is loaded with safe_mode, its config from the record."""
    net = build.build_float32(_cfg())
    net.set_weights(_fold_weights()[0])
    exp = tmp_path / "results" / "smoke" / "multitask_grouped"
    (exp / "models").mkdir(parents=True)
    net.save(exp / "models" / "fold0.keras")
    (exp / "fold0.json").write_text(json.dumps({"config": _cfg()}))
    out = P.predict(_grey(), P.load_model(exp / "models" / "fold0.keras", cache=False))
    assert out["prob_malignant"] == pytest.approx(PROBS[0], abs=1e-4)
    assert out["model"]["calibration"] == "none" and not out["model"]["verified_against_card"]
    assert any("not calibrated" in w for w in out["warnings"])
    (exp / "fold0.json").unlink()
    with pytest.raises(DataError, match="no training configuration"):
        P.load_model(exp / "models" / "fold0.keras", cache=False)


def test_cli_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        P.main(["x.png"])
    assert e.value.code == 2 and "--out DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        P.main(["--bench", "0"])
    with pytest.raises(SystemExit):
        P.main(["x.png", "--out", "d", "--record", "t.jsonl"])
    assert "--record goes with --bench" in capsys.readouterr().err


def test_bench_reports_load_and_predict_fields(model_dir, capsys):
    assert P.main(["--bench", "2", "--model", str(model_dir)]) == 0
    b = json.loads(capsys.readouterr().out)["bench"]
    assert b["repeats"] == 2 and b["image"] == "500x500" and b["folds"] == 2
    assert {"load_s", "import_tf_s", "first_predict_s", "predict_median_s"} <= set(b)


def test_bench_record_appends_rows_and_latest_picks_the_last(model_dir, tmp_path, capsys):
    log = tmp_path / "bench" / "predict.jsonl"
    assert P.latest_bench(log) is None
    for _ in range(2):
        assert P.main(["--bench", "1", "--model", str(model_dir), "--record", str(log)]) == 0
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(rows) == 2 and all(r["kind"] == "predict" for r in rows)
    printed = [json.loads(x)["bench"] for x in capsys.readouterr().out.splitlines()]
    assert rows[1]["predict_median_s"] == printed[1]["predict_median_s"]
    assert len(rows[1]["load_average_before"]) == 3 and rows[1]["cpu"]
    name = rows[0]["model"]
    assert P.latest_bench(log, name) == rows[1]
    assert P.latest_bench(log, "another_model") is None
