"""busi_lib.data.busi: discovery, mask formats and merging, resizing, hashing, cache, locating."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from busi_lib.data import busbra, busi, images
from busi_lib.errors import DataError


def test_find_samples_pairs_and_merges_masks(busi_dir):
    samples = busi.find_samples(busi_dir)
    assert [s.id for s in samples[:2]] == ["benign (1)", "benign (2)"]
    assert len(samples) == 16
    s1 = samples[0]
    assert [p.name for p in s1.mask_paths] == ["benign (1)_mask.png", "benign (1)_mask_1.png"]
    img, mask = busi.load_sample(s1)
    single = images.read_mask(s1.mask_paths[0])
    extra = images.read_mask(s1.mask_paths[1])
    assert mask.dtype == bool and mask.shape == img.shape
    np.testing.assert_array_equal(mask, single | extra)
    assert extra.sum() == 16 and (mask.sum() > single.sum())


@pytest.mark.parametrize("mode", ["1", "L", "RGB", "RGBA", "P"])
def test_read_mask_any_format(tmp_path, mode):
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    im = Image.fromarray(m.astype(np.uint8) * 255)
    im = im.convert(mode) if mode != "1" else im.convert("1")
    p = tmp_path / f"m_{mode}.png"
    im.save(p)
    np.testing.assert_array_equal(images.read_mask(p), m)


def test_mask_values_other_than_255_count_as_lesion(tmp_path):
    arr = np.zeros((8, 8), np.uint8)
    arr[1, 1], arr[2, 2] = 1, 128
    Image.fromarray(arr).save(tmp_path / "m.png")
    assert images.read_mask(tmp_path / "m.png").sum() == 2


def test_images_read_as_grey_uint8(busi_dir):
    img = images.read_image(busi_dir / "benign" / "benign (2).png")
    assert img.dtype == np.uint8 and img.ndim == 2 and img.shape == (48, 64)


def test_resize_keeps_masks_binary():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    mask = np.zeros((50, 70), bool)
    mask[10:30, 20:55] = True
    ri, rm = images.resize_pair(img, mask, 32)
    assert ri.shape == rm.shape == (32, 32) and ri.dtype == np.uint8
    assert rm.dtype == bool and set(np.unique(rm)) <= {False, True}
    # area fraction roughly kept by nearest-neighbour resizing
    assert abs(rm.mean() - mask.mean()) < 0.05


def test_labels_two_and_three_classes(tmp_path):
    from synthetic import make_busi

    root = make_busi(tmp_path / "d", n_benign=3, n_malignant=2, n_normal=2)
    d2 = busi.load_busi(root, image_size=32, download=False)
    assert d2.class_names == ("benign", "malignant")
    assert d2.labels.tolist() == [0, 0, 0, 1, 1]
    d3 = busi.load_busi(root, image_size=32, classes=busi.CLASSES, download=False)
    assert d3.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert d3.masks[-1].sum() == 0  # normal images: empty masks


def test_cache_reused_without_decoding(busi_dir, monkeypatch):
    first = busi.load_busi(busi_dir, image_size=32, download=False)

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(busi, "load_sample", boom)
    monkeypatch.setattr(busi, "pixel_sha256", boom)
    second = busi.load_busi(busi_dir, image_size=32, download=False)
    np.testing.assert_array_equal(first.images, second.images)
    assert first.data_sha256 == second.data_sha256
    # another preprocessing parameter is another cache entry
    monkeypatch.undo()
    third = busi.load_busi(busi_dir, image_size=48, download=False)
    assert third.images.shape[1:] == (48, 48)


def test_lossless_reencoding_keeps_data_hash(busi_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(busi_dir, copy)
    p = copy / "benign" / "benign (2).png"
    before = p.read_bytes()
    Image.open(p).save(p, optimize=True, compress_level=1)
    assert p.read_bytes() != before
    a = busi.load_busi(busi_dir, image_size=32, download=False)
    b = busi.load_busi(copy, image_size=32, download=False)
    assert a.data_sha256 == b.data_sha256
    # a changed pixel changes the hash
    arr = np.asarray(Image.open(p)).copy()
    arr[0, 0] ^= 1
    Image.fromarray(arr).save(p)
    c = busi.load_busi(copy, image_size=32, download=False)
    assert c.data_sha256 != a.data_sha256


def test_pixel_hash_matches_shared_manifest(real_busi):
    lines = (real_busi.parent / "PIXELS.sha256").read_text().splitlines()[:3]
    for line in lines:
        h, rel = line.split("  ", 1)
        assert images.pixel_sha256(real_busi.parent / rel) == h


def test_locate_data_order(busi_dir, tmp_path, monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(busi_dir, other / "Dataset_BUSI_with_GT")
    monkeypatch.setenv("BUSI_DATA", str(other))
    # explicit argument wins over the environment
    assert busi.locate_data(busi_dir, download=False) == busi_dir
    # the environment variable; a parent of Dataset_BUSI_with_GT is accepted
    assert busi.locate_data(None, download=False) == other / "Dataset_BUSI_with_GT"


def test_locate_data_error_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setattr(busi, "PROJECT_ROOT", tmp_path)
    with pytest.raises(DataError) as e:
        busi.locate_data(None, download=False)
    msg = str(e.value)
    assert "BUSI_DATA" in msg and str(tmp_path / "data") in msg and "data_dir" in msg


def _copy_downloader(src):
    def download(url, output_file, pooch_obj):
        shutil.copyfile(src, output_file)
    return download


def test_fetch_busi_from_local_zip(busi_dir, tmp_path):
    import hashlib

    z = busi.make_zip_of(busi_dir, tmp_path / "Dataset_BUSI.zip")
    sha = hashlib.sha256(z.read_bytes()).hexdigest()
    root = busi.fetch_busi(tmp_path / "cache", known_hash=sha, downloader=_copy_downloader(z))
    assert root.name == "Dataset_BUSI_with_GT"
    assert len(busi.find_samples(root)) == 16
    # same pixels as the folder it was made from: same data hash
    a = busi.load_busi(busi_dir, image_size=32, download=False)
    b = busi.load_busi(root, image_size=32, download=False)
    assert a.data_sha256 == b.data_sha256


def test_fetch_busi_rejects_wrong_checksum(busi_dir, tmp_path):
    z = busi.make_zip_of(busi_dir, tmp_path / "Dataset_BUSI.zip")
    with pytest.raises(DataError, match="sha256"):
        busi.fetch_busi(tmp_path / "cache", known_hash="0" * 64, downloader=_copy_downloader(z))




def test_real_counts_and_mask_merging(real_busi, real_cache):
    samples = busi.find_samples(real_busi, busi.CLASSES)
    counts = {c: sum(s.label == c for s in samples) for c in busi.CLASSES}
    assert counts == {"benign": 437, "malignant": 210, "normal": 133}
    multi = sorted(s.id for s in samples if len(s.mask_paths) > 1)
    assert len(multi) == 17 and "benign (195)" in multi
    s195 = next(s for s in samples if s.id == "benign (195)")
    assert len(s195.mask_paths) == 3
    img, mask = busi.load_sample(s195)
    parts = [images.read_mask(p) for p in s195.mask_paths]
    np.testing.assert_array_equal(mask, parts[0] | parts[1] | parts[2])
    # RGBA mask of benign (4)
    s4 = next(s for s in samples if s.id == "benign (4)")
    assert Image.open(s4.mask_paths[1]).mode == "RGBA"
    assert images.read_mask(s4.mask_paths[1]).any()


def test_locate_data_falls_back_to_download(monkeypatch, tmp_path, busi_dir):
    """No argument, no $BUSI_DATA, no data/ folder: locate_data downloads (here: a local zip)."""
    monkeypatch.setattr(busi, "PROJECT_ROOT", tmp_path / "proj")
    z = busi.make_zip_of(busi_dir, tmp_path / "Dataset_BUSI.zip")
    calls = []
    real_fetch = busi.fetch_busi

    def fake_fetch(cache_dir=None, downloader=None, **kw):
        calls.append(cache_dir)
        return real_fetch(cache_dir, known_hash=None, downloader=_copy_downloader(z))

    monkeypatch.setattr(busi, "fetch_busi", fake_fetch)
    root = busi.locate_data(None, cache_dir=tmp_path / "c")
    assert calls == [tmp_path / "c"] and (root / "benign").is_dir()


def test_bundle_round_trip(busi_dir, tmp_path):
    from busi_lib.errors import ConfigError

    d = busi.load_busi(busi_dir, image_size=32, download=False)
    path = busi.save_bundle(d, tmp_path / "b.npz")
    b = busi.load_busi(path, image_size=32)
    assert b.data_sha256 == d.data_sha256 and b.manifest == d.manifest
    np.testing.assert_array_equal(b.images, d.images)
    np.testing.assert_array_equal(b.masks, d.masks)
    assert b.ids.tolist() == d.ids.tolist()
    with pytest.raises(ConfigError, match="image_size=32; expected image_size=64"):
        busi.load_busi(path, image_size=64)


# ----------------------------------------------------------------------------- BUS-BRA demo
def _release_copier(src_root):
    """A pooch downloader that copies the file a URL names from a local BUS-BRA folder."""
    def download(url, output_file, pooch_obj):
        rel = url.split("/BUSBRA/", 1)[1]
        shutil.copyfile(Path(src_root) / rel, output_file)
    return download


def _fake_release(tmp_path):
    """A folder with the demo files' names, whose content is not the release's."""
    root = tmp_path / "release"
    for rel in busbra.DEMO_SHA256:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"not the release")
    return root


def test_busbra_demo_table_lists_exactly_the_demo_images_with_their_files():
    import io

    import pandas as pd

    table = pd.read_csv(io.StringIO(busbra.DEMO_TABLE))
    assert tuple(table["ID"]) == busbra.DEMO_IDS
    images = {f"Images/{i}.png" for i in busbra.DEMO_IDS}
    masks = {f"Masks/{i.replace('bus_', 'mask_')}.png" for i in busbra.DEMO_IDS}
    assert set(busbra.DEMO_SHA256) == images | masks | {"LICENSE.txt"}
    # one image of each BI-RADS x pathology pair that BUS-BRA has
    assert sorted(zip(table["BIRADS"], table["Pathology"])) == [
        (2, "benign"), (3, "benign"), (3, "malignant"), (4, "benign"), (4, "malignant"),
        (5, "malignant")]


def test_chapter_8_defaults_are_the_demo_images():
    import json

    from busi_lib.records import PROJECT_ROOT

    nb = json.loads((PROJECT_ROOT / "notebooks" / "08_try_model.ipynb").read_text())
    src = next("".join(c["source"]) for c in nb["cells"]
               if "parameters" in c.get("metadata", {}).get("tags", []))
    line = next(ln for ln in src.splitlines() if ln.startswith("images ="))
    assert tuple(eval(line.split("=", 1)[1].split("#")[0])) == busbra.DEMO_IDS


def test_fetch_busbra_demo_rejects_a_changed_file(tmp_path):
    with pytest.raises(DataError, match="failed its sha256 check"):
        busbra.fetch_busbra_demo(tmp_path / "demo", downloader=_release_copier(
            _fake_release(tmp_path)))


def test_fetch_busbra_demo_says_what_to_do_when_offline(tmp_path):
    def offline(url, output_file, pooch_obj):
        raise ConnectionError("no network")

    with pytest.raises(DataError, match="could not download .*LICENSE.txt.*own images"):
        busbra.fetch_busbra_demo(tmp_path / "demo", downloader=offline)
    with pytest.raises(ValueError, match="ending in '/'"):
        busbra.fetch_busbra_demo(tmp_path / "demo", url="https://example.org/BUSBRA")


@pytest.mark.skipif(busbra.locate_busbra() is None, reason="BUS-BRA not on this machine")
def test_fetch_busbra_demo_gives_a_folder_read_like_busbra_but_never_found_as_it(
        tmp_path, monkeypatch):
    from busi_lib.data.images import read_image, read_mask

    src = busbra.locate_busbra()
    monkeypatch.setattr(busbra, "default_cache_dir", lambda: tmp_path / "cache")
    root = busbra.fetch_busbra_demo(downloader=_release_copier(src))
    assert root == tmp_path / "cache" / "BUS-BRA-demo"
    for i in busbra.DEMO_IDS:
        img = read_image(root / "Images" / f"{i}.png")
        assert img.shape == read_mask(root / "Masks" / f"{i.replace('bus_', 'mask_')}.png").shape
        assert (img == read_image(src / "Images" / f"{i}.png")).all()
    assert "Gómez-Flores" in (root / "LICENSE.txt").read_text(encoding="utf-8")
    # the six rows are the release's own
    import pandas as pd

    demo = pd.read_csv(root / "bus_data.csv").set_index("ID")
    full = pd.read_csv(src / "bus_data.csv").set_index("ID").loc[list(busbra.DEMO_IDS)]
    pd.testing.assert_frame_equal(demo, full)
    # a second call finds the files in place and fetches nothing
    def refuse(url, output_file, pooch_obj):
        raise AssertionError(f"fetched {url} again")
    assert busbra.fetch_busbra_demo(root, downloader=refuse) == root
    # and the external test set is never taken from it
    monkeypatch.delenv("BUSBRA_DATA", raising=False)
    assert busbra.locate_busbra() != root
