"""Chapter 8 (*Try the model*): each section's tables, figures, sentences and glued values.

One function per section of ``notebooks/08_try_model.ipynb``, so that a notebook cell is a call.
The numbers come from the release record (``release.json``), the predictor run here on the
chosen images, and the selection records (:mod:`busi_lib.book.transfer`).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from busi_lib import records
from busi_lib.analysis import comparisons, paper
from busi_lib.analysis.stats import compare
from busi_lib.analysis.stats import t_interval
from busi_lib.book import booktext, colab, figures, runs, transfer, view
from busi_lib.book.runs import short_commit
from busi_lib.config import RELEASE_CANDIDATES, RELEASED_EXPERIMENT, experiments
from busi_lib.experiments import external
from busi_lib.data.busbra import BUSBRA_CITATION, DEMO_IDS, fetch_busbra_demo, locate_busbra
from busi_lib.data.images import read_mask
from busi_lib.errors import DataError
from busi_lib.eval.metrics import fast_auc, group_resamples, grouped_bootstrap_auc
from busi_lib.serve.predictor import bench_text, latest_bench
from busi_lib.serve.userimage import overlay

#: The note shown when the chapter runs on the demonstration model.
DEMO_NOTE = ("no model is released for profile `{profile}` yet, so this chapter uses a "
             "**demonstration model**: the two fold models of the smoke profile, trained here in "
             "about a minute on 24 BUSI images at 32 x 32 pixels and released like the real one. "
             "Its outlines and probabilities are meaningless; they only show how the predictor "
             "works. `make model` releases the real model (see `models/README.md`).")


def release_record(model_dir: Path) -> dict | None:
    """The model's ``release.json``, or None (a single fold model, a demonstration)."""
    path = Path(model_dir) / "release.json"
    return json.loads(path.read_text()) if path.is_file() else None


def model_table(predictor, demo: bool, profile: str) -> None:
    """The model used and the preprocessing it applies."""
    if demo:
        view.note(DEMO_NOTE.format(profile=profile))
    info = predictor.info
    rows = {"model": info["name"] + (" (demonstration)" if demo else ""),
            "fold models in the ensemble": info["folds"],
            "calibration": predictor.calibrator.describe() if predictor.calibrator else "none",
            "files checked against the model card": info["verified_against_card"],
            "weights sha256": info["sha256"],
            **{f"preprocessing: {k}": v for k, v in info["preprocessing"].items()}}
    view.show(pd.DataFrame({"value": [str(v) for v in rows.values()]},
                           index=pd.Index(rows, name="")),
              "The model used, and the preprocessing it applies (the same as in training)")


def image_paths(images, data_dir=None, *, download: bool | None = None
                ) -> tuple[list[Path], pd.DataFrame | None, Path | None]:
    """``(paths, BUS-BRA table or None, BUS-BRA folder or None)``: files as given, BUS-BRA IDs
    as their files.

    When BUS-BRA is not on this machine (e.g. on Colab) and ``download`` is true (default: on
    Colab), chapter 8's six default BUS-BRA images are fetched from a public copy of the release
    (:func:`busi_lib.data.busbra.fetch_busbra_demo`, checked by sha256). When none of the images
    can be had, BUSI examples are shown instead, and said to be training images."""
    busbra = locate_busbra()
    download = colab.on_colab() if download is None else download
    wanted = [i for i in images if not Path(i).exists()]
    if busbra is None and download and wanted and set(wanted) <= set(DEMO_IDS):
        try:
            busbra = fetch_busbra_demo()
            view.note("BUS-BRA is not on this machine: its six demonstration images were fetched "
                      "from a public copy of the release (licence in "
                      f"`{busbra / 'LICENSE.txt'}`). Cite: {BUSBRA_CITATION}.")
        except DataError as exc:
            view.note(f"the BUS-BRA demonstration images could not be fetched: {exc}")
    meta = pd.read_csv(busbra / "bus_data.csv").set_index("ID") if busbra is not None else None
    paths = []
    for item in images:
        p = Path(item)
        if not p.exists() and meta is not None and item in meta.index:
            p = busbra / "Images" / f"{item}.png"
        paths.append(p)
    if paths and not any(p.exists() for p in paths):
        fallback = transfer.local_busi_examples(data_dir, download=download)
        if fallback:
            view.note("none of the images was found here (BUS-BRA is not on this machine), so "
                      "the chapter shows BUSI images instead: training images of the model, not "
                      "a test.")
            paths = fallback
    return paths, meta, busbra


