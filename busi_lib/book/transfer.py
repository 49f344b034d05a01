"""Other scanners: what the book shows of the released model's transfer (chapter 8).

Book views only: they read the selection records (:mod:`busi_lib.eval.fusion`, stage 6 of
:mod:`busi_lib.experiments.tune`), the release record and its BUS-BRA predictions
(:mod:`busi_lib.serve.release`), and they train nothing. :func:`occlusion_map` runs the released
predictor on occluded copies of an image (inference only).

Colours are the Okabe-Ito palette (safe for colour-blind readers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from busi_lib.analysis import fusion_selection, tune_report
from busi_lib.config import RELEASED_EXPERIMENT, setting
from busi_lib.data.busi import find_samples, load_sample, locate_data
from busi_lib.data.images import read_image
from busi_lib.data.marks import inpaint, mark_mask, mark_table
from busi_lib.data.protocols import fold_parts
from busi_lib.data.splits import prepare
from busi_lib.errors import DataError
from busi_lib.eval import fusion, operating
from busi_lib.eval.inference import prepare_image
from busi_lib.eval.metrics import fast_auc, grouped_bootstrap_auc
from busi_lib.eval.occlusion import occluded_probabilities
from busi_lib.experiments.tune import (RELEASE_REFERENCE_RERUN, RELEASE_SEEDED_CANDIDATES,
                                       RELEASE_SEEDED_REFERENCE, SEEDED_CANDIDATES,
                                       SEEDED_REFERENCE, TRIALS)

#: Okabe-Ito: blue, vermilion, bluish green, orange, sky blue, reddish purple, black.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#000000")


# ----------------------------------------------------------------------------- selection
def selection_view(profile: str, results_dir=None) -> dict[str, Any] | None:
    """The selection records of ``profile`` as tables and one sentence: the fusion rule
    (``results/<profile>/selection/fusion.json``) and stage 6 of the trials (three training
    seeds each). ``None`` when neither is recorded (e.g. the smoke profile)."""

    out: dict[str, Any] = {"fusion": None, "perturbed": None, "seeded": None, "verdicts": {},
                           "missing": []}
    path = fusion.selection_path(profile, results_dir)
    if path.is_file():
        out["fusion"] = fusion_selection.selection_table(json.loads(path.read_text()))
    ppath = fusion.perturbed_path(profile, results_dir)
    if ppath.is_file():
        out["perturbed"] = perturbed_display(json.loads(ppath.read_text()))
    recs = tune_report.load_trials(profile, results_dir)
    try:
        t = tune_report.seeded_table(recs)
    except Exception:                          # the reference trials are not recorded here
        t = None
    if t is not None and len(t):
        out["seeded"] = t
        out["verdicts"] = tune_report.seeded_select(t)
    if t is not None:
        out["missing"] = t.attrs.get("missing", [])
        out["diverged"] = t.attrs.get("diverged", [])
    try:                                       # stage 7: the confirmation, five seeds a side
        c = tune_report.confirm_table(recs)
    except Exception:                          # its trials are not all recorded here
        c = None
    out["confirm"] = c if c is not None and len(c) else None
    out["confirm_verdicts"] = tune_report.confirm_select(c) if out["confirm"] is not None else {}
    try:                                       # stages 8-9: candidates on the released recipe
        r8 = tune_report.release_seeded_table(recs)
    except Exception:                          # a reference trial is not recorded here
        r8 = None
    out["release_seeded"] = r8 if r8 is not None and len(r8) else None
    out["release_verdicts"] = (tune_report.release_seeded_select(r8)
                               if out["release_seeded"] is not None else {})
    out["release_missing"] = (r8.attrs.get("missing", []) if r8 is not None
                              else list(RELEASE_SEEDED_CANDIDATES))
    stage8 = RELEASE_SEEDED_REFERENCE + sum(RELEASE_SEEDED_CANDIDATES.values(), ())
    out["release_progress"] = tune_report.stage_progress(recs, stage8)
    if out["fusion"] is None and out["seeded"] is None:
        return None
    out["sentence"] = selection_sentence(out)
    return out


def selection_sentence(view: dict[str, Any]) -> str:
    """What the selection found, in one or two sentences."""

    parts = []
    f, pt = view.get("fusion"), view.get("perturbed")
    if f is not None:
        kept = [e for e in f.index if f.loc[e, "kept"] == "yes"]
        gains = f["gain, mean of 5 folds"].astype(float)
        parts.append(f"fusing the shape of the predicted outline with the network's probability "
                     f"changed the out-of-fold AUC by {gains.min():+.3f} to {gains.max():+.3f} "
                     f"across {len(f)} grouped experiments, and of their per-fold intervals "
                     + ("none cleared zero" if not kept else
                        f"{len(kept)} of {len(f)} cleared zero ({', '.join(kept)})"))
    if pt is not None:
        for name, r in pt.iterrows():
            parts.append(f"under perturbation (a second rule, written after the first rule's "
                         f"verdict was known and before its numbers existed) the fusion's AUC "
                         f"gain for {name} was {r['gain under perturbation, mean of 5 folds']} "
                         f"({r['95% CI']}): {'kept' if r['kept'] == 'yes' else 'not kept'}")
    if f is not None or pt is not None:
        shipped = any(t is not None and RELEASED_EXPERIMENT in t.index
                      and t.loc[RELEASED_EXPERIMENT, "kept"] == "yes" for t in (f, pt))
        parts[-1] += (", so the release ships the fusion" if shipped else
                      ", so the release reports the network's probability alone")
    for name, verdict in (view.get("verdicts") or {}).items():
        t = view["seeded"].set_index(["candidate", "signal"]).loc[name]
        parts.append(f"candidate {name} (three seeds against the recipe's three) changed the "
                     f"clean score by {t.loc['clean score', 'difference']:+.3f} and the shift "
                     f"score by {t.loc['shift score', 'difference']:+.3f}: {verdict}")
    for name, verdict in (view.get("confirm_verdicts") or {}).items():
        t = view["confirm"].set_index(["candidate", "signal"]).loc[name]
        sh = t.loc["shift score"]
        parts.append(f"stage 7 retrained {name} and the recipe with two more seeds each (five "
                     f"against five, {view['confirm'].attrs['level']:.2%} intervals for having "
                     f"picked it from four): shift score {sh['difference']:+.3f} "
                     f"({sh['low']:+.3f} to {sh['high']:+.3f}), clean score "
                     f"{t.loc['clean score', 'difference']:+.3f}: {verdict}")
    parts += release_recipe_parts(view)
    for name in view.get("diverged") or []:
        parts.append(f"candidate {name}: the training of a seed diverged, so it has no verdict")
    missing = view.get("missing") or []
    if missing:
        parts.append(f"stage-6 candidate(s) {', '.join(missing)} not fully recorded yet "
                     "(busi_lib.experiments.tune, stage 6, continues them)")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def release_stages() -> str:
    """The stages of the candidates on the released recipe, in words ("stages 8 to 10")."""
    st = sorted({TRIALS[t][0] for t in sum(RELEASE_SEEDED_CANDIDATES.values(), ())})
    return (f"stages {st[0]} and {st[1]}" if len(st) == 2 else
            f"stages {st[0]} to {st[-1]}" if len(st) > 2 else f"stage {st[0]}")


def release_recipe_parts(view: dict[str, Any]) -> list[str]:
    """The stages of :func:`release_stages` in words: each candidate on the released recipe with its verdict, and
    those without one yet (clauses for :func:`selection_sentence`)."""
    parts: list[str] = []
    for name, verdict in (view.get("release_verdicts") or {}).items():
        t = view["release_seeded"].set_index(["candidate", "signal"]).loc[name]
        sh, cl = t.loc["shift score"], t.loc["clean score"]
        prefix = ("" if parts else "on the released recipe (strong augmentation, 60 epochs; "
                  "three seeds against three), ")
        parts.append(f"{prefix}{name} changed the shift score by "
                     f"{sh['difference']:+.3f} ({sh['low']:+.3f} to {sh['high']:+.3f}) and the "
                     f"clean score by {cl['difference']:+.3f} ({cl['low']:+.3f} to "
                     f"{cl['high']:+.3f}): {verdict}")
    pending = view.get("release_missing") or []
    done, total = view.get("release_progress") or (0, 0)
    if pending and 0 < done < total:
        parts.append(f"on the released recipe, {' and '.join(pending)} "
                     f"{'has' if len(pending) == 1 else 'have'} no verdict yet ({done} of the "
                     f"{total} trials of {release_stages()} recorded)")
    return parts


def release_recipe_sentence(view: dict[str, Any] | None) -> str:
    """:func:`release_recipe_parts` as one sentence (for the book's introduction)."""
    parts = release_recipe_parts(view or {})
    if not parts:
        return "No candidate has been tried on the released recipe yet."
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def perturbed_display(rec: dict[str, Any]) -> pd.DataFrame:
    """The fusion's second rule (``fusion_perturbed.json``), one row per experiment."""
    rows = []
    for name, e in rec["experiments"].items():
        pf = pd.DataFrame(e["per_fold"])
        rows.append({"experiment": name, "AUC network, perturbed": pf["auc_network"].mean(),
                     "AUC fused, perturbed": pf["auc_fused"].mean(),
                     "gain under perturbation, mean of 5 folds": f"{e['mean_gain']:+.3f}",
                     "95% CI": f"{e['ci95'][0]:+.3f} to {e['ci95'][1]:+.3f}",
                     "clean gain": f"{e['clean_gain']:+.3f}", "kept": "yes" if e["keep"] else "no"})
    return pd.DataFrame(rows).set_index("experiment")


def seeded_display(t: pd.DataFrame) -> pd.DataFrame:
    """Stage 6's (or 7's) table for the page: one row per candidate and signal, mean (sd) of
    each side and the difference with its interval (at the table's level)."""
    level = t.attrs.get("level", 0.95)
    return pd.DataFrame({
        "candidate": t["candidate"], "signal": t["signal"],
        "candidate, mean (sd)": [f"{m:.3f} ({s:.3f})" for m, s in
                                 zip(t["candidate mean"], t["candidate sd"])],
        "reference, mean (sd)": [f"{m:.3f} ({s:.3f})" for m, s in
                                 zip(t["reference mean"], t["reference sd"])],
        f"difference ({100 * level:.4g}% CI)": [f"{d:+.3f} ({lo:+.3f} to {hi:+.3f})"
                                                 for d, lo, hi in
                                                 zip(t["difference"], t["low"], t["high"])],
    }).set_index(["candidate", "signal"])


def reliance_table(profile: str, results_dir=None) -> pd.DataFrame:
    """Context reliance of the recipes, from the trials' occlusion measurements on the inner
    validation images: AUC as is, with the lesion hidden (its outline left as a silhouette),
    with a square around it hidden (trials from 2026-12-04 on) and with only the lesion shown;
    for the recipe and its stage-6 candidates, and the released recipe and its candidates of
    stages 8 on, each over its training seeds (a group without records is left out)."""

    groups = {"the recipe (multitask_grouped), 3 seeds": SEEDED_REFERENCE,
              **{f"the recipe + stage-6 candidate {name}": trials
                 for name, trials in SEEDED_CANDIDATES.items()},
              "the released recipe (robust_grouped_e60), 3 seeds": RELEASE_SEEDED_REFERENCE,
              "the released recipe, the same 3 seeds run again (stage 12)":
                  RELEASE_REFERENCE_RERUN,
              **{f"the {name}": trials for name, trials in RELEASE_SEEDED_CANDIDATES.items()}}
    by = {r["trial"]: r for r in tune_report.load_trials(profile, results_dir)}
    rows = []
    for label, trials in groups.items():
        rel = [by[t]["reliance"] for t in trials if t in by and by[t].get("reliance")]
        if not rel:
            continue
        row = {"model": label, "trials": len(rel)}
        for key, name in (("auc", "AUC"), ("auc_no_lesion", "AUC, lesion hidden (outline left)"),
                          ("auc_no_lesion_box", "AUC, square around the lesion hidden"),
                          ("auc_lesion_only", "AUC, lesion only")):
            if not all(key in r for r in rel):     # measured by trials after 2026-12-04 only
                continue
            v = np.array([r[key] for r in rel])
            row[name] = f"{v.mean():.3f}" + (f" ({v.min():.3f}-{v.max():.3f})" if len(v) > 1 else "")
        rows.append(row)
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


# ----------------------------------------------------------------------------- BUS-BRA
def load_release(model_dir) -> tuple[dict, pd.DataFrame | None]:
    """``(release.json, BUS-BRA predictions or None)`` of a released model folder."""
    d = Path(model_dir)
    if not (d / "release.json").is_file():
        raise DataError(f"{str(d)!r} has no release.json; expected a folder written by "
                        "`python -m busi_lib.serve.release`")
    rel = json.loads((d / "release.json").read_text())
    ext = pd.read_csv(d / "busbra_predictions.csv") if (d / "busbra_predictions.csv").is_file() \
        else None
    return rel, ext


def external_summary(rel: dict, ext: pd.DataFrame, n_boot: int = 1000) -> pd.DataFrame:
    """One row: the released ensemble on BUS-BRA (AUC with its patient-bootstrap interval, Dice,
    the share of images without a predicted lesion and the share flagged as unlike BUSI)."""
    b = rel["busbra"]
    row = {"images": str(b["images"]), "patients": str(b["patients"]),
           "malignant": str(b["malignant"]), "AUC (95% CI)":
           f"{b['auc']:.3f} ({b['auc_ci95'][0]:.3f}-{b['auc_ci95'][1]:.3f})",
           "Dice, mean": f"{b['dice_mean']:.3f}"}
    if b.get("no_lesion_found") is not None:
        row["no lesion found"] = f"{100 * b['no_lesion_found']:.1f} %"
    if b.get("out_of_distribution") is not None:
        row["flagged as unlike BUSI"] = f"{100 * b['out_of_distribution']:.1f} %"
    return pd.DataFrame([row], index=pd.Index([rel["name"]], name="model"))


def operating_table(ext: pd.DataFrame) -> pd.DataFrame:
    """Sensitivity and specificity at the calibrated 2 %, 10 % and 50 % thresholds and the
    radiologists' BI-RADS >= 4 and >= 5 on the same images, for the page."""
    y = (ext["pathology"] == "malignant").to_numpy(int)
    t = pd.concat([operating.model_points(y, ext["prob_calibrated"]),
                   operating.radiologist_points(y, ext["birads"])])
    return operating.display(t)


def device_view(ext: pd.DataFrame) -> pd.DataFrame:
    """Per scanner: images, malignant share, the mean calibrated probability of its benign and
    of its malignant lesions, and the AUC within the scanner (the pooled AUC also pays for the
    shift of the probability between scanners)."""
    rows = []
    for dev, g in ext.groupby("device"):
        y = (g["pathology"] == "malignant").to_numpy(int)
        p = g["prob_calibrated"].to_numpy()
        rows.append({"scanner": dev, "images": len(g), "malignant (%)": 100 * y.mean(),
                     "mean p, benign": p[y == 0].mean() if (y == 0).any() else np.nan,
                     "mean p, malignant": p[y == 1].mean() if (y == 1).any() else np.nan,
                     "AUC within scanner": fast_auc(y, p) if 0 < y.sum() < len(y) else np.nan})
    return pd.DataFrame(rows).set_index("scanner").sort_values("images", ascending=False)


def external_sentence(rel: dict, ext: pd.DataFrame) -> str:
    """The bottom line on BUS-BRA: AUC, the operating point at 10 % beside the radiologists'
    BI-RADS >= 4, and how many cancers the plain 50 % cut misses."""
    b = rel["busbra"]
    y = (ext["pathology"] == "malignant").to_numpy(int)
    m = operating.sens_spec(y, ext["prob_calibrated"].to_numpy() > 0.10)
    r = operating.radiologist_points(y, ext["birads"]).iloc[0]
    s95 = b["operating_points"]["spec_at_sens95"]["specificity"] if b.get("operating_points") \
        else operating.specificity_at_sensitivity(y, ext["prob_calibrated"], 0.95)["specificity"]
    return (f"On BUS-BRA ({b['images']} images of {b['patients']} patients, looked at once, after "
            f"the choice) the released model reaches an AUC of {b['auc']:.3f} (95 % CI "
            f"{b['auc_ci95'][0]:.3f}-{b['auc_ci95'][1]:.3f}) and a mean Dice of "
            f"{b['dice_mean']:.3f}. Called suspicious above a calibrated 10 %, it finds "
            f"{100 * m['sensitivity']:.1f} % of the cancers with a specificity of "
            f"{100 * m['specificity']:.1f} %; the radiologists' BI-RADS >= 4 finds "
            f"{100 * r['sensitivity']:.1f} % with {100 * r['specificity']:.1f} %. At 95 % "
            f"sensitivity the model's specificity would be {100 * s95:.1f} %. And "
            + operating.missed_sentence(y, ext["prob_calibrated"], 0.5) + ".")


def plot_roc_with_readers(ext: pd.DataFrame, title: str = ""):
    """ROC of the calibrated probability on BUS-BRA, with the model's operating points at the
    calibrated thresholds and the radiologists' BI-RADS >= 3, >= 4, >= 5 as points."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    y = (ext["pathology"] == "malignant").to_numpy(int)
    p = ext["prob_calibrated"].to_numpy()
    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot(fpr, tpr, color=COLOURS[0], lw=1.6, label=f"model (AUC {fast_auc(y, p):.3f})")
    for t, marker in zip(operating.THRESHOLDS, ("o", "s", "D")):
        s = operating.sens_spec(y, p > t)
        ax.plot(1 - s["specificity"], s["sensitivity"], marker, color=COLOURS[0], ms=6,
                mfc="white", label=f"model, p > {100 * t:g} %")
    birads = ext["birads"].astype(float).to_numpy()
    pts = [operating.sens_spec(y, birads >= c) for c in (3, 4, 5)]
    ax.plot([1 - s["specificity"] for s in pts], [s["sensitivity"] for s in pts], "-^",
            color=COLOURS[1], ms=7, label=f"radiologists, BI-RADS >= 3 / 4 / 5 "
                                          f"(AUC {fast_auc(y, birads):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    ax.set_xlabel("1 - specificity (benign lesions called suspicious)")
    ax.set_ylabel("sensitivity (cancers found)")
    ax.set_title(title or "BUS-BRA: the model and the radiologists", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- occlusion
def occlusion_map(predictor, prepared: np.ndarray, patch: int = 16, stride: int = 8
                  ) -> np.ndarray:
    """How much the ensemble's calibrated probability falls when a ``patch`` x ``patch``
    square of the prepared image (``S x S`` uint8) is set to the image's mean grey, for squares
    every ``stride`` pixels: an ``S x S`` map (each pixel the mean drop of the squares covering
    it; positive where hiding the region lowers the probability of malignancy).

    Raises
    ------
    DataError
        Not a square 2-D image, or a patch larger than it.
    """
    x = np.asarray(prepared)
    if x.ndim != 2 or x.shape[0] != x.shape[1] or not 0 < patch <= x.shape[0] or stride < 1:
        raise DataError(f"image of shape {x.shape}, patch {patch}, stride {stride}: expected a "
                        "square 2-D image, 0 < patch <= its side and stride >= 1")
    side = x.shape[0]
    fill = np.uint8(round(float(x.mean())))
    starts = list(range(0, side - patch + 1, stride))
    if starts[-1] != side - patch:
        starts.append(side - patch)
    boxes = [(r, c) for r in starts for c in starts]
    batch = np.repeat(x[None], len(boxes) + 1, axis=0)
    for i, (r, c) in enumerate(boxes, start=1):
        batch[i, r:r + patch, c:c + patch] = fill
    p_folds, _ = predictor.forward(batch)
    p = predictor.calibrate(p_folds).mean(0)
    drop = p[0] - p[1:]
    total = np.zeros((side, side))
    count = np.zeros((side, side))
    for d, (r, c) in zip(drop, boxes):
        total[r:r + patch, c:c + patch] += d
        count[r:r + patch, c:c + patch] += 1
    return total / np.maximum(count, 1)


def plot_occlusion(items: list[tuple[str, np.ndarray, np.ndarray | None, np.ndarray]],
                   title: str = ""):
    """Rows of (name, prepared image, lesion mask at the same size or None, occlusion map):
    the image with the lesion outlined, and the map over it (orange: hiding the region lowers
    the probability; blue: raises it)."""
    import matplotlib.pyplot as plt

    n = len(items)
    fig, axes = plt.subplots(2, n, figsize=(2.5 * n, 5.2), squeeze=False)
    lim = max([float(np.abs(m).max()) for *_, m in items] + [1e-6])
    for j, (name, img, mask, m) in enumerate(items):
        for ax in axes[:, j]:
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            if mask is not None and mask.any():
                ax.contour(mask, levels=[0.5], colors=[COLOURS[4]], linewidths=1)
            ax.axis("off")
        axes[0, j].set_title(name, fontsize=8)
        im = axes[1, j].imshow(m, cmap="PuOr_r", vmin=-lim, vmax=lim, alpha=0.6)
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.7,
                 label="fall of p(malignant) when hidden")
    fig.suptitle(title or "What the classifier looks at: occlusion (sky blue: the lesion's "
                          "outline)", fontsize=9)
    return fig


def occlusion_items(predictor, results: list[tuple[str, dict]], n: int = 3, patch: int = 16,
                    stride: int = 8) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Occlusion maps (:func:`occlusion_map`) of the first ``n`` predictions ``(name, result
    of Predictor.predict)`` that found a lesion, with the image as the network sees it and the
    ensemble's mask at that size: the rows :func:`plot_occlusion` draws."""

    items = []
    for name, r in results:
        if len(items) == n:
            break
        if not r.get("lesion_found"):
            continue
        prepared = prepare_image(r["grey"], predictor.cfg)
        _, mask_prob = predictor.forward(prepared[None])
        thr = setting(predictor.cfg, "mask_threshold")
        items.append((name, prepared, mask_prob[0] >= thr,
                      occlusion_map(predictor, prepared, patch, stride)))
    return items


def lesion_share_of_attention(items) -> pd.DataFrame:
    """Per occlusion map: the share of the positive fall of the probability that lies inside
    the predicted lesion, beside the lesion's share of the image (a classifier that reads the
    lesion puts most of its weight there)."""
    rows = []
    for name, _, mask, m in items:
        pos = np.clip(m, 0, None)
        total = pos.sum()
        rows.append({"image": name, "lesion's share of the image (%)": 100 * mask.mean(),
                     "share of the fall inside the lesion (%)":
                         100 * float(pos[mask].sum() / total) if total > 0 else np.nan})
    return pd.DataFrame(rows).set_index("image") if rows else pd.DataFrame()


#: BUSI images that show the kinds of burnt-in marks stage 14 removes (text on black, text and
#: calipers on tissue, calipers drawn across a small lesion): a display choice, made by eye.
MARKS_EXAMPLES = ("benign/benign (60).png", "benign/benign (426).png",
                  "benign/benign (246).png")


def plot_marks(data_dir=None, names=MARKS_EXAMPLES, download: bool = False):
    """Stage 14's preprocessing on a few BUSI images: each image with the marks found
    (:func:`busi_lib.data.marks.mark_mask`, in vermillion) above the image they are inpainted
    from (:func:`busi_lib.data.marks.inpaint`). ``None`` when BUSI is not found."""
    import matplotlib.pyplot as plt

    try:
        root = locate_data(data_dir, download=download)
    except DataError:
        return None
    paths = [root / n for n in names if (root / n).is_file()]
    if not paths:
        return None
    fig, axes = plt.subplots(2, len(paths), figsize=(3.2 * len(paths), 5.4), squeeze=False)
    for j, p in enumerate(paths):
        img = read_image(p)
        found = mark_mask(img)
        shown = np.repeat(img[..., None], 3, axis=2).copy()
        shown[found] = (213, 94, 0)
        axes[0, j].imshow(shown)
        axes[1, j].imshow(inpaint(img, found), cmap="gray", vmin=0, vmax=255)
        axes[0, j].set_title(f"BUSI {p.stem}: {100 * found.mean():.1f} % of pixels", fontsize=8)
        for ax in axes[:, j]:
            ax.axis("off")
    axes[0, 0].text(-0.04, 0.5, "marks found", rotation=90, va="center", ha="right",
                    transform=axes[0, 0].transAxes, fontsize=9)
    axes[1, 0].text(-0.04, 0.5, "inpainted", rotation=90, va="center", ha="right",
                    transform=axes[1, 0].transAxes, fontsize=9)
    fig.suptitle("Stage 14: burnt-in text and calipers found (vermillion) and inpainted",
                  fontsize=9)
    return fig


#: Display thresholds of :func:`marks_by_class`: an image counts as *marked* when marks
#: cover more than this share of its pixels, a lesion when more than ``LESION_MARKED`` of it.
IMAGE_MARKED, LESION_MARKED = 0.005, 0.05


def marks_by_class(data_dir=None, download: bool = False) -> pd.DataFrame | None:
    """How BUSI's burnt-in marks (:func:`busi_lib.data.marks.mark_table`) spread over its
    classes: per class, the images, the share of them marked (over :data:`IMAGE_MARKED` of
    the pixels) and the share whose lesion is marked (over :data:`LESION_MARKED` of it); and,
    in ``attrs["auc"]``, the AUC of an image's marked share for malignant against benign (0.5:
    the marks say nothing of the class). ``None`` when BUSI is not found."""
    try:
        root = locate_data(data_dir, download=download)
    except DataError:
        return None
    samples = find_samples(root, ("benign", "malignant", "normal"))
    table = mark_table((s.id, s.label, *load_sample(s)) for s in samples)
    out = table.groupby("label", sort=False).agg(
        images=("id", "size"),
        marked=("marked", lambda v: float((v > IMAGE_MARKED).mean())),
        lesion_marked=("lesion_marked", lambda v: float((v > LESION_MARKED).mean())))
    out.index.name = "class"
    out.columns = ["images", f"share with marks on > {100 * IMAGE_MARKED:g} % of the image",
                   f"share with marks on > {100 * LESION_MARKED:g} % of the lesion"]
    lesions = table[table["label"] != "normal"]
    out.attrs["auc"] = fast_auc((lesions["label"] == "malignant").to_numpy(int),
                                lesions["marked"].to_numpy())
    return out


def local_busi_examples(data_dir=None, per_class: int = 1, download: bool = False) -> list[Path]:
    """The first ``per_class`` benign and malignant BUSI images (by :func:`busi_lib.data.busi.
    locate_data`: ``data_dir``, ``$BUSI_DATA``, ``./data``; downloaded only with ``download``,
    e.g. on Colab where the first cell fetched it already); an empty list when BUSI is not
    found. Every BUSI image was a training image of four of the five fold models."""

    try:
        root = locate_data(data_dir, download=download)
    except DataError:
        return []
    out = []
    for cls in ("benign", "malignant"):
        files = sorted((p for p in (root / cls).glob("*.png") if "_mask" not in p.name),
                       key=lambda p: (len(p.name), p.name))
        out += files[:per_class]
    return out


def busi_operating_table(rel: dict) -> pd.DataFrame:
    """The release's operating points on BUSI (out of fold, calibration cross-fitted: each
    fold calibrated by the others), for the page; empty when the release has none."""
    op = rel.get("operating_points_crossfit")
    if not op:
        return pd.DataFrame()
    return operating.display(pd.DataFrame(op["model"]).set_index("reader"))


def bottom_line(rel: dict, ext: pd.DataFrame) -> str:
    """One sentence for the book's introduction: the released model against the radiologists on
    BUS-BRA, at the radiologists' own sensitivity (BI-RADS >= 4)."""
    b = rel["busbra"]
    y = (ext["pathology"] == "malignant").to_numpy(int)
    rad = operating.radiologist_points(y, ext["birads"]).iloc[0]
    m = operating.specificity_at_sensitivity(y, ext["prob_calibrated"], float(rad["sensitivity"]))
    r_auc = fast_auc(y, ext["birads"].astype(float))
    return (f"on BUS-BRA its AUC is {b['auc']:.3f} (95 % CI {b['auc_ci95'][0]:.3f}-"
            f"{b['auc_ci95'][1]:.3f}) against {r_auc:.3f} for the radiologists' BI-RADS, and at "
            f"their sensitivity ({100 * rad['sensitivity']:.1f} %) its specificity would be "
            f"{100 * m['specificity']:.1f} % against their {100 * rad['specificity']:.1f} %")


def device_sentence(ext: pd.DataFrame, min_images: int = 20) -> str:
    """What the per-scanner table says, in words: the range of the within-scanner AUCs against
    the pooled one, and how far the mean probability of benign lesions moves between scanners
    (scanners with at least ``min_images`` images and both classes)."""
    d = device_view(ext)
    d = d[(d["images"] >= min_images) & d["AUC within scanner"].notna()]
    y = (ext["pathology"] == "malignant").to_numpy(int)
    pooled = fast_auc(y, ext["prob_calibrated"])
    if d.empty:
        return f"Pooled over all scanners the AUC is {pooled:.3f}."
    lo, hi = d["AUC within scanner"].idxmin(), d["AUC within scanner"].idxmax()
    above = int((d["AUC within scanner"] > pooled).sum())
    b_lo, b_hi = d["mean p, benign"].idxmin(), d["mean p, benign"].idxmax()
    return (f"Pooled over all scanners the AUC is {pooled:.3f}; within the {len(d)} scanners with "
            f"at least {min_images} images it ranges from {d.loc[lo, 'AUC within scanner']:.3f} "
            f"({lo}) to {d.loc[hi, 'AUC within scanner']:.3f} ({hi}), above the pooled value on "
            f"{above} of them. The mean probability of a benign lesion moves from "
            f"{d.loc[b_lo, 'mean p, benign']:.2f} ({b_lo}) to {d.loc[b_hi, 'mean p, benign']:.2f} "
            f"({b_hi}): a threshold fixed on BUSI means different things on each scanner.")


# ----------------------------------------------------------------------------- occlusion AUCs
#: The views of :func:`release_occlusion`, as the table names them.
OCCLUSION_VIEWS = {
    "as is": "the image as it is",
    "background": "lesion hidden, its outline left (a flat grey silhouette)",
    "background_box": "a square around the lesion hidden (outline and aspect gone)",
    "lesion": "the lesion alone (surroundings black)"}


def release_occlusion(predictor, data_dir=None, n_boot: int = 1000,
                      seed: int = 0) -> pd.DataFrame | None:
    """What the released classifier reads, out of fold on BUSI: each fold model scores its own
    grouped test fold as it is and with each occlusion of
    :func:`busi_lib.eval.occlusion.occlude`, and the AUC of the network's probability is
    pooled over the folds, with a bootstrap interval over duplicate groups. ``None`` when BUSI
    is not on this machine. Reads BUSI only (never BUS-BRA)."""
    try:
        locate_data(data_dir, download=False)
    except DataError:
        return None
    cfg = predictor.cfg
    data, folds = prepare(cfg, data_dir)
    mal = list(data.class_names).index("malignant")
    probs: dict[str, list] = {v: [] for v in OCCLUSION_VIEWS}
    y, groups = [], []
    for k, weights in enumerate(predictor.fold_weights):
        predictor.model.set_weights(weights)
        _, _, test = fold_parts(folds, k)
        p = occluded_probabilities(predictor.model, cfg, data.images[test], data.masks[test])
        for v in OCCLUSION_VIEWS:
            probs[v].append(p[v])
        y.append(data.labels[test] == mal)
        groups.append(folds["group"].to_numpy()[test] if "group" in folds.columns else test)
    y, groups = np.concatenate(y), np.concatenate(groups)
    rows = []
    for v, label in OCCLUSION_VIEWS.items():
        auc, lo, hi = grouped_bootstrap_auc(y, np.concatenate(probs[v]), groups, n_boot, seed)
        rows.append({"what the network sees": label, "AUC": auc, "95% low": lo, "95% high": hi})
    out = pd.DataFrame(rows)
    out.attrs.update(images=int(len(y)), folds=len(predictor.fold_weights))
    return out


def occlusion_sentence(t: pd.DataFrame | None) -> str:
    """:func:`release_occlusion`'s table in two sentences: how much of the AUC with the lesion
    hidden as a silhouette is the outline's shape, and what is left outside the lesion."""
    if t is None or not len(t):
        return "BUSI is not on this machine, so the released model's occlusion AUCs are not shown."
    a = t.set_index("what the network sees")["AUC"]
    sil, box, alone = (a[OCCLUSION_VIEWS[k]] for k in ("background", "background_box", "lesion"))
    share = (sil - box) / (sil - 0.5) if sil > 0.5 else float("nan")
    return (f"Out of fold on BUSI ({t.attrs['images']} images), the released classifier keeps "
            f"an AUC of {sil:.3f} when the lesion is filled with grey but its outline is left "
            f"(the trials' measure of context reliance), {box:.3f} when a square around it is "
            f"hidden, and {alone:.3f} with the lesion alone. So the outline's shape is "
            f"{share:.0%} of what the silhouette keeps above chance; the rest comes from "
            "outside the square, which holds the scanner and the frame but also the shadow or "
            "enhancement behind the lesion, a BI-RADS feature of the lesion itself.")
