"""Chapter 6 (*BI-RADS and calibration*): each section's tables, figures and glued values.

One function per section of ``notebooks/06_birads.ipynb``, so that a notebook cell is a call.
BUS-BRA is read from the recorded predictions of the fold models (never trained on).
"""

from __future__ import annotations

import pandas as pd

from busi_lib.analysis import comparisons
from busi_lib.book import booktext, figures, runs, view
from busi_lib.config import experiments, make_config
from busi_lib.eval import calibration
from busi_lib.experiments import external

#: The book's headline model.
EXPERIMENT = "multitask_grouped"
#: What the chapter says where a value cannot be computed for want of records.
NA = "not recorded yet"


def robust_experiments(profile: str) -> list[str]:
    """The recipe with what stage 4 of the trials kept, and its 60-epoch follow-up (chapter 9),
    where the profile defines them."""
    return [e for e in ("robust_grouped", "robust_grouped_e60") if e in experiments(profile)]


def busbra_ensemble(profile: str, seed: int, recs: list[dict], n_boot: int):
    """The fold models as one ensemble on BUS-BRA beside the radiologists; returns
    ``(ensemble predictions or None, radiologists' scores or None, the table)``."""
    ens, ens_source = external.load_ensemble(profile, EXPERIMENT, runs.results_dir_for(seed),
                                             folds=[r["fold"] for r in recs])
    rad = external.radiologist_scores()
    if ens is None:
        view.note(f"no BUS-BRA predictions of `{EXPERIMENT}` are recorded yet: the model's rows "
                  "of this section are empty." if rad is not None else "BUS-BRA was not found.")
    ens_t = external.ensemble_table(ens, rad, n_boot=n_boot, seed=seed,
                                    label=f"model: {EXPERIMENT}, fold ensemble")
    if len(ens_t):
        shown = ens_t.assign(**{"Dice mean (%)": 100 * ens_t["Dice mean"]}).drop(columns="Dice mean")
        view.show(shown, f"BUS-BRA: AUC (95% CI, {n_boot} patient bootstrap resamples) and Dice")
    if ens is not None:
        view.md(f"Model row: {ens_source}.")
    return ens, rad, ens_t


def busbra_details(ens: pd.DataFrame | None) -> None:
    """The ensemble per scanner, its probability per BI-RADS category, and the figure."""
    if ens is None:
        return
    dev = external.device_table(ens)
    view.show(dev.assign(**{"Dice mean (%)": 100 * dev["Dice mean"]}).drop(columns="Dice mean"),
              "BUS-BRA per scanner (scanners with fewer than 20 images pooled as 'other')")
    view.show(external.probability_by_birads(ens), "The ensemble's malignancy probability per "
              "BI-RADS category and pathology: images, median")
    figures.plot_external(ens)
    view.md(failure_sentence(ens))


def failure_sentence(ens: pd.DataFrame) -> str:
    """How many BUS-BRA images the ensemble's outline misses (Dice below 0.1), by pathology
    and scanner: the spike at zero of the Dice histogram."""
    d = ens.dropna(subset=["dice"])
    low = d[d["dice"] < 0.1]
    if d.empty:
        return "No BUS-BRA Dice recorded."
    by = ", ".join(f"{k} {len(g)} of {int((d['device'] == k).sum())}"
                   for k, g in low.groupby("device")) if "device" in d and len(low) else ""
    return (f"{len(low)} of {len(d)} BUS-BRA images ({100 * len(low) / len(d):.0f} %) have a Dice "
            f"below 0.1, the spike at zero of the Dice histogram: the outline missed the lesion "
            f"(benign {int((low['pathology'] == 'benign').sum())}, malignant "
            f"{int((low['pathology'] == 'malignant').sum())})"
            + (f"; by scanner: {by}" if by else "") + ".")