def predict_images(predictor, paths: list[Path]) -> list:
    """The predictor on every image (a result dict, or the error for an unreadable one), with
    a table of what was read."""
    results = predictor.predict_many([str(p) for p in paths])
    status = ["ok" if isinstance(r, dict) else str(r).replace(str(p.parent) + "/", "")
              for p, r in zip(paths, results)]
    view.show(pd.DataFrame({"image": [p.name for p in paths], "read": status}), "Images")
    return results


def predictions_table(ok: list[tuple[Path, dict]], meta: pd.DataFrame | None) -> None:
    """Calibrated probability, band and warnings per image, BUS-BRA's own labels beside."""
    rows = []
    for p, r in ok:
        truth = meta.loc[p.stem] if meta is not None and p.stem in meta.index else None
        folds = r["prob_malignant_folds"]
        rows.append({"image": p.name,
                     "BUS-BRA pathology": truth["Pathology"] if truth is not None else "",
                     "BUS-BRA BI-RADS": truth["BIRADS"] if truth is not None else "",
                     "p(malignant)": r["prob_malignant"], "band": r["birads_band"] or "none",
                     "uncalibrated p": r["prob_malignant_uncalibrated"],
                     "fold models (min-max)": f"{min(folds):.3f}-{max(folds):.3f}",
                     "lesion area (%)": 100 * r["mask_area_fraction"],
                     "warnings": "; ".join(r["warnings"])})
    view.show(pd.DataFrame(rows).set_index("image"),
              "Calibrated probability of malignancy and its band (BUS-BRA's own labels beside, "
              "for comparison only)")


def plot_outlines(ok: list[tuple[Path, dict]], busbra: Path | None) -> None:
    """Each image with the predicted outline and, for BUS-BRA, the annotators' outline."""
    n = len(ok)
    if not n:
        return
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (p, r) in zip(axes.ravel(), ok):
        ax.imshow(overlay(r["grey"], r["mask"]))
        true_mask = (busbra / "Masks" / f"{p.stem.replace('bus_', 'mask_')}.png") if busbra else None
        if true_mask is not None and true_mask.is_file():
            ax.contour(read_mask(true_mask), levels=[0.5], colors=[figures.TRUTH_COLOUR],
                       linewidths=1)
        ax.set_title(f"{p.stem}\np = {r['prob_malignant']:.2f}, band {r['birads_band'] or 'none'}",
                     fontsize=8)
        ax.axis("off")
    fig.suptitle("orange: predicted outline; sky blue: BUS-BRA's outline", fontsize=9)
    fig.tight_layout()
    plt.show()


def descriptor_table(ok: list[tuple[Path, dict]]) -> None:
    """Shape descriptors of each predicted outline."""
    desc = (pd.DataFrame([{"image": p.name, **r["descriptors"]} for p, r in ok]).set_index("image")
            if ok else pd.DataFrame())
    view.show(desc, "Descriptors of the predicted outlines")


def cli_line(ok: list[tuple[Path, dict]]) -> None:
    """What the command line prints for the first image (one JSON line, here indented)."""
    if ok:
        p, r = ok[0]
        line = {k: v for k, v in r.items() if k not in ("mask", "grey")}
        line.update(image=p.name, mask_file=f"{p.stem}_mask.png",
                    overlay_file=f"{p.stem}_overlay.png")
        print(json.dumps(line, indent=1))


