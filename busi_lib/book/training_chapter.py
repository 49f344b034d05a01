"""Chapter 3 (*Training*): each section's tables, figures, sentences and glued values.

One function per section of ``notebooks/03_training.ipynb``, so that a notebook cell is a call:
it shows what the section shows (:mod:`busi_lib.book.view`) and glues the values that the
chapter's opening sentences and the introduction quote (:func:`busi_lib.book.booktext.glue`).
Every number comes from the records; a missing record is reported, never trained here.
"""

from __future__ import annotations

import pandas as pd

from busi_lib.analysis import comparisons, leakage, paper, reliance, tune_report
from busi_lib.book import booktext, cost, data_tables, figures, repro_checks, runs, tables, view
from busi_lib.config import ABLATIONS, CLS_BASELINES, SEG_BASELINES, make_config
from busi_lib.experiments import tune
from busi_lib.experiments.shift import SHIFTS

#: What the chapter says where a value cannot be computed for want of records.
NA = "n/a (no records)"


def tuning_trials(profile: str, seed: int) -> list[dict]:
    """The learning-rate range test, the table of tuning trials and the capacity sentence;
    returns the trials."""
    trials = tune_report.load_trials(profile, runs.results_dir_for(seed))
    lr_rec = tune_report.load_lr_range(profile, runs.results_dir_for(seed))
    if lr_rec:
        tune_report.plot_lr_range(lr_rec)
        view.md(f"Learning-rate range test on the inner training images ({len(lr_rec['loss'])} "
                f"steps, lr from {lr_rec['lr'][0]:.0e} to {lr_rec['lr'][-1]:.0e}): the smoothed "
                f"loss is lowest at {lr_rec['lr_at_min']:.1e}; a tenth of that, "
                f"{lr_rec['suggested_lr']:.1e}, is the usual starting point. The trials below try "
                "1e-3 and 3e-3 with a cosine schedule, and the paper's 1e-4 with its step "
                "schedule.")
    if trials:
        trials_tab = tune_report.trials_table(trials)
        view.show(trials_tab, f"Tuning trials ({profile}): validation Dice and AUC (mean of the "
                  "last 3 epochs), score, training CPU hours and seconds per epoch", decimals=3)
        if trials_tab.index.isin(list(tune_report.CAPACITY)).any():
            view.md("Capacity, checked after the recipe was fixed (each trial against its "
                    "reference, same rule): " + tune_report.capacity_sentence(trials_tab))
    else:
        view.note(f"no tuning trials recorded for profile {profile}: run `python -m "
                  "busi_lib.experiments.tune --stage 1` (then 2 and 3).")
    return trials


def quality_per_hour(trials: list[dict]) -> None:
    """The quality-per-CPU-hour figure and the machine the trials ran on."""
    if trials:
        tune_report.plot_quality_per_hour(trials)
        m = trials[-1]["machine"]
        view.md(f"Trials measured on: {m['cpu']} ({m['cores']} cores, bfloat16 units: "
                f"{'yes' if m['cpu_bf16'] else 'no'}, precision {trials[-1]['precision']}).")


def inference_choices(trials: list[dict]) -> None:
    """Validation Dice per mask threshold and AUC of the chosen recipe's trial."""
    final = next((r for r in trials if r["trial"] == tune.FINAL_TRIAL),
                 trials[-1] if trials else None)
    if final:
        view.show(tune_report.choices_table(final),
                  f"Validation Dice per mask threshold and AUC, trial {final['trial']}", decimals=3)


def classifier_reliance(trials: list[dict], profile: str, seed: int, recs_g: list[dict],
                        data_dir=None) -> None:
    """Validation AUC with the lesion hidden or alone, and the AUC within groups of similar
    image size (test folds of ``multitask_grouped``)."""
    rel = tune_report.reliance_table(trials)
    if not rel.empty:
        view.show(rel, "Validation AUC of each trial's model: images as they are, lesion hidden, "
                  "lesion alone", decimals=3)
    pred_g = runs.predictions(profile, "multitask_grouped", seed=seed, records=recs_g)
    if not pred_g.empty:
        inv = data_tables.image_inventory(data_dir)
        sz = pred_g.merge(inv[["id", "height", "width"]], on="id")
        w = reliance.within_size_auc(sz[["height", "width"]].to_numpy(),
                                     sz["true_class"] == "malignant", sz["prob_malignant"],
                                     min_group=6, bin_px=50)
        view.md(f"Test folds of `multitask_grouped`, pooled AUC {w['auc']:.3f}; within "
                f"{w['n_groups']} groups of similar size ({w['n_images']} images) the "
                f"size-weighted mean AUC is {w['within_auc']:.3f}.")


