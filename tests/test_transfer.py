"""busi_lib.book.transfer: the chapter-8 views of transfer (occlusion, operating points, selection)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from busi_lib.book import transfer as T
from busi_lib.errors import DataError


class CentreReader:
    """A stand-in predictor whose probability is the mean grey of the image's central 16 x 16
    pixels (so hiding the centre, and only the centre, changes it)."""

    cfg = {"mask_threshold": 0.5}

    def forward(self, x):
        p = x[:, 24:40, 24:40].mean(axis=(1, 2)) / 255.0
        return p[None], np.zeros(x.shape, np.float32)

    def calibrate(self, p):
        return p


def test_occlusion_map_finds_what_the_reader_reads():
    img = np.full((64, 64), 40, np.uint8)
    img[24:40, 24:40] = 250                      # a bright 'lesion' the reader looks at
    m = T.occlusion_map(CentreReader(), img, patch=8, stride=8)
    assert m.shape == (64, 64)
    assert m[28:36, 28:36].min() > 0             # hiding the centre lowers p
    assert np.allclose(m[:16, :16], 0) and np.allclose(m[-16:, -16:], 0)   # elsewhere nothing
    items = [("x", img, np.pad(np.ones((16, 16), bool), 24), m)]
    share = T.lesion_share_of_attention(items)
    assert share.iloc[0, 1] > 99.0


def test_occlusion_map_rejects_bad_shapes():
    with pytest.raises(DataError, match="square"):
        T.occlusion_map(CentreReader(), np.zeros((64, 32), np.uint8))
    with pytest.raises(DataError, match="patch"):
        T.occlusion_map(CentreReader(), np.zeros((16, 16), np.uint8), patch=32)


def _ext(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame({"pathology": np.where(y == 1, "malignant", "benign"),
                         "prob_calibrated": np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1),
                         "birads": np.where(y == 1, rng.choice([4, 5], n), rng.choice([2, 3, 4], n)),
                         "device": rng.choice(["A", "B"], n), "case": np.arange(n) // 2})


def test_operating_table_and_devices_from_predictions():
    ext = _ext()
    t = T.operating_table(ext)
    assert list(t.index) == ["model, p > 2 %", "model, p > 10 %", "model, p > 50 %",
                             "radiologists, BI-RADS >= 4", "radiologists, BI-RADS >= 5"]
    n_mal = int((ext["pathology"] == "malignant").sum())
    assert t.loc["radiologists, BI-RADS >= 4", "cancers missed"] == f"0 of {n_mal}"
    d = T.device_view(ext)
    assert d["images"].sum() == len(ext) and set(d.index) == {"A", "B"}


def test_roc_figure_has_the_model_and_the_readers():
    import matplotlib

    matplotlib.use("Agg")
    fig = T.plot_roc_with_readers(_ext())
    labels = [l.get_label() for l in fig.axes[0].get_lines()]
    assert any(l.startswith("model (AUC") for l in labels)
    assert any(l.startswith("radiologists") for l in labels)


def test_selection_view_of_the_cpu_profile():
    from pathlib import Path

    v = T.selection_view("cpu", Path(__file__).resolve().parents[1] / "results")
    assert v is not None and v["fusion"] is not None
    assert "none cleared zero" in v["sentence"]          # the committed fusion record
    assert T.selection_view("smoke") is None             # nothing recorded for smoke


def test_device_sentence_names_the_range_not_a_direction():
    ext = _ext(400)
    text = T.device_sentence(ext, min_images=20)
    d = T.device_view(ext)
    assert f"{d['AUC within scanner'].min():.3f}" in text and f"{d['AUC within scanner'].max():.3f}" in text
    assert "above the pooled value on" in text


def test_occlusion_sentence_splits_the_silhouettes_auc():
    import pandas as pd

    from busi_lib.book import transfer

    t = pd.DataFrame({"what the network sees": list(transfer.OCCLUSION_VIEWS.values()),
                      "AUC": [0.90, 0.80, 0.74, 0.73]})
    t.attrs.update(images=600, folds=5)
    text = transfer.occlusion_sentence(t)
    assert text.startswith("Out of fold on BUSI (600 images), the released classifier keeps an "
                           "AUC of 0.800 when the lesion is filled with grey but its outline is "
                           "left")
    assert "0.740 when a square around it is hidden, and 0.730 with the lesion alone" in text
    assert "the outline's shape is 20% of what the silhouette keeps above chance" in text  # .06/.3
    assert transfer.occlusion_sentence(None).startswith("BUSI is not on this machine")


def test_release_occlusion_without_busi_is_none(monkeypatch):
    from busi_lib.book import transfer

    def absent(*a, **k):
        raise DataError("no BUSI data found")
    monkeypatch.setattr(transfer, "locate_data", absent)
    assert transfer.release_occlusion(object()) is None


def test_reliance_table_groups_seeds_and_skips_what_is_missing(monkeypatch):
    from busi_lib.experiments import tune

    def rec(trial, h, box=None):
        r = {"trial": trial, "reliance": {"auc": 0.9, "auc_no_lesion": h,
                                          "auc_lesion_only": 0.7}}
        if box is not None:
            r["reliance"]["auc_no_lesion_box"] = box
        return r
    recs = ([rec(t, h) for t, h in zip(tune.RELEASE_SEEDED_REFERENCE, (0.84, 0.86, 0.88))]
            + [rec(t, 0.8, 0.7) for t in tune.RELEASE_SEEDED_CANDIDATES["release at 192 px"]])
    monkeypatch.setattr(T.tune_report, "load_trials", lambda *a, **k: recs)
    t = T.reliance_table("cpu")
    assert list(t.index) == ["the released recipe (robust_grouped_e60), 3 seeds",
                             "the release at 192 px"]
    row = t.loc["the released recipe (robust_grouped_e60), 3 seeds"]
    assert row["AUC, lesion hidden (outline left)"] == "0.860 (0.840-0.880)"
    assert row["trials"] == 3 and pd.isna(row["AUC, square around the lesion hidden"])
    assert t.loc["the release at 192 px", "AUC, square around the lesion hidden"] == (
        "0.700 (0.700-0.700)")


def test_plot_marks_shows_found_marks_above_the_inpainted_image(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from PIL import Image
    from tests.synthetic import make_busi

    root = make_busi(tmp_path / "busi", n_benign=2, n_malignant=1, size=(60, 80))
    img = np.asarray(Image.open(root / "benign" / "benign (2).png").convert("L")).copy()
    img[30, 20:31] = img[25:36, 25] = 255                      # a caliper
    Image.fromarray(img).save(root / "benign" / "benign (2).png")
    fig = T.plot_marks(root, names=("benign/benign (1).png", "benign/benign (2).png",
                                    "benign/no such image.png"))
    assert fig is not None and len(fig.axes) == 4              # two images, two rows
    shown = fig.axes[1].images[0].get_array()                  # image 2, marks in vermillion
    assert tuple(shown[30, 25]) == (213, 94, 0)
    after = fig.axes[3].images[0].get_array()
    assert after[30, 25] < 200                                  # inpainted
    assert T.plot_marks(root, names=("benign/no such image.png",)) is None
    assert T.plot_marks(tmp_path / "empty") is None


def test_marks_by_class_counts_marked_images_per_class(tmp_path):
    from PIL import Image
    from tests.synthetic import make_busi

    root = make_busi(tmp_path / "busi", n_benign=3, n_malignant=2, n_normal=1, size=(60, 80))
    for p in root.glob("*/*).png"):                            # flat images: no mark anywhere
        Image.fromarray(np.full((60, 80), 100, np.uint8)).save(p)
    img = np.full((60, 80), 100, np.uint8)
    img[30, 20:31] = img[25:36, 25] = 255                      # a caliper on one benign image
    Image.fromarray(img).save(root / "benign" / "benign (2).png")
    t = T.marks_by_class(root)
    assert list(t.index) == ["benign", "malignant", "normal"]
    assert list(t["images"]) == [3, 2, 1]
    assert t.iloc[0, 1] == pytest.approx(1 / 3) and t.iloc[1, 1] == 0 and t.iloc[2, 1] == 0
    assert t.attrs["auc"] == pytest.approx(0.5 - 1 / 6)       # the marked benign outranks both
    assert T.marks_by_class(tmp_path / "nothing") is None