def what_to_expect(rel: dict | None, predictor) -> dict | None:
    """The release's numbers on BUSI and BUS-BRA and its speed; returns the latest recorded
    ``predict --bench`` row of the model (or None)."""
    if rel is None:
        view.note("this model has no release record (release.json): no numbers to show.")
    else:
        o, b = rel["oof"], rel.get("busbra")
        rows = [{"data": "BUSI, cross-validation", "images": rel["n_lesion_images"],
                 "Dice": o["dice_mean"], "AUC": o["auc"],
                 "ECE before": o["calibration_before"]["ECE"],
                 "ECE after": o["calibration_after_crossfit"]["ECE"]}]
        if b:
            rows.append({"data": "BUS-BRA, external", "images": b["images"],
                         "Dice": b["dice_mean"], "AUC": b["auc"],
                         "ECE before": b["calibration_before"]["ECE"],
                         "ECE after": b["calibration_after"]["ECE"]})
        view.show(pd.DataFrame(rows).set_index("data"),
                  f"Numbers to expect of {rel['name']} (profile {rel['profile']}, seed "
                  f"{rel['seed']}, data {rel['data_sha256'][:12]}, code "
                  f"{short_commit(rel['release_git_commit'])})")
        if not b:
            view.note("BUS-BRA was not evaluated for this model.")
        t = rel.get("timing")
        if t:
            view.md(f"Speed measured at release on {t['cpu_cores']} CPU cores, while training ran "
                    f"beside it: loading the model and the first prediction "
                    f"{t['load_and_first_predict_s']} s, one 500 x 500 image "
                    f"{t['predict_500px_median_s']} s.")
    bench_row = latest_bench(records.results_root() / "bench" / "predict.jsonl", predictor.name)
    if bench_row:
        view.md(f"Latest recorded `python -m busi_lib.serve.predictor --bench "
                f"{bench_row['repeats']}` ({bench_row['date'][:10]}, {bench_row['cpu_cores']} "
                f"cores, {bench_row['cpu']}, code {short_commit(bench_row['git_commit'])}): "
                f"{bench_text(bench_row)}.")
    return bench_row


def selection(profile: str) -> None:
    """How the release was chosen: the fusion rules and stages 6 to 8, from the records."""
    sel = transfer.selection_view(profile)
    booktext.glue("try_release_recipe", transfer.release_recipe_sentence(sel))
    if sel is None:
        view.note(f"no selection is recorded for profile `{profile}` (the published `cpu` book "
                  "shows it).")
        return
    if sel["fusion"] is not None:
        view.show(sel["fusion"], "Shape fusion: out-of-fold AUC of the network and of the "
                  "fusion, per experiment (gain: mean of the 5 per-fold differences, t interval)")
    if sel["perturbed"] is not None:
        view.show(sel["perturbed"], "Shape fusion under perturbation (second rule): AUC on each "
                  "fold's test images perturbed as scanners differ, mean over the perturbations")
    if sel["seeded"] is not None:
        view.show(transfer.seeded_display(sel["seeded"]), "Stage 6: three training seeds per "
                  "side (Welch 95% interval of the difference)")
    if sel.get("confirm") is not None:
        view.show(transfer.seeded_display(sel["confirm"]), "Stage 7: the closest stage-6 "
                  "candidate confirmed with five training seeds per side (Welch interval at "
                  f"{100 * sel['confirm'].attrs['level']:.4g}%, for picking it from four)")
    if sel.get("release_seeded") is not None:
        view.show(transfer.seeded_display(sel["release_seeded"]),
                  f"{transfer.release_stages().capitalize()}: candidates on the released "
                  "recipe (strong augmentation, 60 epochs), three training seeds each against "
                  "the recipe's three (Welch 95% interval)")


def marks(data_dir=None) -> None:
    """Stage 14's preprocessing shown on BUSI images (or a note when BUSI is not found)."""
    fig = transfer.plot_marks(data_dir, download=colab.on_colab())
    if fig is None:
        view.note("BUSI was not found, so stage 14's preprocessing is not shown here.")
        return
    plt.show()
    table = transfer.marks_by_class(data_dir, download=colab.on_colab())
    view.show(table, f"BUSI's burnt-in marks by class (all {int(table['images'].sum())} images, "
              "as the detector finds them)", decimals=3)
    auc = table.attrs["auc"]
    view.md(f"An image's marked share tells malignant from benign with an AUC of {auc:.2f} "
            "(0.5: not at all; below 0.5: marks lean to benign images). "
            + ("So the marks carry little of the label: removing them could not be expected "
               "to move much, and stage 14's verdict in the table above says whether it did."
               if abs(auc - 0.5) < 0.1 else "So the marks do carry some of the label."))


#: The recipe a release candidate was built on (its own reference), where that is not the
#: release itself (stages 8 to 10 built theirs on the release).
CANDIDATE_BASES = {"trivial_grouped": "multitask_grouped"}


