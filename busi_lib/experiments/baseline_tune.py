"""A classification baseline's learning rate, chosen on the inner validation split.

The baselines train with the recipe's optimiser settings (Adam, learning rate 1e-3, cosine
schedule, 2 warm-up epochs). One of them, VGG19 (the only one without batch normalisation),
did not train at 1e-3: its training loss went flat within three epochs on every fold, and on
two folds it jumped to 7.07 first. A comparison with a network that did not train says nothing
about the paper's claim, so such a baseline gets a learning rate of its own, chosen here the
way the recipe was chosen (:mod:`busi_lib.experiments.tune`): on the inner validation split of the
training images of outer fold :data:`busi_lib.experiments.tune.TUNE_FOLD`, never a test fold, never BUS-BRA.

Selection rule (fixed before the trials ran):

* each candidate rate in :data:`CANDIDATES` trains the baseline's configuration for its full
  length on the inner-training images, and after every epoch its validation AUC and the span
  (max - min) of its validation malignancy probabilities are recorded;
* a candidate whose last epoch's span is below :data:`busi_lib.eval.metrics.CONSTANT_SPAN`
  answered every image alike (it did not train either) and cannot be chosen;
* of the others, the one with the highest *score* (mean validation AUC over the last
  :data:`busi_lib.experiments.tune.SCORE_EPOCHS` epochs) is chosen; with none left, the baseline keeps the
  recipe's rate and the book says that it did not train.

The chosen rate is then written into :data:`busi_lib.config.BASELINE_LR` by hand (a change of
configuration, so of the experiment's hash); ``tests/test_baseline_tune.py`` checks that it is
the rate these records choose.

    python -m busi_lib.experiments.baseline_tune --experiment base_vgg19     # run (or skip) the trials
    python -m busi_lib.experiments.baseline_tune --experiment base_vgg19 --list

Records: ``results/<profile>/tuning/baselines/<experiment>_lr<rate>.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.config import config_hash, make_config
from busi_lib.errors import ConfigError
from busi_lib.eval import inference
from busi_lib.eval.metrics import CONSTANT_SPAN, classification_metrics
from busi_lib.experiments.tune import (SCORE_EPOCHS, TUNE_FOLD, fit_inner, inner_sets,
                                       recorded_trial)
from busi_lib.nn import machine

#: experiment -> the candidate learning rates (chosen before the trials ran: one and two
#: decades-and-a-half below the recipe's 1e-3, the range in which plain VGG nets are usually
#: trained with Adam)
CANDIDATES: dict[str, tuple[float, ...]] = {"base_vgg19": (1e-4, 3e-5)}


def trial_name(experiment: str, lr: float) -> str:
    """``"base_vgg19_lr0.0001"``: the record's file stem."""
    return f"{experiment}_lr{lr:g}"


def trial_dir(profile: str = "cpu", results_dir=None) -> Path:
    return records.results_root(results_dir) / profile / "tuning" / "baselines"


def _check(experiment: str, lr: float | None = None) -> None:
    if experiment not in CANDIDATES:
        raise ConfigError(f"experiment={experiment!r}: expected one of {sorted(CANDIDATES)} "
                          "(the baselines with learning-rate candidates)")
    if lr is not None and lr not in CANDIDATES[experiment]:
        raise ConfigError(f"lr={lr!r}: expected one of {CANDIDATES[experiment]} for "
                          f"{experiment} (the candidates were fixed before the trials ran)")


def trial_config(experiment: str, lr: float, profile: str = "cpu", **extra) -> dict:
    """The baseline's configuration with learning rate ``lr`` (and ``extra``, for tests)."""
    _check(experiment, lr)
    return make_config(profile, experiment, **{**extra, "lr": lr})


def _val_metrics(model, cfg: dict, val, class_names) -> dict:
    pred = inference.network_outputs(model, {**cfg, "tta": False}, val.images)
    mal = list(class_names).index("malignant")
    prob = pred["label"][:, mal].astype(float)
    if not np.all(np.isfinite(prob)):
        return {"val_auc": float("nan"), "val_span": float("nan")}
    m = classification_metrics(val.labels, prob, pred["label"].argmax(1), positive=mal)
    return {"val_auc": float(m["cls_AUC"]), "val_span": float(prob.max() - prob.min())}