def robustness(trials: list[dict]) -> None:
    """Stage 4: clean and perturbed validation scores, the follow-up, the perturbations, and
    how closely ``robust_ref`` reproduced the recipe's trial."""
    robust = tune_report.robust_table(trials)
    if robust.empty:
        view.note("no stage-4 trial recorded yet: run `python -m busi_lib.experiments.tune "
                  "--stage 4`.")
    else:
        cols = ["score", "shift score"] + [f"{s} {m}" for s in SHIFTS for m in ("Dice", "AUC")]
        view.show(robust[cols].T, "Validation Dice and AUC on the clean and on the perturbed "
                  "validation images (scores: Dice + AUC)", decimals=3)
        view.md(tune_report.robust_sentence(robust))
        if set(tune.ROBUST_FOLLOW_UP) & set(robust.index):
            view.md("Added in a later session, after `robust_grouped` was trained (its rule fixed "
                    "before the trial ended: the extra compute pays when the clean or the shift "
                    "score rises by more than 0.02 and neither falls by more than 0.02): "
                    + tune_report.robust_follow_up(robust))
        view.md("The perturbations: " + "; ".join(f"`{k}` {v[0]}" for k, v in SHIFTS.items())
                + ".")
    by_name = {r["trial"]: r for r in trials}
    if {"robust_ref", tune.FINAL_TRIAL} <= set(by_name):
        a, b = by_name["robust_ref"]["history"], by_name[tune.FINAL_TRIAL]["history"]
        diff = max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in ("val_dice", "val_auc"))
        view.md(f"`robust_ref` is the configuration of `{tune.FINAL_TRIAL}` trained again from "
                f"scratch in a later session: over its {len(a)} epochs the largest difference "
                f"in validation Dice or AUC from `{tune.FINAL_TRIAL}`'s record is {diff:.1e}"
                + (" (identical)." if diff == 0 else "."))


def seed_ensembles(trials: list[dict]) -> None:
    """Three training seeds' probabilities averaged against each seed alone, on the inner
    validation images (:func:`busi_lib.analysis.tune_report.seed_ensemble_table`)."""
    table = tune_report.seed_ensemble_table(trials)
    if table.empty:
        view.note("no three seeds of one recipe have recorded their validation predictions.")
        return
    view.show(table.set_index("recipe"), "Validation AUC of each training seed and of the "
              "three seeds' probabilities averaged (inner validation images; exploratory, no "
              "rule)", decimals=3)
    view.md(tune_report.seed_ensemble_sentence(table))


def learning_curve(trials: list[dict]) -> None:
    """Stage 5: the recipe on shares of the inner-training images, and the seed noise."""
    lc = tune_report.learning_curve_table(trials)
    if len(lc) < 2:
        view.note("stage 5 is not recorded yet: run `python -m busi_lib.experiments.tune "
                  "--stage 5`.")
    else:
        view.show(lc[["share", "images", "epochs", "val Dice", "val AUC", "score", "CPU h"]],
                  "The recipe on a share of the inner-training images (validation images "
                  "unchanged)", decimals=3)
        tune_report.plot_learning_curve(lc)
        view.md(tune_report.learning_curve_sentence(lc))
    view.md(tune_report.seed_sentence(tune_report.trial_seed_spread(trials)))


