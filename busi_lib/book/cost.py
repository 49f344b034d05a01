"""What training costs: hours per experiment from the fold records, and the benchmark runs.

The benchmark runs are those that ``python -m busi_lib.experiments.bench --out`` appended, as tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.book.runs import current_records, short_commit
from busi_lib.book.view import markdown_table
from busi_lib.config import book_experiments, experiments as experiment_table
from busi_lib.errors import ConfigError
from busi_lib.records import (PROJECT_ROOT, load_divergences, load_records, machine_label,
                              results_root)


def cost_table(profile: str, experiments: Sequence[str] | None = None,
               results_dir=None, bench: pd.DataFrame | None = None) -> pd.DataFrame:
    """Measured cost of each experiment of ``profile``, from its fold records.

    One row per experiment (default: the profile's book experiments plus any other
    experiment with records): folds recorded and planned, epochs per fold, seconds per epoch
    (training only), hours of wall time recorded (training, evaluation and external
    validation), and the hours still to go estimated from the recorded folds' mean. A ``total``
    row sums the book's experiments (its hours to go are unknown, NaN, while an experiment with
    folds to go has no recorded fold); other experiments with records (evidence runs) are
    listed after it, outside the total. Folds made with another configuration are not counted.

    An experiment with no recorded fold is estimated from a step benchmark
    (``python -m busi_lib.experiments.bench --step-of``; ``bench``, default :func:`load_bench`) when one
    exists: its pure training seconds per fold times the overhead that the recorded folds of
    other benchmarked experiments had on the same kind of machine (:func:`step_estimates`).
    Column ``estimated from`` says which. Folds whose training diverged (failure records,
    :func:`busi_lib.records.load_divergences`) are counted in ``folds diverged`` and are not
    to go: they were run, and rerunning them unchanged gives the same failure.
    """

    book, table = book_experiments(profile), experiment_table(profile)
    names = list(book if experiments is None else experiments)
    if experiments is None:
        base = results_root(results_dir) / profile
        names += sorted(p.name for p in base.glob("*") if p.is_dir() and p.name in table
                        and p.name not in names and any(p.glob("fold*.json")))
    steps = step_estimates(profile, load_bench() if bench is None else bench, results_dir)
    rows = []
    for e in names:
        cfg, recs = current_records(profile, e, results_dir)
        planned = len(cfg["folds"]) if cfg["folds"] is not None else cfg["n_folds"]
        wall = sum(r["wall_seconds"] for r in recs)
        epochs = sum(r["epochs_run"] for r in recs)
        diverged = len(load_divergences(profile, e, results_dir))
        left = max(planned - len(recs) - diverged, 0)
        if recs:
            to_go, basis = wall / len(recs) * left / 3600, "recorded folds"
        elif left and e in steps.index and not np.isnan(steps.loc[e, "fold_s"]):
            to_go, basis = steps.loc[e, "fold_s"] * left / 3600, "step benchmark"
        else:
            to_go, basis = (np.nan if left else 0.0), ""
        rows.append({
            "experiment": e, "image px": cfg["image_size"], "epochs": cfg["epochs"],
            "folds recorded": len(recs), "folds planned": planned, "folds diverged": diverged,
            "s per epoch": (sum(r["train_seconds"] for r in recs) / epochs) if epochs else np.nan,
            "hours recorded": wall / 3600,
            "hours to go (est.)": to_go, "estimated from": basis,
            "machine": machines(recs) or steps.get("machine", {}).get(e, ""),
        })
    df = pd.DataFrame(rows).set_index("experiment")
    own = df.loc[[e for e in df.index if e in book or experiments is not None]]
    total = {c: np.nan for c in df.columns}
    left = own["hours to go (est.)"]
    unknown = own["folds planned"] > own["folds recorded"] + own["folds diverged"]
    total.update({"folds recorded": own["folds recorded"].sum(),
                  "folds planned": own["folds planned"].sum(),
                  "folds diverged": own["folds diverged"].sum(),
                  "hours recorded": own["hours recorded"].sum(),
                  # unknown as long as an experiment with folds to go has no recorded fold
                  "hours to go (est.)": np.nan if left[unknown].isna().any() else left.sum()})
    extra = df.drop(own.index)
    out = pd.concat([own, pd.DataFrame([total], index=["total"]), extra])
    out.index.name = "experiment"
    # counts stay integers (nullable: the total has no image size or epochs)
    ints = ["image px", "epochs", "folds recorded", "folds planned", "folds diverged"]
    return out.astype({c: "Int64" for c in ints})


def step_estimates(profile: str, bench: pd.DataFrame, results_dir=None) -> pd.DataFrame:
    """Seconds one fold would take, for each experiment with a step benchmark in ``bench``.

    From the latest ``step`` row of each experiment of ``profile`` (``fold_train_s``: epochs x
    steps x the median step time, pure training), scaled by ``overhead``: the median, over the
    benchmarked experiments that also have recorded folds on a machine of the same kind
    (:func:`machine_label`), of recorded wall seconds per fold / ``fold_train_s``
    (augmentation, input pipeline, evaluation, checkpoints). Without such a pair the overhead
    is unknown and ``fold_s`` is NaN.

    Returns
    -------
    pandas.DataFrame
        Index ``experiment``; columns ``fold_train_s``, ``overhead``, ``fold_s``, ``machine``.
    """
    cols = ["fold_train_s", "overhead", "fold_s", "machine"]
    if bench is None or bench.empty or "kind" not in bench or "step" not in set(bench["kind"]):
        return pd.DataFrame(columns=cols, index=pd.Index([], name="experiment"))
    rows = bench[(bench["kind"] == "step") & (bench["profile"] == profile)]
    rows = rows.drop_duplicates("experiment", keep="last").set_index("experiment")
    label = {e: machine_label({"machine": r["machine"], "precision": r["precision"]})
             for e, r in rows.iterrows()}
    ratios: dict[str, list[float]] = {}
    for e, r in rows.iterrows():
        try:
            _, recs = current_records(profile, e, results_dir)
        except ConfigError:          # an experiment the profile no longer has
            continue
        same = [x["wall_seconds"] for x in recs if machine_label(x) == label[e]]
        if same:
            ratios.setdefault(label[e], []).append(np.mean(same) / r["fold_train_s"])
    out = pd.DataFrame({"fold_train_s": rows["fold_train_s"].astype(float),
                        "machine": pd.Series(label)})
    out["overhead"] = [float(np.median(ratios[m])) if m in ratios else np.nan
                       for m in out["machine"]]
    out["fold_s"] = out["fold_train_s"] * out["overhead"]
    out.index.name = "experiment"
    return out[cols]


def machines(recs: list[dict]) -> str:
    """The machines of a list of records, with how many folds each ran (e.g. ``3x H200``)."""
    from collections import Counter

    counts = Counter(machine_label(r) for r in recs)
    return "; ".join(f"{n}x {k}" if len(counts) > 1 else k for k, n in counts.items())


def cost_markdown(profile: str, results_dir=None) -> str:
    """:func:`cost_table` as a Markdown table (written into the book by ``busi_lib.book.build``)."""
    t = cost_table(profile, results_dir=results_dir)
    forms = {"image px": "{:.0f}", "epochs": "{:.0f}", "folds recorded": "{:.0f}",
             "folds planned": "{:.0f}", "s per epoch": "{:.0f}", "hours recorded": "{:.2f}",
             "folds diverged": "{:.0f}", "hours to go (est.)": "{:.2f}"}
    body = [[f"**{name}**" if name == "total" else f"`{name}`"]
            + ["—" if pd.isna(v) else forms.get(c, "{}").format(v) for c, v in row.items()]
            for name, row in t.iterrows()]
    return (f"<!-- generated by busi_lib.book.build from the fold records of profile {profile}; "
            "do not edit -->\n\n" + markdown_table(["experiment"] + list(t.columns), body))


def gpu_timings(profile: str, results_dir=None) -> pd.DataFrame:
    """Fold timings of the records made on a GPU, one row per (experiment, GPU): folds, wall
    seconds per fold (training, evaluation, external set), the first epoch's seconds (it
    includes the XLA compilation with the JAX backend) and the median of the later epochs'.
    Ranges are ``min-max`` over the folds. Empty when no record of ``profile`` ran on a GPU."""

    base, known = results_root(results_dir) / profile, experiment_table(profile)
    rows = []
    for e in sorted(p.name for p in base.glob("*") if p.is_dir() and p.name in known):
        by_gpu: dict[str, list[dict]] = {}
        for r in load_records(profile, e, results_dir):
            gpu = (r.get("machine") or {}).get("gpu")
            if gpu:
                by_gpu.setdefault(gpu, []).append(r)
        for gpu, recs in by_gpu.items():
            first = [r["history"][0]["seconds"] for r in recs if r.get("history")]
            later = [h["seconds"] for r in recs for h in r.get("history", [])[1:]]
            wall = [r["wall_seconds"] for r in recs]
            rows.append({"experiment": e, "GPU": gpu, "folds": len(recs),
                         "s per fold": _span(wall), "first epoch s": _span(first),
                         "later epochs s (median)": float(np.median(later)) if later else np.nan})
    return pd.DataFrame(rows, columns=["experiment", "GPU", "folds", "s per fold",
                                       "first epoch s", "later epochs s (median)"])


def _span(values) -> str:
    """``"85-174"`` (rounded seconds), one number when they round alike, ``"—"`` for none."""
    if not len(values):
        return "—"
    lo, hi = round(min(values)), round(max(values))
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def gpu_timings_markdown(profile: str, results_dir=None) -> str:
    """:func:`gpu_timings` as a Markdown table (written into the book by ``busi_lib.book.build``)."""
    t = gpu_timings(profile, results_dir)
    head = (f"<!-- generated by busi_lib.book.build from the fold records of profile {profile}; "
            "do not edit -->\n\n")
    if t.empty:
        return head + "No fold of this profile was trained on a GPU.\n"
    body = [[f"`{r['experiment']}`", r["GPU"], f"{r['folds']:.0f}", r["s per fold"],
             r["first epoch s"], f"{r['later epochs s (median)']:.1f}"] for _, r in t.iterrows()]
    return head + markdown_table(list(t.columns), body)


# ----------------------------------------------------------------------------- benchmark
def load_bench(path=None) -> pd.DataFrame:
    """The benchmark results appended by ``python -m busi_lib.experiments.bench --out`` (one row each)."""
    import json

    path = Path(path) if path is not None else PROJECT_ROOT / "results" / "bench" / "bench.jsonl"
    if not path.exists():
        return pd.DataFrame()
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    df = pd.DataFrame(rows)
    # counts stay integers where kinds of runs without them (step runs) leave gaps
    ints = [c for c in ("size", "width", "batch", "epochs", "epoch_images", "steps") if c in df]
    return df.astype({c: "Int64" for c in ints})


#: The benchmark figures shown in the book (issue 5), with a label each.
BENCH_FIGURES = {
    "train_img_per_s": "project path, images/s", "reference_img_per_s": "plain float32 fit, images/s",
    "speedup": "speed-up (target >= 1.5)", "epoch_overhead_fraction": "epoch time beyond its steps (target <= 0.15)",
    "peak_fraction": "achieved / matmul peak (target >= 0.40)", "achieved_gflops": "achieved GFLOP/s",
    "peak_gflops": "matmul peak GFLOP/s", "flops_per_img": "FLOPs per training image",
    "infer_img_per_s": "inference images/s", "peak_rss_mb": "peak RSS, MB", "precision": "precision",
    "cpu_bf16": "CPU has bfloat16", "bench_seconds": "benchmark took, s",
}


def _auto_runs(bench: pd.DataFrame) -> pd.DataFrame:
    """Full and quick runs in the precision ``auto`` picks (older rows, without
    ``precision_requested``, were all ``auto``)."""
    if bench.empty:
        return bench
    runs = bench[bench["kind"].isin(["bench", "quick"])]
    if "precision_requested" in runs:
        runs = runs[runs["precision_requested"].isna() | (runs["precision_requested"] == "auto")]
    return runs


def latest_training_bench(bench: pd.DataFrame) -> pd.Series | None:
    """The benchmark run the book shows (one row of :func:`load_bench`), or None: the latest
    full run (``kind`` "bench") if there is one, else the latest ``quick`` run; only runs in the
    precision that ``auto`` picks (a forced ``--precision`` run is a comparison, see
    :func:`bench_precision`)."""
    runs = _auto_runs(bench)
    if runs.empty:
        return None
    full = runs[runs["kind"] == "bench"]
    return (full if len(full) else runs).iloc[-1]


def bench_value(bench: pd.DataFrame, key: str) -> float:
    """One figure (a key of :data:`BENCH_FIGURES`) of the latest run, NaN when not recorded."""
    if key not in BENCH_FIGURES:
        raise ConfigError(f"key={key!r}: expected one of {sorted(BENCH_FIGURES)}")
    r = latest_training_bench(bench)
    if r is None or key not in r.index or r[key] is None:
        return float("nan")
    try:
        return float(r[key])
    except (TypeError, ValueError):
        return float("nan")


def bench_summary(bench: pd.DataFrame) -> pd.DataFrame:
    """The latest ``quick`` or full benchmark run as a two-column table of labelled figures."""
    r = latest_training_bench(bench)
    if r is None:
        return pd.DataFrame()
    rows = {"run": f"{r['kind']} ({r['size']} px, width {r['width']}, batch {r['batch']}), "
                   f"{r['date']}, commit {short_commit(r['git_commit'])}",
            "load average before": str(r.get("load_before"))}
    rows.update({label: r[k] for k, label in BENCH_FIGURES.items() if k in r.index})
    return pd.DataFrame({"value": [str(v) if not isinstance(v, float) else f"{v:.3g}"
                                   for v in rows.values()]}, index=list(rows))


def bench_size_width(bench: pd.DataFrame) -> pd.DataFrame:
    """Seconds per training epoch of 518 images by image size (rows) and width (columns),
    from the latest ``--table`` run of each point."""
    if bench.empty or "table" not in set(bench["kind"]):
        return pd.DataFrame()
    t = bench[bench["kind"] == "table"].drop_duplicates(["size", "width"], keep="last")
    df = t.pivot(index="size", columns="width", values="epoch_seconds_518")
    df.index = [f"{s} px" for s in df.index]
    df.columns = [f"width {w}" for w in df.columns]
    return df


def bench_precision(bench: pd.DataFrame) -> pd.DataFrame:
    """The latest forced ``mixed_bfloat16`` run beside the latest float32 run of the same kind,
    size and width: training images/s (per epoch and in pure steps) and the matmul peak of each
    precision measured in the same runs. Empty when either is missing."""
    if bench.empty or "precision" not in bench:
        return pd.DataFrame()
    runs = bench[bench["kind"].isin(["bench", "quick"])]
    bf = runs[runs["precision"] == "mixed_bfloat16"]
    if bf.empty:
        return pd.DataFrame()
    b = bf.iloc[-1]
    f = runs[(runs["precision"] == "float32") & (runs["kind"] == b["kind"])
             & (runs["size"] == b["size"]) & (runs["width"] == b["width"])]
    if f.empty:
        return pd.DataFrame()
    rows = []
    for r in (f.iloc[-1], b):
        peak = r.get("peak_gflops_float32" if r["precision"] == "float32"
                     else "peak_gflops_bfloat16")
        rows.append({"precision": r["precision"],
                     "run": f"{r['kind']}, {r['size']} px, width {r['width']}, {r['date']}",
                     "images/s (epoch)": r["train_img_per_s"],
                     "images/s (steps)": r["train_step_img_per_s"],
                     "matmul peak GFLOP/s": np.nan if peak is None else peak,
                     "load before": str(r.get("load_before")),
                     "CPU has bfloat16": bool(r.get("cpu_bf16"))})
    return pd.DataFrame(rows).set_index("precision")


def to_go_sentence(table: pd.DataFrame, experiments: Sequence[str], what: str = "rows") -> str:
    """One sentence on the folds of ``experiments`` still to train and the hours they would
    take, from a :func:`cost_table` (e.g. "3 of 11 rows have fewer folds than planned: 12
    folds to go, about 4.1 hours by the estimates of the cost table").

    Raises
    ------
    ConfigError
        An experiment that is not a row of ``table``.
    """
    missing = [e for e in experiments if e not in table.index]
    if missing:
        raise ConfigError(f"experiments {missing}: not rows of the cost table "
                          f"(rows: {list(table.index)})")
    t = table.loc[list(experiments)]
    div = t["folds diverged"] if "folds diverged" in t else pd.Series(0, index=t.index)
    failed = (f"; {int(div.sum())} fold{'s' if div.sum() != 1 else ''} of "
              + ", ".join(f"`{e}`" for e in div.index[div > 0])
              + " diverged (recorded as failures, not to go)") if div.sum() else ""
    short = t[t["folds recorded"] + div < t["folds planned"]]
    if short.empty:
        return f"all {len(t)} {what} have every planned fold{failed}"
    folds = int((short["folds planned"] - short["folds recorded"] - div[short.index]).sum())
    hours = short["hours to go (est.)"]
    est = ("the time of "
           + ", ".join(f"`{e}`" for e in hours.index[hours.isna()]) + " is not known yet"
           if hours.isna().any() else f"about {hours.sum():.1f} hours by the cost table's estimates")
    return (f"{len(short)} of {len(t)} {what} have fewer folds than planned: {folds} folds to go, "
            f"{est}{failed}")
