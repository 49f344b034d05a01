"""Finding, reading, checking and caching the BUSI data.

The BUSI release (Al-Dhabyani et al., Data in Brief 2020) is laid out as::

    Dataset_BUSI_with_GT/
        benign/     benign (1).png, benign (1)_mask.png, benign (4)_mask_1.png, ...
        malignant/  malignant (1).png, malignant (1)_mask.png, ...
        normal/     normal (1).png, normal (1)_mask.png, ...

Decisions taken here (and documented in the book):

* several masks of one image (``_mask``, ``_mask_1``, ``_mask_2``) are OR-merged into one;
* a mask pixel is lesion when the first channel is non-zero, whatever the mask's format
  (1-bit, 8-bit grey, RGB, RGBA) and whatever its non-zero value (so a mask stored with
  values 0/1 or 0/128 reads the same as 0/255);
* images are read as 8-bit grey (Pillow's ``L`` conversion; 764 of the 780 images are already
  grey with R=G=B, 16 carry Doppler colour). A 16-bit image is refused: BUSI has none and a
  silent rescale would change the data;
* images are resized to a square with bilinear interpolation, masks with nearest neighbour,
  so masks stay binary. By default the aspect ratio is not kept (``resize="squash"``, as in the
  paper's pipeline); ``resize="pad"`` pads to a centred black square first.

Data identity is a hash of *decoded pixels*, not of file bytes, so a losslessly re-encoded
copy (such as ``shared/data/BUSI``) and the original zip give the same ``data_sha256``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from busi_lib.data.enhance import PREPROCESSING, enhance
from busi_lib.data.images import check_resize, pixel_sha256, read_image, read_mask, resize_pair
from busi_lib.errors import ConfigError, DataError
from busi_lib.records import PROJECT_ROOT, atomic_write_text

#: The three BUSI classes, in the order used for integer labels.
CLASSES = ("benign", "malignant", "normal")
#: Classes of the paper's main (2-class) experiments.
CLASSES_2 = ("benign", "malignant")

#: Official download of the BUSI zip (Cairo University page of A. Fahmy).
BUSI_URL = "https://scholar.cu.edu.eg/Dataset_BUSI.zip"
#: sha256 of ``Dataset_BUSI.zip`` as recorded by third-party code (torch_em). NOT verified by
#: this project: the zip could not be downloaded from the machine the project was built on.
BUSI_ZIP_SHA256 = "b2ce09f6063a31a73f628b6a6ee1245187cbaec225e93e563735691d68654de7"

#: Bumped whenever the preprocessing below changes, so that old caches are not reused.
PREPROCESSING_VERSION = 1

_NAME_RE = re.compile(r"^(benign|malignant|normal) \((\d+)\)(_mask(?:_(\d+))?)?\.png$")


# ----------------------------------------------------------------------------- locating
def default_cache_dir() -> Path:
    """Cache folder: ``$BUSI_CACHE`` if set, else ``<project>/.cache``."""
    return Path(os.environ.get("BUSI_CACHE", PROJECT_ROOT / ".cache"))


def _as_busi_root(path: Path) -> Path:
    """Accept either ``Dataset_BUSI_with_GT`` itself or a folder that contains it."""
    if (path / "Dataset_BUSI_with_GT").is_dir():
        return path / "Dataset_BUSI_with_GT"
    return path


def locate_data(data_dir: str | os.PathLike | None = None, *, download: bool = True,
                cache_dir: str | os.PathLike | None = None,
                downloader: Callable | None = None) -> Path:
    """Return the folder holding ``benign/``, ``malignant/`` and ``normal/``.

    Looks, in this order, at: the explicit ``data_dir``; the ``BUSI_DATA`` environment variable;
    the project-local ``data/`` folder; else downloads the official zip (see :func:`fetch_busi`)
    when ``download`` is true.

    Raises
    ------
    DataError
        When an explicitly given folder does not exist, or nothing is found and ``download``
        is false. The message lists every place that was looked at.
    """
    looked: list[str] = []
    if data_dir not in (None, ""):
        p = Path(data_dir).expanduser()
        if not p.is_dir():
            raise DataError(f"data_dir={str(data_dir)!r} does not exist or is not a folder; "
                            "expected the BUSI folder holding benign/, malignant/ and normal/")
        return _as_busi_root(p)
    looked.append("argument data_dir (not given)")
    env = os.environ.get("BUSI_DATA")
    if env:
        p = Path(env).expanduser()
        if p.is_dir():
            return _as_busi_root(p)
        looked.append(f"$BUSI_DATA={env!r} (not a folder)")
    else:
        looked.append("$BUSI_DATA (not set)")
    local = PROJECT_ROOT / "data"
    if local.is_dir() and any(local.iterdir()):
        return _as_busi_root(local)
    looked.append(f"{local} (missing or empty)")
    if download:
        return fetch_busi(cache_dir=cache_dir, downloader=downloader)
    raise DataError("no BUSI data found. Looked at: " + "; ".join(looked) + ". Provide it with "
                    "the notebook parameter data_dir, the BUSI_DATA environment variable, or by "
                    "unpacking Dataset_BUSI.zip into the project's data/ folder.")


def fetch_busi(cache_dir: str | os.PathLike | None = None, *, url: str = BUSI_URL,
               known_hash: str | None = BUSI_ZIP_SHA256,
               downloader: Callable | None = None) -> Path:
    """Download ``Dataset_BUSI.zip`` with pooch, check its sha256 and unpack it.

    Parameters
    ----------
    cache_dir : path, optional
        Where the zip and its contents go (default :func:`default_cache_dir`).
    url, known_hash : str
        Source and expected ``sha256`` (``None`` skips the check; not recommended).
    downloader : callable, optional
        A pooch downloader ``(url, output_file, pooch)``; the tests pass one that copies a
        local zip, so the download logic is exercised without the network.

    Returns
    -------
    Path to the unpacked ``Dataset_BUSI_with_GT`` folder.
    """
    import pooch

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    try:
        files = pooch.retrieve(url, known_hash=None if known_hash is None else f"sha256:{known_hash}",
                               fname="Dataset_BUSI.zip", path=cache, downloader=downloader,
                               processor=pooch.Unzip(extract_dir="Dataset_BUSI"), progressbar=False)
    except ValueError as exc:  # pooch raises ValueError on a hash mismatch
        raise DataError(f"downloaded BUSI zip from {url} failed its sha256 check: {exc}") from exc
    except Exception as exc:  # network errors: say what to do instead
        raise DataError(f"could not download BUSI from {url} ({type(exc).__name__}: {exc}). "
                        "Download Dataset_BUSI.zip by hand and set BUSI_DATA to the unpacked "
                        "Dataset_BUSI_with_GT folder.") from exc
    roots = {Path(f).parent.parent for f in files if Path(f).parent.name in CLASSES}
    if len(roots) != 1:
        raise DataError(f"the zip from {url} does not have the BUSI layout "
                        "(<root>/benign|malignant|normal/*.png)")
    return roots.pop()


# ----------------------------------------------------------------------------- discovery
@dataclasses.dataclass(frozen=True)
class Sample:
    """One BUSI image with its mask file(s)."""

    id: str                       # e.g. "benign (4)"
    label: str                    # "benign" | "malignant" | "normal"
    number: int                   # 4
    image_path: Path
    mask_paths: tuple[Path, ...]  # one or more, merged with OR


def find_samples(root: str | os.PathLike, classes: Sequence[str] = CLASSES_2) -> list[Sample]:
    """List the image/mask pairs of the requested classes, sorted by class then number.

    Every file of a requested class folder must be ``<class> (<n>).png`` or
    ``<class> (<n>)_mask[_k].png``; hidden files (``.DS_Store``) are ignored.

    Raises
    ------
    DataError
        Root missing or not a folder; a requested class folder missing; an unknown sub-folder;
        an empty class folder; a file with another name pattern; an image without a mask; a
        mask without an image.
    """
    root = Path(root)
    _check_classes(classes)
    if not root.is_dir():
        raise DataError(f"data folder {str(root)!r} does not exist; expected a folder holding "
                        f"{', '.join(c + '/' for c in CLASSES)}")
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [d for d in subdirs if d not in CLASSES]
    if unknown:
        raise DataError(f"unknown folder(s) {unknown} in {root}; expected only "
                        f"{list(CLASSES)}")
    samples: list[Sample] = []
    for cls in classes:
        folder = root / cls
        if not folder.is_dir():
            raise DataError(f"class folder {str(folder)!r} is missing; expected one folder per "
                            f"class {list(classes)} in {root}")
        images: dict[int, Path] = {}
        masks: dict[int, list[Path]] = {}
        files = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if not files:
            raise DataError(f"class folder {str(folder)!r} is empty; expected "
                            f"'{cls} (<n>).png' images with '{cls} (<n>)_mask.png' masks")
        for p in files:
            m = _NAME_RE.match(p.name)
            if p.is_dir() or m is None or m.group(1) != cls:
                raise DataError(f"unexpected file {str(p)!r}: expected '{cls} (<n>).png' or "
                                f"'{cls} (<n>)_mask[_k].png' in the {cls}/ folder")
            n = int(m.group(2))
            if m.group(3):
                masks.setdefault(n, []).append(p)
            else:
                images[n] = p
        for n in sorted(set(masks) - set(images)):
            raise DataError(f"mask {str(masks[n][0])!r} has no image: expected "
                            f"{str(folder / f'{cls} ({n}).png')!r}")
        for n in sorted(images):
            if n not in masks:
                raise DataError(f"image {str(images[n])!r} has no mask: expected "
                                f"{str(folder / f'{cls} ({n})_mask.png')!r}")
            samples.append(Sample(id=f"{cls} ({n})", label=cls, number=n,
                                  image_path=images[n],
                                  mask_paths=tuple(sorted(masks[n], key=lambda q: q.name))))
    return samples


def _check_classes(classes: Sequence[str]) -> None:
    bad = [c for c in classes if c not in CLASSES]
    if bad or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ConfigError(f"classes={list(classes)!r}: expected two or three distinct names "
                          f"out of {list(CLASSES)}")


# ----------------------------------------------------------------------------- reading
def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Read one sample: grey ``uint8`` image and the OR of its masks (``bool``), same shape.

    Raises
    ------
    DataError
        Any reading error, or a mask whose size differs from its image.
    """
    img = read_image(sample.image_path)
    mask = np.zeros(img.shape, dtype=bool)
    for mp in sample.mask_paths:
        m = read_mask(mp)
        if m.shape != img.shape:
            raise DataError(f"mask {str(mp)!r} is {m.shape[1]}x{m.shape[0]} (WxH) but its image "
                            f"{str(sample.image_path)!r} is {img.shape[1]}x{img.shape[0]}; "
                            "expected the same size")
        mask |= m
    return img, mask