def recipe_against_paper(profile: str, seed: int, recs_g: list[dict],
                         recs_pr: list[dict]) -> None:
    """The recipe, the paper's recipe and the records before the recipe, side by side and
    paired by fold."""
    cmp_recipe = comparisons.across_profiles([
        ("the recipe", profile, "multitask_grouped"),
        ("the paper's recipe, same epochs", profile, "paper_recipe"),
        ("before the recipe (12 epochs at 1e-4)", "cpu_v1", "multitask_grouped")],
        runs.results_dir_for(seed))
    view.show(cmp_recipe, "Duplicate-grouped folds: mean and sample sd over folds (fractions), "
              "hours of training", decimals=3)

    def txt(row):
        return ("not recorded yet" if not row["folds"] else
                f"a Dice of {row['Dice']:.3f} and an AUC of {row['AUC']:.3f} "
                f"({int(row['folds'])} folds)")

    booktext.glue("paper_recipe_text", txt(cmp_recipe.iloc[1]))
    booktext.glue("v1_text", txt(cmp_recipe.iloc[2]))
    booktext.glue("head_folds", f"{len(recs_g)}")
    if recs_pr and recs_g:
        vs = comparisons.paired_table(profile, "paper_recipe", ["multitask_grouped"],
                                      results_dir=runs.results_dir_for(seed))
        vs_text = comparisons.variant_sentence(vs, "multitask_grouped")
        view.md("Paired by fold, the recipe (`multitask_grouped`) against the paper's recipe: "
                + vs_text + ".")
        booktext.glue("recipe_vs_paper", vs_text.split(": ", 1)[1])
    else:
        booktext.glue("recipe_vs_paper", "not recorded yet")


def segmentation_tables(profile: str, recs: list[dict]) -> pd.DataFrame:
    """Table 1 of the paper beside ours (random folds), and ours pooled over pixels; returns
    our per-image-mean table."""
    seg = tables.fold_table(recs, "seg", "mean")
    view.show(tables.side_by_side(seg, paper.table1()),
              f"Segmentation per fold, % (ours: profile {profile}, per-image mean; paper: "
              "Table 1 as reported)")
    view.show(tables.fold_table(recs, "seg", "pooled"), "Ours, pooled over the pixels of each "
              "fold, %")
    return seg


def classification_table(profile: str, recs: list[dict]) -> pd.DataFrame:
    """Table 2 of the paper beside ours (random folds); returns ours."""
    cls = tables.fold_table(recs, "cls")
    view.show(tables.side_by_side(cls, paper.table2()),
              f"Classification per fold, % (AUC fraction; ours: profile {profile}; paper: Table 2 "
              "as reported)")
    return cls


def glue_first_page(profile: str, recs: list[dict], seg: pd.DataFrame,
                    cls: pd.DataFrame) -> None:
    """The values of the random-fold tables that the book's first page quotes."""
    booktext.glue("ours_profile", profile)
    booktext.glue("ours_folds", f"{len(recs)}")
    # one unit per metric: Dice, JSI and AUC as fractions, accuracy and recall in %
    for name, table, col, form, scale in (("ours_cls_acc", cls, "ACC", "{:.1f} %", 1),
                                          ("ours_cls_rec", cls, "REC", "{:.1f} %", 1),
                                          ("ours_cls_auc", cls, "AUC", "{:.3f}", 1),
                                          ("ours_seg_dc", seg, "DC", "{:.3f}", 100),
                                          ("ours_seg_jsi", seg, "JSI", "{:.3f}", 100)):
        booktext.glue(name, form.format(table.loc["mean", col] / scale) if recs else NA)


def against_the_aim(profile: str, recs_g: list[dict]) -> None:
    """The headline model against the aim, and fold 0 under other budgets."""
    aim = tables.aim_table(recs_g)
    view.show(aim, f"Main model ({profile}, duplicate-grouped folds) against the aim: mean and "
              f"sample std over {len(recs_g)} fold(s), fractions", decimals=3)
    for key, name in (("DC", "aim_dc"), ("AUC", "aim_auc")):
        if recs_g:
            a = aim.loc[key]
            booktext.glue(name, f"{a['mean']:.3f} against {a['aim']:.2f} "
                          f"({'met' if a['met'] else f'short by {a.shortfall:.3f}'})")
        else:
            booktext.glue(name, NA)
    ev = tables.fold_evidence([(profile, "multitask"), ("cpu_v1", "multitask"),
                               ("cpu_v1", "multitask_w32_e40"), ("paper", "multitask"),
                               ("paper", "multitask_slowdecay")])
    if len(ev) > 1:
        view.show(ev, "Fold 1 (random split) of the main model under different budgets (%, AUC "
                  "fraction): every row is a record", decimals=2)
        base = ev.iloc[0]
        view.md("Against the first row, on the same test fold:\n\n" + "\n".join(
            f"- `{run}` ({r['image px']} px, width {r['width']}, {r['epochs run']} epochs, "
            f"{r['device']}): Dice {r['DC'] - base['DC']:+.1f} points, AUC "
            f"{r['AUC'] - base['AUC']:+.3f}" for run, r in ev.iloc[1:].iterrows()))
    for key, name in (("DC", "head_dc"), ("AUC", "head_auc")):
        booktext.glue(name, f"{aim.loc[key, 'mean']:.3f} (sd {aim.loc[key, 'sd']:.3f})"
                      if recs_g else NA)