def busbra_per_fold(profile: str, seed: int, recs: list[dict], n_boot: int) -> None:
    """Each fold model alone on BUS-BRA."""
    ext = runs.predictions(profile, EXPERIMENT, kind="external", seed=seed, records=recs)
    if ext.empty:
        view.note("no per-fold BUS-BRA predictions recorded yet.")
    else:
        view.show(calibration.external_summary(ext, n_boot=n_boot, seed=seed),
                  f"BUS-BRA per fold model: AUC (95% CI, {n_boot} patient bootstrap resamples) "
                  "and Dice")


def robust_recipes(profile: str, seed: int, recs_rob: dict, ens, rad, n_boot: int) -> None:
    """Each robustness experiment against the main model: what it changes, BUSI paired by
    fold, BUS-BRA paired by image; glues ``robust_ext`` and ``robust_e60_ext``."""
    rdir = runs.results_dir_for(seed)
    robust_ext = {}
    if not recs_rob:
        view.note(f"no robustness experiment in profile {profile}: stage 4 kept no change, so "
                  "the main model stays.")
    for robust, recs_r in recs_rob.items():
        view.md(f"**`{robust}`**")
        ens_r, src_r = external.load_ensemble(profile, robust, rdir,
                                              folds=[r["fold"] for r in recs_r])
        if not recs_r:
            view.note(f"`{robust}` has no recorded fold yet.")
            continue
        a, b = make_config(profile, robust, seed=seed), make_config(profile, EXPERIMENT, seed=seed)
        changed = {k: a[k] for k in a if a[k] != b[k]}
        view.md(f"`{robust}` changes, against `{EXPERIMENT}`: "
                + ", ".join(f"`{k}={v}`" for k, v in changed.items()) + ".")
        busi = comparisons.paired_table(profile, EXPERIMENT, [robust], n_boot=n_boot, seed=seed,
                                        results_dir=rdir)
        view.md("On BUSI's test folds, "
                + comparisons.variant_sentence(busi, robust, {"Dice": 0.72, "AUC": 0.86}) + ".")
        if ens_r is not None and ens is not None and set(ens_r["id"]) == set(ens["id"]):
            both = pd.concat([
                external.ensemble_table(ens, None, n_boot=n_boot, seed=seed,
                                        label=f"model: {EXPERIMENT}"),
                external.ensemble_table(ens_r, rad, n_boot=n_boot, seed=seed,
                                        label=f"model: {robust}")])
            view.show(both.assign(**{"Dice mean (%)": 100 * both["Dice mean"]})
                      .drop(columns="Dice mean"),
                      f"BUS-BRA: the fold ensembles of {EXPERIMENT} and {robust}, and the "
                      f"radiologists (95% CI, {n_boot} patient bootstrap resamples)")
            d = robust_ext[robust] = external.paired_external(ens, ens_r, n_boot=n_boot, seed=seed)
            view.md(f"{robust} minus {EXPERIMENT} on the same {d['images']} BUS-BRA images "
                    f"({d['patients']} patients): AUC {d['d_auc']:+.3f} (95% CI "
                    f"{d['d_auc_low']:+.3f} to {d['d_auc_high']:+.3f}), mean Dice "
                    f"{d['d_dice']:+.3f} ({d['d_dice_low']:+.3f} to {d['d_dice_high']:+.3f}). "
                    f"Rows: {src_r}.")
        else:
            view.note(f"no BUS-BRA ensemble of `{robust}` over the same images recorded yet.")
    for robust, name in (("robust_grouped", "robust_ext"), ("robust_grouped_e60", "robust_e60_ext")):
        d = robust_ext.get(robust)
        booktext.glue(name, NA if d is None else
                      f"an AUC of {d['auc_b']:.3f} against the main model's {d['auc_a']:.3f} on "
                      f"the same images (difference {d['d_auc']:+.3f}, 95% CI "
                      f"{d['d_auc_low']:+.3f} to {d['d_auc_high']:+.3f}) and a mean Dice of "
                      f"{d['dice_b']:.3f} ({d['d_dice']:+.3f})")