def run_lr_trial(experiment: str, lr: float, profile: str = "cpu", *, data_dir=None,
                 results_dir=None, verbose: int = 1, stop_after_epochs: int | None = None,
                 **extra) -> dict | None:
    """Train ``experiment`` at learning rate ``lr`` on the inner-training images and record
    its validation AUC and probability span per epoch (resumable; skipped when recorded).

    Returns the record, or ``None`` when stopped on purpose by ``stop_after_epochs``.
    """

    cfg = trial_config(experiment, lr, profile, **extra)
    if cfg["task"] != "cls":
        raise ConfigError(f"experiment={experiment!r} has task {cfg['task']!r}; this module "
                          "chooses classification baselines' rates only")
    chash = config_hash(cfg)
    name = trial_name(experiment, lr)
    out = trial_dir(profile, results_dir)
    path, rec = recorded_trial(out, name, chash, "baseline_tune", verbose)
    if rec is not None:
        return rec
    dev, _, tr, va = inner_sets(cfg, data_dir, results_dir)
    train_set, val = dev.subset(tr), dev.subset(va)
    t0 = time.time()
    model, state, precision, _ = fit_inner(
        cfg, chash, train_set, out / "checkpoints" / name, f"lr trial {name}", verbose,
        stop_after_epochs, lambda m, e: _val_metrics(m, cfg, val, dev.class_names))
    if model is None:
        return None
    hist = state["history"]
    rec = {"experiment": experiment, "lr": lr, "profile": profile, "config": cfg,
           "config_hash": chash, "data_sha256": dev.data_sha256,
           "git_commit": records.git_commit(), "versions": records.versions(),
           "precision": precision, "machine": machine.machine_info(precision),
           "outer_fold": TUNE_FOLD, "n_inner_train": int(len(tr)), "n_val": int(len(va)),
           "diverged_at": state.get("diverged_at"),
           "train_seconds": state["train_seconds"], "cpu_seconds": state["cpu_seconds"],
           "history": hist, "wall_seconds": time.time() - t0}
    records.write_json(path, rec)
    import shutil

    shutil.rmtree(out / "checkpoints" / name, ignore_errors=True)
    if verbose:
        print(f"[baseline_tune] {name}: score {lr_score(rec):.4f} "
              f"({rec['train_seconds']:.0f} s)", flush=True)
    return rec


def lr_score(rec: dict) -> float:
    """Mean validation AUC over the last :data:`busi_lib.experiments.tune.SCORE_EPOCHS` epochs (NaN when
    the run diverged)."""

    if rec.get("diverged_at") is not None:
        return float("nan")
    return float(np.mean([r["val_auc"] for r in rec["history"][-SCORE_EPOCHS:]]))


def lr_table(recs: list[dict]) -> pd.DataFrame:
    """One row per trial: rate, score, last epoch's probability span, whether it is eligible
    (finite score, span at least ``CONSTANT_SPAN``) and whether the rule chooses it."""

    if not recs:
        raise ValueError("no learning-rate trials given")
    rows = []
    for r in recs:
        span = r["history"][-1].get("val_span", float("nan"))
        score = lr_score(r)
        rows.append({"experiment": r["experiment"], "lr": r["lr"], "score": score,
                     "last_span": span, "diverged_at": r.get("diverged_at"),
                     "eligible": bool(np.isfinite(score) and np.isfinite(span)
                                      and span >= CONSTANT_SPAN),
                     "hours": r["train_seconds"] / 3600})
    df = pd.DataFrame(rows).sort_values("lr", ascending=False).reset_index(drop=True)
    df["chosen"] = False
    ok = df[df["eligible"]]
    if len(ok):
        df.loc[ok["score"].idxmax(), "chosen"] = True
    return df


def chosen_lr(recs: list[dict]) -> float | None:
    """The rate the selection rule chooses from these trials, or ``None`` when none trained."""
    df = lr_table(recs)
    return float(df.loc[df["chosen"], "lr"].iloc[0]) if df["chosen"].any() else None


def lr_sentence(table: pd.DataFrame, current_lr: float) -> str:
    """What the trials of one baseline (:func:`lr_table`) say, and whether the configuration
    (``current_lr``, the rate its experiment trains with now) follows the rule."""

    if table.empty:
        return "No learning-rate trial is recorded."
    name = table["experiment"].iloc[0]
    parts = []
    for _, r in table.iterrows():
        if r["diverged_at"] is not None and not pd.isna(r["diverged_at"]):
            what = f"diverged at epoch {int(r['diverged_at'])}"
        elif not r["eligible"]:
            what = "the same probability for every image"
        else:
            what = f"{r['score']:.3f}"
        parts.append(f"at {r['lr']:g}, {what}")
    s = (f"{name} on the inner validation split (validation AUC, mean of the last "
         f"{SCORE_EPOCHS} epochs): " + "; ".join(parts) + ".")
    if not table["chosen"].any():
        return s + " No candidate trained, so it keeps the recipe's rate."
    lr = float(table.loc[table["chosen"], "lr"].iloc[0])
    s += f" The rule chooses {lr:g}"
    return s + (", the rate it is trained with." if lr == current_lr else
                f", but the configuration still says {current_lr:g}: retrain it.")


def load_lr_trials(experiment: str | None = None, profile: str = "cpu",
                   results_dir=None) -> list[dict]:
    """The recorded trials (of ``experiment``, or all), by file name."""
    folder = trial_dir(profile, results_dir)
    recs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return [r for r in recs if experiment is None or r["experiment"] == experiment]


def main(argv: list[str] | None = None) -> int:
    """``python -m busi_lib.experiments.baseline_tune --experiment base_vgg19 [--lr R ...] [--list]``."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--experiment", required=True)
    p.add_argument("--lr", type=float, nargs="*", default=None)
    p.add_argument("--list", action="store_true")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--results-dir", default=None)
    a = p.parse_args(argv)
    _check(a.experiment)
    if not a.list:
        for lr in a.lr or CANDIDATES[a.experiment]:
            run_lr_trial(a.experiment, lr, a.profile, data_dir=a.data_dir,
                         results_dir=a.results_dir)
    recs = load_lr_trials(a.experiment, a.profile, a.results_dir)
    if not recs:
        print(f"{a.experiment}: no trials recorded")
        return 0
    print(lr_table(recs).to_string(index=False))
    lr = chosen_lr(recs)
    print(f"chosen: {lr}" if lr is not None else "no candidate trained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