def robust_e60_against_the_aim(profile: str, recs_r60: list[dict], trials: list[dict]) -> None:
    """The same for ``robust_grouped_e60``, with its trial's gain on validation."""
    if recs_r60:
        aim60 = tables.aim_table(recs_r60)
        view.show(aim60, f"robust_grouped_e60 ({profile}, duplicate-grouped folds) against the "
                  f"aim: mean and sample std over {len(recs_r60)} fold(s), fractions", decimals=3)
        scores = {r["trial"]: r["score"] for r in trials}
        if {"robust_aug_e60", tune.FINAL_TRIAL} <= set(scores):
            gain = scores["robust_aug_e60"] - scores[tune.FINAL_TRIAL]
            view.md(f"Its trial, `robust_aug_e60`, scores {scores['robust_aug_e60']:.3f} on the "
                    f"clean validation images against the recipe's "
                    f"{scores[tune.FINAL_TRIAL]:.3f} (`{tune.FINAL_TRIAL}`): {gain:+.3f}, "
                    + ("more than the rule's 0.02, so by the rule that chose the recipe it would "
                       "have been kept." if gain > tune.MIN_GAIN
                       else "not more than the rule's 0.02."))
    else:
        view.note("`robust_grouped_e60` has no recorded fold in this profile.")
    for key, name in (("DC", "r60_dc"), ("AUC", "r60_auc")):
        booktext.glue(name, f"{aim60.loc[key, 'mean']:.3f} (sd {aim60.loc[key, 'sd']:.3f}, "
                      f"{len(recs_r60)} folds)" if recs_r60 else NA)


def where_it_stops(trials: list[dict]) -> None:
    """What the trials say about capacity, epochs, images and noise, as a list."""
    tt = tune_report.trials_table(trials)
    if tt.empty:
        return
    lines = ["- capacity and length: " + tune_report.capacity_sentence(tt)]
    rt = tune_report.robust_table(trials)
    if set(tune.ROBUST_FOLLOW_UP) & set(rt.index):
        lines.append("- more epochs for the robustness configuration: "
                     + tune_report.robust_follow_up(rt))
    lc = tune_report.learning_curve_table(trials)
    if len(lc) >= 2:
        lines.append("- more images: " + tune_report.learning_curve_sentence(lc))
    lines.append("- the noise of these scores: "
                 + tune_report.seed_sentence(tune_report.trial_seed_spread(trials)))
    view.md("\n".join(lines))


def random_against_grouped(profile: str, seed: int, recs: list[dict],
                           recs_g: list[dict]) -> None:
    """Random folds against duplicate-grouped folds, with the difference glued."""
    cmp = tables.compare_experiments(
        profile, ["multitask", "multitask_grouped"],
        ["seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_REC", "cls_SPE", "cls_AUC"],
        {"multitask": "random folds", "multitask_grouped": "grouped folds"},
        records={"multitask": recs, "multitask_grouped": recs_g}, seed=seed)
    view.show(cmp, "Mean and sample std over folds, %")
    if len(recs) and len(recs_g):
        d_dc = cmp.loc["random folds", "DC"] - cmp.loc["grouped folds", "DC"]
        d_auc = cmp.loc["random folds", "AUC"] - cmp.loc["grouped folds", "AUC"]
        booktext.glue("grouped_delta", f"{d_dc / 100:+.3f} Dice and {d_auc:+.3f} AUC, over "
                      f"{len(recs)} random and {len(recs_g)} grouped folds")
    else:
        booktext.glue("grouped_delta", "not measured yet, no grouped folds recorded")


