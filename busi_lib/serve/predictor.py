"""Apply the released model to one's own images: lesion mask, outline and malignancy probability.

Research software, not a diagnostic device.

Command line::

    python -m busi_lib.serve.predictor IMAGE [IMAGE ...] --out DIR [--model PATH]
    python -m busi_lib.serve.predictor --bench 20 [--model PATH] [--record FILE.jsonl]  # timings

For each image it writes ``DIR/<stem>_mask.png`` (binary mask, 0/255, at the image's own size)
and ``DIR/<stem>_overlay.png`` (the image with the predicted outline), and prints one JSON line
on standard output (see :func:`predict` for the fields). A file that cannot be used (missing,
empty, truncated, not an image, too large, blank) gives a JSON line with ``"error"`` and a
one-line message on standard error; the other files are still processed, and the exit status
is 1 at the end. A model that cannot be loaded stops everything with exit status 2.

Python::

    from busi_lib.serve.predictor import load_model, predict
    out = predict("bus_0007-l.png")          # the default released model, loaded once
    out["prob_malignant"], out["birads_band"], out["mask"].shape

The model (``--model``) is either

* a released model folder (``models/<name>/``, written by :mod:`busi_lib.serve.release`): the training
  configuration, one weights-only file per cross-validation fold (used as an ensemble, as
  nnU-Net ships its folds) and the calibration; every file's sha256 is checked against the model
  card ``models/README.md`` before anything is loaded; or
* one ``.keras`` file written by :mod:`busi_lib.experiments.crossval` (``results/<profile>/<experiment>/
  models/fold<k>.keras``), loaded with ``safe_mode=True``, its configuration read from the fold
  record beside it; its probability is not calibrated.

Preprocessing is exactly that of training (:func:`busi_lib.eval.inference.prepare_image`,
:func:`~busi_lib.eval.inference.to_input`, the configuration's test-time augmentation, threshold and
mask post-processing); the mask probability is brought back to the image's size with
:func:`~busi_lib.eval.inference.restore_mask`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from busi_lib.config import DEFAULTS, setting
from busi_lib.errors import ConfigError, DataError
from busi_lib.eval.calibration import Calibrator, birads_band
from busi_lib.eval.fusion import FEATURES, Fusion, logit
from busi_lib.eval.inference import binarize, prepare_image, restore_mask, run_network, to_input
from busi_lib.eval.shape import mask_descriptors, predicted_descriptors
from busi_lib.nn.build import build_float32, load_saved_model
from busi_lib.nn.machine import cpu_model
from busi_lib.records import MODELS_DIR, append_result, load_average
from busi_lib.serve.modelfiles import (DEFAULT_MODEL, ensemble_sha256, sha256_file, verify_release,
                                       weights_files)
from busi_lib.serve.ood import (Detector, colour_share, feature_matrix, file_colour_share,
                                image_features)
from busi_lib.nn.quiet import quiet_native_stderr
from busi_lib.serve.userimage import array_to_grey, check_not_blank, overlay, read_input

#: Said with every prediction.
NOTE = ("Research software, not a diagnostic device: trained on one small public dataset "
        "(BUSI); the probability and band are not validated for clinical use and must not guide "
        "care.")
#: Images whose longer side exceeds this are reduced (area resampling) before enhancement; the
#: network sees ``image_size`` pixels anyway. The mask is still written at the full size.
WORK_SIDE = 2048


# ----------------------------------------------------------------------------- the predictor
class Predictor:
    """The fold models of one configuration, used as an ensemble, with a calibration.

    Parameters
    ----------
    cfg : dict
        Training configuration (``busi_lib.config``); ``task`` must be ``"multi"``.
    fold_weights : list of lists of arrays
        One list per fold, in the order of ``model.get_weights()``.
    calibrator : Calibrator, optional
        Applied to each fold's probability before they are averaged (``None``: uncalibrated).
    name, sha256 : str
        Shown in every result (``sha256`` of the weights, see :func:`ensemble_sha256`).
    verified : bool
        Whether the files were checked against a model card.
    ood : busi_lib.serve.ood.Detector, optional
        Flags images unlike the training images (``None``: no check; ``model.ood_check`` says
        so).
    fusion : busi_lib.eval.fusion.Fusion, optional
        When given (a release whose selection kept it), ``prob_malignant`` is the fusion of
        each fold's network probability with the shape descriptors of the ensemble's mask,
        averaged over the folds; ``prob_malignant_network`` keeps the calibrated network's.

    The network is built once; each fold's weights are set in turn (milliseconds).
    """

    def __init__(self, cfg: dict, fold_weights: list[list[np.ndarray]],
                 calibrator: Calibrator | None = None, *, name: str = "unnamed",
                 sha256: str | None = None, verified: bool = False, source: str = "",
                 model=None, ood=None, fusion=None):
        if setting(cfg, "task") != "multi":
            raise ConfigError(f"task={cfg.get('task')!r}: the predictor needs a multi-task model "
                              "(task='multi': mask and class)")
        if "malignant" not in list(cfg.get("classes", [])):
            raise ConfigError(f"classes={cfg.get('classes')!r}: expected a 'malignant' class")
        if not fold_weights:
            raise ConfigError("fold_weights is empty: expected the weights of at least one fold")
        self.cfg = {**DEFAULTS, **cfg}     # keys added since the model was saved: their defaults
        self.model = model if model is not None else build_float32(self.cfg)
        shapes = [tuple(w.shape) for w in self.model.weights]
        for k, ws in enumerate(fold_weights):
            got = [tuple(np.shape(w)) for w in ws]
            if got != shapes:
                raise DataError(f"weights of fold {k} do not fit the network of the configuration "
                                f"({len(got)} arrays, expected {len(shapes)} of shapes "
                                f"{shapes[:3]}...)")
        self.fold_weights = [[np.asarray(w, np.float32) if np.asarray(w).dtype.kind == "f"
                              else np.asarray(w) for w in ws] for ws in fold_weights]
        self.calibrator = calibrator
        self.name = name
        self.sha256 = sha256
        self.verified = verified
        self.source = source
        self.ood = ood
        self.fusion = fusion
        self._mal = list(self.cfg["classes"]).index("malignant")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_release(cls, model_dir: str | os.PathLike, *, card: str | os.PathLike | None = None,
                     verify: bool = True) -> "Predictor":
        """Load a released model folder (checked against its card unless ``verify=False``)."""
        import keras

        d = Path(model_dir)
        if not (d / "config.json").is_file():
            raise DataError(f"{str(d)!r} is not a released model: no config.json (expected the "
                            "folder written by `python -m busi_lib.serve.release`)")
        files = weights_files(d)
        if not files:
            raise DataError(f"{str(d)!r} holds no fold<k>.weights.h5 file")
        hashes = verify_release(d, card) if verify else {}
        cfg = json.loads((d / "config.json").read_text())
        cal = None
        if (d / "calibration.json").is_file():
            cal = Calibrator.from_dict(json.loads((d / "calibration.json").read_text()))
        ood = fus = None
        if (d / "ood.json").is_file():

            ood = Detector.from_dict(json.loads((d / "ood.json").read_text()))
        if (d / "fusion.json").is_file():

            fus = Fusion.from_dict(json.loads((d / "fusion.json").read_text()))
        model = build_float32(cfg)
        weights = []
        for f in files:
            model.load_weights(f)
            weights.append([np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights])
        return cls(cfg, weights, cal, name=d.name, sha256=ensemble_sha256(files, hashes),
                   verified=verify, source=str(d), model=model, ood=ood, fusion=fus)

    @classmethod
    def from_keras(cls, path: str | os.PathLike, cfg: dict | None = None) -> "Predictor":
        """One ``.keras`` fold model of :mod:`busi_lib.experiments.crossval` (``safe_mode=True``), uncalibrated.

        ``cfg`` defaults to the ``config`` of the fold record ``../fold<k>.json``.
        """
        import keras


        p = Path(path)
        if cfg is None:
            rec = p.parent.parent / f"{p.stem}.json"
            if not rec.is_file():
                raise DataError(f"no training configuration for {str(p)!r}: expected the fold "
                                f"record {str(rec)!r} written by busi_lib.experiments.crossval beside models/")
            cfg = json.loads(rec.read_text())["config"]
        try:
            m = load_saved_model(p)
        except Exception as exc:   # keras raises many types for a bad file; name the file
            raise DataError(f"cannot load {str(p)!r} as a Keras model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in m.weights]
        return cls(cfg, [weights], None, name=f"{p.parent.parent.name}/{p.stem}",
                   sha256=sha256_file(p), verified=False, source=str(p))

    # ------------------------------------------------------------------ description
    @property
    def info(self) -> dict[str, Any]:
        """``name``, ``sha256``, ``folds``, ``calibration``, ``verified``, ``preprocessing``."""
        c = self.cfg
        return {"name": self.name, "sha256": self.sha256, "folds": len(self.fold_weights),
                "calibration": self.calibrator.method if self.calibrator else "none",
                "verified_against_card": self.verified,
                "ood_check": self.ood is not None,
                "shape_fusion": self.fusion is not None,
                "preprocessing": {"enhancement": c["enhancement"], "image_size": c["image_size"],
                                  "resize": c.get("resize", "squash"),
                                  "normalize": c.get("normalize", "none"),
                                  "tta": bool(c.get("tta", False)),
                                  "mask_threshold": c.get("mask_threshold", 0.5),
                                  "postprocess": c.get("postprocess", "none")}}

    # ------------------------------------------------------------------ inference
    def _set_fold(self, k: int) -> None:
        # always set (milliseconds): the network may be shared with another Predictor
        self.model.set_weights(self.fold_weights[k])

    def forward(self, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs on prepared ``uint8`` images ``(N, S, S)``.

        Returns
        -------
        p_folds : ``(F, N)`` malignancy probability of each fold model (not calibrated)
        mask_prob : ``(N, S, S)`` mask probability, mean over the folds
        """

        x = to_input(prepared, self.cfg["in_channels"], setting(self.cfg, "normalize"))
        probs, mask = [], None
        for k in range(len(self.fold_weights)):
            self._set_fold(k)
            out = run_network(self.model, x, tta=bool(setting(self.cfg, "tta")))
            probs.append(out["label"][:, self._mal])
            m = out["mask"][..., 0]
            mask = m if mask is None else mask + m
        return np.stack(probs), mask / len(self.fold_weights)

    def calibrate(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (identity without a calibrator)."""
        p = np.clip(np.asarray(p, np.float64), 0.0, 1.0)
        return p if self.calibrator is None else self.calibrator.transform(p)

    def binarize(self, mask_prob: np.ndarray) -> np.ndarray:
        """Binary masks ``(N, H, W)`` from mask probabilities, with the configuration's threshold
        and post-processing (:func:`busi_lib.eval.inference.binarize`)."""
        return binarize(self.cfg, mask_prob)

    def fuse(self, p_folds: np.ndarray, binary: np.ndarray, sizes) -> np.ndarray:
        """The fused probability of each image: ``p_folds`` ``(F, N)`` raw fold probabilities,
        ``binary`` ``(N, S, S)`` the ensemble's binary masks at the network's size, ``sizes``
        rows ``(H, W)`` of the original images (descriptors are taken at those proportions, as
        in the fold records). Without a fusion: the mean calibrated probability."""
        if self.fusion is None:
            return self.calibrate(p_folds).mean(0)

        desc = predicted_descriptors(binary, sizes, setting(self.cfg, "resize"))
        X = desc.rename(columns=lambda c: f"pred_{c}")
        out = []
        for p in np.asarray(p_folds, float):
            out.append(self.fusion.predict_proba(X.assign(logit=logit(p))[list(FEATURES)]))
        return np.mean(out, axis=0)

    def check_distribution(self, prepared: np.ndarray, colour: float = 0.0) -> dict[str, Any]:
        """``out_of_distribution`` (bool), ``ood_score`` and ``ood_threshold`` of one prepared
        image (:mod:`busi_lib.serve.ood`); not flagged, score ``None``, without a detector."""
        if self.ood is None:
            return {"out_of_distribution": False, "ood_score": None, "ood_threshold": None}

        score = float(self.ood.score(feature_matrix([image_features(prepared, colour)]))[0])
        return {"out_of_distribution": bool(score > self.ood.threshold),
                "ood_score": round(score, 3), "ood_threshold": round(self.ood.threshold, 3)}

    def predict(self, image, name: str | None = None) -> dict[str, Any]:
        """Predict one image: a path, or a ``uint8`` array ``(H, W)`` (or RGB ``(H, W, 3)``).

        Returns the fields of :func:`predict` (``mask`` is a ``bool`` array ``(H, W)``).
        """
        return self.predict_many([image], names=[name])[0]

    def predict_many(self, images: Sequence, names: Sequence[str | None] | None = None,
                     chunk: int = 8) -> list[dict[str, Any] | Exception]:
        """Predict several images; a bad one gives its exception in its place (others go on)."""
        names = list(names) if names is not None else [None] * len(images)
        out: list[dict[str, Any] | Exception] = []
        for s in range(0, len(images), chunk):
            items = []
            for image, nm in zip(images[s:s + chunk], names[s:s + chunk]):
                try:
                    items.append(self._prepare(image, nm))
                except (DataError, ConfigError) as exc:
                    items.append(exc)
            ok = [it for it in items if isinstance(it, dict)]
            if ok:
                p_folds, mask_prob = self.forward(np.stack([it["prepared"] for it in ok]))
                for j, it in enumerate(ok):
                    it["result"] = self._finish(it, p_folds[:, j], mask_prob[j])
            out += [it if isinstance(it, Exception) else it["result"] for it in items]
        return out

    def _prepare(self, image, name: str | None) -> dict[str, Any]:
        warnings: list[str] = []
        if isinstance(image, (str, os.PathLike)):
            img, warnings = read_input(image)
            name = name or str(image)
            colour = file_colour_share(image)
        else:
            colour = colour_share(np.asarray(image))
            img = array_to_grey(image, warnings)
            check_not_blank(img, name or "image")
            name = name or "array"
        h, w = img.shape
        work = img
        if max(h, w) > WORK_SIDE:
            from PIL import Image

            f = WORK_SIDE / max(h, w)
            size = (max(1, round(w * f)), max(1, round(h * f)))
            work = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX), np.uint8)
            warnings.append(f"large image ({w} x {h}): reduced to {size[0]} x {size[1]} before "
                            "enhancement; the mask is still given at the full size")
        return {"name": name, "image": img, "prepared": prepare_image(work, self.cfg),
                "warnings": warnings, "colour": colour}

    def _finish(self, it: dict, p_folds: np.ndarray, mask_prob: np.ndarray) -> dict[str, Any]:
        img = it["image"]
        h, w = img.shape
        p_cal = self.calibrate(p_folds)
        prob = float(np.mean(p_cal))
        if self.fusion is not None:
            prob = float(self.fuse(np.asarray(p_folds)[:, None], self.binarize(mask_prob[None]),
                                   [img.shape])[0])
        full = restore_mask(mask_prob, (h, w), setting(self.cfg, "resize"))
        mask = self.binarize(full[None])[0]
        area = float(mask.mean())
        warnings = list(it["warnings"])
        found = bool(mask.any())
        if not found:
            warnings.append("no lesion found (empty predicted mask): the model assumes one lesion "
                            "per image and has no 'normal' class, so no band is given")
        if self.calibrator is None:
            warnings.append("probability not calibrated (a single training fold model)")
        ood = self.check_distribution(it["prepared"], it.get("colour", 0.0))
        if ood["out_of_distribution"]:
            warnings.append(f"this image is unlike the model's training images (score "
                            f"{ood['ood_score']:.1f} > {ood['ood_threshold']:.1f}; e.g. not a "
                            "B-mode breast ultrasound, a photograph, text or a synthetic "
                            "pattern): the probability and mask are not meaningful, no band is "
                            "given")
        band = str(birads_band(prob)) if found and not ood["out_of_distribution"] else None
        return {
            "image": it["name"],
            "prob_malignant": round(prob, 4),
            "birads_band": band,
            "mask_area_fraction": round(area, 5),
            "lesion_found": found,
            "prob_malignant_uncalibrated": round(float(np.mean(p_folds)), 4),
            **({"prob_malignant_network": round(float(np.mean(p_cal)), 4)}
               if self.fusion is not None else {}),
            "prob_malignant_folds": [round(float(v), 4) for v in p_cal],
            "fold_spread": round(float(np.std(p_cal)), 4),
            **ood,
            "size": [int(w), int(h)],
            "descriptors": mask_descriptors(mask),
            "warnings": warnings,
            "model": {k: v for k, v in self.info.items() if k != "preprocessing"},
            "note": NOTE,
            "mask": mask,
            "grey": img,
        }


# ----------------------------------------------------------------------------- API
_CACHE: dict[str, Predictor] = {}


def default_model_path() -> Path:
    """``$BUSI_MODEL`` if set, else ``models/<DEFAULT_MODEL>`` of the project."""
    return Path(os.environ.get("BUSI_MODEL") or MODELS_DIR / DEFAULT_MODEL)


def load_model(path: str | os.PathLike | None = None, *, verify: bool = True,
               cache: bool = True) -> Predictor:
    """A :class:`Predictor` for a released model folder or a ``.keras`` fold model.

    Parameters
    ----------
    path : path, optional
        Default :func:`default_model_path`.
    verify : bool
        Check a released model's files against its card (default True).
    cache : bool
        Reuse a model already loaded from the same path in this process.

    Raises
    ------
    DataError
        Missing model, a file that fails its sha256 check, weights that do not fit.
    """
    p = Path(path) if path is not None else default_model_path()
    key = f"{p.resolve()}|{verify}"
    if cache and key in _CACHE:
        return _CACHE[key]
    if p.is_dir():
        pred = Predictor.from_release(p, verify=verify)
    elif p.is_file() and p.suffix == ".keras":
        pred = Predictor.from_keras(p)
    elif p.exists():
        raise DataError(f"--model {str(p)!r}: expected a released model folder (models/<name>/) "
                        "or a .keras file of busi_lib.experiments.crossval")
    else:
        hint = ("" if path is not None else " Release one with `make model` (needs the trained "
                "folds), or pass --model PATH.")
        raise DataError(f"model {str(p)!r} not found.{hint}")
    if cache:
        _CACHE[key] = pred
    return pred


def predict(image, model: Predictor | str | os.PathLike | None = None) -> dict[str, Any]:
    """Predict one image with the released model (or ``model``).

    Parameters
    ----------
    image : path or array
        An image file, or a ``uint8`` grey ``(H, W)`` or RGB ``(H, W, 3)`` array.
    model : Predictor or path, optional
        Default: :func:`load_model` of the default released model (loaded once per process).

    Returns
    -------
    dict with ``image``; ``prob_malignant`` (calibrated, mean over the fold models);
    ``birads_band`` (``"3"``, ``"4A"``, ``"4B"``, ``"4C"`` or ``"5"`` from the calibrated
    probability, :func:`busi_lib.eval.calibration.birads_band`; ``None`` when no lesion is found);
    ``mask_area_fraction``; ``lesion_found``; ``prob_malignant_uncalibrated``;
    ``prob_malignant_folds`` (calibrated, one per fold: their spread is a rough measure of
    uncertainty); ``size`` ``[W, H]``; ``descriptors`` (:func:`busi_lib.eval.shape.mask_descriptors`);
    ``warnings``; ``model`` (name, sha256 of the weights, folds, calibration); ``note``
    (research, not diagnosis); ``mask``, a ``bool`` array ``(H, W)``; and ``grey``, the
    ``uint8`` image ``(H, W)`` as it was read.

    Raises
    ------
    DataError
        The image cannot be used (the message says why and what was expected).
    """
    m = model if isinstance(model, Predictor) else load_model(model)
    res = m.predict_many([image])[0]
    if isinstance(res, Exception):
        raise res
    return res


def write_outputs(result: dict[str, Any], image: np.ndarray, out_dir: Path, stem: str
                  ) -> tuple[Path, Path]:
    """Write ``<stem>_mask.png`` (0/255) and ``<stem>_overlay.png``; return their paths."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    mask_path = out_dir / f"{stem}_mask.png"
    ov_path = out_dir / f"{stem}_overlay.png"
    Image.fromarray(result["mask"].astype(np.uint8) * 255).save(mask_path)
    Image.fromarray(overlay(image, result["mask"])).save(ov_path, compress_level=3)
    return mask_path, ov_path


def json_line(result: dict[str, Any]) -> str:
    """The JSON line of a result (without the mask array)."""
    return json.dumps({k: v for k, v in result.items() if k not in ("mask", "grey")})


# ----------------------------------------------------------------------------- CLI
def _unique_stem(path: str, used: set[str]) -> str:
    stem = Path(path).stem or "image"
    cand, i = stem, 2
    while cand in used:
        cand, i = f"{stem}_{i}", i + 1
    used.add(cand)
    return cand


def bench_image(size: int = 500) -> np.ndarray:
    """A synthetic ``size`` x ``size`` speckle image with a dark elliptic 'lesion' (timing)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    img = rng.normal(120, 25, (size, size))
    img[((yy - size / 2) / (size / 5)) ** 2 + ((xx - size / 2) / (size / 4)) ** 2 <= 1] -= 60
    return img.clip(0, 255).astype(np.uint8)


def time_predictions(predictor: Predictor, img: np.ndarray, repeats: int) -> dict[str, Any]:
    """Seconds of the first prediction (it traces the network's predict function) and the median
    and minimum of ``repeats`` more (API calls, no files written)."""
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        predictor.predict(img)
        times.append(time.perf_counter() - t)
    return {"first_predict_s": round(times[0], 3),
            "predict_median_s": round(float(np.median(times[1:])), 3),
            "predict_min_s": round(float(np.min(times[1:])), 3), "repeats": repeats}


def bench(model: str | None, n: int = 20, size: int = 500) -> dict[str, Any]:
    """Time loading the model (TensorFlow import included) and predicting one ``size`` x
    ``size`` synthetic image ``n`` times."""

    load_before = load_average()
    t0 = time.perf_counter()
    import keras  # noqa: F401  (the import is part of loading)

    t_import = time.perf_counter() - t0
    m = load_model(model, cache=False)
    t_load = time.perf_counter() - t0
    return {"bench": {"model": m.name, "folds": len(m.fold_weights),
                      "tta": m.info["preprocessing"]["tta"], "image": f"{size}x{size}",
                      "import_tf_s": round(t_import, 2), "load_s": round(t_load, 2),
                      **time_predictions(m, bench_image(size), n), "cpu_cores": os.cpu_count(),
                      "cpu": cpu_model(), "load_average_before": load_before}}


def bench_text(row: dict[str, Any]) -> str:
    """The timing of one ``--bench`` row in words (shared by the model card and the book)."""
    return (f"TensorFlow import and loading the {row['folds']} folds {row['load_s']} s, first "
            f"prediction {row['first_predict_s']} s, then {row['predict_median_s']} s per 500 x 500 "
            "image (median)")


def latest_bench(path, model: str | None = None) -> dict[str, Any] | None:
    """The latest row of a ``--bench N --record FILE`` log (JSON lines), optionally of one
    model; None when there is none."""
    p = Path(path)
    if not p.is_file():
        return None
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("kind") == "predict" and (model is None
                                                               or r.get("model") == model)]
    return rows[-1] if rows else None


def main(argv: list[str] | None = None) -> int:
    """``python -m busi_lib.serve.predictor IMAGE [IMAGE ...] --out DIR [--model PATH]``."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m busi_lib.serve.predictor",
        description="Segment the lesion and estimate p(malignant) of breast-ultrasound images "
                    "with the released model. Research software, not a diagnostic device.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--out", metavar="DIR", help="folder for <stem>_mask.png and <stem>_overlay.png")
    p.add_argument("--model", metavar="PATH", default=None,
                   help=f"released model folder or a .keras fold model (default: "
                        f"models/{DEFAULT_MODEL}, or $BUSI_MODEL)")
    p.add_argument("--bench", type=int, metavar="N", default=None,
                   help="time loading and N predictions of a 500 x 500 image; print one JSON line")
    p.add_argument("--record", metavar="FILE.jsonl", default=None,
                   help="with --bench: also append the timing to this JSON-lines file "
                        "(e.g. results/bench/predict.jsonl, read by the book)")
    a = p.parse_args(argv)
    if a.bench is not None:
        if a.bench < 1:
            p.error(f"--bench {a.bench}: expected a positive number of repeats")
    elif not a.images or not a.out:
        p.error("expected IMAGE [IMAGE ...] and --out DIR (or --bench N)")
    if a.record is not None and a.bench is None:
        p.error("--record goes with --bench N")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if a.bench is not None:
            res = bench(a.model, a.bench)
            print(json.dumps(res), flush=True)
            if a.record is not None:

                append_result(a.record, res["bench"], "predict")
            return 0
        out_dir = Path(a.out)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"--out {a.out!r} cannot be created ({exc.strerror or exc}); "
                            "expected a writable folder") from exc
        if not os.access(out_dir, os.W_OK):
            raise DataError(f"--out {a.out!r} is not writable; expected a writable folder")
        with quiet_native_stderr():
            model = load_model(a.model)
    except (DataError, ConfigError) as exc:
        print(f"busi_lib.serve.predictor: error: {exc}", file=sys.stderr, flush=True)
        return 2
    failed = 0
    used: set[str] = set()
    for i, path in enumerate(a.images):
        if i == 0:
            with quiet_native_stderr():          # the first operation logs once more
                res = model.predict_many([path])[0]
        else:
            res = model.predict_many([path])[0]
        if not isinstance(res, Exception):
            try:
                stem = _unique_stem(path, used)
                mp, op = write_outputs(res, res["grey"], out_dir, stem)
                res["mask_file"], res["overlay_file"] = str(mp), str(op)
            except (DataError, OSError) as exc:
                res = DataError(f"{path}: outputs not written ({exc})")
        if isinstance(res, Exception):
            failed += 1
            msg = str(res).splitlines()[0] if str(res) else type(res).__name__
            print(json.dumps({"image": path, "error": msg}), flush=True)
            print(f"busi_lib.serve.predictor: error: {msg}", file=sys.stderr, flush=True)
        else:
            print(json_line(res), flush=True)
    if failed:
        print(f"busi_lib.serve.predictor: {failed} of {len(a.images)} image(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
