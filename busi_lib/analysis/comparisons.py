"""Variants against their reference, fold by fold: the tables, plots and sentences of ch. 4-5.

The statistics themselves (intervals, bootstrap, verdicts) are in :mod:`busi_lib.analysis.stats`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.analysis import stats
from busi_lib.config import config_hash, make_config
from busi_lib.errors import ConfigError
from busi_lib.eval.metrics import CONSTANT_SPAN
from busi_lib.records import load_divergences, load_predictions, load_records, machine_label

#: The paper's design claims tested by the ablations: (claim, variant, metric record key,
#: the variant's verdict that supports the claim). Most variants switch one of the paper's
#: choices off (the claim holds if that makes the model worse); the recipe trains without the
#: paper's multi-peak GHE, so ``enh_ghe`` switches it on (the claim holds if that is better).
CLAIMS = [
    ("multi-task training helps segmentation", "seg_only", "seg_DC_mean", "worse"),
    ("multi-task training helps classification", "cls_only", "cls_AUC", "worse"),
    ("the classifier on stages 4-5-6 beats one on the encoder alone", "cls_encoder", "cls_AUC",
     "worse"),
    ("residual units help segmentation", "plain_blocks", "seg_DC_mean", "worse"),
    ("residual units help classification", "plain_blocks", "cls_AUC", "worse"),
    ("multi-peak GHE helps segmentation", "enh_ghe", "seg_DC_mean", "better"),
    ("multi-peak GHE helps classification", "enh_ghe", "cls_AUC", "better"),
    ("the class-weighted focal loss helps classification", "ce_loss", "cls_AUC", "worse"),
]
METRICS = {"seg_DC_mean": "dice", "cls_AUC": "auc"}
#: record metric -> the name tables and plots give it
LABELS = {"seg_DC_mean": "Dice", "cls_AUC": "AUC"}
#: A classifier whose malignancy probabilities on a test fold span less than this (max - min)
#: gave every image the same answer: it did not train (its AUC there is 0.5 up to rounding).


def _check_metrics(metrics: Sequence[str]) -> None:
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"metrics={list(metrics)!r}: {bad} unknown; expected some of "
                          f"{sorted(METRICS)}")


def constant_folds(pred: pd.DataFrame, column: str = "prob_malignant",
                   span: float = CONSTANT_SPAN) -> list[int]:
    """Folds (0-based) of a prediction table (:func:`busi_lib.records.load_predictions`) on
    which ``column`` spans less than ``span`` over the test images: a network that answers
    every image alike, i.e. a training failure rather than a weak model. An empty table has
    none."""
    if not (isinstance(span, (int, float)) and span > 0):
        raise ValueError(f"span={span!r}: expected a positive number")
    if pred.empty:
        return []
    if column not in pred or "fold" not in pred:
        raise ValueError(f"column={column!r}: expected a prediction table with 'fold' and "
                         f"{column!r} columns, got {list(pred.columns)}")
    width = pred.groupby("fold")[column].agg(lambda x: x.max() - x.min())
    return sorted(int(k) for k in width.index[width < span])


def paired_table(profile: str, reference: str, variants: Sequence[str],
                 metrics: Sequence[str] = ("seg_DC_mean", "cls_AUC"), *, n_boot: int = 1000,
                 seed: int = 0, results_dir=None,
                 records: dict[str, list[dict]] | None = None) -> pd.DataFrame:
    """One row per (variant, metric): folds paired, the reference's and the variant's mean,
    the mean paired difference with its *t* interval over folds and its fold-keeping bootstrap
    interval over test images, and the verdict. Metrics are fractions (Dice, AUC). For AUC,
    ``constant`` counts the paired folds on which the variant gave every test image the same
    probability (:func:`constant_folds`: it did not train); 0 for Dice. ``diverged`` counts
    the variant's folds whose training diverged (loss NaN; failure records, no fold record:
    :func:`busi_lib.records.load_divergences`).

    ``records`` (experiment -> fold records, e.g. from :func:`busi_lib.book.runs.experiment_records`,
    which leaves out folds of another configuration) replaces loading the records of the
    experiments it names; only the folds of those records are paired. ``n_boot=0`` leaves
    the bootstrap out (its columns NaN)."""

    _check_metrics(metrics)

    def recs_of(e):
        return records[e] if records is not None and e in records else \
            load_records(profile, e, results_dir)

    ref_recs = recs_of(reference)
    ref_pred = load_predictions(profile, reference, results_dir)
    rows = []
    for v in variants:
        recs = recs_of(v)
        pred = load_predictions(profile, v, results_dir)
        diverged = len(load_divergences(profile, v, results_dir))
        for m in metrics:
            c = stats.compare(ref_recs, recs, m)
            row = {"variant": v, "metric": LABELS[m],
                   "folds": c["n_folds"], "mean": c["mean"], "low": c["low"], "high": c["high"],
                   "verdict": c["verdict"], "boot_low": np.nan, "boot_high": np.nan,
                   "reference": np.nan, "variant_value": np.nan, "constant": 0,
                   "diverged": diverged}
            if c["n_folds"]:
                folds = c["folds"]
                if m == "cls_AUC" and "prob_malignant" in pred:
                    row["constant"] = len(set(constant_folds(pred)) & set(folds))
                row["reference"] = float(np.mean([r["metrics"][m] for r in ref_recs
                                                  if r["fold"] in folds]))
                row["variant_value"] = row["reference"] + c["mean"]
                col = stats.COLUMN[METRICS[m]]
                if n_boot and not pred.empty and col in pred and col in ref_pred:
                    both = [p[p["fold"].isin(folds)] for p in (ref_pred, pred)]
                    _, lo, hi = stats.paired_bootstrap(both[0], both[1], METRICS[m],
                                                       n_boot=n_boot, seed=seed)
                    row["boot_low"], row["boot_high"] = lo, hi
            rows.append(row)
    return pd.DataFrame(rows)


def forest(table: pd.DataFrame, metric: str, title: str = ""):
    """The forest plot of one metric of :func:`paired_table` (rows with recorded folds)."""
    t = table[(table["metric"] == metric) & (table["folds"] > 0)].set_index("variant")
    if t.empty:
        return None
    return stats.plot_forest(t, title=title or f"{metric}: variant minus reference, 95% intervals",
                             xlabel=f"difference in {metric}")


def variant_sentence(table: pd.DataFrame, variant: str,
                     aims: dict[str, float] | None = None) -> str:
    """One sentence on a variant of :func:`paired_table`: per metric its mean over the paired
    folds against the reference's, the paired difference with its 95% *t* interval and the
    verdict, and, for a metric named in ``aims`` (e.g. ``{"Dice": 0.72}``), whether the mean
    meets that aim and by how much it misses."""
    g = table[(table["variant"] == variant) & (table["folds"] > 0)]
    if g.empty:
        return f"{variant}: not recorded yet"
    parts = []
    for _, r in g.iterrows():
        ci = ("one fold: no interval" if np.isnan(r["low"])
              else f"95% CI {r['low']:+.3f} to {r['high']:+.3f}")
        text = (f"{r['metric']} {r['variant_value']:.3f} against {r['reference']:.3f} "
                f"(difference {r['mean']:+.3f}, {ci}: {r['verdict']}")
        aim = (aims or {}).get(r["metric"])
        if aim is not None:
            short = aim - r["variant_value"]
            text += f"; aim {aim:g}: " + ("met" if short <= 0 else f"short by {short:.3f}")
        parts.append(text + ")")
    return f"{variant} over {int(g['folds'].max())} paired folds: " + "; ".join(parts)


def glance(table: pd.DataFrame) -> pd.DataFrame:
    """One line per variant for a reader: folds, then for each metric the difference with its
    95% *t* interval and the verdict. A metric the variant has no record of says
    ``not recorded``; one it does not produce while its other metric is recorded (a
    segmentation-only network has no AUC) says ``n/a``."""
    metrics = list(dict.fromkeys(table["metric"]))
    out = {}
    for v, g in table.groupby("variant", sort=False):
        d = {"folds": int(g["folds"].max())}
        for m in metrics:
            r = g[g["metric"] == m]
            if r.empty or r.iloc[0]["folds"] == 0:
                dv = 0 if r.empty else _count(r.iloc[0], "diverged")
                d[f"{m} Δ (95% CI)"] = "n/a" if d["folds"] else "not recorded"
                d[f"{m} verdict"] = (f"did not train: diverged on {dv} "
                                     f"fold{'s' if dv != 1 else ''}" if dv and not d["folds"]
                                     else "")
                continue
            r = r.iloc[0]
            ci = ("one fold: no interval" if np.isnan(r["low"])
                  else f"{r['low']:+.3f} to {r['high']:+.3f}")
            d[f"{m} Δ (95% CI)"] = f"{r['mean']:+.3f} ({ci})"
            d[f"{m} verdict"] = r["verdict"] + _failure_suffix(r)
        out[v] = d
    return pd.DataFrame.from_dict(out, orient="index")


def _count(r, column: str) -> int:
    """A count column of a :func:`paired_table` row (0 where the table has none)."""
    c = r.get(column, 0)
    return 0 if pd.isna(c) else int(c)


def failure_words(r) -> str:
    """How a variant failed to train, in words (empty when it did not): folds with one
    output for every image, folds whose training diverged."""
    parts = []
    if c := _count(r, "constant"):
        parts.append(f"one output for every image on {c} of {int(r['folds'])} folds")
    if dv := _count(r, "diverged"):
        parts.append(f"training diverged on {dv} fold{'s' if dv != 1 else ''}")
    return "; ".join(parts)


def _failure_suffix(r) -> str:
    """`` (did not train: ...)`` after a verdict, or nothing."""
    w = failure_words(r)
    return f" (did not train: {w})" if w else ""


def seed_yardstick(profile: str, runs: Sequence[str], metrics=("seg_DC_mean", "cls_AUC"),
                   results_dir=None, records: dict[str, list[dict]] | None = None
                   ) -> pd.DataFrame:
    """The K-fold mean of each metric for the reference trained with each training seed, and
    the spread (max - min) between seeds, over the folds every recorded run has (``records``
    as in :func:`paired_table`). Runs with no record yet are left out of the spread (their row
    is empty); ``seeds`` counts the runs behind each row, ``folds`` the folds in common."""

    recs = {r: {x["fold"]: x for x in (records[r] if records is not None and r in records
                                       else load_records(profile, r, results_dir))}
            for r in runs}
    have = [r for r in runs if recs[r]]
    common = sorted(set.intersection(*(set(recs[r]) for r in have))) if have else []
    rows = {}
    for r in runs:
        rows[r] = {m: (float(np.mean([recs[r][k]["metrics"][m] for k in common]))
                       if common and r in have else np.nan) for m in metrics}
    df = pd.DataFrame(rows).T
    spread = [stats.seed_spread(df[m].dropna()) if df[m].notna().sum() > 1 else np.nan
              for m in metrics]
    df.loc["spread (max - min)"] = spread
    df["folds"] = [len(common)] * len(df)
    df["seeds"] = [int(r in have and bool(common)) for r in runs] + [len(have) if common else 0]
    return df


def _claim_status(table: pd.DataFrame, variant: str, metric: str, supports: str):
    """``(status, row)`` of one claim: ``supported``, ``contradicted``, ``not detectable`` or
    ``not recorded`` (row ``None``)."""
    r = table[(table["variant"] == variant) & (table["metric"] == metric)]
    if r.empty or r.iloc[0]["folds"] == 0:
        return "not recorded", None
    r = r.iloc[0]
    against = "better" if supports == "worse" else "worse"
    return {supports: "supported", against: "contradicted"}.get(r["verdict"],
                                                                 "not detectable"), r


def claim_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per design claim of the paper: supported, contradicted, or not detectable
    at this sample size (or not recorded yet)."""
    out = []
    for claim, variant, key, supports in CLAIMS:
        metric = LABELS[key]
        status, r = _claim_status(table, variant, metric, supports)
        if r is None:
            out.append(f"*{claim}*: not recorded yet (`{variant}`).")
            continue
        v = {"supported": "**supported**", "contradicted": "**contradicted**"}.get(
            status, "**not detectable at this sample size**")
        ci = ("one fold, no interval" if np.isnan(r["low"])
              else f"95% CI {r['low']:+.3f} to {r['high']:+.3f}")
        out.append(f"*{claim}*: {v} (`{variant}` minus reference: {r['mean']:+.3f} {metric}, "
                   f"{ci}, {int(r['folds'])} fold{'s' if r['folds'] != 1 else ''}).")
    return out