def leaked_pairs(profile: str, seed: int, data_dir=None):
    """The near-duplicate pairs that straddle two grouped folds (table and figure); returns
    ``(pairs or None, leaked image ids)``."""
    leak = leakage.grouped_split_leak(make_config(profile, "multitask_grouped", seed=seed),
                                      data_dir, runs.results_dir_for(seed))
    if leak is None:
        view.note("no grouped split made yet for this profile and seed")
        return None, []
    leak_view, leak_pairs, leak_ids = leak
    view.show(leak_pairs.drop(columns=["class a", "class b", "cross-class"]),
              f"{len(leak_pairs)} near-duplicate pair(s) found without enhancement that straddle "
              "two folds of the grouped split (folds 1-based)", decimals=4)
    figures.plot_pairs(leak_view, leak_pairs, max_pairs=16,
                       title="near-duplicate pairs in two folds of the grouped split")
    return leak_pairs, leak_ids


def leak_effect(profile: str, seed: int, leak_pairs, leak_ids) -> None:
    """What leaving the leaked test images out changes, for the headline experiments and for
    chapters 4 and 5's paired comparisons; glues ``leak_text``."""
    if leak_pairs is not None:
        leak_eff = leakage.leak_effect(profile, ["multitask_grouped", "robust_grouped_e60",
                                                 "paper_recipe", "ablation_reference"], leak_ids,
                                       results_dir=runs.results_dir_for(seed))
        view.show(leak_eff.set_index(["experiment", "metric"]),
                  "Fold-mean test metrics with all test images and without the leaked ones",
                  decimals=3)
        leak_paired = leakage.paired_leak_effect(
            profile, "ablation_reference",
            list(ABLATIONS) + [f"base_{n}" for n in SEG_BASELINES + CLS_BASELINES], leak_ids,
            results_dir=runs.results_dir_for(seed))
        if not leak_paired.empty:
            view.show(leak_paired.set_index(["variant", "metric"])[
                ["folds", "all", "all verdict", "without", "without low", "without high",
                 "without verdict", "verdict changed"]],
                "Chapters 4 and 5: the paired difference from ablation_reference (t interval "
                "over folds) without the leaked test images", decimals=3)
        leak_text = leakage.leak_sentence(leak_pairs, leak_ids, leak_eff, leak_paired)
    else:
        leak_text = "not measured: no grouped split made yet"
    view.md(leak_text)
    booktext.glue("leak_text", leak_text)


def three_classes(profile: str, seed: int, recs3: list[dict]) -> None:
    """The 3-class variant beside the paper's sentence, with its confusion matrix."""
    t3 = tables.fold_table(recs3, "cls")
    if not t3.empty:
        three = t3.loc[["mean"]].rename(index={"mean": f"ours ({profile}), mean of folds"})
        three.loc["paper (3-class sentence)"] = paper.three_class()
        view.show(three, "3-class classification")
        pred3 = runs.predictions(profile, "multitask_3class", seed=seed, records=recs3)
        figures.plot_confusion(pred3, ["benign", "malignant", "normal"])


def training_cost(profile: str, recs: list[dict], recs_g: list[dict],
                  recs3: list[dict]) -> None:
    """Measured hours per experiment and per fold; glues the time values the chapter quotes."""
    costs = cost.cost_table(profile)
    view.show(costs, f"Measured cost per experiment, profile {profile} (hours of wall time from "
              "the fold records)", decimals=2)
    booktext.glue("profile_hours", f"{costs.loc['total', 'hours recorded']:.1f} hours")
    booktext.glue("profile_folds", f"{int(costs.loc['total', 'folds recorded'])} of "
                  f"{int(costs.loc['total', 'folds planned'])}")
    times = pd.DataFrame([{"experiment": r["experiment"], "fold": r["fold"] + 1,
                           "epochs": r["epochs_run"], "train s": r["train_seconds"],
                           "wall s": r["wall_seconds"], "precision": r["precision"],
                           "parameters": r["n_params"]} for r in recs + recs_g + recs3])
    view.show(times, "Recorded training time", decimals=0)
    if recs_g:   # the headline model, multitask_grouped
        per_epoch = sum(r["train_seconds"] for r in recs_g) / sum(r["epochs_run"] for r in recs_g)
        booktext.glue("time_per_epoch", f"{per_epoch:.0f} s")
        per_fold = sum(r["wall_seconds"] for r in recs_g) / len(recs_g)
        booktext.glue("time_per_fold", f"{per_fold / 60:.1f} min")
        booktext.glue("time_precision", recs_g[0]["precision"])
    else:
        for k in ("time_per_epoch", "time_per_fold", "time_precision"):
            booktext.glue(k, "n/a")