def _busbra_row(profile: str, experiment: str, recs: list[dict], n_boot: int, seed: int) -> dict:
    ens, _ = external.load_ensemble(profile, experiment, runs.results_dir_for(seed),
                                    folds=[r["fold"] for r in recs])
    if ens is None or not len(ens):
        return {"BUS-BRA AUC (95% CI)": "not recorded", "BUS-BRA Dice": float("nan")}
    auc, lo, hi = grouped_bootstrap_auc((ens["pathology"] == "malignant").to_numpy(int),
                                        ens["prob_malignant"], ens["case"], n_boot, seed)
    return {"BUS-BRA AUC (95% CI)": f"{auc:.3f} ({lo:.3f}-{hi:.3f})",
            "BUS-BRA Dice": float(ens["dice"].mean()) if "dice" in ens else float("nan")}


def _paired_busbra(profile: str, base: str, other: str, seed: int, n_boot: int) -> str:
    """AUC of ``other`` minus AUC of ``base`` on the same BUS-BRA images, with a paired
    bootstrap over patients."""
    a, _ = external.load_ensemble(profile, base, runs.results_dir_for(seed))
    b, _ = external.load_ensemble(profile, other, runs.results_dir_for(seed))
    if a is None or b is None:
        return "not recorded"
    m = a.merge(b, on="id", suffixes=("_a", "_b"))
    y = (m["pathology_a"] == "malignant").to_numpy(int)
    pa, pb = m["prob_malignant_a"].to_numpy(), m["prob_malignant_b"].to_numpy()
    diffs = [fast_auc(y[i], pb[i]) - fast_auc(y[i], pa[i])
             for i in group_resamples(m["case_a"], n_boot, seed) if 0 < y[i].sum() < len(i)]
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return f"{fast_auc(y, pb) - fast_auc(y, pa):+.3f} ({lo:+.3f} to {hi:+.3f})"


def _busbra_words(bb: pd.DataFrame, name: str, base: str) -> str:
    col = "Δ AUC against the candidate's base (paired, 95% CI)"
    auc = bb["BUS-BRA AUC (95% CI)"]
    if auc.loc[name] == "not recorded":
        return ""
    text = (f" On BUS-BRA, looked at once afterwards and used for nothing, its AUC is "
            f"{auc.loc[name]} against {auc.loc[base]} for {base} (paired difference "
            f"{bb.loc[name, col]})")
    if base != RELEASED_EXPERIMENT:
        text += f" and {auc.loc[RELEASED_EXPERIMENT]} for the release"
    return text + "."


