"""Sentences for the book filled from the records: glue, and one-line findings and checks.

``glue`` for the pages, and the headlines of ablations, baselines, the benchmark and the
bfloat16 check.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.book.cost import bench_precision, bench_size_width, latest_training_bench
from busi_lib.book.view import metric_label, pct


def plain(text: str) -> str:
    """``text`` without Markdown's inline marks (code backticks, bold and italic asterisks): a
    ``{glue:text}`` role shows its value as plain text, so marks would show raw."""
    return re.sub(r"\*{1,2}(?=\S)(.+?)(?<=\S)\*{1,2}", r"\1", text.replace("`", ""))


def glue(name: str, value, display: bool = False):
    """``myst_nb.glue`` when available (the book build), else nothing (e.g. on Colab). A text
    value is glued as :func:`plain` text."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return None
    _glue(name, plain(value) if isinstance(value, str) else value, display=display)
    return None


def ablation_headline(table: pd.DataFrame) -> str:
    """One sentence from :func:`ablation_table`: the lowest and highest Δ of Dice and AUC
    against the reference, naming the variant and the number of folds behind each."""
    rows = table[table["Δ folds"] > 0] if "Δ folds" in table else table.iloc[0:0]
    if rows.empty:
        return "no ablation has a fold in common with its reference yet"
    parts = []
    for lab, unit, form in (("DC", " Dice points", "{:+.1f}"), ("AUC", " AUC", "{:+.3f}")):
        d = rows[f"Δ{lab}"].dropna()
        if d.empty:
            continue
        lo, hi = d.idxmin(), d.idxmax()
        n = lambda v: f"{int(rows.loc[v, 'Δ folds'])} fold{'s' if rows.loc[v, 'Δ folds'] > 1 else ''}"
        parts.append(f"Δ{lab} from {form.format(d[lo])}{unit} ({lo}, {n(lo)}) "
                     f"to {form.format(d[hi])}{unit} ({hi}, {n(hi)})")
    return "; ".join(parts) if parts else "no ablation has a finite difference yet"


def best_against_reference(records: dict[str, list[dict]], reference: str, metric: str,
                           candidates: Sequence[str]) -> str:
    """One phrase: the candidate with the highest mean ``metric`` against ``reference``, both
    averaged over the folds they have in common (light runs may be partly recorded).

    Dice-like metrics in %, AUC as a fraction.
    """
    lab = metric_label(metric)
    form = "{:.3f}" if lab == "AUC" else "{:.1f}%"

    def by_fold(name):
        return {r["fold"]: pct(lab, r["metrics"][metric]) for r in records.get(name, [])
                if metric in r["metrics"] and np.isfinite(r["metrics"][metric])}

    ref = by_fold(reference)
    if not ref:
        return f"{lab}: {reference}: no record"
    scored = {}
    for c in candidates:
        vals = by_fold(c)
        common = sorted(set(vals) & set(ref))
        if common:
            scored[c] = (float(np.mean([vals[k] for k in common])),
                         float(np.mean([ref[k] for k in common])), len(common))
    if not scored:
        return f"{lab}: no candidate shares a fold with {reference} yet"
    best = max(scored, key=lambda c: scored[c][0])
    v, r, n = scored[best]
    return (f"{lab}: best {best} {form.format(v)} against {reference} {form.format(r)} "
            f"(same {n} fold{'s' if n != 1 else ''})")


def bench_precision_sentence(bench: pd.DataFrame) -> str:
    """One sentence from :func:`bench_precision` (or says that no comparison is recorded)."""
    t = bench_precision(bench)
    if t.empty:
        return ("no run with --precision mixed_bfloat16 is recorded beside a float32 run of the "
                "same size and width")
    f, b = t.iloc[0], t.iloc[1]
    ratio = f["images/s (steps)"] / b["images/s (steps)"]
    cmp = (f"{ratio:.1f}x slower" if ratio >= 1 else f"{1 / ratio:.1f}x faster")
    return (f"forcing mixed_bfloat16 on this CPU ({'with' if b['CPU has bfloat16'] else 'without'}"
            f" bfloat16 units) trained at {b['images/s (steps)']:.2f} images/s in its steps "
            f"against {f['images/s (steps)']:.2f} in float32 ({cmp}; {b['run']}), while a "
            f"large matrix multiply in the same runs reached "
            f"{b['matmul peak GFLOP/s']:.0f} GFLOP/s in bfloat16 and "
            f"{f['matmul peak GFLOP/s']:.0f} in float32")


