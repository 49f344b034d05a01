"""busi_lib.data.marks: burnt-in text and calipers found and inpainted."""

import numpy as np
import pytest

from busi_lib.data import marks
from busi_lib.data.enhance import enhance
from busi_lib.errors import ConfigError


def _tissue(seed=0, h=240, w=300):
    """Speckle-like texture: smoothed noise around mid grey, no pixel above 200."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 2.5)
    x = 110 + 35 * x / x.std()
    return np.clip(x, 0, 200).astype(np.uint8)


def _marked(img):
    """``img`` with a white '+' caliper, a dotted line and a text-like block of strokes."""
    out = img.copy()
    truth = np.zeros(img.shape, bool)
    truth[60, 50:61] = truth[55:66, 55] = True                 # '+' 11 px
    truth[150, 80:200:6] = truth[151, 80:200:6] = True         # dotted line, 2-px dots
    for k in range(6):                                         # 'text': six 2-px strokes
        truth[200:212, 30 + 8 * k:32 + 8 * k] = True
    out[truth] = 255
    return out, truth


def test_marks_are_found_and_filled_from_their_surroundings():
    clean = _tissue()
    img, truth = _marked(clean)
    found = marks.mark_mask(img)
    assert found[truth].mean() > 0.99                          # every mark pixel is covered
    assert found.mean() < 0.05                                 # and little else
    out = marks.remove_marks(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert out[truth].max() < 230                              # no white stroke left
    assert np.abs(out[truth].astype(float) - clean[truth]).mean() < 40
    np.testing.assert_array_equal(img, _marked(clean)[0])      # the input is not modified


def test_an_image_without_marks_comes_back_unchanged():
    clean = _tissue(1)
    assert not marks.mark_mask(clean).any()
    np.testing.assert_array_equal(marks.remove_marks(clean), clean)
    flat = np.full((50, 60), 128, np.uint8)
    np.testing.assert_array_equal(enhance(flat, "unmark"), flat)


def test_a_wide_bright_structure_is_not_a_mark():
    """A bright band wider than the median window (a fascia, the skin line) is tissue."""
    img = _tissue(2)
    img[100:112, :] = 250
    assert marks.mark_mask(img)[100:112].mean() < 0.05


def test_enhance_dispatches_unmark_deterministically():
    img, _ = _marked(_tissue(3))
    a, b = enhance(img, "unmark"), enhance(img, "unmark")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, marks.remove_marks(img))


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="expected a non-empty 2-D uint8"):
        marks.mark_mask(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ConfigError, match="dtype float64"):
        marks.remove_marks(np.zeros((8, 8)))
    with pytest.raises(ConfigError, match="size=2: expected an integer >= 3"):
        marks.mark_mask(np.zeros((8, 8), np.uint8), size=2)


def test_mark_table_measures_marks_on_the_image_and_on_the_lesion():
    clean = _tissue(4)
    marked, truth = _marked(clean)
    lesion = np.zeros(clean.shape, bool)
    lesion[50:70, 45:66] = True                                # holds the '+' caliper
    t = marks.mark_table([("a", "benign", marked, lesion), ("b", "malignant", clean, lesion),
                          ("c", "normal", clean, np.zeros(clean.shape, bool))])
    assert list(t["id"]) == ["a", "b", "c"] and list(t["label"]) == ["benign", "malignant",
                                                                      "normal"]
    assert t.loc[0, "marked"] == pytest.approx(marks.mark_mask(marked).mean())
    assert t.loc[0, "marked"] >= truth.mean()
    assert 0.1 < t.loc[0, "lesion_marked"] <= 1
    assert t.loc[1, "marked"] == t.loc[1, "lesion_marked"] == 0
    assert t.loc[2, "lesion_marked"] == 0
    with pytest.raises(ConfigError, match="mask of shape"):
        marks.mark_table([("d", "benign", clean, lesion[:10])])


def test_inpaint_fills_only_the_given_pixels_and_refuses_another_shape():
    img, truth = _marked(_tissue(5))
    out = marks.inpaint(img, truth)
    np.testing.assert_array_equal(out[~truth], img[~truth])
    assert out[truth].max() < 230
    np.testing.assert_array_equal(marks.remove_marks(img),
                                  marks.inpaint(img, marks.mark_mask(img)))
    with pytest.raises(ConfigError, match="marks of shape"):
        marks.inpaint(img, truth[:5])