def candidate(profile: str, seed: int = 42, n_boot: int = 1000) -> dict | None:
    """Each release candidate (:data:`busi_lib.config.RELEASE_CANDIDATES`) trained on the
    grouped folds: paired fold by fold with the recipe it was built on
    (:data:`CANDIDATE_BASES`) and with the release; the release rule's verdict
    (:func:`busi_lib.analysis.comparisons.release_verdict`); BUS-BRA beside them, reported and
    never used, and shown only once all five folds are paired and the verdict is fixed.
    Returns the verdicts by candidate."""
    out, sentences = {}, []
    names = [n for n in RELEASE_CANDIDATES if n in experiments(profile)]
    if not names:
        sentences.append(f"profile `{profile}` defines no candidate.")
    for name in names:
        base = CANDIDATE_BASES.get(name, RELEASED_EXPERIMENT)
        refs = list(dict.fromkeys((base, RELEASED_EXPERIMENT)))
        cand = runs.experiment_records(profile, name, seed=seed)
        if not cand:
            sentences.append(f"`{name}` is not trained yet.")
            view.md(f"`{name}`: no fold recorded yet.")
            continue
        recs = {e: runs.experiment_records(profile, e, seed=seed) for e in refs}
        recs[name] = cand
        rows = []
        for ref in refs:
            row = {"against": ref + (" (its base, the release)" if ref == base ==
                                     RELEASED_EXPERIMENT else "")}
            for label, key in (("Dice", "seg_DC_mean"), ("AUC", "cls_AUC")):
                c = compare(recs[ref], cand, key)
                row[f"Δ {label} (95% CI)"] = (f"{c['mean']:+.3f} ({c['low']:+.3f} to "
                                              f"{c['high']:+.3f})" if c["n_folds"] > 1 else "—")
            row["folds paired"] = c["n_folds"]
            rows.append(row)
        view.show(pd.DataFrame(rows).set_index("against"), f"`{name}` on BUSI's grouped test "
                  "folds, paired fold by fold (t intervals of the differences)")
        v = comparisons.release_verdict(recs[RELEASED_EXPERIMENT], cand)
        out[name] = v
        if v["reason"].endswith("no verdict yet"):
            view.note(f"`{name}`: {v['reason']}. BUS-BRA is shown once all five folds are "
                      "paired and the verdict is fixed.")
            sentences.append(f"`{name}` ({len(cand)} of 5 folds trained): {v['reason']}.")
            continue
        bb = pd.DataFrame([{"experiment": e, **_busbra_row(profile, e, recs[e], n_boot, seed)}
                           for e in (*refs, name)])
        bb["Δ AUC against the candidate's base (paired, 95% CI)"] = [
            _paired_busbra(profile, base, e, seed, n_boot) if e != base else "—"
            for e in bb["experiment"]]
        view.show(bb.set_index("experiment"), "BUS-BRA, looked at once after the rule's "
                  "verdict was fixed: the fold models' mean (patient-bootstrap interval)")
        sentences.append(
            f"`{name}` ({len(cand)} of 5 folds) against the release: Dice "
            f"{v['dice']['mean']:+.3f} ({v['dice']['low']:+.3f} to {v['dice']['high']:+.3f}), "
            f"AUC {v['auc']['mean']:+.3f} ({v['auc']['low']:+.3f} to {v['auc']['high']:+.3f}): "
            f"{v['reason']}, so the release "
            + ("changes to it." if v["replace"] else "stays as it is.")
            + _busbra_words(bb.set_index("experiment"), name, base))
    booktext.glue("try_candidate", " ".join(sentences))
    return out


def on_busbra(model_dir: Path):
    """The released ensemble on BUS-BRA: summary, operating points beside the radiologists',
    the same thresholds on BUSI, and the ROC with the readers; returns ``(release, BUS-BRA
    predictions)`` (``(None, None)`` when not evaluated)."""
    rel_b, ext_b = (transfer.load_release(model_dir) if (Path(model_dir) / "release.json").is_file()
                    else (None, None))
    if ext_b is None or "busbra" not in (rel_b or {}):
        view.note("this model was not evaluated on BUS-BRA (not found when it was released).")
        return None, None
    view.show(transfer.external_summary(rel_b, ext_b).T,
              "The released ensemble on BUS-BRA (AUC interval: bootstrap over patients)")
    view.show(transfer.operating_table(ext_b), "Operating points on BUS-BRA: the model's "
              "calibrated thresholds and the radiologists' BI-RADS")
    view.show(transfer.busi_operating_table(rel_b), "The same thresholds on BUSI, out of fold "
              "(calibration cross-fitted), for comparison")
    transfer.plot_roc_with_readers(ext_b)
    plt.show()
    return rel_b, ext_b


def per_scanner(ext_b: pd.DataFrame | None) -> None:
    """BUS-BRA per scanner: mean probability by pathology and the AUC within the scanner."""
    if ext_b is not None:
        view.show(transfer.device_view(ext_b), "BUS-BRA per scanner: mean calibrated probability "
                  "of benign and of malignant lesions, and the AUC within the scanner")


