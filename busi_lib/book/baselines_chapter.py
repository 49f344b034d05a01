"""Chapter 4 (*Baselines*): each section's tables, figures, sentences and glued values.

One function per section of ``notebooks/04_baselines.ipynb``, so that a notebook cell is a call.
Every baseline is paired fold by fold with :data:`REFERENCE` (:mod:`busi_lib.analysis.comparisons`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.analysis import comparisons, paper
from busi_lib.book import booktext, cost, figures, runs, tables, view
from busi_lib.config import CLS_BASELINES, SEG_BASELINES, make_config
from busi_lib.experiments import baseline_tune

#: What every baseline is paired with: the main model under the baselines' protocol.
REFERENCE = "ablation_reference"
SEG = [f"base_{n}" for n in SEG_BASELINES]
CLS = [f"base_{n}" for n in CLS_BASELINES]
#: VGG19 at the recipe's learning rate (superseded by its own learning rate).
OLD_VGG = "superseded/base_vgg19_lr1e-3"


def paired(profile: str, seed: int, recs: dict, kind: str, n_boot: int) -> pd.DataFrame:
    """The segmentation (``kind="seg"``, Dice) or classification (``"cls"``, AUC) baselines
    minus the reference on the same folds: table and forest plot; returns the paired table."""
    names, metric, label, what = ((SEG, "seg_DC_mean", "Dice", "Segmentation") if kind == "seg"
                                  else (CLS, "cls_AUC", "AUC", "Classification"))
    table = comparisons.paired_table(profile, REFERENCE, names, metrics=(metric,), n_boot=n_boot,
                                     seed=seed, results_dir=runs.results_dir_for(seed),
                                     records=recs)
    view.show(comparisons.glance(table), f"{what} baselines minus {REFERENCE}, same folds")
    if comparisons.forest(table, label) is None:
        view.note(f"no {what.lower()} baseline shares a recorded fold with the reference yet.")
    else:
        plt.show()
    return table


def table4_layout(profile: str, recs: dict) -> None:
    """Our segmentation means in the layout of the paper's Table 4, and the paper's."""
    rows, nf = {}, {}
    for label, e in [*paper.T4_EXPERIMENTS.items(), ("Ours: multi-task", REFERENCE)]:
        t = tables.fold_table(recs[e], "seg4")
        rows[f"{label} ({e})"] = (t.loc["mean"] if len(t)
                                  else pd.Series(np.nan, index=tables.SEG4_LAYOUT))
        nf[f"{label} ({e})"] = len(recs[e])
    ours4 = pd.DataFrame(rows).T
    ours4.insert(0, "folds", pd.Series(nf))
    ours4.index.name = "model"
    view.show(ours4, f"Ours ({profile}): mean over recorded folds, %")
    view.show(paper.table4(), "Paper, Table 4 as reported (rows 1-5: DeepLabV3+, UNet++, UNet, "
              "FPN, DAF in unknown order)")


def did_not_train(profile: str, seed: int, recs: dict, cls: pd.DataFrame) -> None:
    """Loss curves of the classification baselines, those that did not train, their bfloat16
    runs, and VGG19's learning rate; glues ``vgg_old_text``, ``vgg_lr_text``, ``vgg_lr``."""
    rdir = runs.results_dir_for(seed)
    panels = {e: recs[e] + records.load_divergences(profile, e, rdir) for e in CLS}
    panels["base_vgg19, lr 1e-3 (superseded)"] = records.load_records(profile, OLD_VGG, rdir)
    fig = figures.plot_loss_panels(
        panels, title="Classification baselines: training loss per epoch, one line per fold")
    if fig is None:
        view.note("no classification baseline is recorded yet.")
    else:
        plt.show()
    dead = cls[(cls["constant"] > 0) | (cls["diverged"] > 0)]
    view.md("Classification baselines that did not train on some fold: "
            + ("; ".join(f"`{r['variant']}`: {comparisons.failure_words(r)}"
                         for _, r in dead.iterrows()) if len(dead) else "none") + ".")
    bf16 = {e: records.load_divergences(profile, f"superseded/{e}_bf16", rdir)
            for e in ("base_inceptionv3", "base_inceptionresnetv2")}
    view.md("Their mixed-bfloat16 runs: " + ("; ".join(
        f"`{e}` diverged on {len(d)} fold{'s' if len(d) != 1 else ''} (at epoch "
        + ", ".join(str(x["diverged_at"]) for x in d) + ")" for e, d in bf16.items() if d)
        if any(bf16.values()) else f"none recorded in profile {profile}") + ".")
    old_vgg = records.load_records(profile, OLD_VGG, rdir)
    if old_vgg:
        flat = comparisons.constant_folds(records.load_predictions(profile, OLD_VGG, rdir))
        vgg_old_text = (f"it gave every test image the same probability on {len(flat)} of "
                        f"{len(old_vgg)} folds (test AUC "
                        + ", ".join(f"{r['metrics']['cls_AUC']:.3f}" for r in old_vgg) + ").")
    else:
        vgg_old_text = f"no such run is recorded in profile {profile}."
    lr_trials = baseline_tune.load_lr_trials("base_vgg19", profile, rdir)
    vgg_lr = make_config(profile, "base_vgg19")["lr"]
    if lr_trials:
        lr_t = baseline_tune.lr_table(lr_trials)
        view.show(lr_t.drop(columns="experiment").set_index("lr"),
                  "VGG19's learning rate on the inner validation split (score: mean validation AUC "
                  "of the last epochs; last_span: spread of the validation probabilities)",
                  decimals=4)
        vgg_lr_text = baseline_tune.lr_sentence(lr_t, vgg_lr)
    else:
        vgg_lr_text = f"No learning-rate trial of it is recorded in profile {profile}."
    view.md(f"VGG19 at the recipe's learning rate: {vgg_old_text} {vgg_lr_text}")
    booktext.glue("vgg_old_text", vgg_old_text)
    booktext.glue("vgg_lr_text", vgg_lr_text)
    booktext.glue("vgg_lr", f"{vgg_lr:g}")


