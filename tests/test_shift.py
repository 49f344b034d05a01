"""busi_lib.experiments.shift: the simulated acquisition shifts and the stage-4 selection rule."""

import numpy as np
import pandas as pd
import pytest

from busi_lib.analysis import tune_report
from busi_lib.errors import ConfigError
from busi_lib.experiments import shift, tune


def _images(n=3, s=32, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(20, 220, size=(n, s, s)).astype(np.uint8)
    mask = np.zeros((n, s, s), np.uint8)
    mask[:, 8:24, 10:22] = 1
    return img, mask


def test_intensity_shifts_keep_masks_and_change_images_as_stated():
    img, mask = _images()
    out, m = shift.shift_images(img, mask, "gain_low")
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(m, mask)
    # gain x 0.6, rounded back to uint8
    np.testing.assert_allclose(out, np.round(img / 255 * 0.6 * 255), atol=1)
    out, _ = shift.shift_images(img, mask, "contrast_low")
    assert out.std() < img.std() * 0.65
    assert abs(out.astype(float).mean() - img.mean()) < 1.0   # about the image's mean
    dark, _ = shift.shift_images(img, mask, "gamma_dark")
    bright, _ = shift.shift_images(img, mask, "gamma_bright")
    assert (dark <= img).all() and (bright >= img).all()


def test_perturbed_inputs_equalise_again_after_a_scanner_change():
    """A gain or gamma change is monotone, so an equalising pipeline sees (almost) the clean
    equalised image again; without enhancement the perturbed copy is shift_images' own."""
    from busi_lib.data.enhance import enhance

    img, mask = _images()
    clean = np.stack([enhance(im, "he") for im in img])
    for name in ("gain_low", "gamma_dark", "gamma_bright"):
        seen, m = shift.perturbed_inputs({"enhancement": "he"}, clean, mask, name)
        raw, _ = shift.shift_images(clean, mask, name)
        np.testing.assert_array_equal(m, mask)
        gap_he = np.abs(seen.astype(float) - clean).mean()
        gap_raw = np.abs(raw.astype(float) - clean).mean()
        assert gap_he < 4 and gap_raw > 4 * gap_he, (name, gap_he, gap_raw)
    for method in ("none", "unmark"):                   # nothing applied again
        same, _ = shift.perturbed_inputs({"enhancement": method}, img, mask, "gain_low")
        np.testing.assert_array_equal(same, shift.shift_images(img, mask, "gain_low")[0])


def test_zoom_moves_the_mask_with_the_image():
    img, mask = _images()
    _, m_out = shift.shift_images(img, mask, "zoom_out")
    _, m_in = shift.shift_images(img, mask, "zoom_in")
    area = mask.sum()
    assert set(np.unique(m_out)) <= {0, 1}
    assert m_out.sum() == pytest.approx(area * 0.75 ** 2, rel=0.15)
    assert m_in.sum() == pytest.approx(area * 1.25 ** 2, rel=0.15)


def test_speckle_is_deterministic_and_seeded():
    img, mask = _images()
    a, _ = shift.shift_images(img, mask, "speckle")
    b, _ = shift.shift_images(img, mask, "speckle")
    c, _ = shift.shift_images(img, mask, "speckle", seed=1)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_bad_input_is_refused():
    img, mask = _images()
    with pytest.raises(ConfigError, match="shift='tilt'"):
        shift.shift_images(img, mask, "tilt")
    with pytest.raises(ConfigError, match="uint8"):
        shift.shift_images(img.astype(np.float32), mask, "blur")
    with pytest.raises(ConfigError, match="3 images but 2 masks"):
        shift.shift_images(img, mask[:2], "blur")
    with pytest.raises(ConfigError, match="without them"):
        shift.shift_score({})


def _rec(name, score, dice, auc):
    return {"trial": name, "score": score,
            "shift": {s: {"val_dice": dice, "val_auc": auc} for s in shift.SHIFTS}}


def test_robust_rule_on_known_tables():
    recs = [_rec("robust_ref", 1.60, 0.60, 0.80),          # shift score 1.40
            _rec("robust_aug", 1.59, 0.63, 0.82),          # +0.05 shift, -0.01 clean: kept
            _rec("robust_pad", 1.55, 0.65, 0.85)]          # +0.10 shift, -0.05 clean: not kept
    t = tune_report.robust_table(recs)
    assert t.loc["robust_ref", "shift score"] == pytest.approx(1.40)
    assert tune_report.robust_select(t) == ["robust_aug"]
    text = tune_report.robust_sentence(t)
    assert "robust_aug: shift score 1.450 (+0.050), clean score 1.590 (-0.010): kept" in text
    assert "robust_pad: shift score 1.500 (+0.100), clean score 1.550 (-0.050): not kept" in text
    # a gain below MIN_GAIN is not enough
    t2 = tune_report.robust_table([_rec("robust_ref", 1.6, 0.6, 0.8), _rec("robust_aug", 1.6, 0.605, 0.81)])
    assert tune_report.robust_select(t2) == []
    with pytest.raises(ConfigError, match="robust_ref"):
        tune_report.robust_select(pd.DataFrame({"score": [1.0], "shift score": [1.0]},
                                        index=["robust_aug"]))


def test_trials_without_shift_metrics_are_left_out_of_the_robust_table():
    t = tune_report.robust_table([{"trial": "combo_e30", "score": 1.6, "shift": None},
                           _rec("robust_ref", 1.6, 0.6, 0.8)])
    assert list(t.index) == ["robust_ref"]
    later = {**_rec("data75", 1.5, 0.6, 0.8), "stage": 5}     # shift metrics, not stage 4
    assert list(tune_report.robust_table([_rec("robust_ref", 1.6, 0.6, 0.8), later]).index) == [
        "robust_ref"]
    assert "not recorded yet" in tune_report.robust_sentence(t.drop("robust_ref"))


@pytest.mark.parametrize("experiment, trial", [("robust_grouped", "robust_aug_e40"),
                                               ("robust_grouped_e60", "robust_aug_e60")])
def test_robust_experiments_train_what_their_trial_tested(experiment, trial):
    from busi_lib import config

    kept = {k: v for k, v in tune.TRIALS[trial][1].items() if tune.COMBO.get(k, object()) != v}
    assert {**config.ROBUST_RECIPE, "epochs": config.ROBUST_EPOCHS[experiment]["cpu"]} == kept
    assert config.make_config("smoke", experiment)["epochs"] == config.PROFILES["smoke"]["epochs"]
    cfg = config.make_config("cpu", experiment)
    main = config.make_config("cpu", "multitask_grouped")
    assert {k for k in cfg if cfg[k] != main[k]} == set(kept)
    assert config.make_config("paper", experiment)["epochs"] == config.PROFILES["paper"]["epochs"]