def what_it_looks_at(predictor, ok: list[tuple[Path, dict]], profile: str,
                     data_dir=None) -> None:
    """Occlusion maps of BUS-BRA and BUSI images, the share of the fall inside the lesion, and
    the context reliance of the trials."""
    busi_paths = transfer.local_busi_examples(data_dir, download=colab.on_colab())
    busi_res = [(f"BUSI {p.stem}", r)
                for p, r in zip(busi_paths, predictor.predict_many([str(p) for p in busi_paths]))
                if isinstance(r, dict)]
    occ = (transfer.occlusion_items(predictor, [(p.stem, r) for p, r in ok], n=3)
           + transfer.occlusion_items(predictor, busi_res, n=2))
    if occ:
        transfer.plot_occlusion(occ)
        plt.show()
        view.show(transfer.lesion_share_of_attention(occ),
                  "Share of the probability's fall that lies inside the predicted lesion")
    occ_auc = transfer.release_occlusion(predictor, data_dir)
    if occ_auc is not None:
        view.show(occ_auc.set_index("what the network sees"), "The released classifier out "
                  f"of fold on BUSI ({occ_auc.attrs['folds']} fold models, each on its own "
                  "test fold): AUC of the network's probability with parts of the image hidden "
                  "(bootstrap over duplicate groups)", decimals=3)
    view.md(transfer.occlusion_sentence(occ_auc))
    booktext.glue("try_occlusion", transfer.occlusion_sentence(occ_auc))
    rt = transfer.reliance_table(profile)
    if len(rt):
        view.show(rt, "Context reliance on BUSI's inner validation images (mean, and range over "
                  "training seeds)")
    else:
        view.note(f"no trial records with occlusion measurements for profile `{profile}`.")


def provenance(predictor, demo: bool, rel: dict | None, **parameters) -> None:
    """The chapter's parameters and the model's provenance."""
    view.md(view.parameters_line(**parameters))
    rel = rel or {}
    view.md(f"Model: `{predictor.name}`" + (" (demonstration)" if demo else "")
            + f", {len(predictor.fold_weights)} fold models, weights sha256 `{predictor.sha256}`"
            + (f"; released {rel['created_utc']} by code {short_commit(rel['release_git_commit'])} "
               f"from the records of `{rel['experiment']}` (profile {rel['profile']}, seed "
               f"{rel['seed']}, config {rel['config_hash']}, data {rel['data_sha256'][:12]})"
               if rel else "") + ".")


def glue_opening(predictor, demo: bool, profile: str, paths: list[Path],
                 ok: list[tuple[Path, dict]], rel: dict | None, bench_row: dict | None,
                 rel_b: dict | None, ext_b: pd.DataFrame | None) -> None:
    """The values the chapter's opening sentences quote."""
    booktext.glue("try_model", f"{predictor.name}" + (
        f" (a demonstration model: no model is released for profile {profile} yet)" if demo
        else f" ({len(predictor.fold_weights)} fold models)"))
    booktext.glue("try_n", str(len(paths)))
    booktext.glue("try_found", str(sum(r["lesion_found"] for _, r in ok)))
    bands = pd.Series([r["birads_band"] or "none" for _, r in ok]).value_counts().sort_index()
    booktext.glue("try_bands", ", ".join(f"{b} ({n})" for b, n in bands.items()) or "none")
    if rel:
        o, b = rel["oof"], rel.get("busbra")
        booktext.glue("try_expect", f"a mean Dice of {o['dice_mean']:.3f} and a pooled AUC of "
                      f"{o['auc']:.3f} over BUSI's out-of-fold predictions" + (
                          f", AUC {b['auc']:.3f} (95% CI {b['auc_ci95'][0]:.3f}-"
                          f"{b['auc_ci95'][1]:.3f}) and Dice {b['dice_mean']:.3f} on BUS-BRA"
                          if b else ", BUS-BRA not evaluated"))
    else:
        booktext.glue("try_expect", "nothing (no release record)")
    booktext.glue("try_speed", (
        f"{bench_text(bench_row)}, on {bench_row['cpu_cores']} cores ({bench_row['cpu']}, "
        f"`predict --bench`, {bench_row['date'][:10]})") if bench_row else
        "not recorded (run `python -m busi_lib.serve.predictor --bench 20 --record "
        "results/bench/predict.jsonl`)")
    sel = transfer.selection_view(profile)
    booktext.glue("try_selection", sel["sentence"] if sel
                  else f"(no selection is recorded for profile {profile}).")
    external = ext_b is not None and "busbra" in (rel_b or {})
    booktext.glue("try_external", transfer.external_sentence(rel_b, ext_b) if external
                  else "This model was not evaluated on BUS-BRA.")
    booktext.glue("try_bottom", transfer.bottom_line(rel_b, ext_b) if external
                  else "it was not evaluated on BUS-BRA")
    booktext.glue("try_devices", transfer.device_sentence(ext_b) if external
                  else "(not evaluated on BUS-BRA)")