def table7_layout(profile: str, recs: dict) -> None:
    """Our classification means beside the paper's Table 7."""
    rows, nf = {}, {}
    for label, e in paper.T7_EXPERIMENTS.items():
        e = REFERENCE if label == "Proposed model" else e
        t = tables.fold_table(recs[e], "cls")
        rows[label] = t.loc["mean"] if len(t) else pd.Series(np.nan, index=tables.CLS_LAYOUT)
        nf[label] = len(recs[e])
    ours7 = pd.DataFrame(rows).T
    ours7.index.name = "model"
    view.show(tables.side_by_side(ours7, paper.table7()), f"Classification baselines, % (AUC "
              f"fraction; ours: profile {profile}, mean over recorded folds; paper: Table 7 as "
              "reported)")
    view.md("Folds recorded: " + ", ".join(f"{k} {v}" for k, v in nf.items()) + ".")


def build_notes(recs: dict) -> list[str]:
    """The build notes of the recorded baselines (e.g. ImageNet weights that could not be
    downloaded); returns the classification baselines trained without ImageNet weights."""
    notes = runs.build_notes(recs)
    view.md("\n".join("- " + n for n in notes) if notes else "- no build notes recorded yet")
    return [e for e in CLS if any("could not" in str(x.get("build_note", "")).lower()
                                  for x in recs[e])]


def table6(profile: str, mg: list[dict]) -> None:
    """The paper's Table 6 (methods from the literature) with our multi-task mean."""
    t6 = paper.table6().copy()
    t6.index = [f"paper: {i}" for i in t6.index]
    if len(tables.fold_table(mg, "cls")):
        t6.loc[f"ours ({profile}): multitask_grouped, {len(mg)} folds"] = \
            tables.fold_table(mg, "cls").loc["mean"]
    view.show(t6, "Table 6 (paper) with our multi-task mean")


def provenance(profile: str, cfg: dict, recs: dict, mg: list[dict], baseline_folds,
               parameters: dict) -> pd.DataFrame:
    """The notebook's ``parameters`` (in order), the protocol, the provenance of every
    experiment and what is still to train; returns the cost table of the reference and the
    baselines."""
    view.md(view.parameters_line(**parameters))
    view.md(f"Protocol of the baselines and the reference: {comparisons.protocol(cfg)}.")
    for e, r in {**recs, "multitask_grouped": mg}.items():
        view.md("- " + runs.provenance(r, e))
    planned = len(runs.planned_folds(profile, REFERENCE))
    partial = [e for e, r in recs.items() if r and len(r) < planned]
    missing = [e for e, r in recs.items() if not r]
    if partial:
        view.note(f"{len(partial)} experiment(s) recorded on fewer than the {planned} folds"
                  + (f" (`baseline_folds={baseline_folds}`)" if baseline_folds is not None else "")
                  + ": their rows pair only the folds recorded so far.")
    if missing:
        view.note(f"no records yet for {', '.join(missing)}: their rows are empty.")
    costs = cost.cost_table(profile, [REFERENCE, *SEG, *CLS])
    to_go = costs.loc[[e for e in SEG + CLS
                       if costs.loc[e, "folds recorded"] < costs.loc[e, "folds planned"]]]
    if len(to_go):
        view.show(to_go[["folds recorded", "folds planned", "folds diverged",
                         "hours to go (est.)", "estimated from", "machine"]],
                  "Baseline folds still to train (hours: chapter 9's cost table, on the machine "
                  "named)", decimals=2)
    return costs