# ----------------------------------------------------------------------------- hashing
def data_manifest(root: str | os.PathLike, samples: Iterable[Sample], *,
                  cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Pixel sha256 of every image and mask file of ``samples``, keyed by ``class/file.png``.

    Hashes are cached in ``<cache_dir>/pixel_hashes.json`` by (path, size, mtime), so a second
    call decodes nothing that did not change.
    """
    root = Path(root)
    cache_file = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "pixel_hashes.json"
    try:
        stat_cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        stat_cache = {}
    manifest: dict[str, str] = {}
    changed = False
    for s in samples:
        for p in (s.image_path, *s.mask_paths):
            st = p.stat()
            key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
            h = stat_cache.get(key)
            if h is None:
                h = pixel_sha256(p)
                stat_cache[key] = h
                changed = True
            manifest[f"{p.parent.name}/{p.name}"] = h
    if changed:
        atomic_write_text(cache_file, json.dumps(stat_cache))
    return dict(sorted(manifest.items()))


def manifest_sha256(manifest: dict[str, str]) -> str:
    """One hash for a whole manifest (order-independent: entries are sorted first)."""
    h = hashlib.sha256()
    for k in sorted(manifest):
        h.update(f"{k}\t{manifest[k]}\n".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- dataset
@dataclasses.dataclass
class BusiData:
    """Preprocessed arrays for a set of BUSI samples.

    Attributes
    ----------
    ids : (N,) str array, e.g. ``"benign (4)"``
    labels : (N,) int array, index into ``class_names``
    class_names : tuple of str
    images : (N, S, S) uint8, enhanced (``enhancement``) and resized
    masks : (N, S, S) bool
    data_sha256 : hash of the pixel manifest of the samples used (see :func:`manifest_sha256`)
    manifest : ``{"class/file.png": pixel sha256}``
    image_sha256 : (N,) str array, pixel hash of each original image (for exact duplicates)
    orig_sizes : (N, 2) int array of original (H, W)
    n_masks : (N,) int array, number of mask files merged
    """

    ids: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    images: np.ndarray
    masks: np.ndarray
    data_sha256: str
    manifest: dict[str, str]
    image_sha256: np.ndarray
    orig_sizes: np.ndarray
    n_masks: np.ndarray
    root: Path | None = None
    image_size: int = 0
    enhancement: str = "none"
    resize: str = "squash"

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> "BusiData":
        """A view of the samples at ``index`` (manifest and hash kept: they name the source)."""
        return dataclasses.replace(
            self, ids=self.ids[index], labels=self.labels[index], images=self.images[index],
            masks=self.masks[index], image_sha256=self.image_sha256[index],
            orig_sizes=self.orig_sizes[index], n_masks=self.n_masks[index])


def select_samples(samples: list[Sample], max_per_class: int | None) -> list[Sample]:
    """Keep the ``max_per_class`` lowest-numbered samples of each class (for smoke runs)."""
    if max_per_class is None:
        return samples
    if max_per_class < 2:
        raise ConfigError(f"max_per_class={max_per_class!r}: expected None or an integer >= 2")
    out, seen = [], {}
    for s in sorted(samples, key=lambda s: (s.label, s.number)):
        if seen.get(s.label, 0) < max_per_class:
            out.append(s)
            seen[s.label] = seen.get(s.label, 0) + 1
    return out


def load_busi(data_dir: str | os.PathLike | None = None, *, image_size: int = 128,
              classes: Sequence[str] = CLASSES_2, enhancement: str = "none",
              max_per_class: int | None = None, cache_dir: str | os.PathLike | None = None,
              download: bool = True, verbose: bool = False, resize: str = "squash") -> BusiData:
    """Load, enhance and resize BUSI, with an on-disk cache.

    The cache file is named by a hash of the pixel manifest of the selected samples and of
    the preprocessing parameters, so changing either builds a new one, and a losslessly
    re-encoded copy of the data reuses the same one.

    Parameters
    ----------
    data_dir : path, optional
        See :func:`locate_data` for the search order when omitted.
    image_size : int
        Side of the square output images.
    classes : sequence of str
        ``("benign", "malignant")`` for the 2-class task, add ``"normal"`` for 3 classes.
        Labels are indices into this sequence.
    enhancement : {"none", "he", "clahe", "ghe"}
        Contrast enhancement applied to the full-resolution image before resizing
        (see :mod:`busi_lib.data.enhance`).
    max_per_class : int, optional
        Keep only the lowest-numbered images of each class (smoke runs and tests).
    resize : {"squash", "pad"}
        Stretch to the square (the paper) or pad to a centred square first (see
        :data:`RESIZE_MODES`).
    """

    check_resize(image_size, resize)
    if enhancement not in PREPROCESSING:
        raise ConfigError(f"enhancement={enhancement!r}: expected one of {list(PREPROCESSING)}")
    if data_dir is not None and str(data_dir).endswith(".npz"):
        return load_bundle(data_dir, image_size=image_size, classes=classes,
                           enhancement=enhancement, max_per_class=max_per_class, resize=resize)
    if data_dir is not None and (Path(data_dir) / BUNDLE_MARKER).is_file():
        name = bundle_name(image_size, classes, enhancement, max_per_class, resize)
        return load_bundle(Path(data_dir) / name, image_size=image_size, classes=classes,
                           enhancement=enhancement, max_per_class=max_per_class, resize=resize)
    root = locate_data(data_dir, download=download, cache_dir=cache_dir)
    samples = select_samples(find_samples(root, classes), max_per_class)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    manifest = data_manifest(root, samples, cache_dir=cache)
    data_hash = manifest_sha256(manifest)
    params = _params(image_size, classes, enhancement, max_per_class, resize)
    key = hashlib.sha256((data_hash + json.dumps(params, sort_keys=True)).encode()).hexdigest()[:20]
    cache_file = cache / f"busi_{key}.npz"
    class_names = tuple(classes)
    if cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                return BusiData(ids=z["ids"], labels=z["labels"], class_names=class_names,
                                images=z["images"], masks=z["masks"], data_sha256=data_hash,
                                manifest=manifest, image_sha256=z["image_sha256"],
                                orig_sizes=z["orig_sizes"], n_masks=z["n_masks"], root=root,
                                image_size=int(image_size), enhancement=enhancement,
                                resize=resize)
        except (OSError, ValueError, KeyError) as exc:
            warnings.warn(f"ignoring unreadable cache {cache_file}: {exc}")
    n = len(samples)
    images = np.zeros((n, image_size, image_size), np.uint8)
    masks = np.zeros((n, image_size, image_size), bool)
    sizes = np.zeros((n, 2), np.int32)
    iterator = samples
    if verbose:
        from tqdm.auto import tqdm
        iterator = tqdm(samples, desc=f"decoding {n} BUSI images")
    for i, s in enumerate(iterator):
        img, mask = load_sample(s)
        sizes[i] = img.shape
        img = enhance(img, enhancement)
        images[i], masks[i] = resize_pair(img, mask, image_size, resize)
    ids = np.array([s.id for s in samples])
    labels = np.array([class_names.index(s.label) for s in samples], np.int64)
    img_hash = np.array([manifest[f"{s.label}/{s.image_path.name}"] for s in samples])
    n_masks = np.array([len(s.mask_paths) for s in samples], np.int32)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".npz")
    os.close(fd)
    np.savez(tmp, ids=ids, labels=labels, images=images, masks=masks, image_sha256=img_hash,
             orig_sizes=sizes, n_masks=n_masks)
    os.replace(tmp, cache_file)
    return BusiData(ids=ids, labels=labels, class_names=class_names, images=images, masks=masks,
                    data_sha256=data_hash, manifest=manifest, image_sha256=img_hash,
                    orig_sizes=sizes, n_masks=n_masks, root=root, image_size=int(image_size),
                    enhancement=enhancement, resize=resize)


def make_zip_of(root: str | os.PathLike, zip_path: str | os.PathLike,
                files: Iterable[Path] | None = None) -> Path:
    """Pack a BUSI-layout folder (or some of its files) into ``Dataset_BUSI_with_GT/...`` zip.

    Used by the tests to exercise :func:`fetch_busi` on a local zip.
    """
    root = Path(root)
    files = list(files) if files is not None else sorted(root.rglob("*.png"))
    with zipfile.ZipFile(zip_path, "w") as z:
        for f in files:
            z.write(f, f"Dataset_BUSI_with_GT/{f.parent.name}/{f.name}")
    return Path(zip_path)


def copy_samples(samples: Iterable[Sample], dest: str | os.PathLike) -> Path:
    """Copy some samples (images and masks) into a new BUSI-layout folder ``dest``."""
    dest = Path(dest)
    for s in samples:
        (dest / s.label).mkdir(parents=True, exist_ok=True)
        for p in (s.image_path, *s.mask_paths):
            shutil.copy2(p, dest / s.label / p.name)
    return dest


# ----------------------------------------------------------------------------- bundles
#: A folder holding this file is a folder of bundles: ``load_busi(data_dir=folder)`` takes the
#: bundle named :func:`bundle_name` of the requested preprocessing from it.
BUNDLE_MARKER = "BUNDLES"


def bundle_name(image_size: int, classes: Sequence[str], enhancement: str,
                max_per_class: int | None = None, resize: str = "squash") -> str:
    """The file name of a bundle in a folder of bundles, from its preprocessing parameters."""
    name = f"busi_{'-'.join(classes)}_{int(image_size)}px_{enhancement}_{resize}"
    return name + (f"_max{max_per_class}" if max_per_class is not None else "") + ".npz"


def save_bundles(folder: str | os.PathLike, settings, data_dir=None) -> list[Path]:
    """Write one bundle per preprocessing setting into ``folder`` (a folder of bundles).

    ``settings`` is a sequence of dicts with keys of :func:`load_busi` (``image_size``,
    ``classes``, ``enhancement``, ``max_per_class``, ``resize``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for st in settings:
        st = {"classes": CLASSES_2, "max_per_class": None, "resize": "squash", **st}
        d = load_busi(data_dir, **st)
        out.append(save_bundle(d, folder / bundle_name(**st), max_per_class=st["max_per_class"]))
    (folder / BUNDLE_MARKER).write_text("a folder of busi_lib.data.busi bundles (save_bundles)\n")
    return out


def save_bundle(d: BusiData, path: str | os.PathLike, *, max_per_class: int | None = None) -> Path:
    """Save preprocessed arrays, with their pixel manifest, to one compressed ``.npz``.

    A bundle lets a machine without the raw PNGs (a GPU box, a small Colab disk) train on exactly
    the same arrays and record the same ``data_sha256``: pass its path as ``data_dir``.
    """
    path = Path(path)
    keys = np.array(list(d.manifest))
    vals = np.array([d.manifest[k] for k in keys])
    np.savez_compressed(path, ids=d.ids, labels=d.labels, class_names=np.array(d.class_names),
                        images=d.images, masks_bits=np.packbits(d.masks.ravel()),
                        image_sha256=d.image_sha256, orig_sizes=d.orig_sizes, n_masks=d.n_masks,
                        manifest_keys=keys, manifest_values=vals,
                        params=np.array(json.dumps(dict(
                            **_params(d.image_size, d.class_names, d.enhancement, max_per_class,
                                      d.resize), data_sha256=d.data_sha256))))
    return path


def load_bundle(path: str | os.PathLike, *, image_size: int, classes: Sequence[str],
                enhancement: str, max_per_class: int | None = None,
                resize: str = "squash") -> BusiData:
    """Load a bundle written by :func:`save_bundle`, checking it matches the parameters.

    Raises
    ------
    DataError
        The file is missing or its manifest does not hash to its recorded ``data_sha256``.
    ConfigError
        The bundle was made with other preprocessing parameters.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"bundle {str(path)!r} does not exist; expected an .npz written by "
                        "busi_lib.data.busi.save_bundle")
    with np.load(path, allow_pickle=False) as z:
        params = json.loads(str(z["params"]))
        want = _params(image_size, classes, enhancement, max_per_class, resize)
        want["resize"] = resize
        params.setdefault("resize", "squash")
        for k, v in want.items():
            if params.get(k) != v:
                raise ConfigError(f"bundle {path.name} was made with {k}={params.get(k)!r}; "
                                  f"expected {k}={v!r}")
        manifest = dict(zip(z["manifest_keys"].tolist(), z["manifest_values"].tolist()))
        if manifest_sha256(manifest) != params["data_sha256"]:
            raise DataError(f"bundle {path.name}: its manifest does not hash to its data_sha256")
        n, s = len(z["ids"]), int(image_size)
        masks = np.unpackbits(z["masks_bits"])[: n * s * s].reshape(n, s, s).astype(bool)
        return BusiData(ids=z["ids"], labels=z["labels"], class_names=tuple(classes),
                        images=z["images"], masks=masks, data_sha256=params["data_sha256"],
                        manifest=manifest, image_sha256=z["image_sha256"],
                        orig_sizes=z["orig_sizes"], n_masks=z["n_masks"], root=None,
                        image_size=s, enhancement=enhancement, resize=resize)


def _params(image_size, classes, enhancement, max_per_class, resize) -> dict:
    """Preprocessing parameters that name a cache file or a bundle (``resize`` only when it is
    not the original ``"squash"``, so caches and bundles made before it keep their names)."""
    p = dict(v=PREPROCESSING_VERSION, image_size=int(image_size), classes=list(classes),
             enhancement=enhancement, max_per_class=max_per_class)
    if resize != "squash":
        p["resize"] = resize
    return p