def _join(parts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def claim_tally(table: pd.DataFrame) -> str:
    """One sentence counting the claims of :data:`CLAIMS` by status (see
    :func:`claim_sentences`), e.g. "of the paper's 8 design claims tested here, 2 are
    supported, 1 is contradicted and 5 are not detectable at this sample size"."""
    status = [_claim_status(table, v, LABELS[k], s)[0]
              for _, v, k, s in CLAIMS]
    n = len(CLAIMS)
    if all(x == "not recorded" for x in status):
        return f"none of the paper's {n} design claims tested here is recorded yet"
    parts = [f"{c} {'is' if c == 1 else 'are'} {words}" for k, words in (
        ("supported", "supported"), ("contradicted", "contradicted"),
        ("not detectable", "not detectable at this sample size"),
        ("not recorded", "not recorded yet")) if (c := status.count(k))]
    return f"of the paper's {n} design claims tested here, {_join(parts)}"


def verdict_tally(table: pd.DataFrame, metric: str, noun: str = "variants") -> str:
    """One sentence on the rows of ``metric`` in :func:`paired_table`: how many of the
    ``noun`` are recorded, how many are better, worse or not detectably different from the
    reference, and the one with the highest difference (with its interval); variants that did
    not train on some fold (column ``constant``) are named after it."""
    t = table[table["metric"] == metric]
    rec = t[t["folds"] > 0]
    dead = [f"{r['variant']} ({w})" for _, r in t.iterrows() if (w := failure_words(r))]
    tail = (f"; {_join(dead)} did not train" if dead else "")
    if rec.empty:
        return f"none of the {len(t)} {noun} is recorded yet{tail}"
    parts = [f"{c} {words}" for v, words in (
        ("worse", "worse than the reference"), ("better", "better"),
        ("no detectable difference", "not detectably different"))
        if (c := int((rec["verdict"] == v).sum()))]
    best = rec.loc[rec["mean"].idxmax()]
    ci = ("1 fold, no interval" if np.isnan(best["low"])
          else f"95% CI {best['low']:+.3f} to {best['high']:+.3f}, {int(best['folds'])} folds")
    head = (f"all {len(t)} {noun} recorded" if len(rec) == len(t)
            else f"{len(rec)} of the {len(t)} {noun} recorded")
    return (f"{head}: {_join(parts)} in {metric}; the highest, {best['variant']}, "
            f"{best['mean']:+.3f} {metric} against the reference ({ci}){tail}")


def baseline_claim(table: pd.DataFrame, metric: str, folds: int, noun: str = "baselines") -> str:
    """One sentence on the paper's claim that its network beats every baseline, in ``metric``,
    from the rows of :func:`paired_table` (variant minus reference).

    A baseline recorded on all ``folds`` supports the claim when its verdict is *worse*,
    contradicts it when *better*, and otherwise leaves it not detectable at this sample size;
    one recorded on fewer folds leaves it open, one not recorded leaves it untested. A
    baseline that answered every test image alike on any of its folds (column ``constant``,
    see :func:`constant_folds`) did not train under the recipe: it is no test of the claim,
    whatever its verdict.
    """
    if not (isinstance(folds, int) and folds >= 1):
        raise ValueError(f"folds={folds!r}: expected a positive integer")
    t = table[table["metric"] == metric]
    groups: dict[str, list[str]] = {k: [] for k in (
        "supported", "contradicted", "not detectable", "did not train", "open", "untested")}
    for _, r in t.iterrows():
        name = f"`{r['variant']}`"
        if w := failure_words(r):
            groups["did not train"].append(f"{name} ({w})")
        elif r["folds"] == 0:
            groups["untested"].append(name)
        elif r["folds"] < folds:
            groups["open"].append(f"{name} ({int(r['folds'])} of {folds} folds)")
        else:
            groups[{"worse": "supported", "better": "contradicted"}.get(
                r["verdict"], "not detectable")].append(name)
    words = {"supported": "supported against {} (worse than our model)",
             "contradicted": "contradicted by {} (better than our model)",
             "not detectable": "not detectable against {}",
             "did not train": "not tested by {}, which did not train under this recipe",
             "open": "still open for {}", "untested": "untested for {} (not recorded)"}
    parts = [words[k].format(_join(vs)) for k, vs in groups.items() if vs]
    if not parts:
        return f"no {noun} to compare in {metric}"
    return f"The paper's claim that its network beats the {noun} in {metric}: {_join(parts)}."


def yardstick_sentence(yard: pd.DataFrame, aim: float = 0.02) -> str:
    """One sentence on :func:`seed_yardstick`: the spread of the K-fold mean Dice between
    training seeds against ``aim`` (a fraction: 0.02 = 2 Dice points), and of the AUC."""
    s = yard.loc["spread (max - min)"]
    seeds, folds = int(s["seeds"]), int(s["folds"])
    if seeds < 2 or np.isnan(s["seg_DC_mean"]):
        return (f"not measurable yet: {seeds} of the {len(yard) - 1} training seeds are "
                "recorded on a fold they all share")
    met = "met" if s["seg_DC_mean"] < aim else "not met"
    auc = f" and the AUC by {s['cls_AUC']:.3f}" if "cls_AUC" in s and not np.isnan(
        s["cls_AUC"]) else ""
    return (f"between {seeds} training seeds the {folds}-fold mean Dice spreads by "
            f"{100 * s['seg_DC_mean']:.1f} points (aim: below {100 * aim:g}, {met}){auc}")


def protocol(cfg: dict) -> str:
    """The training protocol of a configuration in words: size, epochs, learning rate and
    schedule, enhancement, folds (e.g. for the variants of chapters 4 and 5)."""
    sched = (f"cosine decay after {cfg['warmup_epochs']} warm-up epochs"
             if cfg["schedule"] == "cosine" else
             f"divided by {1 / cfg['lr_drop_factor']:g} every {cfg['lr_drop_every']} epochs")
    enh = "no enhancement" if cfg["enhancement"] == "none" else f"{cfg['enhancement'].upper()}"
    split = {"grouped": "duplicate-grouped", "random": "random"}.get(cfg["split"], cfg["split"])
    folds = (f"folds {', '.join(str(k + 1) for k in cfg['folds'])} of {cfg['n_folds']} "
             if cfg["folds"] is not None else f"{cfg['n_folds']} ")
    return (f"{cfg['image_size']} px, {cfg['epochs']} epochs, lr {cfg['lr']:g} ({sched}), "
            f"{enh}, {folds}{split} folds")


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`paired_table` with plain column names, one row per (variant, metric)."""
    names = {"folds": "folds", "reference": "reference", "variant_value": "variant",
             "mean": "Δ", "low": "t 95% low", "high": "t 95% high",
             "boot_low": "bootstrap 95% low", "boot_high": "bootstrap 95% high",
             "verdict": "verdict"}
    return table.set_index(["variant", "metric"])[list(names)].rename(columns=names)


def noise_table(entries: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """How well a protocol can tell an effect from noise: one column per protocol.

    ``entries``: label -> (:func:`paired_table`, :func:`seed_yardstick`). Rows: the paired
    comparisons recorded, the folds behind each (median), how many have a verdict of
    ``better`` or ``worse``, the median half-width of their 95% *t* interval for Dice and AUC,
    and the spread between training seeds of the reference (Dice, AUC, seeds, folds). Counts
    stay integers (the columns hold Python objects).
    """
    cols = {}
    for label, (t, yard) in entries.items():
        rec = t[t["folds"] > 0]
        half = (rec["high"] - rec["low"]) / 2
        sp = yard.loc["spread (max - min)"]
        folds = float(rec["folds"].median()) if len(rec) else np.nan
        cols[label] = pd.Series({
            "comparisons": len(rec),
            "folds each": int(folds) if folds == folds and folds == int(folds) else folds,
            "better or worse": int(rec["verdict"].isin(["better", "worse"]).sum()),
            "Dice CI half-width": float(half[rec["metric"] == "Dice"].median()),
            "AUC CI half-width": float(half[rec["metric"] == "AUC"].median()),
            "seed spread Dice": float(sp.get("seg_DC_mean", np.nan)),
            "seed spread AUC": float(sp.get("cls_AUC", np.nan)),
            "seeds": int(sp["seeds"]), "seed folds": int(sp["folds"])}, dtype=object)
    out = pd.DataFrame(cols)
    out.columns.name = "protocol"
    return out


def noise_sentence(noise: pd.DataFrame, label: str) -> str:
    """One sentence on a column of :func:`noise_table`: how many paired comparisons could be
    told from zero, how wide the Dice intervals were, how far the seeds spread."""
    c = noise[label]
    if not c["comparisons"]:
        return f"{label}: no paired comparison recorded yet."
    out = (f"{label}: {c['better or worse']} of {c['comparisons']} paired comparisons could be "
           f"told from zero; with {c['folds each']} folds the median 95% interval of a Dice "
           f"difference reached ±{100 * c['Dice CI half-width']:.1f} points")
    if c["seeds"] >= 2 and c["seed spread Dice"] == c["seed spread Dice"]:
        out += (f", and {c['seeds']} training seeds of the reference spread its Dice by "
                f"{100 * c['seed spread Dice']:.1f} points ({c['seed folds']} "
                f"fold{'s' if c['seed folds'] != 1 else ''} in common)")
    return out + "."


def same_as_reference(profile: str, reference: str, variants: Sequence[str]) -> list[str]:
    """The variants whose configuration is the reference's (same config hash): their
    comparison can only show training noise, and their records duplicate the reference's."""

    ref = config_hash(make_config(profile, reference))
    return [v for v in variants if config_hash(make_config(profile, v)) == ref]


def across_profiles(rows: Sequence[tuple[str, str, str]], results_dir=None,
                    metrics=("seg_DC_mean", "cls_AUC")) -> pd.DataFrame:
    """Mean and sample sd over folds of ``metrics`` for ``(label, profile, experiment)`` rows
    (e.g. the recipe, the paper's recipe, the records made before the recipe), with folds,
    epochs and hours of training (wall time)."""

    _check_metrics(metrics)
    out = []
    for label, profile, exp in rows:
        recs = load_records(profile, exp, results_dir)
        row = {"run": label, "profile / experiment": f"{profile} / {exp}", "folds": len(recs),
               "epochs": recs[0]["config"]["epochs"] if recs else np.nan}
        for m in metrics:
            vals = [r["metrics"][m] for r in recs if m in r["metrics"]]
            name = LABELS[m]
            row[name] = float(np.mean(vals)) if vals else np.nan
            row[f"{name} sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan
        row["train hours"] = sum(r["train_seconds"] for r in recs) / 3600
        out.append(row)
    return pd.DataFrame(out).set_index("run")


def machine_mismatches(profile: str, reference: str, variants: Sequence[str],
                       results_dir=None) -> pd.DataFrame:
    """The (variant, fold) pairs whose variant and reference folds ran on different machines
    (see :func:`busi_lib.records.machine_label`); empty when every pair shares its machine."""

    ref = {r["fold"]: machine_label(r) for r in load_records(profile, reference, results_dir)}
    rows = []
    for v in variants:
        for r in load_records(profile, v, results_dir):
            if r["fold"] in ref and machine_label(r) != ref[r["fold"]]:
                rows.append({"variant": v, "fold": r["fold"] + 1, "variant ran on": machine_label(r),
                             "reference ran on": ref[r["fold"]]})
    return pd.DataFrame(rows, columns=["variant", "fold", "variant ran on", "reference ran on"])


def release_verdict(release_records: list[dict], candidate_records: list[dict],
                    n_folds: int = 5) -> dict:
    """The rule a candidate must pass to replace the release (fixed 2026-12-03, before
    ``trivial_grouped`` was trained): on all ``n_folds`` duplicate-grouped test folds, paired
    fold by fold with the release, the *t* 95 % interval of the difference is below zero for
    neither Dice (``seg_DC_mean``) nor AUC (``cls_AUC``), and above zero for at least one.

    Both recipes carry BUSI-only evidence of robustness to another scanner (stage 4 for the
    release's, stage 7 for the candidate's), measured against different references, so that
    evidence cannot order them; clean performance on the same folds breaks the tie, and
    BUS-BRA, looked at once afterwards, is reported and never used.

    Returns ``{"replace": bool, "reason": str, "dice": ..., "auc": ...}`` (the latter two from
    :func:`busi_lib.analysis.stats.compare`).
    """
    d = stats.compare(release_records, candidate_records, "seg_DC_mean")
    a = stats.compare(release_records, candidate_records, "cls_AUC")
    if min(d["n_folds"], a["n_folds"]) < n_folds:
        return {"replace": False, "dice": d, "auc": a,
                "reason": f"only {min(d['n_folds'], a['n_folds'])} of {n_folds} folds paired: "
                          "no verdict yet"}
    worse = [m for m, c in (("Dice", d), ("AUC", a)) if c["high"] < 0]
    better = [m for m, c in (("Dice", d), ("AUC", a)) if c["low"] > 0]
    if worse:
        reason = f"{' and '.join(worse)} below the release's"
    elif not better:
        reason = "neither Dice nor AUC above the release's"
    else:
        reason = f"{' and '.join(better)} above the release's, neither below"
    return {"replace": bool(better and not worse), "reason": reason, "dice": d, "auc": a}
