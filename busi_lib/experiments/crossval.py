"""k-fold cross-validation of one configuration: resumable, deterministic, recorded.

Entry point: :func:`run_cv`. For each fold it

1. skips the fold when ``fold<k>.json`` exists with the same config hash and data hash
   (and refuses to overwrite one with another config hash);
2. otherwise trains it epoch by epoch, saving a ``.keras`` checkpoint and a small state file
   after every epoch, so a run killed midway resumes from the last finished epoch;
3. evaluates on the test fold and writes the record, the per-image predictions and the
   predicted masks, each atomically.

The training itself (numerics, the epoch loop, determinism, evaluation) is in
:mod:`busi_lib.experiments.trainer`; this module decides which images each fold trains and is tested on.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.config import CHOICES, book_experiments, config_hash, experiments, make_config
from busi_lib.data.protocols import fold_parts
from busi_lib.data.splits import prepare
from busi_lib.errors import ConfigError, DataError
from busi_lib.eval import inference
from busi_lib.experiments import trainer
from busi_lib.experiments.external import evaluate_external
from busi_lib.nn import machine
from busi_lib.nn.build import load_saved_model
from busi_lib.nn.quiet import start_backend_quietly

# ----------------------------------------------------------------------------- folds


def run_cv(profile: str = "cpu", experiment: str = "multitask", *, data_dir=None,
           results_dir=None, verbose: int = 1, stop_after_epochs: int | None = None,
           **overrides) -> list[dict]:
    """Cross-validate ``experiment`` in ``profile``; returns the fold records (recorded or new).

    Parameters
    ----------
    profile, experiment : names from :mod:`busi_lib.config`
    data_dir : path, optional (see :func:`busi_lib.data.busi.locate_data`)
    results_dir : path, optional; default ``<project>/results``
    verbose : 0 silent, 1 one line per epoch, 2 Keras progress bars
    stop_after_epochs : int, optional
        Stop (leaving the checkpoint) after this many epochs *in this call*: pieces of work
        that fit a time budget. The next call resumes.
    **overrides : configuration values (see ``busi_lib.config.DEFAULTS``)
    """
    cfg = make_config(profile, experiment, **overrides)
    out = records.experiment_dir(profile, experiment, results_dir)
    records.check_writable(out)
    chash = config_hash(cfg)
    data, folds = prepare(cfg, data_dir, verbose=verbose > 0, results_dir=results_dir,
                          manifest_dir=out)
    todo = cfg["folds"] if cfg["folds"] is not None else list(range(cfg["n_folds"]))
    result = []
    for k in todo:
        path = out / f"fold{k}.json"
        failed = out / records.diverged_name(k)
        if failed.is_file() and not path.is_file():
            rec = json.loads(failed.read_text())
            if rec.get("config_hash") == chash and rec.get("data_sha256") == data.data_sha256:
                if verbose:
                    print(f"[{experiment}] fold {k}: its training diverged at epoch "
                          f"{rec['diverged_at']} in an earlier run ({failed.name}); skipped. "
                          "Delete that file to train it again.")
                continue
        if path.is_file():
            rec = json.loads(path.read_text())
            if rec.get("config_hash") != chash:
                raise ConfigError(
                    f"{path} was recorded with config_hash {rec.get('config_hash')}, not {chash}: "
                    "the configuration changed. Use another experiment name or results_dir, or "
                    "delete the old records deliberately; nothing was overwritten.")
            if rec.get("data_sha256") != data.data_sha256:
                raise DataError(f"{path} was recorded on data {rec.get('data_sha256')}, not "
                                f"{data.data_sha256}")
            if verbose:
                print(f"[{experiment}] fold {k}: recorded, skipped ({path.name})")
            result.append(rec)
            continue
        rec = train_fold(cfg, data, folds, k, out, profile=profile, experiment=experiment,
                         chash=chash, verbose=verbose, stop_after_epochs=stop_after_epochs)
        if rec is None:  # stopped early on purpose
            break
        if rec.get("diverged_at"):  # recorded as a failure, not as a fold
            continue
        result.append(rec)
    return result


def train_fold(cfg: dict, data, folds: pd.DataFrame, k: int, out: Path, *, profile: str,
               experiment: str, chash: str, verbose: int = 1,
               stop_after_epochs: int | None = None) -> dict | None:
    """Train and evaluate fold ``k``; write its record. Returns ``None`` if stopped early.

    A fold whose training diverged (:func:`busi_lib.experiments.trainer.fit_model`) is not evaluated: its
    failure is written to ``diverged_fold<k>.json`` (configuration, data, machine, the epoch,
    the loss history) and returned, and no ``fold<k>.json`` is written."""
    t_start = time.time()
    train_idx, val_idx, test_idx = fold_parts(folds, k)   # a protocol's validation part, if any
    if cfg["early_stopping"] and not len(val_idx):
        rng = np.random.default_rng([cfg["seed"], k, 10**6])
        from sklearn.model_selection import train_test_split

        train_idx, val_idx = train_test_split(train_idx, test_size=cfg["val_fraction"],
                                              stratify=data.labels[train_idx], random_state=int(
                                                  rng.integers(2**31 - 1)))
    precision = machine.resolve_precision(cfg["precision"])
    ckpt_dir = out / "checkpoints" / f"fold{k}"
    seed = trainer.training_seed(cfg)
    with machine.precision_scope(precision):
        model, state = trainer.fit_model(
            cfg, data.images[train_idx], data.masks[train_idx], data.labels[train_idx], key=k,
            ckpt_dir=ckpt_dir, chash=chash, label=f"{experiment} fold {k}", verbose=verbose,
            stop_after_epochs=stop_after_epochs,
            val=(data.images[val_idx], data.masks[val_idx], data.labels[val_idx]))
        if model is None:
            return None
        if state.get("diverged_at"):
            fail = {"experiment": experiment, "profile": profile, "fold": k, "seed": cfg["seed"],
                    "config_hash": chash, "data_sha256": data.data_sha256,
                    "git_commit": records.git_commit(), "precision": precision,
                    "machine": machine.machine_info(precision), "diverged_at": state["diverged_at"],
                    "train_seconds": state["train_seconds"], "build_note": state.get("build_note"),
                    "n_train": int(len(train_idx)), "history": state["history"]}
            records.write_json(out / records.diverged_name(k), fail)
            shutil.rmtree(ckpt_dir, ignore_errors=True)
            if verbose:
                print(f"[{experiment}] fold {k}: training diverged at epoch "
                      f"{state['diverged_at']}; not evaluated, failure written to "
                      f"{records.diverged_name(k)}", flush=True)
            return fail

        # ---------------- evaluation on the test fold
        t_eval = time.time()
        ids = data.ids[test_idx]
        pred = inference.network_outputs(model, cfg, data.images[test_idx])
        metrics, table, pm = trainer.evaluate_outputs(cfg, pred, data.masks[test_idx],
                                                  data.labels[test_idx], data.class_names,
                                                  orig_sizes=_sizes(data, test_idx))
        table.insert(0, "id", ids)
        if pm is not None:
            records.write_masks(out / f"fold{k}_masks.npz", ids, pm)
        records.write_csv(out / f"fold{k}_predictions.csv", table)
        if len(val_idx):        # the validation part's predictions: for choices made on it
            records.write_csv(out / f"fold{k}_{records.VALIDATION_KIND}.csv",
                              _scored_part(model, cfg, data, val_idx))
        locked = None
        if "locked" in folds.columns:    # a protocol's locked test set: every fold model scores it
            lk = np.nonzero(folds["locked"].to_numpy(bool))[0]
            records.write_csv(out / f"fold{k}_locked.csv", _scored_part(model, cfg, data, lk))
            locked = {"n": int(len(lk)), "file": f"fold{k}_locked.csv"}
        external = None
        if cfg["external"]:

            ext = evaluate_external(model, cfg)
            if ext is not None:
                records.write_csv(out / f"fold{k}_external.csv", ext)
                external = {"n": int(len(ext)), "file": f"fold{k}_external.csv"}
            else:
                external = {"n": 0, "note": "BUS-BRA not found; external evaluation skipped"}
        epoch_s = [r["seconds"] for r in state["history"]]
        rec = {
            "experiment": experiment, "profile": profile, "fold": k, "seed": cfg["seed"],
            "config": cfg, "config_hash": chash, "data_sha256": data.data_sha256,
            "git_commit": records.git_commit(), "versions": records.versions(),
            "precision": precision, "machine": machine.machine_info(precision),
            "seconds_per_epoch": float(np.median(epoch_s)) if epoch_s else None,
            "determinism": {"keras_seed": seed + k, "op_determinism": cfg["deterministic"],
                            "augmentation_rng": "numpy default_rng([seed, fold, epoch])"},
            "wall_seconds": state["train_seconds"] + (time.time() - t_eval),
            "train_seconds": state["train_seconds"], "eval_seconds": time.time() - t_eval,
            "cpu_seconds": state.get("cpu_seconds"),
            "epochs_run": state["epoch"], "resumed_at": state["resumed_at"],
            "stopped_early_at": state.get("stopped_early_at"),
            "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
            "n_test": int(len(test_idx)), "class_weights": state["class_weights"],
            "n_params": int(model.count_params()), "build_note": state.get("build_note"),
            "metrics": metrics, "history": state["history"], "external": external,
            **({"locked": locked} if locked is not None else {}),
        }
        records.write_json(out / f"fold{k}.json", rec)
        trainer.atomic_save(model, out / "models" / f"fold{k}.keras")
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        if verbose:
            shown = {n: round(v, 4) for n, v in metrics.items()
                     if n in ("seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_AUC")}
            print(f"[{experiment}] fold {k}: done in {time.time() - t_start:.0f} s {shown}",
                  flush=True)
        return rec


def _scored_part(model, cfg: dict, data, idx: np.ndarray) -> pd.DataFrame:
    """The per-image table of ``model`` on the rows ``idx`` (as a fold's test table)."""
    pred = inference.network_outputs(model, cfg, data.images[idx])
    _, table, _ = trainer.evaluate_outputs(cfg, pred, data.masks[idx], data.labels[idx],
                                           data.class_names, orig_sizes=_sizes(data, idx))
    table.insert(0, "id", data.ids[idx])
    return table


def validation_predictions(profile: str, experiment: str, *, data_dir=None, results_dir=None,
                           verbose: bool = True, **overrides) -> list[Path]:
    """Write ``fold<k>_validation.csv``, each recorded fold model's predictions on its fold's
    validation part, for the folds that lack it (new folds write it as they are trained).

    For choices made on the validation parts, never on a test fold: the rows scored are
    exactly :func:`~busi_lib.data.protocols.fold_parts`'s validation part. Needs the fold
    models (``models/fold<k>.keras``, written by training and not committed) and the recorded
    folds' configuration and data; what was written, by which code, from which model file,
    goes into ``validation.json``.

    Raises
    ------
    ConfigError
        when the experiment's folds have no validation part, a fold model is missing, or a
        record was made with another configuration (``overrides``: those it was run with)
    """
    cfg = make_config(profile, experiment, **overrides)
    out = records.experiment_dir(profile, experiment, results_dir)
    chash = config_hash(cfg)
    data, folds = prepare(cfg, data_dir, verbose=verbose, results_dir=results_dir,
                          manifest_dir=out)
    log_path = out / "validation.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    written = []
    for rec_path in sorted(out.glob("fold*.json")):
        rec = json.loads(rec_path.read_text())
        k = int(rec["fold"])
        target = out / f"fold{k}_{records.VALIDATION_KIND}.csv"
        if target.is_file():
            continue
        if rec.get("config_hash") != chash or rec.get("data_sha256") != data.data_sha256:
            raise ConfigError(f"{rec_path} was recorded with another configuration or data "
                              f"({rec.get('config_hash')}, not {chash}); expected the current one")
        _, val_idx, _ = fold_parts(folds, k)
        if not len(val_idx):
            raise ConfigError(f"{experiment} fold {k} has no validation part: expected a "
                              "protocol with one (e.g. peer_curated)")
        model_path = out / "models" / f"fold{k}.keras"
        if not model_path.is_file():
            raise ConfigError(f"{model_path} not found: the fold models are not committed; "
                              "train the fold on this machine (or copy its model) first")
        model = load_saved_model(model_path)
        table = _scored_part(model, cfg, data, val_idx)
        records.write_csv(target, table)
        log[str(k)] = {"file": target.name, "n": int(len(table)),
                       "model_sha256": records.sha256_file(model_path),
                       "git_commit": records.git_commit(),
                       "machine": machine.machine_info(rec["precision"])}
        records.write_json(log_path, log)
        written.append(target)
        if verbose:
            print(f"[{experiment}] fold {k}: {len(table)} validation predictions written",
                  flush=True)
    return written


def _sizes(data, index):
    """Original (H, W) of the images at ``index``, or ``None`` for data that has none."""
    sizes = getattr(data, "orig_sizes", None)
    return None if sizes is None else sizes[index]


def work_plan(profile: str, names, overrides: dict | None = None, breadth_first: bool = False
              ) -> list[tuple[str, int]]:
    """The (experiment, fold) pairs to run, in order.

    Experiments of the full protocol come first, each fold in turn; the ``light`` experiments
    (profile cpu_v1, :data:`busi_lib.config.LIGHT`), or all of them with ``breadth_first``,
    follow breadth first: fold 1 of every one of them, then fold 2 of every one, and so on, so
    that a budget that runs out midway leaves every comparison with the same folds rather than
    some complete and others empty.
    """

    table = experiments(profile)
    overrides = overrides or {}
    full, light = [], []
    for name in names:
        cfg = make_config(profile, name, **overrides)    # fails on a bad override first
        folds = cfg["folds"] if cfg["folds"] is not None else list(range(cfg["n_folds"]))
        (light if table[name].get("light") else full).append((name, [int(k) for k in folds]))
    if breadth_first:
        light, full = full + light, []
    plan = [(name, k) for name, folds in full for k in folds]
    for k in sorted({k for _, folds in light for k in folds}):
        plan += [(name, k) for name, folds in light if k in folds]
    return plan


def take_fold_lock(locks_dir: Path, name: str, k: int) -> bool:
    """Claim fold ``k`` of ``name`` for this process: True for the first process that asks
    (an exclusive file create in ``locks_dir``), False for every later one."""
    locks_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(locks_dir / f"{name}_fold{k}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, f"{os.getpid()} {time.time():.0f}\n".encode())
    os.close(fd)
    return True


def experiment_listing(profile: str = "cpu", results_dir=None) -> str:
    """What ``busi-train --list`` prints: each experiment of ``profile`` with whether the book
    shows it, its folds recorded (of ``n_folds``) and its overrides of the profile's recipe, then
    the allowed values of each configuration key that takes one of a few."""
    book = set(book_experiments(profile))
    lines = [f"experiments of profile {profile!r} (book: shown in the book and trained by "
             "`make results`; overrides: against the profile's recipe)"]
    for name, ov in experiments(profile).items():
        cfg = make_config(profile, name)
        recs = [r for r in records.load_records(profile, name, results_dir)
                if r.get("config_hash") == config_hash(cfg)]
        shown = {k: v for k, v in ov.items() if k != "external"}
        lines.append(f"  {name:<28} {'book' if name in book else '    '} "
                     f"{len(recs)}/{cfg['n_folds']} folds  {json.dumps(shown) if shown else '(the recipe)'}")
    lines.append("allowed values (--set KEY=VALUE):")
    lines.extend(f"  {k}: {', '.join(map(str, v))}" for k, v in CHOICES.items())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m busi_lib.experiments.crossval --profile cpu --experiment multitask [--folds 0 1]``.

    ``--experiment`` takes several names, or ``book`` for every experiment the book shows (in
    the order of :func:`work_plan`: full-protocol experiments fold by fold, then the light ones
    breadth first). ``--hours H`` makes a resumable
    piece of work: no new fold is started once H hours have passed (the fold under way is
    finished and recorded). Recorded folds are skipped, so the same command continues the work.
    """
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--experiment", nargs="+", default=["multitask"],
                   help="experiment name(s), or 'book' for all of the book's experiments")
    p.add_argument("--hours", type=float, default=None,
                   help="start no new fold after this many hours (a resumable piece)")
    p.add_argument("--breadth-first", action="store_true",
                   help="fold 1 of every experiment, then fold 2 of every one, ...")
    p.add_argument("--locks", default=None, metavar="DIR",
                   help="share the work between processes running the same command")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--results-dir", default=None)
    p.add_argument("--folds", type=int, nargs="*", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--stop-after-epochs", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a configuration value, e.g. --set external=false")
    p.add_argument("--list", action="store_true",
                   help="list the experiments, their folds recorded and the allowed values")
    p.add_argument("--scratch", default=None, metavar="NAME",
                   help="train into results/scratch/NAME/ (never read by the book or "
                        "`make results`): try an experiment with --set overrides")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up log lines")
    p.add_argument("--validation-predictions", action="store_true",
                   help="write the recorded fold models' predictions on their validation parts "
                        "(fold<k>_validation.csv) where missing, and train nothing")
    a = p.parse_args(argv)
    start_backend_quietly(a.verbose)
    if a.list:
        print(experiment_listing(a.profile, a.results_dir))
        return 0
    if a.scratch is not None:
        if not a.scratch.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"--scratch {a.scratch!r}: expected a plain name (letters, digits, "
                              "'_' or '-')")
        a.results_dir = str(records.results_root(a.results_dir) / "scratch" / a.scratch)
    ov = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a JSON value")
        try:
            ov[key] = json.loads(value)
        except ValueError:
            ov[key] = value
    if a.folds:
        ov["folds"] = a.folds
    if a.epochs:
        ov["epochs"] = a.epochs
    book, table = book_experiments(a.profile), experiments(a.profile)
    names = [n for e in a.experiment for n in (book if e == "book" else (e,))]
    bad = [n for n in names if n not in table]
    if bad:
        raise ConfigError(f"--experiment {bad}: expected names from {sorted(table)} or 'book'")
    if a.validation_predictions:
        for name in names:
            validation_predictions(a.profile, name, data_dir=a.data_dir,
                                   results_dir=a.results_dir)
        return 0
    if a.hours is not None and not a.hours > 0:
        raise ConfigError(f"--hours={a.hours}: expected a positive number of hours")
    t0 = time.time()
    for name, k in work_plan(a.profile, names, ov, breadth_first=a.breadth_first):
        if a.hours is not None and time.time() - t0 > a.hours * 3600:
            print(f"--hours {a.hours}: time is up, stopping before {name} fold {k}; "
                  "run the same command again to continue", flush=True)
            return 0
        if a.locks is not None and not take_fold_lock(Path(a.locks), name, k):
            continue
        run_cv(a.profile, name, data_dir=a.data_dir, results_dir=a.results_dir,
               stop_after_epochs=a.stop_after_epochs, **{**ov, "folds": [int(k)]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