def headline_rows(profile: str, seed: int, rel_b: dict | None,
                  ext_b: pd.DataFrame | None) -> pd.DataFrame:
    """The book's bottom line as rows (what, data, Dice, AUC, their 95 % intervals, n): the
    paper as reported; ours on random and on duplicate-grouped folds (fold means, *t* interval
    over folds); the released model out of fold and on BUS-BRA (patient bootstrap); the
    radiologists' BI-RADS on BUS-BRA."""
    rows = [{"what": "paper, as reported", "data": "BUSI",    # its Tables 1 and 2, mean rows
             "Dice": paper.table1().loc["mean", "DC"] / 100, "AUC": paper.table2().loc["mean", "AUC"],
             "n": "not stated"}]
    for label, exp in (("ours, random folds", "multitask"),
                       ("ours, duplicate-grouped folds", "multitask_grouped"),
                       ("released model, grouped folds", "robust_grouped_e60")):
        recs = runs.experiment_records(profile, exp, seed=seed)
        if not recs:
            continue
        row = {"what": label, "data": "BUSI", "n": f"{len(recs)} folds"}
        for key, metric in (("Dice", "seg_DC_mean"), ("AUC", "cls_AUC")):
            values = [r.get("metrics", {}).get(metric) for r in recs]
            values = [v for v in values if v is not None]
            if values:
                row[key], row[f"{key} low"], row[f"{key} high"] = t_interval(values)
        rows.append(row)
    if ext_b is not None and rel_b and "busbra" in rel_b:
        b = rel_b["busbra"]
        rows.append({"what": "released model", "data": "BUS-BRA", "Dice": b["dice_mean"],
                     "AUC": b["auc"], "AUC low": b["auc_ci95"][0], "AUC high": b["auc_ci95"][1],
                     "n": f"{b['images']} images"})
        y = (ext_b["pathology"] == "malignant").to_numpy(int)
        auc, lo, hi = grouped_bootstrap_auc(y, ext_b["birads"].astype(float).to_numpy(),
                                            ext_b["case"].to_numpy(), n_boot=b.get("n_boot", 1000))
        rows.append({"what": "radiologists' BI-RADS", "data": "BUS-BRA", "AUC": auc,
                     "AUC low": lo, "AUC high": hi, "n": f"{b['images']} images"})
    return pd.DataFrame(rows)


def plot_headline(rows: pd.DataFrame):
    """Dice and AUC of :func:`headline_rows` with their intervals, one line per row; returns
    the figure (glued into the introduction)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 0.55 * len(rows) + 1.2), sharey=True)
    labels = [f"{r['what']} ({r['data']}, {r['n']})" for _, r in rows.iterrows()]
    ypos = list(range(len(rows)))[::-1]
    for ax, key, lim in ((axes[0], "Dice", (0.4, 1.0)), (axes[1], "AUC", (0.5, 1.0))):
        for y, (_, r) in zip(ypos, rows.iterrows()):
            v = r.get(key)
            if v is None or pd.isna(v):
                continue
            colour = "grey" if r["what"].startswith("paper") else (
                figures.TRUTH_COLOUR if r["data"] == "BUSI" else figures.PRED_COLOUR)
            lo, hi = r.get(f"{key} low"), r.get(f"{key} high")
            err = None if lo is None or pd.isna(lo) else [[v - lo], [hi - v]]
            ax.errorbar([v], [y], xerr=err, fmt="o", color=colour, capsize=3)
            ax.annotate(f"{v:.3f}", (v, y), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=7)
        ax.set(xlim=(lim[0], lim[1] + 0.03), xlabel=f"{key} (95 % interval)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ypos, labels, fontsize=8)
    fig.suptitle("The bottom line: grey, the paper's numbers; sky blue, ours on BUSI; orange, "
                 "BUS-BRA", fontsize=9)
    fig.tight_layout()
    return fig


def save_headline_figure(path, profile: str, seed: int, model_dir) -> pd.DataFrame:
    """Write :func:`plot_headline` to ``path`` (PNG, no timestamp: the same records give the
    same bytes) for the introduction, with the release in ``model_dir`` when it exists;
    returns the rows."""
    rel_b, ext_b = (transfer.load_release(model_dir)
                    if (Path(model_dir) / "release.json").is_file() else (None, None))
    rows = headline_rows(profile, seed, rel_b, ext_b)
    fig = plot_headline(rows)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return rows