def machine_mismatches(profile: str, seed: int) -> None:
    """The pairs whose baseline and reference folds ran on different machines."""
    mm = comparisons.machine_mismatches(profile, REFERENCE, SEG + CLS, runs.results_dir_for(seed))
    if mm.empty:
        view.md("Every baseline fold ran on the same machine as the reference fold it is paired "
                "with.")
    else:
        view.show(mm, "Pairs whose baseline and reference folds ran on different machines (same "
                  "protocol; the difference then also holds the two machines' numerics)")


def against_multitask_grouped(profile: str, seed: int, recs: dict, mg: list[dict]) -> None:
    """Every baseline minus ``multitask_grouped`` (the same machine), same folds."""
    both = {**recs, "multitask_grouped": mg}
    rdir = runs.results_dir_for(seed)
    twin = pd.concat([
        comparisons.paired_table(profile, "multitask_grouped", SEG, metrics=("seg_DC_mean",),
                                 n_boot=0, seed=seed, results_dir=rdir, records=both),
        comparisons.paired_table(profile, "multitask_grouped", CLS, metrics=("cls_AUC",),
                                 n_boot=0, seed=seed, results_dir=rdir, records=both)])
    twin = twin[twin["folds"] > 0]
    if twin.empty:
        view.note("no baseline fold is recorded yet.")
    else:
        view.show(comparisons.glance(twin), "Baselines minus multitask_grouped (trained on the "
                  "2-core CPU), same folds")
    machine_yardstick(profile, seed, both)


def machine_yardstick(profile: str, seed: int, recs: dict) -> None:
    """The machine effect itself: ``multitask_grouped`` (CPU, TensorFlow) minus
    :data:`REFERENCE` (GPU, JAX), one configuration (they differ only in whether BUS-BRA is
    evaluated) on the same folds: the yardstick beside chapter 5's seed yardstick."""
    a, b = make_config(profile, REFERENCE), make_config(profile, "multitask_grouped")
    differ = sorted(k for k in a if a[k] != b.get(k) and k != "external")
    if differ:
        view.note(f"`{REFERENCE}` and `multitask_grouped` differ in {differ} in profile "
                  f"`{profile}`: no machine yardstick.")
        return
    t = comparisons.paired_table(profile, REFERENCE, ["multitask_grouped"],
                                 metrics=("seg_DC_mean", "cls_AUC"), n_boot=0, seed=seed,
                                 results_dir=runs.results_dir_for(seed), records=recs)
    if (t["folds"] == 0).all():
        return
    view.md("The machine effect itself (the same configuration, the same folds, trained once "
            f"on each machine): {comparisons.variant_sentence(t, 'multitask_grouped')}. A "
            "baseline's difference from the reference of another machine holds this as well.")


def glue_opening(profile: str, cfg: dict, seg: pd.DataFrame, cls: pd.DataFrame, recs: dict,
                 no_imagenet: list[str], costs: pd.DataFrame, baseline_folds) -> None:
    """The values the chapter's opening sentences quote."""
    booktext.glue("baseline_protocol", comparisons.protocol(cfg))
    booktext.glue("baseline_seg_best", comparisons.verdict_tally(seg, "Dice",
                                                                 "segmentation baselines"))
    booktext.glue("baseline_cls_best", comparisons.verdict_tally(cls, "AUC",
                                                                 "classification baselines"))
    recorded = [e for e in CLS if recs[e]]
    if not recorded:
        weights = ("No classification baseline is recorded yet; the machine that trains this "
                   "book cannot download ImageNet weights, so they will start from random weights")
    elif no_imagenet:
        weights = (f"ImageNet weights were not used for "
                   f"{'any' if len(no_imagenet) == len(recorded) else len(no_imagenet)} of the "
                   f"{len(recorded)} classification baselines recorded (trained from random "
                   "weights), so the comparison with the paper's pre-trained Table 7 networks is "
                   "not like for like")
    else:
        weights = "The build notes of the classification baselines name no missing ImageNet weights"
    booktext.glue("baseline_weights", weights)
    booktext.glue("baseline_to_go", cost.to_go_sentence(costs, SEG + CLS, "baselines"))
    n_full = (len(baseline_folds) if baseline_folds is not None
              else len(runs.planned_folds(profile, REFERENCE)))
    booktext.glue("baseline_claim_seg", comparisons.baseline_claim(seg, "Dice", n_full,
                                                                   "segmentation baselines"))
    booktext.glue("baseline_claim_cls", comparisons.baseline_claim(cls, "AUC", n_full,
                                                                   "classification baselines"))