def reruns(profile: str) -> None:
    """Recorded folds trained again from scratch, against their records; then tuning trials
    run twice (:func:`busi_lib.analysis.tune_report.trial_rerun_table`)."""
    trials = tune_report.trial_rerun_table(tune_report.load_trials(profile))
    if len(trials):
        view.show(trials, "Tuning trials run a second time with the same configuration and "
                  "seed (the release recipe's reference seeds, run again in stage 12 to record "
                  "the signals added since)", decimals=3)
    table = repro_checks.rerun_table(profile)
    if table.empty:
        view.note(f"no rerun recorded for profile {profile} yet: run `python -m "
                  f"busi_lib.experiments.rerun --profile {profile} --experiment multitask "
                  "--fold 0`.")
        booktext.glue("rerun_result", "n/a (no rerun recorded)")
        return
    view.show(table, f"Recorded folds trained again from scratch (profile {profile})", decimals=3)
    first = table.iloc[0]
    view.show(repro_checks.rerun_metrics(profile, first["experiment"], int(first["fold"]) - 1),
              f"{first['experiment']} fold {first['fold']}: record against rerun", decimals=6)
    booktext.glue("rerun_result", (
        f"{first['experiment']} fold {first['fold']} trained again from scratch "
        f"({first['rerun minutes']:.0f} min): largest metric difference "
        f"{first['max |diff| metric']:.2g}, largest per-image p(malignant) difference "
        f"{first['max |diff| p(malignant)']:.2g}"))


def benchmark() -> pd.DataFrame:
    """The latest benchmark of the training path and the size x width table; returns the
    benchmark rows."""
    bench = cost.load_bench()
    summ = cost.bench_summary(bench)
    if summ.empty:
        view.note("no benchmark recorded yet: run `make bench BENCH_ARGS='--quick --out "
                  "results/bench/bench.jsonl'`.")
    else:
        view.show(summ, "Latest benchmark run (busi_lib.experiments.bench)")

    def fig(key, form):
        v = cost.bench_value(bench, key)
        return "n/a" if v != v else form.format(v)

    booktext.glue("bench_img_s", fig("train_img_per_s", "{:.2f}"))
    booktext.glue("bench_speedup", fig("speedup", "{:.2f}x"))
    booktext.glue("bench_overhead", fig("epoch_overhead_fraction", "{:.0%}"))
    booktext.glue("bench_peak", fig("peak_fraction", "{:.0%}"))
    sw = cost.bench_size_width(bench)
    if sw.empty:
        view.note("no size x width table recorded yet: run `python -m busi_lib.experiments.bench "
                  "--table --out results/bench/bench.jsonl`.")
        booktext.glue("bench_growth", "n/a (no size x width table recorded)")
    else:
        view.show(sw, "Seconds per training epoch of 518 images (project path) by image size and "
                  "width", decimals=0)
        growth = booktext.growth_summary(sw)
        view.md(growth + " " + booktext.bench_table_check(bench))
        booktext.glue("bench_growth", growth)
    return bench


def bfloat16_speed(bench: pd.DataFrame) -> None:
    """The quick benchmark in forced mixed bfloat16 against float32."""
    prec = cost.bench_precision(bench)
    if prec.empty:
        view.note("no `--precision mixed_bfloat16` benchmark recorded beside a float32 one: run "
                  "`make bench BENCH_ARGS='--quick --precision mixed_bfloat16'`.")
    else:
        view.show(prec, "Quick benchmark, forced mixed bfloat16 against float32 "
                  "(busi_lib.experiments.bench)")
    booktext.glue("bench_bf16", booktext.bench_precision_sentence(bench))


