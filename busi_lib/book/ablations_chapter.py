"""Chapter 5 (*Ablations*): each section's tables, figures, sentences and glued values.

One function per section of ``notebooks/05_ablations.ipynb``, so that a notebook cell is a call.
Every variant is paired fold by fold with :data:`REFERENCE`; the reference trained with other
seeds is the yardstick (:mod:`busi_lib.analysis.comparisons`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from busi_lib.analysis import comparisons, reliance
from busi_lib.book import booktext, runs, tables, view
from busi_lib.config import ABLATIONS, EXPERIMENTS_V1, REFERENCE_SEEDS, make_config
from busi_lib.data.splits import prepare
from busi_lib.experiments import external

#: What every variant is paired with, and the reference with its other training seeds.
REFERENCE = "ablation_reference"
SEEDS = [REFERENCE] + [f"{REFERENCE}_s{s}" for s in REFERENCE_SEEDS]
VARIANTS = list(ABLATIONS)


def paired(profile: str, seed: int, recs: dict, n_boot: int):
    """The variants minus the reference and the seed yardstick; says what each claim's
    verdict is. Returns ``(paired table, yardstick)``."""
    rdir = runs.results_dir_for(seed)
    table = comparisons.paired_table(profile, REFERENCE, VARIANTS, n_boot=n_boot, seed=seed,
                                     results_dir=rdir, records=recs)
    yard = comparisons.seed_yardstick(profile, SEEDS, results_dir=rdir, records=recs)
    view.md("\n".join(f"- {s}" for s in comparisons.claim_sentences(table)))
    return table, yard


def at_a_glance(profile: str, table: pd.DataFrame) -> None:
    """Each variant minus the reference, and a note on variants that switch nothing."""
    view.show(comparisons.glance(table), f"At a glance: each variant minus {REFERENCE}, same "
              "folds (fractions: 0.010 Dice = 1 point), 95% t interval over folds")
    same = comparisons.same_as_reference(profile, REFERENCE, VARIANTS)
    if same:
        view.note(f"{', '.join(same)}: the same configuration as `{REFERENCE}` in profile "
                  f"`{profile}` (nothing is switched), so its row can only show training noise.")


def forest_plots(table: pd.DataFrame) -> None:
    """One forest plot per metric."""
    for metric in ("Dice", "AUC"):
        if comparisons.forest(table, metric) is None:
            view.note(f"no {metric} difference recorded yet: the forest plot of {metric} is "
                      "empty.")
        else:
            plt.show()


def yardstick(yard: pd.DataFrame, aim: float) -> None:
    """The reference with other training seeds: per seed and the spread, against ``aim``."""
    view.show(yard.rename(columns={"seg_DC_mean": "Dice", "cls_AUC": "AUC"}),
              "Mean over the folds all seeds share, per training seed, and the spread", decimals=3)
    s = comparisons.yardstick_sentence(yard, aim)
    view.md(s[0].upper() + s[1:] + ".")


def full_table(table: pd.DataFrame) -> None:
    """The full paired table: one row per variant and metric."""
    view.show(comparisons.display_table(table), "Variant minus reference, paired by fold "
              "(fractions)", decimals=3)


def giveaway(profile: str, seed: int, recs: dict, n_boot: int, data_dir=None) -> None:
    """The network, the shape of its predicted mask and both fused, on BUSI and BUS-BRA; and
    whether the network reads the image size."""
    rdir = runs.results_dir_for(seed)
    mg = recs["multitask_grouped"]
    oof = runs.predictions(profile, "multitask_grouped", seed=seed, records=mg)
    ens, ens_source = external.load_ensemble(profile, "multitask_grouped", rdir,
                                             folds=[r["fold"] for r in mg])
    if oof.empty or not any(c.startswith("pred_") for c in oof.columns):
        view.note("the out-of-fold predictions of `multitask_grouped` (with the shape of the "
                  "predicted masks) are not recorded yet: this table is empty.")
        return
    mg_cfg = make_config(profile, "multitask_grouped", seed=seed)
    _, folds = prepare(mg_cfg, data_dir, results_dir=rdir)
    shape_t = reliance.predicted_shape_table(oof, ens, folds, n_boot=n_boot, seed=seed)
    view.show(shape_t, f"The network, the shape of its predicted mask, both fused: AUC "
              f"({len(oof)} BUSI test images of {oof['fold'].nunique()} folds)")
    view.md(f"BUS-BRA rows: {ens_source}." if ens is not None else
            "BUS-BRA: no predictions of `multitask_grouped` recorded yet (empty columns).")
    acq = reliance.acquisition_and_shape(data_dir, max_per_class=mg_cfg["max_per_class"])
    m = oof.merge(acq[["id", "height", "width"]], on="id")
    ws = reliance.within_size_auc(m[["height", "width"]].to_numpy(),
                                  m["true_class"] == "malignant", m["prob_malignant"], bin_px=50)
    view.md(f"Does the network read the image size? Its out-of-fold AUC is {ws['auc']:.3f} over "
            f"all images and {ws['within_auc']:.3f} within groups of images of about one size "
            f"(50 px bins; {ws['n_groups']} groups of at least 6 images with both classes, "
            f"{ws['n_images']} images)." if ws["n_groups"] else
            "Does the network read the image size? Too few images share a size (50 px bins, "
            "groups of at least 6 images with both classes) to tell.")


def before_the_recipe(profile: str, seed: int, cfg: dict, table: pd.DataFrame,
                      yard: pd.DataFrame) -> None:
    """How well the light protocol of ``cpu_v1`` and the recipe tell an effect from noise, and
    the reference before and after the recipe."""
    v1, old_ref = "cpu_v1", "random_light"
    old_variants = [e for e, ref, _ in tables.ABLATIONS_V1
                    if ref == old_ref and e != "grouped_light"]
    old_seeds = [old_ref] + [e for e in EXPERIMENTS_V1 if e.startswith(f"{old_ref}_s")]
    old = comparisons.paired_table(v1, old_ref, old_variants, n_boot=0)
    old_yard = comparisons.seed_yardstick(v1, old_seeds)
    labels = {"before the recipe (cpu_v1)": comparisons.protocol(make_config(v1, old_ref)),
              f"the recipe ({profile})": comparisons.protocol(cfg)}
    noise = comparisons.noise_table({"before the recipe (cpu_v1)": (old, old_yard),
                                     f"the recipe ({profile})": (table, yard)})
    view.md("\n".join(f"- *{k}*: {v}" for k, v in labels.items()))
    view.show(noise, "How well each protocol tells an effect from noise (fractions)", decimals=3)
    view.md("\n".join("- " + comparisons.noise_sentence(noise, k) for k in noise.columns))
    refs = pd.concat([
        comparisons.across_profiles([("before: random_light", v1, old_ref),
                                     ("before: multitask (12 epochs)", v1, "multitask")]),
        comparisons.across_profiles([(f"now: {REFERENCE}", profile, REFERENCE)],
                                    results_dir=runs.results_dir_for(seed))])
    view.show(refs.astype({"epochs": "Int64"}), "The reference before and after the recipe: "
              "mean and sd over folds (fractions)", decimals=3)


def provenance(cfg: dict, recs: dict, parameters: dict) -> None:
    """The notebook's ``parameters`` (in order), the protocol and every experiment's records."""
    view.md(view.parameters_line(**parameters))
    view.md(f"Protocol of the variants and the reference: {comparisons.protocol(cfg)}.")
    for e, r in recs.items():
        view.md("- " + runs.provenance(r, e))
    missing = [e for e, r in recs.items() if not r]
    if missing:
        view.note(f"no records yet for {', '.join(missing)}: their rows are empty.")


def machine_mismatches(profile: str, seed: int) -> None:
    """The pairs whose variant and reference folds ran on different machines."""
    mm = comparisons.machine_mismatches(profile, REFERENCE, VARIANTS + SEEDS[1:],
                                        runs.results_dir_for(seed))
    if mm.empty:
        view.md("Every variant's fold ran on the same machine as the reference's fold it is "
                "paired with.")
    else:
        view.show(mm, "Pairs whose variant and reference folds ran on different machines (same "
                  "configuration; the difference then also holds the two machines' numerics)")


def glue_opening(profile: str, cfg: dict, table: pd.DataFrame, yard: pd.DataFrame,
                 recs: dict, aim: float) -> None:
    """The values the chapter's opening sentences quote."""
    booktext.glue("ablation_protocol", comparisons.protocol(cfg))
    booktext.glue("light_protocol", comparisons.protocol(cfg))      # the name book/intro.md uses
    booktext.glue("ablation_headline", comparisons.claim_tally(table))
    booktext.glue("ablation_yardstick", comparisons.yardstick_sentence(yard, aim))
    n_folds = len(runs.planned_folds(profile, REFERENCE))
    full = [v for v in VARIANTS if len(recs[v]) >= n_folds]
    booktext.glue("ablation_recorded", (
        f"All {len(VARIANTS)} variants are recorded on all {n_folds} folds"
        if len(full) == len(VARIANTS) else
        f"So far {len(full)} of the {len(VARIANTS)} variants are recorded on all {n_folds} folds "
        f"and the reference on {len(recs[REFERENCE])}; the rest fill in as their records arrive"))
