"""What the recorded trials of :mod:`busi_lib.experiments.tune` say: tables, rules, sentences, figures.

Everything here reads the records under ``results/<profile>/tuning/``; nothing trains. The
rules (fixed before the trials they judge ran) are those of :mod:`busi_lib.experiments.tune`'s docstring:
:func:`select` (stages 1-3: a score gain above ``MIN_GAIN``), :func:`robust_select` (stage 4:
the shift score up by more than ``MIN_GAIN``, the clean score down by no more), and
:func:`robust_follow_up` (stage 4's later follow-up). Stage 5 reads as a learning curve
(:func:`learning_curve_table`) beside the seed noise of a trial's score (:func:`trial_seed_spread`).

    from busi_lib.analysis import tune_report
    recs = tune_report.load_trials("cpu")
    tune_report.trials_table(recs)
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from busi_lib.errors import ConfigError
from busi_lib.eval.metrics import fast_auc
from busi_lib.experiments.shift import SHIFTS, shift_score
from busi_lib.experiments.tune import (CONFIRM_CANDIDATES, CONFIRM_LEVEL, CONFIRM_REFERENCE,
                                       CONTEXT_CANDIDATES, FINAL_TRIAL,
                                       DATA_REFERENCE, DATA_TRIALS, MIN_GAIN,
                                       RELEASE_REFERENCE_RERUN, RELEASE_SEEDED_CANDIDATES,
                                       RELEASE_SEEDED_REFERENCE,
                                       ROBUST_CANDIDATES,
                                       ROBUST_FOLLOW_UP, ROBUST_REFERENCE, SCORE_EPOCHS,
                                       SEED_TRIALS, SEEDED_CANDIDATES, SEEDED_REFERENCE, TRIALS,
                                       tuning_dir)


def load_trials(profile: str = "cpu", results_dir=None) -> list[dict]:
    """Every recorded trial of a profile, in the order of :data:`TRIALS` (others last)."""
    folder = tuning_dir(profile, results_dir)
    recs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if not p.name.startswith("lr_range")]
    order = {n: i for i, n in enumerate(TRIALS)}
    return sorted(recs, key=lambda r: (order.get(r["trial"], len(order)), r["trial"]))


def trials_table(recs: list[dict]) -> pd.DataFrame:
    """One row per trial: stage, what it changes, last-epochs validation Dice and AUC, score,
    gain over its stage's reference, CPU hours."""
    rows = []
    for r in recs:
        last = r["history"][-SCORE_EPOCHS:]
        rows.append({"trial": r["trial"], "stage": r["stage"],
                     "epochs": r["config"]["epochs"],
                     "val Dice": float(np.mean([h["val_dice"] for h in last])),
                     "val AUC": float(np.mean([h["val_auc"] for h in last])),
                     "score": r["score"], "CPU h": r["cpu_seconds"] / 3600,
                     "s/epoch": r["seconds_per_epoch"],
                     "machine": r["machine"].get("gpu") or r["machine"]["cpu"]})
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


#: Capacity trials: does a wider network, a larger input or a longer training pay?
#: name -> (what, reference)
CAPACITY = {"width32": ("width 32 (the paper's width)", "cos_lr1e-3"),
            "px160": ("160 px input", "cos_lr1e-3"),
            "combo_px160": ("the chosen recipe at 160 px", "combo_e30"),
            "combo_e40": ("the chosen recipe for 40 epochs", "combo_e30")}


def capacity_sentence(table: pd.DataFrame, min_gain: float = MIN_GAIN) -> str:
    """What each capacity trial (:data:`CAPACITY`) gained over its reference in score and what
    it cost in seconds per epoch, and what the selection rule says of it."""
    parts = []
    for name, (what, reference) in CAPACITY.items():
        if name not in table.index or reference not in table.index:
            missing = name if name not in table.index else f"its reference {reference}"
            parts.append(f"{what} ({name}): {missing} not recorded")
            continue
        ref, r = table.loc[reference], table.loc[name]
        gain = r["score"] - ref["score"]
        verdict = "would be kept" if gain > min_gain else "not kept"
        parts.append(f"{what} ({name}): score {r['score']:.3f}, {gain:+.3f} over {reference} "
                     f"(val Dice {r['val Dice'] - ref['val Dice']:+.3f}, AUC "
                     f"{r['val AUC'] - ref['val AUC']:+.3f}) at {r['s/epoch'] / ref['s/epoch']:.1f}x "
                     f"its seconds per epoch: {verdict} by the rule (gain > {min_gain})")
    return "; ".join(parts) + "."