def calibration_before_after(profile: str, seed: int, n_bins: int):
    """Calibration on BUSI (cross-fitted) and BUS-BRA, reliability diagrams and the bands;
    returns ``(evidence or None, calibration table or None)``."""
    try:
        ev = calibration.evidence(profile, EXPERIMENT, results_dir=runs.results_dir_for(seed))
    except (ValueError, FileNotFoundError, KeyError) as exc:
        view.note(f"calibration not shown: {exc}")
        return None, None
    cal_t = calibration.calibration_table(ev["sets"], n_bins)
    view.show(cal_t, f"Calibration before and after ({ev['source']}; BUSI after: cross-fitted)")
    calibration.plot_reliability_before_after(ev["sets"], n_bins)
    yc, _, pc = ev["sets"]["BUSI (cross-validation)"]
    view.show(calibration.birads_table(yc, pc), "Bands of the calibrated probability, BUSI "
              "(cross-fitted)")
    if "BUS-BRA (external)" in ev["sets"]:
        yb, _, pb = ev["sets"]["BUS-BRA (external)"]
        view.show(calibration.birads_table(yb, pb), "Bands of the calibrated probability, BUS-BRA")
    return ev, cal_t


def birads_crosstab(ens: pd.DataFrame | None, ev: dict | None = None) -> None:
    """The radiologists' BI-RADS against the band of the ensemble's raw probability, and
    against the band of the calibrated probability (what the predictor prints), with the
    discordant counts in words."""
    if ens is not None:
        view.show(calibration.birads_crosstab(ens), "BUS-BRA: the radiologists' BI-RADS (rows) "
                  "against the band of the ensemble's raw probability (columns)")
    busbra = (ev or {}).get("busbra")
    if busbra is not None and len(busbra):
        cal = calibration.birads_crosstab(busbra, "prob_cal")
        view.show(cal, "BUS-BRA: the radiologists' BI-RADS (rows) against the band of the "
                  f"calibrated probability (columns; {ev['source']}), as the predictor gives it")
        shift = float(busbra["prob_cal"].mean() - busbra["prob_raw"].mean())
        view.md("With the calibrated probability, "
                + calibration.discordant_sentence(cal) + ". The calibration was fitted on BUSI; "
                f"on BUS-BRA it moves the mean probability by {shift:+.3f} (from "
                f"{busbra['prob_raw'].mean():.3f} to {busbra['prob_cal'].mean():.3f}).")


def glue_opening(cal_t: pd.DataFrame | None, ens, rad, ens_t: pd.DataFrame) -> None:
    """The values the chapter's opening sentences (and the book's first page) quote."""
    busi = cal_t.loc["BUSI (cross-validation)"] if cal_t is not None else None
    booktext.glue("cv_ece", f"{busi['ECE before']:.3f}" if busi is not None else NA)
    booktext.glue("cv_brier", f"{busi['Brier before']:.3f}" if busi is not None else NA)
    booktext.glue("cv_brier_base", f"{busi['Brier of the base rate']:.3f}"
                  if busi is not None else NA)
    booktext.glue("cv_ece_after", f"{busi['ECE after']:.3f}" if busi is not None else NA)
    bra = (cal_t.loc["BUS-BRA (external)"]
           if cal_t is not None and "BUS-BRA (external)" in cal_t.index else None)
    booktext.glue("ext_calibration", f"an ECE of {bra['ECE before']:.3f} before and "
                  f"{bra['ECE after']:.3f} after" if bra is not None
                  else f"no number yet (BUS-BRA predictions {NA})")

    def ci(r):
        return f"{r['AUC']:.3f} (95% CI {r['AUC 95% CI low']:.3f}-{r['AUC 95% CI high']:.3f})"

    model_row = ens_t.iloc[0] if ens is not None else None
    rad_row = ens_t.iloc[-1] if rad is not None else None
    booktext.glue("ext_auc", ci(model_row) if model_row is not None else NA)
    booktext.glue("ext_dice", f"{100 * model_row['Dice mean']:.1f}%" if model_row is not None
                  else NA)
    booktext.glue("ext_rad_auc", ci(rad_row) if rad_row is not None else "n/a (BUS-BRA not found)")
