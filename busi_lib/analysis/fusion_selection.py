"""Whether shape-descriptor fusion is kept: its selection rules, their records and their CLI.

The fusion itself (:class:`busi_lib.eval.fusion.Fusion`, fitted on out-of-fold rows only) is in
:mod:`busi_lib.eval.fusion`.

Selection rule (fixed before the comparison was computed, 2026-12-03)
---------------------------------------------------------------------
For an experiment's five duplicate-grouped folds, the per-fold AUC of the fused probability
(:func:`fold_fitted`) is paired with the per-fold AUC of the network's own probability. The
fusion is **kept** when the lower end of the 95 % *t* interval of the five paired differences
is above zero (the gain clears the spread between folds), and Dice is unchanged by
construction (the mask is the network's). Otherwise the release reports the network's
probability alone.

Second rule: perturbed validation (fixed 2026-12-03, after the first rule's result -- not kept
on any of five experiments -- was known, and before any number below existed)
------------------------------------------------------------------------------------------
Issue 26 asks for three signals, and the rule above reads only the clean one. Each fold model
predicts its own test images perturbed as scanners differ (:data:`busi_lib.experiments.shift.SHIFTS`);
each fold's perturbed rows are fused by a fusion fitted on the *clean* out-of-fold rows of the
other folds (:func:`perturbed_rows`, :func:`perturbed_selection`). Per fold, the AUC gain
(fused - network) is averaged over the perturbations. The fusion is **kept** when the lower end
of the 95 % *t* interval of these five per-fold gains is above zero *and* the clean gain of the
first rule is not negative (its mean >= 0). Context reliance needs no test: the descriptors are
computed from the lesion's outline alone. This second chance is disclosed wherever the verdict
is shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.analysis.stats import t_interval
from busi_lib.config import DEFAULTS
from busi_lib.data.splits import prepare
from busi_lib.errors import DataError
from busi_lib.eval.fusion import (Fusion, feature_table, fold_fitted, lesion_rows, perturbed_path,
                                  selection_path)
from busi_lib.eval.inference import network_outputs
from busi_lib.eval.metrics import fast_auc, fast_auc as _auc
from busi_lib.experiments.shift import SHIFTS, shift_images
from busi_lib.experiments.trainer import evaluate_outputs
from busi_lib.nn.build import load_saved_model


def selection(oof: pd.DataFrame, level: float = 0.95) -> dict[str, Any]:
    """The selection rule of this module on one experiment's out-of-fold rows.

    Returns
    -------
    dict
        ``per_fold`` (fold, n, AUC of the network, AUC fused, difference), ``mean_gain``,
        ``ci`` (the *t* interval of the per-fold gains), ``keep`` (bool) and ``pooled``
        (the AUCs over all out-of-fold rows).
    """

    o = lesion_rows(oof)
    fused = fold_fitted(o)
    rows = []
    for k, g in o.assign(fused=fused).groupby("fold"):
        y = g["y"].to_numpy(int)
        a_net, a_fus = _auc(y, g["prob_malignant"].to_numpy()), _auc(y, g["fused"].to_numpy())
        rows.append({"fold": int(k) + 1, "n": int(len(g)), "auc_network": a_net,
                     "auc_fused": a_fus, "gain": a_fus - a_net})
    per_fold = pd.DataFrame(rows)
    mean, lo, hi = t_interval(per_fold["gain"], level)
    y = o["y"].to_numpy(int)
    return {"per_fold": per_fold, "mean_gain": mean, "ci": (lo, hi), "level": level,
            "keep": bool(np.isfinite(lo) and lo > 0),
            "pooled": {"auc_network": _auc(y, o["prob_malignant"].to_numpy()),
                       "auc_fused": _auc(y, fused)},
            "fused": fused}


def record_selection(profile: str, experiments, results_dir=None) -> dict[str, Any]:
    """Apply the selection rule to each experiment's out-of-fold rows and write the record
    (:func:`selection_path`): per-fold AUCs, the interval, the verdict, the code version."""

    out: dict[str, Any] = {"rule": "keep when the 95% t interval of the per-fold AUC gain "
                                   "(fused - network) is above zero",
                           "git_commit": records.git_commit(), "profile": profile,
                           "experiments": {}}
    for name in experiments:
        oof = records.load_predictions(profile, name, results_dir)
        if oof.empty:
            raise DataError(f"no out-of-fold predictions for {profile}/{name}; train it first")
        recs = records.load_records(profile, name, results_dir)
        s = selection(oof)
        out["experiments"][name] = {
            "per_fold": s["per_fold"].to_dict("records"), "mean_gain": s["mean_gain"],
            "ci95": list(s["ci"]), "keep": s["keep"], "pooled": s["pooled"],
            "config_hash": recs[0]["config_hash"], "data_sha256": recs[0]["data_sha256"],
            "seed": recs[0].get("seed")}
    records.write_json(selection_path(profile, results_dir), out)
    return out


def selection_table(rec: dict[str, Any]) -> pd.DataFrame:
    """One row per experiment of a :func:`record_selection` record."""
    rows = []
    for name, e in rec["experiments"].items():
        rows.append({"experiment": name, "AUC network (pooled)": e["pooled"]["auc_network"],
                     "AUC fused (pooled)": e["pooled"]["auc_fused"],
                     "gain, mean of 5 folds": f"{e['mean_gain']:+.3f}",
                     "95% CI": f"{e['ci95'][0]:+.3f} to {e['ci95'][1]:+.3f}",
                     "kept": "yes" if e["keep"] else "no"})
    return pd.DataFrame(rows).set_index("experiment")


def main(argv=None) -> int:
    """``python -m busi_lib.analysis.fusion_selection --experiment robust_grouped_e60 multitask_grouped``."""
    import argparse

    p = argparse.ArgumentParser(description="Apply the fusion's selection rule (BUSI only).")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--experiment", nargs="+", default=["robust_grouped_e60"])
    p.add_argument("--results-dir", default=None)
    p.add_argument("--perturbed", action="store_true",
                   help="the second rule: fold models on perturbed test images (needs the "
                        "fold models under results/<profile>/<experiment>/models)")
    p.add_argument("--models-dir", default=None)
    a = p.parse_args(argv)
    if a.perturbed:
        for name in a.experiment:
            e = record_perturbed(a.profile, name, a.results_dir, a.models_dir)["experiments"][name]
            print(f"{name}: per-fold AUC gain under perturbation {e['mean_gain']:+.4f} "
                  f"(95% CI {e['ci95'][0]:+.4f} to {e['ci95'][1]:+.4f}), clean gain "
                  f"{e['clean_gain']:+.4f}: {'kept' if e['keep'] else 'not kept'}")
        print(f"written: {perturbed_path(a.profile, a.results_dir)}")
        return 0
    rec = record_selection(a.profile, a.experiment, a.results_dir)
    print(selection_table(rec).to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"written: {selection_path(a.profile, a.results_dir)}")
    return 0


def perturbed_rows(profile: str, experiment: str, results_dir=None, models_dir=None,
                   data_dir=None, shifts=None, verbose: bool = True) -> pd.DataFrame:
    """Each fold model's predictions of its own test images under each perturbation of
    :data:`busi_lib.experiments.shift.SHIFTS`: fold, shift, id, true_class, prob_malignant, dice and the
    ``pred_<descriptor>`` of the predicted mask (at the image's proportions), as the fold
    records hold them for the clean images. The fold models are read from ``models_dir``
    (default ``results/<profile>/<experiment>/models``)."""
    from pathlib import Path

    recs = records.load_records(profile, experiment, results_dir)
    if not recs:
        raise DataError(f"no fold records of {profile}/{experiment}")
    cfg = {**DEFAULTS, **recs[0]["config"], "folds": None}
    data, folds = prepare(cfg, data_dir, results_dir=results_dir)
    folder = Path(models_dir) if models_dir is not None else \
        records.experiment_dir(profile, experiment, results_dir) / "models"
    fold_col = folds["fold"].to_numpy()
    frames = []
    for r in recs:
        k = r["fold"]
        path = folder / f"fold{k}.keras"
        if not path.is_file():
            raise DataError(f"{path} not found: the perturbed rule needs every fold model "
                            "(tools/rebuild_models.sh rebuilds them)")
        model = load_saved_model(path)
        idx = np.nonzero(fold_col == k)[0]
        for name in shifts or SHIFTS:
            imgs, mks = shift_images(data.images[idx], data.masks[idx], name)
            _, table, _ = evaluate_outputs(cfg, network_outputs(model, cfg, imgs), mks,
                                           data.labels[idx], data.class_names,
                                           orig_sizes=data.orig_sizes[idx])
            table.insert(0, "id", data.ids[idx])
            table.insert(0, "shift", name)
            table.insert(0, "fold", k)
            frames.append(table)
        if verbose:
            print(f"[fusion] {experiment} fold {k}: {len(idx)} test images x "
                  f"{len(shifts or SHIFTS)} perturbations", flush=True)
    return pd.concat(frames, ignore_index=True)


def perturbed_selection(rows: pd.DataFrame, clean_oof: pd.DataFrame,
                        level: float = 0.95) -> dict[str, Any]:
    """The second rule on :func:`perturbed_rows` and the clean out-of-fold rows of the same
    experiment: per fold, the mean over perturbations of the AUC gain of the fusion (fitted on
    the other folds' *clean* rows) over the network; ``keep`` as the module docstring says."""

    clean = lesion_rows(clean_oof)
    pert = lesion_rows(rows)
    per_shift = []
    for k in sorted(pert["fold"].unique()):
        fus = Fusion().fit(feature_table(clean[clean["fold"] != k]),
                           clean.loc[clean["fold"] != k, "y"])
        g = pert[pert["fold"] == k]
        fused = fus.predict_proba(feature_table(g))
        for name, h in g.assign(fused=fused).groupby("shift", sort=False):
            y = h["y"].to_numpy(int)
            a_net, a_fus = fast_auc(y, h["prob_malignant"]), fast_auc(y, h["fused"])
            per_shift.append({"fold": int(k) + 1, "shift": name, "auc_network": a_net,
                              "auc_fused": a_fus, "gain": a_fus - a_net})
    ps = pd.DataFrame(per_shift)
    per_fold = ps.groupby("fold")[["auc_network", "auc_fused", "gain"]].mean().reset_index()
    mean, lo, hi = t_interval(per_fold["gain"], level)
    clean_gain = selection(clean_oof)["mean_gain"]
    return {"per_shift": ps, "per_fold": per_fold, "mean_gain": mean, "ci": (lo, hi),
            "clean_gain": clean_gain, "level": level,
            "keep": bool(np.isfinite(lo) and lo > 0 and clean_gain >= 0)}


def record_perturbed(profile: str, experiment: str, results_dir=None, models_dir=None,
                     data_dir=None) -> dict[str, Any]:
    """Run the second rule on ``experiment`` and write its record (:func:`perturbed_path`,
    one entry per experiment, earlier entries kept)."""
    import json

    rows = perturbed_rows(profile, experiment, results_dir, models_dir, data_dir)
    s = perturbed_selection(rows, records.load_predictions(profile, experiment, results_dir))
    recs = records.load_records(profile, experiment, results_dir)
    path = perturbed_path(profile, results_dir)
    out = json.loads(path.read_text()) if path.is_file() else {
        "rule": "keep when the 95% t interval of the per-fold AUC gain under perturbation "
                "(mean over busi_lib.experiments.shift.SHIFTS; fusion fitted on the other folds' clean "
                "out-of-fold rows) is above zero and the clean gain is >= 0",
        "experiments": {}}
    out["git_commit"] = records.git_commit()
    out["experiments"][experiment] = {
        "per_fold": s["per_fold"].to_dict("records"), "per_shift": s["per_shift"].to_dict("records"),
        "mean_gain": s["mean_gain"], "ci95": list(s["ci"]), "clean_gain": s["clean_gain"],
        "keep": s["keep"], "config_hash": recs[0]["config_hash"],
        "data_sha256": recs[0]["data_sha256"], "seed": recs[0].get("seed")}
    records.write_json(path, out)
    return out


if __name__ == "__main__":
    import sys

    sys.exit(main())