def select(table: pd.DataFrame, reference: str, candidates, min_gain: float = MIN_GAIN
           ) -> list[str]:
    """The candidates whose score beats ``reference``'s by more than ``min_gain``, best first."""
    if reference not in table.index:
        raise ConfigError(f"reference trial {reference!r} is not recorded")
    ref = table.loc[reference, "score"]
    won = [(table.loc[c, "score"] - ref, c) for c in candidates
           if c in table.index and table.loc[c, "score"] - ref > min_gain]
    return [c for _, c in sorted(won, reverse=True)]


def robust_table(recs: list[dict]) -> pd.DataFrame:
    """One row per stage-4 trial recorded with shift metrics: clean score, shift score, and
    validation Dice and AUC on each perturbation (columns ``<shift> Dice``, ``<shift> AUC``).
    Later stages' trials record shift metrics too but are not stage 4's (left out)."""

    rows = []
    for r in recs:
        if not r.get("shift") or r.get("stage", 4) != 4:
            continue
        row = {"trial": r["trial"], "score": r["score"], "shift score": shift_score(r["shift"])}
        for name in SHIFTS:
            v = r["shift"].get(name, {})
            row[f"{name} Dice"] = v.get("val_dice", float("nan"))
            row[f"{name} AUC"] = v.get("val_auc", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


def robust_select(table: pd.DataFrame, reference: str = ROBUST_REFERENCE,
                  candidates=ROBUST_CANDIDATES, min_gain: float = MIN_GAIN) -> list[str]:
    """Stage 4's rule on a :func:`robust_table`: the candidates whose shift score beats the
    reference's by more than ``min_gain`` while their clean score is at most ``min_gain`` below
    the reference's, best shift gain first (:func:`select` on the shift score)."""
    if reference not in table.index:
        raise ConfigError(f"reference trial {reference!r} is not recorded with shift metrics")
    clean = table["score"]
    kept_clean = [c for c in candidates
                  if c in table.index and clean[c] - clean[reference] >= -min_gain]
    return select(table.assign(score=table["shift score"]), reference, kept_clean, min_gain)


def robust_sentence(table: pd.DataFrame, reference: str = ROBUST_REFERENCE,
                    candidates=ROBUST_CANDIDATES, min_gain: float = MIN_GAIN) -> str:
    """Each stage-4 candidate against the reference: clean and shift score changes, and what
    the rule says of it."""
    if reference not in table.index:
        return f"Stage 4 is not recorded yet (its reference {reference} has no shift metrics)."
    ref = table.loc[reference]
    kept = robust_select(table, reference, candidates, min_gain)
    parts = []
    for c in candidates:
        if c not in table.index:
            parts.append(f"{c}: not recorded")
            continue
        r = table.loc[c]
        parts.append(f"{c}: shift score {r['shift score']:.3f} "
                     f"({r['shift score'] - ref['shift score']:+.3f}), clean score "
                     f"{r['score']:.3f} ({r['score'] - ref['score']:+.3f}): "
                     f"{'kept' if c in kept else 'not kept'}")
    return (f"Against {reference} (shift score {ref['shift score']:.3f}, clean "
            f"{ref['score']:.3f}): " + "; ".join(parts) + ".")


def robust_follow_up(table: pd.DataFrame, follow_up: dict | None = None,
                     min_gain: float = MIN_GAIN) -> str:
    """Each stage-4 follow-up (:data:`ROBUST_FOLLOW_UP`) against the trial it extends, on a
    :func:`robust_table`. The rule (fixed before the follow-up ran): the extra compute pays when
    the clean or the shift score rises by more than ``min_gain`` and neither falls by more
    than ``min_gain``."""
    parts = []
    for name, base in (ROBUST_FOLLOW_UP if follow_up is None else follow_up).items():
        if name not in table.index or base not in table.index:
            parts.append(f"{name}: {name if name not in table.index else base} not recorded")
            continue
        d_clean = table.loc[name, "score"] - table.loc[base, "score"]
        d_shift = table.loc[name, "shift score"] - table.loc[base, "shift score"]
        pays = max(d_clean, d_shift) > min_gain and min(d_clean, d_shift) >= -min_gain
        parts.append(f"{name} against {base}: clean score {table.loc[name, 'score']:.3f} "
                     f"({d_clean:+.3f}), shift score {table.loc[name, 'shift score']:.3f} "
                     f"({d_shift:+.3f}): the extra epochs {'pay' if pays else 'do not pay'}")
    return "; ".join(parts) + "."


def learning_curve_table(recs: list[dict]) -> pd.DataFrame:
    """Stage 5: one row per share of the inner-training images (:data:`DATA_TRIALS` and the
    full-data :data:`DATA_REFERENCE`), smallest first: images, epochs, last-epochs validation
    Dice and AUC, score, CPU hours."""
    table = trials_table([r for r in recs if r["trial"] in (*DATA_TRIALS, DATA_REFERENCE)])
    if table.empty:
        return table
    by = {r["trial"]: r for r in recs}
    table.insert(0, "share", [float(by[t].get("train_fraction", 1.0)) for t in table.index])
    table.insert(1, "images", [int(by[t]["n_inner_train"]) for t in table.index])
    return table.sort_values("images")


def learning_curve_slopes(table: pd.DataFrame) -> dict[str, float]:
    """Least-squares slopes of validation Dice, AUC and score on ``log2(images)``: what each
    doubling of the training images added over the measured range (NaN with < 2 rows)."""
    if len(table) < 2:
        return {"Dice": float("nan"), "AUC": float("nan"), "score": float("nan")}
    x = np.log2(table["images"].to_numpy(float))
    return {k: float(np.polyfit(x, table[c].to_numpy(float), 1)[0])
            for k, c in (("Dice", "val Dice"), ("AUC", "val AUC"), ("score", "score"))}


def learning_curve_sentence(table: pd.DataFrame, min_gain: float = MIN_GAIN) -> str:
    """What stage 5 says: the score at each share and what a doubling of the images added."""
    if len(table) < 2:
        return "Stage 5 (the learning curve) is not recorded yet."
    pts = ", ".join(f"{r['share']:.0%} ({r['images']} images): {r['score']:.3f}"
                    for _, r in table.iterrows())
    slope = learning_curve_slopes(table)
    still = slope["score"] > min_gain
    return (f"Validation score (Dice + AUC) by share of the inner-training images, at about "
            f"equal optimiser steps: {pts}. Each doubling of the images added "
            f"{slope['Dice']:+.3f} Dice and {slope['AUC']:+.3f} AUC (least squares on "
            f"log2 of the images, {len(table)} points): "
            + ("the curve has not flattened at BUSI's size, so more images would still pay."
               if still else f"below the rule's {min_gain}, so the curve has flattened."))


def trial_seed_spread(recs: list[dict]) -> dict | None:
    """The recipe's validation score over training seeds (:data:`DATA_REFERENCE` and
    :data:`SEED_TRIALS`, those recorded): ``{"n", "scores", "range", "sd"}``, or ``None`` with
    fewer than two; ``sd`` is the sample standard deviation."""
    scores = {r["trial"]: float(r["score"]) for r in recs
              if r["trial"] in (DATA_REFERENCE, *SEED_TRIALS)}
    if len(scores) < 2:
        return None
    v = np.array(list(scores.values()))
    return {"n": len(v), "scores": scores, "range": float(v.max() - v.min()),
            "sd": float(v.std(ddof=1))}


def seed_sentence(spread: dict | None, min_gain: float = MIN_GAIN) -> str:
    """The trial score's seed noise against the selection rule's threshold."""
    if spread is None:
        return "The recipe's reseeds are not recorded yet."
    pts = ", ".join(f"{k} {v:.3f}" for k, v in spread["scores"].items())
    verdict = ("larger than" if spread["range"] > min_gain else "within")
    return (f"The recipe retrained with other training seeds on the same images scores {pts}: a "
            f"range of {spread['range']:.3f} (sd {spread['sd']:.3f}, {spread['n']} seeds), "
            f"{verdict} the rule's threshold of {min_gain}: a gain or loss of that size between "
            f"two trials {'can be' if spread['range'] > min_gain else 'is unlikely to be'} seed "
            f"noise alone.")


def plot_learning_curve(table: pd.DataFrame):
    """Validation Dice and AUC against the number of training images (log scale), with the
    least-squares line of :func:`learning_curve_slopes`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
    x = table["images"].to_numpy(float)
    for ax, col in zip(axes, ("val Dice", "val AUC")):
        y = table[col].to_numpy(float)
        ax.plot(x, y, "o", color="C0")
        if len(x) >= 2:
            b, a = np.polyfit(np.log2(x), y, 1)
            xs = np.geomspace(x.min(), x.max(), 20)
            ax.plot(xs, a + b * np.log2(xs), "-", color="C0", alpha=0.5,
                    label=f"{b:+.3f} per doubling")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [f"{int(v)}" for v in x])
        ax.minorticks_off()
        ax.set_xlabel("training images (inner-training share)")
        ax.set_title(f"validation {col.split()[-1]}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


#: Okabe-Ito colours (colour-blind safe) for the stages of the trials.
STAGE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#999999")


def stage_style(stage: int) -> tuple[str, str]:
    """``(colour, line style)`` of a stage: the colours in turn, solid for the first seven
    stages and dash-dotted after, so that no two stages look alike."""
    k = max(int(stage), 1) - 1
    return STAGE_COLOURS[k % len(STAGE_COLOURS)], ("-", "-.", ":")[min(k // len(STAGE_COLOURS), 2)]


def plot_quality_per_hour(recs: list[dict], names=None, smooth: int = 3,
                          highlight=(FINAL_TRIAL, "robust_aug_e60")):
    """Validation Dice and AUC against cumulative training CPU hours, one curve per trial
    (a running mean over ``smooth`` epochs), coloured by stage of the trials (Okabe-Ito,
    colour-blind safe; one legend entry per stage, below the plots); the paper's schedule
    dashed; the trials of ``highlight`` drawn in black and named at their ends."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True)
    stages = set()
    for r in recs:
        if names is not None and r["trial"] not in names:
            continue
        stage = TRIALS.get(r["trial"], (0, {}))[0]
        stages.add(stage)
        h = pd.DataFrame(r["history"])
        x = h["cpu_seconds"].cumsum() / 3600
        style = "--" if r["trial"].startswith("paper") else stage_style(stage)[1]
        hi = r["trial"] in highlight
        for ax, col in zip(axes, ("val_dice", "val_auc")):
            y = h[col].rolling(smooth, min_periods=1).mean()
            ax.plot(x, y, style, color="black" if hi else stage_style(stage)[0],
                    lw=2.0 if hi else 0.9, alpha=1.0 if hi else 0.6, zorder=3 if hi else 2)
            if hi:
                ax.annotate(r["trial"], (x.iloc[-1], y.iloc[-1]), fontsize=7,
                            xytext=(3, 0), textcoords="offset points", va="center")
    for ax, t in zip(axes, ("validation Dice", "validation AUC")):
        ax.set_xlabel("training CPU hours (2-core machine, cumulative)")
        ax.set_title(t)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=stage_style(s)[0], ls=stage_style(s)[1], label=f"stage {s}")
               for s in sorted(stages)]
    handles.append(Line2D([], [], color="black", lw=2, label="the recipe and the release"))
    handles.append(Line2D([], [], color="grey", ls="--", label="the paper's schedule"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def best_inference(rec: dict) -> dict:
    """The inference choice of a trial with the highest validation Dice + AUC; on a tie, the
    simplest (no TTA, no post-processing, threshold nearest 0.5)."""
    c = pd.DataFrame(rec["inference_choices"])
    c = c.assign(score=c["val_dice"] + c["val_auc"], extra=c["tta"].astype(int)
                 + (c["postprocess"] != "none").astype(int), off=(c["mask_threshold"] - 0.5).abs())
    best = c.sort_values(["score", "extra", "off"], ascending=[False, True, True]).iloc[0]
    return {"tta": bool(best["tta"]), "postprocess": str(best["postprocess"]),
            "mask_threshold": float(best["mask_threshold"])}


def choices_table(rec: dict) -> pd.DataFrame:
    """A trial's inference choices as a table: validation Dice per threshold (columns), one
    row per (TTA, post-processing); AUC with and without TTA."""
    c = pd.DataFrame(rec["inference_choices"])
    dice = c.pivot_table(index=["tta", "postprocess"], columns="mask_threshold", values="val_dice")
    dice.columns = [f"Dice @ {t:g}" for t in dice.columns]
    auc = c.groupby(["tta", "postprocess"])["val_auc"].first()
    return dice.assign(AUC=auc)


def reliance_table(recs: list[dict]) -> pd.DataFrame:
    """Validation AUC of each trial's model on the images as they are, with the lesion hidden
    and with the lesion alone (:func:`busi_lib.eval.occlusion.occlusion_auc`)."""
    rows = {r["trial"]: r["reliance"] for r in recs if r.get("reliance")}
    return pd.DataFrame(rows).T.rename(columns={"auc": "AUC", "auc_no_lesion": "lesion hidden",
                                                "auc_lesion_only": "lesion alone"})


def load_lr_range(profile: str = "cpu", results_dir=None) -> dict | None:
    path = tuning_dir(profile, results_dir) / "lr_range.json"
    return json.loads(path.read_text()) if path.is_file() else None


def plot_lr_range(rec: dict):
    """The range test: each step's loss and its smoothed curve against the learning rate."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.semilogx(rec["lr"], rec["loss"], ".", ms=2, alpha=0.4, label="step loss")
    ax.semilogx(rec["lr"], rec["smoothed"], "-", label="smoothed")
    ax.axvline(rec["lr_at_min"], color="k", lw=0.8, ls=":", label="lowest smoothed loss")
    ax.axvline(rec["suggested_lr"], color="C2", lw=1, label="a tenth of it")
    lo, hi = np.nanpercentile(rec["smoothed"], [1, 99])
    ax.set_ylim(lo * 0.9, min(hi * 1.5, max(rec["smoothed"])))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- stage 6
#: The three signals of stage 6, from a trial record: clean validation score, shift score
#: (perturbed validation), and context reliance (validation AUC with the lesion hidden; a
#: classifier that reads the lesion falls toward 0.5 there, so lower is better).
def _shift_score(rec: dict) -> float:
    return shift_score(rec["shift"])


SIGNALS = {"clean score": lambda r: r["score"],
           "shift score": _shift_score,
           "AUC, lesion hidden": lambda r: r["reliance"]["auc_no_lesion"]}


def seeded_table(recs: list[dict], reference=None, candidates=None,
                 level: float = 0.95) -> pd.DataFrame:
    """Stage 6's comparison: for each candidate (three training seeds) against the reference
    (three seeds), per signal of :data:`SIGNALS`: the candidate's mean and sd, the reference's,
    the difference of means and its Welch *t* interval. Candidates with a trial missing are
    left out (``missing`` lists them in ``attrs``)."""
    from scipy import stats

    reference = SEEDED_REFERENCE if reference is None else reference
    candidates = SEEDED_CANDIDATES if candidates is None else candidates
    by = {r["trial"]: r for r in recs}
    if any(t not in by for t in reference):
        raise ConfigError(f"stage 6 reference trials {[t for t in reference if t not in by]} "
                          "are not recorded")
    rows, missing, diverged = [], [], []
    for name, trials in candidates.items():
        if any(t not in by for t in trials):
            missing.append(name)
            continue
        if any(by[t].get("diverged_at") for t in trials):
            diverged.append(name)                  # a seed's training diverged: no verdict
            continue
        for signal, get in SIGNALS.items():
            a = np.array([get(by[t]) for t in trials], float)
            b = np.array([get(by[t]) for t in reference], float)
            va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
            se = np.sqrt(va + vb)
            df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else 1
            half = float(stats.t.ppf(0.5 + level / 2, df) * se)
            d = float(a.mean() - b.mean())
            rows.append({"candidate": name, "signal": signal, "candidate mean": a.mean(),
                         "candidate sd": a.std(ddof=1), "reference mean": b.mean(),
                         "reference sd": b.std(ddof=1), "difference": d, "low": d - half,
                         "high": d + half})
    out = pd.DataFrame(rows)
    out.attrs["missing"] = missing
    out.attrs["diverged"] = diverged
    out.attrs["level"] = level
    return out


def seeded_select(table: pd.DataFrame) -> dict[str, str]:
    """Stage 6's rule (fixed 2026-12-03, before its trials ran), per candidate: **kept** when
    the Welch 95 % interval of the difference is above zero for the clean or the shift score,
    below zero for neither, and the AUC with the lesion hidden has no interval above zero (not
    more reliant on context); otherwise **not kept**, with the reason."""
    out = {}
    for name, g in table.groupby("candidate", sort=False):
        g = g.set_index("signal")
        better = [s for s in ("clean score", "shift score") if g.loc[s, "low"] > 0]
        worse = [s for s in ("clean score", "shift score") if g.loc[s, "high"] < 0]
        context = g.loc["AUC, lesion hidden", "low"] > 0
        if better and not worse and not context:
            out[name] = "kept: " + " and ".join(better) + " above the seed noise"
        elif worse:
            out[name] = "not kept: " + " and ".join(worse) + " below the reference"
        elif context:
            out[name] = "not kept: more reliant on the lesion's surroundings"
        else:
            out[name] = "not kept: no difference clears the seed noise"
    return out


def confirm_table(recs: list[dict]) -> pd.DataFrame:
    """Stage 7's comparison: :func:`seeded_table` for the confirmed candidate, five seeds
    against five, with intervals at :data:`~busi_lib.experiments.tune.CONFIRM_LEVEL`."""
    return seeded_table(recs, reference=CONFIRM_REFERENCE, candidates=CONFIRM_CANDIDATES,
                        level=CONFIRM_LEVEL)


def confirm_select(table: pd.DataFrame) -> dict[str, str]:
    """Stage 7's rule (fixed 2026-12-03, committed before its four new trials ran): the rule
    of :func:`seeded_select` -- kept when the interval of the clean or the shift score is
    above zero, neither below zero, and the AUC with the lesion hidden not above zero -- applied
    to five seeds against five, with intervals at the Bonferroni level ``1 - 0.05 / 4``
    (stage 6 looked at four candidates and this one was picked for its promise, so a plain
    95 % interval would overstate the evidence). ``table`` is :func:`confirm_table`'s."""
    return seeded_select(table)


def release_seeded_table(recs: list[dict]) -> pd.DataFrame:
    """Stages 8 to 14: :func:`seeded_table` for the candidates on the released recipe (strong
    augmentation, 60 epochs; stage 8: stage 7's policy, stage 9: crops that keep the lesion,
    stage 10: lesions moved into other images' surroundings, stage 11: 192 px, stage 12: the
    lesion crop at twice the detail, stage 13: histogram-equalised images, stage 14: burnt-in
    marks inpainted),
    each three seeds against the recipe's three, 95 % intervals. Raises :class:`ConfigError`
    while a reference trial is not recorded; a candidate with a trial missing is left out
    (``attrs["missing"]``)."""
    return seeded_table(recs, reference=RELEASE_SEEDED_REFERENCE,
                        candidates=RELEASE_SEEDED_CANDIDATES, level=0.95)


def release_seeded_select(table: pd.DataFrame) -> dict[str, str]:
    """The rule of stages 8 to 14 (each fixed and committed before any of that stage's trials
    ran: stages 8 and 9 on 2026-12-03, stages 10 to 14 on 2026-12-04), per candidate, on
    :func:`release_seeded_table`'s table at 95 %: the rule of :func:`seeded_select`, except
    for the candidates of :data:`~busi_lib.experiments.tune.CONTEXT_CANDIDATES`, made to read
    the lesion rather than its surroundings. Such a candidate is **kept** when neither score's
    interval is below zero and either a score's interval is above zero or the AUC with the
    lesion hidden has its interval below zero (less reliant on the surroundings). Only a
    candidate kept here goes on to the five grouped folds, where
    :func:`busi_lib.analysis.comparisons.release_verdict` decides the release."""
    out = seeded_select(table)
    for name in CONTEXT_CANDIDATES:
        if name not in out:
            continue
        g = table[table["candidate"] == name].set_index("signal")
        worse = [s for s in ("clean score", "shift score") if g.loc[s, "high"] < 0]
        better = [s + " above the seed noise" for s in ("clean score", "shift score")
                  if g.loc[s, "low"] > 0]
        if g.loc["AUC, lesion hidden", "high"] < 0:
            better.append("less reliant on the lesion's surroundings")
        if worse:
            out[name] = "not kept: " + " and ".join(worse) + " below the reference"
        elif better:
            out[name] = "kept: " + " and ".join(better)
        else:
            out[name] = "not kept: no difference clears the seed noise"
    return out


def trial_rerun_table(recs: list[dict]) -> pd.DataFrame:
    """Trials run twice with the same configuration
    (:data:`~busi_lib.experiments.tune.RELEASE_REFERENCE_RERUN` against
    :data:`~busi_lib.experiments.tune.RELEASE_SEEDED_REFERENCE`), one row per pair recorded:
    each run's score, last-epochs validation Dice and AUC, precision and CPU, and the score's
    difference. Empty when no pair is recorded."""
    by = {r["trial"]: r for r in recs}
    rows = []
    for orig, again in zip(RELEASE_SEEDED_REFERENCE, RELEASE_REFERENCE_RERUN):
        if orig not in by or again not in by:
            continue
        row = {"trial": orig, "run again as": again}
        for tag, r in (("first", by[orig]), ("again", by[again])):
            h = r["history"][-SCORE_EPOCHS:]
            row[f"score, {tag}"] = r["score"]
            row[f"Dice, {tag}"] = float(np.mean([e["val_dice"] for e in h]))
            row[f"AUC, {tag}"] = float(np.mean([e["val_auc"] for e in h]))
            row[f"machine, {tag}"] = (f"{r.get('precision', '?')}, "
                                      f"{(r.get('machine') or {}).get('cpu', '?')}")
        row["score difference"] = row["score, again"] - row["score, first"]
        rows.append(row)
    return pd.DataFrame(rows)


def seed_ensemble_table(recs: list[dict]) -> pd.DataFrame:
    """Would averaging training seeds help? For the release recipe's reference seeds (their
    re-runs, :data:`~busi_lib.experiments.tune.RELEASE_REFERENCE_RERUN`) and each candidate of
    :data:`~busi_lib.experiments.tune.RELEASE_SEEDED_CANDIDATES` whose three trials all
    recorded each validation image's probability (``val_predictions``): the validation AUC of
    each seed (mean, lowest, highest), the AUC of the three seeds' probabilities averaged per
    image, and the difference. The same images in every trial (checked). Judged by no rule:
    exploratory. Empty when no such group is recorded."""
    by = {r["trial"]: r for r in recs}
    groups = {"release recipe (reference seeds, run again)": RELEASE_REFERENCE_RERUN,
              **RELEASE_SEEDED_CANDIDATES}
    rows = []
    for name, trials in groups.items():
        preds = [by.get(t, {}).get("val_predictions") for t in trials]
        if not all(preds):
            continue
        if any(p["id"] != preds[0]["id"] or p["true_class"] != preds[0]["true_class"]
               for p in preds):
            raise ConfigError(f"{name}: its trials' validation images differ; expected the "
                              "same inner validation split")
        y = (np.asarray(preds[0]["true_class"]) == "malignant").astype(int)
        probs = np.array([p["prob_malignant"] for p in preds], float)
        each = [fast_auc(y, p) for p in probs]
        both = fast_auc(y, probs.mean(axis=0))
        rows.append({"recipe": name, "seeds": len(trials), "images": len(y),
                     "AUC, each seed (mean)": float(np.mean(each)),
                     "lowest": float(min(each)), "highest": float(max(each)),
                     "AUC, seeds averaged": float(both),
                     "difference": float(both - np.mean(each))})
    return pd.DataFrame(rows)


def seed_ensemble_sentence(table: pd.DataFrame) -> str:
    """What :func:`seed_ensemble_table` says, in a sentence: the range of the differences
    against the spread between seeds."""
    if table.empty:
        return "No three seeds of one recipe have recorded their validation predictions."
    lo, hi = table["difference"].min(), table["difference"].max()
    spread = float((table["highest"] - table["lowest"]).mean())
    n = len(table)
    text = (f"Averaging the three seeds' probabilities changed the validation AUC by "
            + (f"{lo:+.3f}" if n == 1 else f"{lo:+.3f} to {hi:+.3f}")
            + f" against the seeds' mean ({n} recipe{'s' if n > 1 else ''}, "
            f"{int(table['images'].iloc[0])} images), while one seed's AUC differs from "
            f"another's by {spread:.3f} on average (highest minus lowest). ")
    if max(abs(lo), abs(hi)) < spread:
        return text + ("The change is smaller than the spread between seeds: on these images, "
                       "averaging training seeds is not a lead.")
    return text + ("The change is as large as the spread between seeds: a lead, to be judged "
                   "by a rule written before its own trials.")


def stage_progress(recs: list[dict], trials) -> tuple[int, int]:
    """``(recorded, total)`` of a stage's trials, to say how far an unfinished stage is."""
    names = {r["trial"] for r in recs}
    trials = list(trials)
    return sum(t in names for t in trials), len(trials)
