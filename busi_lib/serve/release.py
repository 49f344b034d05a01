"""Release the fold models of a cross-validated experiment as one model that people can use.

    python -m busi_lib.serve.release --profile cpu --experiment robust_grouped_e60     # make model

reads the ``n_folds`` fold models and records of ``results/<profile>/<experiment>/`` (written by
:mod:`busi_lib.experiments.crossval`) and writes::

    models/<experiment>_<profile>/
        config.json              # the training configuration: the predictor rebuilds the network
        fold<k>.weights.h5       # weights only, one per fold (float16 when it changes nothing)
        calibration.json         # Platt (or isotonic) fitted on BUSI's out-of-fold predictions
        release.json             # provenance and every number of the card, machine-readable
        ood.json                 # out-of-distribution detector fitted on BUSI's images (busi_lib.serve.ood)
        fusion.json              # shape fusion, when the selection records keep it (busi_lib.eval.fusion)
        oof_predictions.csv      # BUSI out-of-fold predictions of the released weights
        busbra_predictions.csv   # BUS-BRA predictions of the released ensemble (external test)
    models/README.md             # the model card, with the sha256 of every file

Steps, each checked:

1. every fold is recorded with the *current* configuration of the experiment (config hash),
   on the same data (data hash), and its ``models/fold<k>.keras`` exists;
2. BUSI is loaded as training loaded it and checked against the records' data manifest;
3. each fold model is loaded with ``safe_mode=True``, its weights put into a network rebuilt
   from the configuration in float32 and exported weights-only, in float32 and float16;
4. out-of-fold predictions of each fold's test images are recomputed with both exports, with
   the predictor's own pipeline (test-time augmentation, threshold, post-processing); float16
   is kept when the pooled out-of-fold Dice and AUC move by less than ``--tolerance`` (0.005);
5. the calibration is fitted on those out-of-fold probabilities (never on BUS-BRA); its
   honest effect on BUSI is measured by cross-fitting (each fold calibrated by the others);
   the out-of-distribution detector is fitted on BUSI's images, its threshold from held-out
   folds (:func:`busi_lib.serve.ood.fit_detector`);
6. the released ensemble, unchanged, is evaluated on BUS-BRA when it is found;
7. files are hashed, the card is written from the records and these measurements (nothing is
   hard-coded), and the folder replaces any earlier release atomically.

BUS-BRA is never used to fit or choose anything here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.config import (DEFAULTS, NON_SEMANTIC, RELEASED_EXPERIMENT, config_hash, make_config,
                             setting, validate_config)
from busi_lib.data.busbra import busbra_sizes, load_busbra, locate_busbra
from busi_lib.data.splits import prepare
from busi_lib.errors import ConfigError, DataError
from busi_lib.eval import fusion as fusion_mod
from busi_lib.eval.calibration import (METHODS, birads_band, birads_table, calibration_scores,
                                       crossfit, fit_calibrator)
from busi_lib.eval.metrics import fast_auc, grouped_bootstrap_auc, per_image_segmentation
from busi_lib.eval.operating import points_record
from busi_lib.eval.shape import predicted_descriptors
from busi_lib.nn.build import build_float32, load_saved_model
from busi_lib.nn.machine import cpu_model
from busi_lib.records import MODELS_DIR, atomic_write_text
from busi_lib.serve.modelcard import model_card
from busi_lib.serve.modelfiles import ensemble_sha256, sha256_file, to_float16, weights_files
from busi_lib.serve.ood import feature_matrix, file_colour_share, fit_on_busi, image_features
from busi_lib.serve.predictor import NOTE, Predictor, bench_image, latest_bench, time_predictions

#: Largest weights file the release accepts (the repository keeps files in models/ below 10 MiB).
MAX_MIB = 10.0


def model_name(profile: str, experiment: str) -> str:
    return f"{experiment}_{profile}"


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"[release] {msg}", flush=True)


# ----------------------------------------------------------------------------- inputs
def check_records(profile: str, experiment: str, results_dir=None
                  ) -> tuple[dict, list[dict], list[str]]:
    """The configuration and the fold records to release, after checking that they are complete
    and consistent.

    The configuration is the one stored in the records (what was trained), completed with the
    defaults of keys added since; it must give the records' config hash. Keys where the
    experiment's current definition (:func:`busi_lib.config.make_config`) differs are returned,
    so that the card can say so.

    Returns
    -------
    cfg, records (by fold), differing keys

    Raises
    ------
    DataError
        A fold without a record or without its ``.keras`` model; records on different data.
    ConfigError
        Folds recorded with different configurations, or a record whose configuration does not
        give its hash.
    """

    folder = records.experiment_dir(profile, experiment, results_dir)
    recs = {r["fold"]: r for r in records.load_records(profile, experiment, results_dir)}
    current = make_config(profile, experiment)       # also checks the names
    if not recs:
        raise DataError(f"{folder}: no fold recorded. Train the folds first: python -m "
                        f"busi_lib.experiments.crossval --profile {profile} --experiment {experiment}")
    hashes = sorted({str(r.get("config_hash")) for r in recs.values()})
    if len(hashes) != 1:
        raise ConfigError(f"{folder}: the folds were recorded with different configurations "
                          f"(config hashes {hashes}); expected one configuration for all folds")
    first = recs[min(recs)]
    if config_hash(first["config"]) != first["config_hash"]:
        raise ConfigError(f"{folder}/fold{first['fold']}.json: its configuration gives config hash "
                          f"{config_hash(first['config'])}, not the recorded {first['config_hash']}")
    cfg = {**DEFAULTS, **first["config"], "folds": None}
    validate_config(cfg)
    todo = list(range(cfg["n_folds"]))
    missing = [k for k in todo if k not in recs]
    if missing:
        raise DataError(f"{folder}: fold(s) {missing} not recorded; expected all {cfg['n_folds']} "
                        f"folds. Train them first: python -m busi_lib.experiments.crossval --profile {profile} "
                        f"--experiment {experiment}")
    data = {recs[k].get("data_sha256") for k in todo}
    if len(data) != 1:
        raise DataError(f"{folder}: the folds were recorded on different data {sorted(data)}")
    no_model = [k for k in todo if not (folder / "models" / f"fold{k}.keras").is_file()]
    if no_model:
        raise DataError(f"{folder}/models: fold model(s) {[f'fold{k}.keras' for k in no_model]} "
                        "missing (they are written when a fold finishes training and are not "
                        "committed); retrain those folds on this machine, or copy them here")
    differ = sorted(k for k in set(cfg) | set(current) if k not in NON_SEMANTIC
                    and cfg.get(k) != current.get(k))
    return cfg, [recs[k] for k in todo], differ


def export_fold(keras_path: Path, net, out32: Path, out16: Path) -> int:
    """Load a fold model (``safe_mode=True``), put its weights into ``net`` (the float32 network
    rebuilt from the configuration) and save them weights-only, as float32 and as float16;
    returns the parameter count."""

    src = load_saved_model(keras_path)
    net.set_weights(src.get_weights())
    net.save_weights(out32)
    to_float16(out32, out16)
    return int(net.count_params())


def load_weights(net, path: Path) -> list[np.ndarray]:
    """The arrays of a ``.weights.h5`` file, as ``net`` (a network of the same configuration)
    holds them once loaded (float16 files come back as float32)."""
    import keras

    net.load_weights(path)
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in net.weights]


def _dice_auc(y: np.ndarray, p: np.ndarray, dice: np.ndarray) -> tuple[float, float]:
    pass

    return float(np.nanmean(dice)), fast_auc(y, p)


def out_of_fold(cfg: dict, data, folds: pd.DataFrame, fold_files: list[Path], net
                ) -> pd.DataFrame:
    """Out-of-fold predictions of exported weights: each fold's test images predicted by that
    fold's model (loaded into ``net``), with the predictor's pipeline. Columns: id, fold,
    true_class, prob_raw, dice (``NaN`` for normal images) and the descriptors of the predicted
    mask (``pred_<descriptor>``, at the image's proportions, as the fold records hold them)."""

    fold_col = folds["fold"].to_numpy()
    frames = []
    for k, f in enumerate(fold_files):
        idx = np.nonzero(fold_col == k)[0]
        pred = Predictor(cfg, [load_weights(net, f)], None, name=f.name, model=net)
        p_folds, mask_prob = pred.forward(data.images[idx])
        binary = pred.binarize(mask_prob)
        dice = per_image_segmentation(data.masks[idx], binary)["DC"]
        names = [data.class_names[i] for i in data.labels[idx]]
        desc = predicted_descriptors(binary, data.orig_sizes[idx], setting(cfg, "resize"))
        frames.append(pd.DataFrame({"id": data.ids[idx], "fold": k, "true_class": names,
                                    "prob_raw": p_folds[0], "dice": np.where(
                                        np.array(names) == "normal", np.nan, dice),
                                    **{f"pred_{c}": desc[c].to_numpy() for c in desc.columns}}))
    return pd.concat(frames, ignore_index=True)


def _summary(oof: pd.DataFrame, col: str = "prob_raw") -> dict[str, float]:
    lesion = oof[oof["true_class"].isin(["benign", "malignant"])]
    y = (lesion["true_class"] == "malignant").to_numpy(int)
    dice, auc = _dice_auc(y, lesion[col].to_numpy(float), lesion["dice"].to_numpy(float))
    return {"dice_mean": dice, "auc": auc}


def evaluate_busbra(predictor: Predictor, busbra_dir=None) -> pd.DataFrame | None:
    """The released ensemble on BUS-BRA: id, case, pathology, birads, device, prob_raw,
    prob_calibrated (the predictor's ``prob_malignant``: the fused probability when the release
    has a fusion), prob_network (the calibrated network's), fold_spread, lesion_found, dice, band,
    and the out-of-distribution score and flag. ``None`` when BUS-BRA is not found."""

    cfg = predictor.cfg
    loaded = load_busbra(busbra_dir, image_size=cfg["image_size"],
                         enhancement=cfg["enhancement"], resize=setting(cfg, "resize"))
    if loaded is None:
        return None
    images, masks, meta = loaded
    sizes = busbra_sizes(meta, busbra_dir) if predictor.fusion is not None else [None] * len(meta)
    p_raw, p_cal, p_net, dice, found, spread = [], [], [], [], [], []
    for s in range(0, len(images), 64):
        p_folds, mask_prob = predictor.forward(images[s:s + 64])
        p_raw.append(p_folds.mean(0))
        cal = predictor.calibrate(p_folds)
        spread.append(cal.std(0))
        binary = predictor.binarize(mask_prob)
        p_net.append(cal.mean(0))
        p_cal.append(predictor.fuse(p_folds, binary, sizes[s:s + 64]))
        found.append(binary.reshape(len(binary), -1).any(1))
        dice.append(per_image_segmentation(masks[s:s + 64], binary)["DC"])
    out = pd.DataFrame({"id": meta["ID"], "case": meta["Case"], "pathology": meta["Pathology"],
                        "birads": meta["BIRADS"], "device": meta["Device"],
                        "prob_raw": np.concatenate(p_raw), "prob_calibrated": np.concatenate(p_cal),
                        "prob_network": np.concatenate(p_net),
                        "fold_spread": np.concatenate(spread), "lesion_found": np.concatenate(found),
                        "dice": np.concatenate(dice)})
    if predictor.ood is not None:

        root = locate_busbra(busbra_dir)
        feats = [image_features(img, file_colour_share(root / "Images" / f"{i}.png"))
                 for img, i in zip(images, meta["ID"])]
        out["ood_score"] = predictor.ood.score(feature_matrix(feats))
        out["out_of_distribution"] = out["ood_score"] > predictor.ood.threshold
    out["band"] = birads_band(out["prob_calibrated"].clip(0, 1))
    return out


# ----------------------------------------------------------------------------- the release
def release(profile: str = "cpu", experiment: str = "multitask_grouped", *, results_dir=None,
            out=None, data_dir=None, busbra_dir=None, external: bool = True,
            method: str = "platt", float16: str = "auto", tolerance: float = 0.005,
            max_mib: float = MAX_MIB, n_boot: int = 1000,
            bench_repeats: int = 5, fusion: str = "auto", verbose: bool = True) -> Path:
    """Release ``experiment`` of ``profile`` (see the module docstring); returns the model folder.

    Parameters
    ----------
    results_dir : path, optional
        Where the records and fold models are (default ``results/``).
    out : path, optional
        Folder that receives ``<experiment>_<profile>/`` and the card ``README.md``
        (default ``models/``).
    data_dir, busbra_dir : path, optional
        BUSI (see :func:`busi_lib.data.busi.locate_data`) and BUS-BRA (see
        :func:`busi_lib.data.busbra.locate_busbra`).
    external : bool
        Evaluate on BUS-BRA when it is found (default True).
    method : {"platt", "isotonic", "none"}
        Calibration.
    float16 : {"auto", "yes", "no"}
        ``"auto"``: float16 when the pooled out-of-fold Dice and AUC move by less than
        ``tolerance``.
    max_mib : float
        Refuse weights files larger than this (MiB).
    bench_repeats : int
        Predictions of a 500 x 500 image timed for the card (0: no timing).
    fusion : {"auto", "yes", "no"}
        Ship the shape-descriptor fusion (:mod:`busi_lib.eval.fusion`, fitted on the out-of-fold
        predictions): ``"auto"`` when the selection records keep it for ``experiment``
        (:func:`busi_lib.eval.fusion.kept`).

    Raises
    ------
    DataError, ConfigError
        Incomplete or stale records, missing fold models, other data, a file over ``max_mib``.
    """
    if method not in METHODS:
        raise ConfigError(f"method={method!r}: expected one of {list(METHODS)}")
    if fusion not in ("auto", "yes", "no"):
        raise ConfigError(f"fusion={fusion!r}: expected 'auto', 'yes' or 'no'")
    if float16 not in ("auto", "yes", "no"):
        raise ConfigError(f"float16={float16!r}: expected 'auto', 'yes' or 'no'")
    if not 0 < tolerance < 1:
        raise ConfigError(f"tolerance={tolerance!r}: expected a number in (0, 1)")
    out = Path(out) if out is not None else MODELS_DIR
    t_start = time.time()
    run = _check_folds(profile, experiment, results_dir, verbose)                     # step 1
    run.tolerance, run.n_boot = tolerance, n_boot
    _load_busi(run, data_dir, results_dir)                                            # step 2
    work = Path(tempfile.mkdtemp(prefix=f".{run.name}.", dir=_mkdir(out)))
    try:
        stage = work / run.name
        stage.mkdir()
        exp32, exp16 = _export_folds(run, work, verbose)                              # step 3
        _choose_precision(run, exp32, exp16, float16, stage, max_mib, verbose)       # step 4
        _calibrate(run, method, fusion, results_dir, stage, verbose)                 # step 5
        _fit_ood(run, data_dir, stage, verbose)
        _evaluate(run, stage, busbra_dir if external else False, bench_repeats, verbose)  # 6
        target = _write_release(run, stage, out, work)                                # step 7
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _log(verbose, f"released {target} in {time.time() - t_start:.0f} s; card {out / 'README.md'}")
    return target


@dataclasses.dataclass
class ReleaseRun:
    """The release record as it is built, step by step: what was checked, chosen and measured
    (:func:`_release_info` turns it into ``release.json``)."""
    profile: str
    experiment: str
    name: str
    cfg: dict[str, Any]                  # the records' training configuration
    recs: list[dict]                     # the fold records
    differ: list[str]                    # keys where the current definition differs
    folder: Path                         # results/<profile>/<experiment>/
    tolerance: float = 0.005
    n_boot: int = 1000
    data: Any = None                     # BUSI, loaded as training loaded it
    folds: pd.DataFrame | None = None
    net: Any = None                      # one float32 network; the folds' weights are swapped in
    n_params: int = 0
    s32: dict | None = None              # out-of-fold Dice and AUC of the float32 export
    s16: dict | None = None              # ... and of the float16 export
    moved: dict | None = None
    use16: bool = False
    oof: pd.DataFrame | None = None      # out-of-fold predictions of the released weights
    cal: Any = None                      # the calibrator
    fus: Any = None                      # the shape fusion, when shipped
    headline: str = "prob_calibrated_crossfit"
    detector: Any = None                 # the out-of-distribution detector
    predictor: Any = None                # the released ensemble
    ext: pd.DataFrame | None = None      # its BUS-BRA predictions
    timing: dict | None = None

    @property
    def cfg_out(self) -> dict[str, Any]:
        """The configuration the release ships (all folds)."""
        return {**self.cfg, "folds": None}


def _check_folds(profile: str, experiment: str, results_dir, verbose: bool) -> ReleaseRun:
    """Step 1: every fold recorded with the current configuration, on the same data."""
    cfg, recs, differ = check_records(profile, experiment, results_dir)
    run = ReleaseRun(profile, experiment, model_name(profile, experiment), cfg, recs, differ,
                     records.experiment_dir(profile, experiment, results_dir))
    _log(verbose, f"{run.name}: {len(recs)} folds recorded with config {recs[0]['config_hash']} "
                  f"on data {recs[0]['data_sha256'][:12]}")
    if differ:
        _log(verbose, f"note: the experiment's current definition differs from the records in "
                      f"{differ}; the records' configuration is released")
    return run


def _load_busi(run: ReleaseRun, data_dir, results_dir) -> None:
    """Step 2: BUSI as training loaded it, checked against the records' manifest and hash."""
    run.data, run.folds = prepare(run.cfg, data_dir, results_dir=results_dir,
                                  manifest_dir=run.folder)
    if run.data.data_sha256 != run.recs[0]["data_sha256"]:
        raise DataError(f"BUSI found here has data_sha256 {run.data.data_sha256}, the records "
                        f"{run.recs[0]['data_sha256']}: release on the data the folds were "
                        "trained on")


def _export_folds(run: ReleaseRun, work: Path, verbose: bool) -> tuple[list[Path], list[Path]]:
    """Step 3: each fold model exported weights-only, in float32 and float16."""
    run.net = build_float32(run.cfg)      # one network, its weights swapped (no retracing)
    exp32, exp16 = [], []
    for r in run.recs:
        k = r["fold"]
        f32, f16 = work / f"fold{k}.f32.weights.h5", work / f"fold{k}.f16.weights.h5"
        run.n_params = export_fold(run.folder / "models" / f"fold{k}.keras", run.net, f32, f16)
        exp32.append(f32)
        exp16.append(f16)
    _log(verbose, f"exported {len(run.recs)} folds ({run.n_params:,} parameters each)")
    return exp32, exp16


def _choose_precision(run: ReleaseRun, exp32: list[Path], exp16: list[Path], float16: str,
                      stage: Path, max_mib: float, verbose: bool) -> None:
    """Step 4: out-of-fold predictions with both exports; float16 when it moves nothing."""
    oof32 = out_of_fold(run.cfg, run.data, run.folds, exp32, run.net)
    oof16 = out_of_fold(run.cfg, run.data, run.folds, exp16, run.net)
    run.s32, run.s16 = _summary(oof32), _summary(oof16)
    run.moved = {m: abs(run.s16[m] - run.s32[m]) for m in run.s32}
    ok16 = all(np.isfinite(v) and v < run.tolerance for v in run.moved.values())
    run.use16 = ok16 if float16 == "auto" else float16 == "yes"
    _log(verbose, f"float16 vs float32 out-of-fold: Dice {run.moved['dice_mean']:.5f}, "
                  f"AUC {run.moved['auc']:.5f} (tolerance {run.tolerance}) -> "
                  f"{'float16' if run.use16 else 'float32'}")
    chosen, run.oof = (exp16, oof16) if run.use16 else (exp32, oof32)
    for k, f in enumerate(chosen):
        shutil.copyfile(f, stage / f"fold{k}.weights.h5")
    big = [(p.name, p.stat().st_size / 2**20) for p in weights_files(stage)
           if p.stat().st_size > max_mib * 2**20]
    if big:
        raise DataError(f"weights file(s) {[(n, round(s, 1)) for n, s in big]} MiB exceed "
                        f"max_mib={max_mib}; expected smaller files (float16, a narrower "
                        "network), or raise --max-mib knowingly")


def _calibrate(run: ReleaseRun, method: str, fusion: str, results_dir, stage: Path,
               verbose: bool) -> None:
    """Step 5: calibration (and the shape fusion, when kept) fitted on the out-of-fold BUSI
    predictions only; their effect on BUSI measured by cross-fitting."""
    oof = run.oof
    lesion = oof["true_class"].isin(["benign", "malignant"]).to_numpy()
    y = (oof["true_class"] == "malignant").to_numpy(int)
    run.cal = fit_calibrator(y[lesion], oof["prob_raw"].to_numpy()[lesion], method)
    oof["prob_calibrated_crossfit"] = np.nan
    oof.loc[lesion, "prob_calibrated_crossfit"] = crossfit(
        y[lesion], oof["prob_raw"].to_numpy()[lesion], oof["fold"].to_numpy()[lesion], method)
    use_fusion = (fusion_mod.kept(run.profile, run.experiment, results_dir) if fusion == "auto"
                  else fusion == "yes")
    if use_fusion:
        rows = fusion_mod.lesion_rows(oof[lesion].rename(columns={"prob_raw": "prob_malignant"}))
        run.fus = fusion_mod.fit_all(rows)
        oof["prob_fused_crossfit"] = np.nan
        oof.loc[lesion, "prob_fused_crossfit"] = fusion_mod.fold_fitted(rows)
        run.headline = "prob_fused_crossfit"
        _log(verbose, f"shape fusion kept by the selection records: {run.fus.describe()}")
    oof["band_crossfit"] = None
    oof.loc[lesion, "band_crossfit"] = birads_band(oof.loc[lesion, run.headline].clip(0, 1))
    records.write_json(stage / "config.json", run.cfg_out)
    records.write_json(stage / "calibration.json", run.cal.to_dict())
    if run.fus is not None:
        records.write_json(stage / "fusion.json", run.fus.to_dict())
    records.write_csv(stage / "oof_predictions.csv", oof)


def _fit_ood(run: ReleaseRun, data_dir, stage: Path, verbose: bool) -> None:
    """Step 5, continued: the out-of-distribution detector, fitted on BUSI's images."""
    run.detector = fit_on_busi(run.cfg, data_dir, run.folds)
    records.write_json(stage / "ood.json", run.detector.to_dict())
    _log(verbose, f"out-of-distribution threshold {run.detector.threshold:.2f} (held-out BUSI "
                  f"flagged: {100 * run.detector.info['held_out_flagged']:.1f} %)")


def _evaluate(run: ReleaseRun, stage: Path, busbra_dir, bench_repeats: int,
              verbose: bool) -> None:
    """Step 6: the released ensemble, unchanged, on BUS-BRA (``busbra_dir=False``: not at all)
    and timed."""
    files = weights_files(stage)
    hashes = {p.name: sha256_file(p) for p in files}
    run.predictor = Predictor(run.cfg_out, [load_weights(run.net, p) for p in files], run.cal,
                              name=run.name, sha256=ensemble_sha256(files, hashes),
                              model=run.net, ood=run.detector, fusion=run.fus)
    run.ext = evaluate_busbra(run.predictor, busbra_dir) if busbra_dir is not False else None
    if run.ext is not None:
        records.write_csv(stage / "busbra_predictions.csv", run.ext)
        _log(verbose, f"BUS-BRA: {len(run.ext)} images evaluated")
    run.timing = _time_predictor(stage, bench_repeats) if bench_repeats else None


def _write_release(run: ReleaseRun, stage: Path, out: Path, work: Path) -> Path:
    """Step 7: the release record and the card; the folder replaces any earlier release
    atomically (the old one is removed only once the new one is whole)."""
    info = _release_info(run)
    records.write_json(stage / "release.json", info)
    card = card_text(stage, info)
    target = out / run.name
    if target.exists():
        os.replace(target, work / "previous")
    os.replace(stage, target)
    atomic_write_text(out / "README.md", card)
    return target


def card_text(folder: Path, info: dict[str, Any] | None = None, bench_log=None) -> str:
    """The model card of a release folder: its ``release.json`` (or ``info``), the size and
    sha256 of each of its files, and the latest ``predict --bench --record`` row of the model
    in ``bench_log`` (default ``results/bench/predict.jsonl``)."""
    folder = Path(folder)
    info = dict(info if info is not None else json.loads((folder / "release.json").read_text()))
    info["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                     for p in sorted(folder.iterdir())}
    log = bench_log if bench_log is not None else records.results_root() / "bench" / "predict.jsonl"
    return model_card(info, bench=latest_bench(log, info["name"]))


def refresh_card(folder, bench_log=None) -> Path:
    """Rewrite the card ``README.md`` beside a release folder (e.g. after a new speed
    measurement); the release itself is not touched."""
    folder = Path(folder)
    if not (folder / "release.json").is_file():
        raise DataError(f"{folder}: no release.json; expected a released model folder")
    card = folder.parent / "README.md"
    atomic_write_text(card, card_text(folder, bench_log=bench_log))
    return card


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _time_predictor(stage: Path, repeats: int) -> dict[str, Any]:
    """Load time of the staged folder (without the TensorFlow import, with the first
    prediction) and predict time of one 500 x 500 image, on this machine."""

    t0 = time.perf_counter()
    p = Predictor.from_release(stage, verify=False)
    load = time.perf_counter() - t0
    t = time_predictions(p, bench_image(500), repeats)
    return {"load_and_first_predict_s": round(load + t["first_predict_s"], 2),
            "predict_500px_median_s": t["predict_median_s"], "repeats": repeats,
            "cpu_cores": os.cpu_count(), "cpu": cpu_model()}


def _release_info(run: ReleaseRun) -> dict[str, Any]:
    """Everything the card says, from the records and this release's measurements."""
    profile, experiment, name, cfg, recs = (run.profile, run.experiment, run.name, run.cfg_out,
                                            run.recs)
    folder, differ, oof, s32, s16 = run.folder, run.differ, run.oof, run.s32, run.s16
    moved, use16, tolerance, cal, ext = run.moved, run.use16, run.tolerance, run.cal, run.ext
    n_params = run.n_params
    ens_sha, n_boot, timing, headline, fus = (run.predictor.sha256, run.n_boot, run.timing,
                                              run.headline, run.fus)
    ood_info = {"threshold": run.detector.threshold, **run.detector.info}
    lesion = oof[oof["true_class"].isin(["benign", "malignant"])]
    y = (lesion["true_class"] == "malignant").to_numpy(int)
    per_fold = []
    for r in recs:
        m = r.get("metrics", {})
        per_fold.append({"fold": r["fold"] + 1, "n_test": r.get("n_test"),
                         "dice_mean": m.get("seg_DC_mean"), "auc": m.get("cls_AUC"),
                         "accuracy": m.get("cls_ACC"), "epochs": r.get("epochs_run"),
                         "precision": r.get("precision"), "git_commit": r.get("git_commit"),
                         "train_seconds": r.get("train_seconds")})
    rec_ext = []
    for r in recs:
        f = (r.get("external") or {}).get("file")
        if f and (folder / f).is_file():
            e = pd.read_csv(folder / f)
            yy = (e["pathology"] == "malignant").to_numpy(int)
            rec_ext.append({"fold": r["fold"] + 1,
                            "auc": _dice_auc(yy, e["prob_malignant"].to_numpy(),
                                             e["dice"].to_numpy())[1],
                            "dice_mean": float(e["dice"].mean())})
    info: dict[str, Any] = {
        "name": name, "profile": profile, "experiment": experiment, "created_utc": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "release_git_commit": records.git_commit(),
        "versions": records.versions(), "note": NOTE,
        "config_hash": recs[0]["config_hash"], "data_sha256": recs[0]["data_sha256"],
        "seed": recs[0].get("seed"), "train_seed": cfg.get("train_seed"),
        "config": cfg, "config_differs_from_current_definition": differ, "n_folds": len(recs),
        "n_params": n_params, "weights_sha256": ens_sha,
        "n_images": int(len(oof)), "n_lesion_images": int(len(lesion)),
        "n_malignant": int(y.sum()),
        "records": per_fold, "records_external": rec_ext,
        "float16": {"used": bool(use16), "tolerance": tolerance,
                    "float32": s32, "float16": s16, "moved": moved},
        "oof": {**(s16 if use16 else s32),
                "calibration_before": calibration_scores(y, lesion["prob_raw"]),
                "calibration_after_crossfit": calibration_scores(
                    y, lesion["prob_calibrated_crossfit"].clip(0, 1)),
                "bands_crossfit": birads_table(
                    y, lesion[headline].clip(0, 1)).reset_index().to_dict("records")},
        "operating_points_crossfit": points_record(y, lesion[headline].clip(0, 1)),
        "fusion": ({"used": True, "describe": fus.describe(), "n_fit": fus.n_fit,
                    "auc_crossfit": _dice_auc(y, lesion[headline].to_numpy(),
                                              lesion["dice"].to_numpy())[1],
                    "fitted_on": "BUSI out-of-fold predictions of the released weights"}
                   if fus is not None else {"used": False}),
        "ood": {k: v for k, v in (ood_info or {}).items()},
        "calibration": {**cal.to_dict(), "describe": cal.describe(),
                        "fitted_on": "BUSI out-of-fold predictions of the released weights"},
        "timing": timing,
    }
    if ext is not None:
        yb = (ext["pathology"] == "malignant").to_numpy(int)
        auc, lo, hi = grouped_bootstrap_auc(yb, ext["prob_calibrated"].to_numpy(),
                                            ext["case"].to_numpy(), n_boot=n_boot)
        info["busbra"] = {
            "images": int(len(ext)), "patients": int(ext["case"].nunique()),
            "malignant": int(yb.sum()), "auc": auc, "auc_ci95": [lo, hi], "n_boot": n_boot,
            "dice_mean": float(ext["dice"].mean()),
            "calibration_before": calibration_scores(yb, ext["prob_raw"].clip(0, 1)),
            "calibration_after": calibration_scores(yb, ext["prob_calibrated"].clip(0, 1)),
            "bands": birads_table(yb, ext["prob_calibrated"].clip(0, 1)).reset_index().to_dict(
                "records"),
            "no_lesion_found": (float((~ext["lesion_found"].astype(bool)).mean())
                                if "lesion_found" in ext else None),
            "out_of_distribution": (float(ext["out_of_distribution"].mean())
                                    if "out_of_distribution" in ext else None),
            "operating_points": points_record(yb, ext["prob_calibrated"],
                                                        ext["birads"]),
            "auc_by_device": {d: _dice_auc((g["pathology"] == "malignant").to_numpy(int),
                                           g["prob_calibrated"].to_numpy(),
                                           g["dice"].to_numpy())[1]
                              for d, g in ext.groupby("device")
                              if g["pathology"].nunique() == 2},
        }
    return info


# ----------------------------------------------------------------------------- demo model


def main(argv: list[str] | None = None) -> int:
    """``python -m busi_lib.serve.release --profile cpu --experiment robust_grouped_e60``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m busi_lib.serve.release",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--experiment", default=RELEASED_EXPERIMENT)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--out", default=None, help="folder for <experiment>_<profile>/ and README.md "
                                               "(default models/)")
    p.add_argument("--data-dir", default=None, help="BUSI folder (default: as training finds it)")
    p.add_argument("--busbra-dir", default=None, help="BUS-BRA folder (default: $BUSBRA_DATA, ...)")
    p.add_argument("--no-external", action="store_true", help="do not evaluate on BUS-BRA")
    p.add_argument("--calibration", default="platt", choices=list(METHODS))
    p.add_argument("--float16", default="auto", choices=["auto", "yes", "no"])
    p.add_argument("--tolerance", type=float, default=0.005)
    p.add_argument("--max-mib", type=float, default=MAX_MIB)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--fusion", default="auto", choices=["auto", "yes", "no"],
                   help="ship the shape fusion (auto: when the selection records keep it)")
    p.add_argument("--refresh-card", metavar="FOLDER", default=None,
                   help="only rewrite the card of this released model folder (e.g. after "
                        "`predict --bench 20 --record results/bench/predict.jsonl`)")
    a = p.parse_args(argv)
    try:
        if a.refresh_card:
            print(f"written: {refresh_card(a.refresh_card)}")
            return 0
        release(a.profile, a.experiment, results_dir=a.results_dir, out=a.out,
                data_dir=a.data_dir, busbra_dir=a.busbra_dir, external=not a.no_external,
                method=a.calibration, float16=a.float16, tolerance=a.tolerance,
                max_mib=a.max_mib, n_boot=a.n_boot,
                fusion=a.fusion)
    except (DataError, ConfigError) as exc:
        print(f"busi_lib.serve.release: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
