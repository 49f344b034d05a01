"""busi_lib.serve.ood: the out-of-distribution check of the predictor.

The released model's ``ood.json`` (fitted on BUSI) must flag inputs that are not breast
ultrasound -- 8-bit random noise, a checkerboard, a colour photograph, a screenshot of text --
and the predictor must then give no band and say why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from busi_lib.errors import ConfigError, DataError
from busi_lib.eval.inference import prepare_image
from busi_lib.records import MODELS_DIR
from busi_lib.serve import ood as O
from busi_lib.serve.modelfiles import DEFAULT_MODEL

RELEASE = MODELS_DIR / DEFAULT_MODEL


def _noise():
    return np.random.default_rng(0).integers(0, 256, (360, 480)).astype(np.uint8)


def _checkerboard():
    return ((np.indices((360, 480)) // 24).sum(0) % 2 * 255).astype(np.uint8)


def _photo():
    from skimage import data

    return data.astronaut()                        # RGB, bundled with scikit-image


def _text():
    im = Image.new("L", (640, 400), 255)
    d = ImageDraw.Draw(im)
    for i in range(14):
        d.text((12, 12 + 27 * i), f"Patient report, line {i}: findings as described above.",
               fill=0)
    return np.asarray(im)


NOT_ULTRASOUND = {"noise": _noise, "checkerboard": _checkerboard, "colour photograph": _photo,
                  "text screenshot": _text}


def _features(img, cfg):
    img = np.asarray(img)
    colour = O.colour_share(img)
    grey = np.asarray(Image.fromarray(img).convert("L")) if img.ndim == 3 else img
    return O.feature_matrix([O.image_features(prepare_image(grey, cfg), colour)])


def test_features_of_known_images():
    cb = O.image_features(_checkerboard()[:128, :128])
    assert cb["dark"] == pytest.approx(0.5, abs=0.02) and cb["bright"] == pytest.approx(0.5, abs=0.02)
    assert cb["mode_share"] == pytest.approx(0.5, abs=0.02) and cb["colour"] == 0.0
    flat = np.full((64, 64), 100, np.uint8)
    f = O.image_features(flat)
    assert f["std"] == pytest.approx(0, abs=1e-12) and f["mode_share"] == 1.0
    assert f["entropy"] == 0.0 and f["high_freq"] == 0.0
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    assert O.colour_share(red) == 1.0 and O.colour_share(_noise()) == 0.0
    assert O.colour_share(None) == 0.0


def test_detector_threshold_comes_from_held_out_folds():
    rng = np.random.default_rng(1)
    X = rng.normal(0.5, 0.05, (400, len(O.FEATURES)))
    det = O.fit_detector(X, np.arange(400) % 5, quantile=0.95)
    assert det.info["held_out_flagged"] == pytest.approx(0.05, abs=0.01)
    far = X[:1] + 1.0
    assert det.flag(far)[0] and not det.flag(np.median(X, 0, keepdims=True))[0]
    again = O.Detector.from_dict(json.loads(json.dumps(det.to_dict())))
    np.testing.assert_allclose(again.score(X[:5]), det.score(X[:5]))
    assert again.threshold == det.threshold


def test_bad_inputs_raise():
    with pytest.raises(DataError, match="2-D"):
        O.image_features(np.zeros(10, np.uint8))
    with pytest.raises(DataError, match="N >= 3"):
        O.Detector().fit(np.zeros((2, len(O.FEATURES))))
    with pytest.raises(ConfigError, match="not fitted"):
        O.Detector().score(np.zeros((1, len(O.FEATURES))))
    with pytest.raises(ConfigError, match="quantile"):
        O.fit_detector(np.zeros((10, len(O.FEATURES))), np.arange(10) % 2, quantile=0.2)
    with pytest.raises(DataError, match="features"):
        O.Detector.from_dict({"features": ["x"]})


def test_the_release_has_an_ood_check_fitted_on_busi():
    det = O.Detector.from_dict(json.loads((RELEASE / "ood.json").read_text()))
    assert det.n_fit >= 600 and "BUSI" in det.info["fitted_on"]
    assert det.info["held_out_flagged"] < 0.02


@pytest.mark.parametrize("kind", sorted(NOT_ULTRASOUND))
def test_the_release_flags_what_is_not_ultrasound(kind):
    det = O.Detector.from_dict(json.loads((RELEASE / "ood.json").read_text()))
    cfg = json.loads((RELEASE / "config.json").read_text())
    assert det.flag(_features(NOT_ULTRASOUND[kind](), cfg))[0], kind


def test_the_release_does_not_flag_ultrasound(real_busi):
    from busi_lib.serve.userimage import read_input

    det = O.Detector.from_dict(json.loads((RELEASE / "ood.json").read_text()))
    cfg = json.loads((RELEASE / "config.json").read_text())
    files = sorted((real_busi / "malignant").glob("*).png"))[:10]
    rows = [O.image_features(prepare_image(read_input(f)[0], cfg)) for f in files]
    assert det.flag(O.feature_matrix(rows)).sum() <= 1


@pytest.mark.slow
def test_the_predictor_warns_and_gives_no_band_on_noise(tmp_path):
    pytest.importorskip("keras")
    from busi_lib.serve.predictor import Predictor

    p = Predictor.from_release(RELEASE)
    Image.fromarray(_photo()).save(tmp_path / "photo.png")
    for image in (_noise(), str(tmp_path / "photo.png")):
        r = p.predict(image)
        assert r["out_of_distribution"] is True and r["birads_band"] is None
        assert any("unlike the model's training images" in w for w in r["warnings"])
        assert r["ood_score"] > r["ood_threshold"]
