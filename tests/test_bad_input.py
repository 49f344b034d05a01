"""The bad-input catalogue (issue 6): one case per test.

Each case must fail with an error that names the file or parameter and says what was expected,
and must leave what is already recorded untouched. Data cases go through the real entry point,
``busi_lib.experiments.crossval.run_cv``, with an existing record in the results folder; they fail before any
training starts. The reproducibility page of the book lists these cases.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from busi_lib.config import make_config
from busi_lib.data import images
from busi_lib.errors import ConfigError, DataError

train = pytest.importorskip("busi_lib.experiments.crossval")


@pytest.fixture
def results(tmp_path):
    """A results folder that already holds a record (which must survive every error)."""
    res = tmp_path / "results"
    rec = res / "smoke" / "multitask" / "fold0.json"
    rec.parent.mkdir(parents=True)
    rec.write_text('{"fold": 0, "config_hash": "x", "metrics": {"seg_DC_mean": 0.5}}\n')
    return res


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _fails(results, data_dir, exc, *patterns, **overrides):
    before = _snapshot(results)
    with pytest.raises(exc) as e:
        train.run_cv("smoke", "multitask", data_dir=data_dir, results_dir=results, verbose=0,
                     **overrides)
    msg = str(e.value)
    for p in patterns:
        assert p in msg, f"{p!r} not in {msg!r}"
    assert _snapshot(results) == before
    return msg


# ----------------------------------------------------------------------------- data cases
def test_01_data_folder_missing(tmp_path, results):
    _fails(results, tmp_path / "nowhere", DataError, "nowhere", "does not exist",
           "benign/, malignant/ and normal/")


def test_02_empty_data_folder(tmp_path, results):
    (tmp_path / "empty").mkdir()
    _fails(results, tmp_path / "empty", DataError, "benign", "is missing")


def test_03_empty_class_folder(busi_dir, results):
    for p in (busi_dir / "malignant").iterdir():
        p.unlink()
    _fails(results, busi_dir, DataError, "malignant", "is empty", "malignant (<n>).png")


def test_04_class_folder_missing(busi_dir, results):
    shutil.rmtree(busi_dir / "benign")
    _fails(results, busi_dir, DataError, str(busi_dir / "benign"), "is missing")


def test_05_unknown_folder(busi_dir, results):
    (busi_dir / "Benign_extra").mkdir()
    _fails(results, busi_dir, DataError, "Benign_extra", "expected only")


def test_06_image_without_mask(busi_dir, results):
    (busi_dir / "benign" / "benign (3)_mask.png").unlink()
    _fails(results, busi_dir, DataError, "benign (3).png", "has no mask",
           "benign (3)_mask.png")


def test_07_mask_without_image(busi_dir, results):
    (busi_dir / "malignant" / "malignant (2).png").unlink()
    _fails(results, busi_dir, DataError, "malignant (2)_mask.png", "has no image")


def test_08_truncated_png(busi_dir, results):
    p = busi_dir / "benign" / "benign (2).png"
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    _fails(results, busi_dir, DataError, "benign (2).png", "truncated or not a PNG")


def test_09_zero_byte_file(busi_dir, results):
    (busi_dir / "malignant" / "malignant (4)_mask.png").write_bytes(b"")
    _fails(results, busi_dir, DataError, "malignant (4)_mask.png", "zero-byte")


def test_10_mask_of_another_size(busi_dir, results):
    p = busi_dir / "benign" / "benign (5)_mask.png"
    Image.open(p).resize((30, 20)).save(p)
    _fails(results, busi_dir, DataError, "benign (5)_mask.png", "30x20", "64x48",
           "expected the same size")


def test_11_non_image_file_in_class_folder(busi_dir, results):
    (busi_dir / "benign" / "notes.txt").write_text("hello")
    _fails(results, busi_dir, DataError, "notes.txt", "expected 'benign (<n>).png'")


def test_12_text_file_named_png(busi_dir, results):
    (busi_dir / "benign" / "benign (6).png").write_text("not a picture")
    _fails(results, busi_dir, DataError, "benign (6).png", "cannot read")


def test_13_sixteen_bit_image(busi_dir, results):
    p = busi_dir / "malignant" / "malignant (1).png"
    arr = np.asarray(Image.open(p).convert("L")).astype(np.uint16) * 256
    Image.fromarray(arr).save(p)
    assert Image.open(p).mode.startswith("I")
    _fails(results, busi_dir, DataError, "malignant (1).png", "16/32-bit", "expected 8-bit")


def test_14_mask_values_other_than_0_255_are_lesion(busi_dir):
    """Not an error: documented behaviour (any non-zero first-channel value is lesion)."""
    p = busi_dir / "malignant" / "malignant (1)_mask.png"
    m = np.asarray(Image.open(p)) > 0
    Image.fromarray(m.astype(np.uint8) * 7).save(p)
    np.testing.assert_array_equal(images.read_mask(p), m)


def test_15_rgba_mask_is_read(busi_dir):
    """Not an error: RGBA masks (two exist in BUSI) are read from their first channel."""
    p = busi_dir / "benign" / "benign (1)_mask_1.png"
    assert Image.open(p).mode == "RGBA"
    assert images.read_mask(p).sum() == 16


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("name,kwargs,patterns", [
    ("unknown profile", dict(profile="laptop"), ["profile='laptop'", "'smoke', 'cpu', 'cpu_v1', 'paper'"]),
    ("unknown experiment", dict(experiment="multi_task"), ["experiment='multi_task'", "multitask"]),
    ("epochs < 1", dict(epochs=0), ["epochs=0", "integer >= 1"]),
    ("size not divisible by 16", dict(image_size=100), ["image_size=100", "divisible by 16"]),
    ("folds < 2", dict(n_folds=1), ["n_folds=1", "integer >= 2"]),
    ("unknown enhancement", dict(enhancement="ghe2"), ["enhancement='ghe2'", "'clahe'"]),
    ("unknown parameter", dict(epoch=3), ["epoch", "expected names from"]),
    ("fold index out of range", dict(folds=[5]), ["folds=[5]", "fold indices"]),
])
def test_16_to_23_parameters_out_of_range(name, kwargs, patterns, busi_dir, results):
    kwargs = dict(kwargs)
    profile = kwargs.pop("profile", "smoke")
    experiment = kwargs.pop("experiment", "multitask")
    before = _snapshot(results)
    with pytest.raises(ConfigError) as e:
        train.run_cv(profile, experiment, data_dir=busi_dir, results_dir=results, verbose=0,
                     **kwargs)
    for p in patterns:
        assert p in str(e.value), f"{name}: {p!r} not in {str(e.value)!r}"
    assert _snapshot(results) == before


def test_24_results_folder_not_writable(busi_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("I am a file, not a folder")
    with pytest.raises(ConfigError) as e:
        train.run_cv("smoke", "multitask", data_dir=busi_dir, results_dir=blocker / "results",
                     verbose=0)
    assert "cannot be written" in str(e.value) and "a_file" in str(e.value)
    assert blocker.read_text() == "I am a file, not a folder"


def test_25_bad_config_value_types():
    with pytest.raises(ConfigError, match=r"batch_size=0: expected an integer >= 1"):
        make_config("smoke", "multitask", batch_size=0)
    with pytest.raises(ConfigError, match=r"max_per_class=1: expected None or an integer >= n_folds"):
        make_config("smoke", "multitask", max_per_class=1)