def bfloat16_numerics() -> None:
    """Fold 1 of the light protocol in float32 against mixed bfloat16 (profile ``cpu_v1``)."""
    pc = repro_checks.precision_check("cpu_v1")   # the check was made before the recipe
    if pc.empty:
        view.note("`random_light_bf16` fold 1 is not recorded for profile cpu_v1: run `python -m "
                  "busi_lib.experiments.crossval --profile cpu_v1 --experiment random_light_bf16 "
                  "random_light_s1 random_light_s2 random_light_s3`.")
    else:
        view.show(pc, "Fold 1, light protocol: float32 (training seed 42) against mixed bfloat16, "
                  "and the spread of float32 runs with other training seeds (%, AUC as a "
                  "fraction)")
    bf16_text = booktext.precision_sentence(pc, repro_checks.precision_paired("cpu_v1"))
    if not pc.empty:
        view.md(bf16_text)
    booktext.glue("bf16_check", bf16_text)

def load_trials(profile: str, seed: int) -> list[dict]:
    """The recorded tuning trials (the appendix chapter shows them)."""
    return tune_report.load_trials(profile, runs.results_dir_for(seed))


def headline_predictions(profile: str, seed: int, recs_g: list[dict]) -> None:
    """The headline model's test predictions (duplicate-grouped folds, pooled): ROC with the
    operating point at 0.5, the confusion matrix there, what it misses in words, and the
    per-image Dice."""
    pred = runs.predictions(profile, "multitask_grouped", seed=seed, records=recs_g)
    if pred.empty:
        view.note("no test predictions of `multitask_grouped` recorded yet.")
        return
    figures.plot_roc(pred, title="multitask_grouped: malignant vs benign", threshold=0.5)
    figures.plot_confusion(pred, ["benign", "malignant"],
                           title="confusion matrix at p >= 0.5 (all folds)")
    view.md(missed_sentence(pred))
    figures.plot_dice_histogram(pred, title="multitask_grouped: per-image Dice, test folds pooled")
    low = pred[pred["true_class"].isin(["benign", "malignant"])].dropna(subset=["dice"])
    view.md(f"{(low['dice'] < 0.1).sum()} of {len(low)} test images "
            f"({100 * (low['dice'] < 0.1).mean():.0f} %) have a Dice below 0.1: the outline "
            "missed the lesion almost entirely (the worst cases below show such images).")


def missed_sentence(pred: pd.DataFrame, threshold: float = 0.5) -> str:
    """At ``threshold``: how many cancers are missed and how many benign lesions flagged, in
    words, with sensitivity and specificity."""
    y = (pred["true_class"] == "malignant").to_numpy()
    lesion = pred["true_class"].isin(["benign", "malignant"]).to_numpy()
    hit = pred["prob_malignant"].to_numpy() >= threshold
    pos, neg = y & lesion, ~y & lesion
    missed, flagged = int((~hit & pos).sum()), int((hit & neg).sum())
    return (f"At a probability of {threshold:g} the model misses {missed} of {int(pos.sum())} "
            f"cancers (sensitivity {100 * (1 - missed / max(pos.sum(), 1)):.1f} %) and calls "
            f"{flagged} of {int(neg.sum())} benign lesions malignant (specificity "
            f"{100 * (1 - flagged / max(neg.sum(), 1)):.1f} %). Chapter 8 gives the calibrated "
            "thresholds a clinician would use, beside the radiologists' own.")


def predicted_masks(profile: str, seed: int, recs_g: list[dict], data_dir=None) -> None:
    """The worst, typical (median Dice) and best test images of each class."""
    pred = runs.predictions(profile, "multitask_grouped", seed=seed, records=recs_g)
    if pred.empty:
        view.note("no test predictions of `multitask_grouped` recorded yet.")
        return
    figures.plot_overlays(profile, "multitask_grouped", recs_g, seed=seed, data_dir=data_dir,
                          cases=figures.overlay_cases(pred, 2),
                          title="worst, typical and best test images of each class (sky blue: "
                                "truth, orange: prediction)")