def bench_table_check(bench: pd.DataFrame) -> str:
    """How well the ``--table`` extrapolation (one-batch epochs scaled to 518 images) matches
    the epoch that the latest full run measured at the same size and width; "" when the
    table has no such point or there is no full run."""
    r = latest_training_bench(bench)
    sw = bench_size_width(bench)
    if r is None or r["kind"] != "bench" or sw.empty:
        return ""
    row, col = f"{r['size']} px", f"width {r['width']}"
    if row not in sw.index or col not in sw.columns or sw.loc[row, col] != sw.loc[row, col]:
        return ""
    est, meas = float(sw.loc[row, col]), float(r["epoch_seconds"])
    return (f"Check of the extrapolation: at {r['size']} px, width {r['width']}, the table gives "
            f"{est:.0f} s per epoch and the full run measured {meas:.0f} s for a whole epoch of "
            f"{r['epoch_images']} images ({est / meas - 1:+.0%}), so read the table for its "
            f"ratios rather than as exact times.")


def growth_summary(sw: pd.DataFrame) -> str:
    """One sentence on how epoch time grows with image size and width in a
    :func:`bench_size_width` table: the ratios between its extreme rows and columns."""
    def ratio(a, b):
        r = a / b
        return f"{r.min():.1f}-{r.max():.1f}x" if r.notna().any() else "n/a"
    rows, cols = list(sw.index), list(sw.columns)
    size = ratio(sw.loc[rows[-1]], sw.loc[rows[0]])
    width = ratio(sw[cols[-1]], sw[cols[0]])
    return (f"From {rows[0]} to {rows[-1]} an epoch takes {size} as long (over the widths); "
            f"from {cols[0]} to {cols[-1]}, {width} as long (over the sizes). A convolution's "
            f"FLOPs grow with the pixels and with the square of the width, so a perfect CPU "
            f"would give {(int(rows[-1].split()[0]) / int(rows[0].split()[0])) ** 2:.0f}x and "
            f"{(int(cols[-1].split()[1]) / int(cols[0].split()[1])) ** 2:.0f}x.")


def precision_sentence(check: pd.DataFrame, paired: dict) -> str:
    """Plain sentences from :func:`precision_check` and :func:`precision_paired`."""
    if check.empty:
        return "not recorded yet"
    prec = list(check.columns[:2])
    n_seeds = int(check["seeds"].iloc[0])
    use_seeds = n_seeds >= 3
    deltas, sds = [], []
    for lab, form in (("DC", "{:+.1f} points"), ("AUC", "{:+.3f}")):
        if lab in check.index:
            row = check.loc[lab]
            sd = row["sd seeds"] if use_seeds else row["sd folds"]
            deltas.append(f"{lab} by {form.format(row['delta'])}")
            sds.append(form.format(sd).lstrip("+"))
    low = [lab for lab in check.index if not check.loc[lab, "within noise"]]
    yard = (f"{n_seeds} float32 runs on this fold that differ only in training seed spread with "
            f"sd {' and '.join(sds)} (within noise = not below their mean - 2 sd)"
            if use_seeds else
            f"the float32 reference's sd over folds is {' and '.join(sds)} (within noise = not "
            "lower by more than that)")
    verdict = ("no metric is lower by more than that noise" if not low else
               f"lower by more than that noise in {', '.join(low)}")
    out = (f"Same fold, {prec[1]} against {prec[0]}: it changed " + " and ".join(deltas)
           + f"; {yard}: {verdict}.")
    if paired:
        p = paired["variant"]
        out += (f" Image by image over the {p['n']} test images, Dice moved by "
                f"{p['dice_delta_mean']:+.1f} +- {p['dice_delta_se']:.1f} points (mean +- "
                f"standard error), {p['class_agreement']:.0%} of the predicted classes agree and "
                f"p(malignant) differs by at most {p['prob_max_abs_diff']:.2f}")
        rs = paired["reseeds"]
        if rs:
            dm = [x["dice_delta_mean"] for x in rs]
            ag = [x["class_agreement"] for x in rs]
            out += (f"; a float32 run with another training seed, against the same reference, "
                    f"moved Dice by {min(dm):+.1f} to {max(dm):+.1f} points and agreed on "
                    f"{min(ag):.0%} to {max(ag):.0%} of the classes ({len(rs)} seeds)")
        out += (f". The {prec[1]} fold took {paired['variant_seconds'] / 60:.0f} min against "
                f"{paired['reference_seconds'] / 60:.1f} min.")
    return out
