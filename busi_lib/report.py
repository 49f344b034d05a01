"""Tables, figures and notes for the book's notebooks (the notebooks stay thin).

Every number this module shows comes from result records (:mod:`busi_lib.records`) or from
the data; the paper's numbers come only from :mod:`busi_lib.paper` and are always labelled
"paper". Functions that display return the object they displayed, so a notebook can reuse it.

Conventions: our metrics are stored as fractions and shown here as percentages with two
decimals (AUC, ECE and Brier scores as fractions with three), as the paper prints them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import paper
from .errors import ConfigError, DataError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEED = 42

SEG_LAYOUT = ["JSI", "DC", "ACC", "REC", "PRE"]            # Table 1
CLS_LAYOUT = ["ACC", "PRE", "REC", "SPE", "F1", "AUC"]     # Table 2, 6, 7
SEG4_LAYOUT = ["ACC", "PRE", "REC", "JSI", "DC"]           # Table 4
FRACTION_COLS = ("AUC", "ECE", "Brier")
COLORS = {"benign": "#1b9e77", "malignant": "#d95f02", "normal": "#7570b3"}


# ============================================================================ display basics
def setup_display(dpi: int = 90) -> None:
    """pandas and matplotlib settings shared by every notebook (deterministic text output)."""
    import matplotlib.pyplot as plt

    pd.set_option("display.max_columns", 60)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.max_rows", 200)
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "figure.autolayout": False,
                         "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False, "font.size": 9})


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None
    except ImportError:  # pragma: no cover
        return False


def _display(obj) -> None:
    if _in_ipython():
        from IPython.display import display

        display(obj)
    else:  # plain Python (tests, scripts)
        print(obj if not hasattr(obj, "data") else obj.data)


def md(text: str) -> None:
    """Display Markdown (plain text outside IPython)."""
    if _in_ipython():
        from IPython.display import Markdown

        _display(Markdown(text))
    else:
        print(text)


def note(text: str) -> None:
    """A short highlighted note (e.g. "this table is incomplete")."""
    md(f"> **Note.** {text}")


def fmt(df: pd.DataFrame, decimals: int = 2, fraction_decimals: int = 3,
        missing: str = "—") -> pd.DataFrame:
    """Format numbers as strings (fixed decimals; ``—`` for missing) for stable display."""
    out = df.copy().astype(object)
    for col in df.columns:
        name = str(col[0] if isinstance(col, tuple) else col).lstrip("Δ").split(" ")[0]
        d = fraction_decimals if name in FRACTION_COLS else decimals
        vals = []
        for v in df[col].tolist():
            if isinstance(v, (bool, np.bool_)):
                vals.append("yes" if v else "NO")
            elif v is None or v is pd.NA or (isinstance(v, (float, np.floating))
                                               and not np.isfinite(v)):
                vals.append(missing)
            elif isinstance(v, (int, np.integer)):
                vals.append(str(int(v)))
            elif isinstance(v, (float, np.floating)):
                vals.append(f"{v:.{d}f}")
            else:
                vals.append(str(v))
        out[col] = vals
    return out


def show(df: pd.DataFrame, caption: str | None = None, **kw) -> None:
    """Display a formatted table (see :func:`fmt`) under a bold caption."""
    if caption:
        md(f"**{caption}**")
    _display(fmt(df, **kw))


# ============================================================================ records
def results_dir_for(seed: int) -> Path | None:
    """``None`` (the default results folder) for the default seed, else ``results/seed<k>``.

    Records of one experiment and profile live in one folder per configuration, so a run with
    another seed must not write beside the default one (``run_cv`` refuses to mix them).
    """
    if int(seed) == DEFAULT_SEED:
        return None
    from .records import results_root

    return results_root() / f"seed{int(seed)}"


def ensure_records(profile: str, experiment: str, *, data_dir=None, seed: int = DEFAULT_SEED,
                   train_missing: bool = True, folds: Sequence[int] | None = None,
                   verbose: int = 1, **overrides) -> list[dict]:
    """Records of ``experiment`` in ``profile``: train missing folds if asked, else load.

    ``folds`` limits which folds are *trained* now (all recorded folds are returned).
    ``BUSI_NO_TRAIN=1`` in the environment turns training off (``train_missing=False``).
    Problems that stop training (data missing, configuration changed, a model that cannot be
    built) are shown as a note and the folds recorded so far are returned, so a notebook
    shows an incomplete table instead of crashing. A bad parameter still raises
    :class:`ConfigError` at once.
    """
    from .config import config_hash, make_config
    from .records import load_records

    if os.environ.get("BUSI_NO_TRAIN") == "1":   # the notebook regression tests never train
        train_missing = False
    ov = dict(overrides)
    if int(seed) != DEFAULT_SEED:
        ov["seed"] = int(seed)
    if folds is not None:
        ov["folds"] = [int(k) for k in folds]
    cfg = make_config(profile, experiment, **ov)
    rdir = results_dir_for(seed)
    if train_missing:
        from .train import run_cv

        try:
            run_cv(profile, experiment, data_dir=data_dir, results_dir=rdir, verbose=verbose, **ov)
        except (ConfigError, DataError, ImportError, NotImplementedError) as exc:
            note(f"`{experiment}` ({profile}): not trained now ({type(exc).__name__}: {exc}). "
                 "Showing the folds recorded so far.")
    recs = load_records(profile, experiment, rdir)
    chash = config_hash(cfg)
    stale = [r for r in recs if r.get("config_hash") != chash]
    if stale:
        note(f"`{experiment}` ({profile}): {len(stale)} recorded fold(s) were made with another "
             f"configuration (hash {stale[0].get('config_hash')}, now {chash}) and are left out.")
    return [r for r in recs if r.get("config_hash") == chash]


def short_commit(c: str | None) -> str:
    if not c:
        return "unknown"
    dirty = c.endswith("+dirty")
    return c.split("+")[0][:7] + ("+dirty" if dirty else "")


def provenance(records: list[dict], experiment: str | None = None) -> str:
    """One line naming what the numbers come from: profile, seed, data, commit, folds."""
    if not records:
        return f"`{experiment}`: no records"
    r0 = records[0]
    exp = experiment or r0.get("experiment", "?")
    n_folds = r0["config"]["n_folds"]
    seeds = sorted({r["seed"] for r in records})
    data = sorted({r["data_sha256"][:8] for r in records})
    commits = sorted({short_commit(r.get("git_commit")) for r in records})
    prec = sorted({r.get("precision", "?") for r in records})
    folds = ", ".join(str(r["fold"] + 1) for r in records)
    return (f"`{exp}` · profile **{r0['profile']}** · seed {', '.join(map(str, seeds))} · "
            f"data {', '.join(data)} · commit {', '.join(commits)} · {prec[0]} · "
            f"fold(s) {folds} of the {n_folds}-fold split · {r0['config']['image_size']} px, "
            f"{r0['config']['epochs']} epochs")


def show_provenance(records: list[dict], experiment: str | None = None) -> None:
    """Display :func:`provenance`, plus a note when folds are missing."""
    md("Source: " + provenance(records, experiment))
    if records:
        planned = planned_folds(records[0]["profile"], records[0]["experiment"])
        if len(records) < len(planned):
            note(f"only {len(records)} of the {len(planned)} planned folds of "
                 f"`{records[0]['experiment']}` are recorded: this table is incomplete.")


def planned_folds(profile: str, experiment: str) -> list[int]:
    """The folds today's configuration of ``experiment`` trains (light ones: fewer)."""
    from .config import make_config

    cfg = make_config(profile, experiment)
    return list(cfg["folds"]) if cfg["folds"] is not None else list(range(cfg["n_folds"]))


def _pct(name: str, v: float) -> float:
    return v if name in FRACTION_COLS else 100 * v


def fold_table(records: list[dict], kind: str = "seg", convention: str = "mean") -> pd.DataFrame:
    """Our per-fold table in the paper's layout: rows 1..k, ``mean``, ``std``.

    kind : ``"seg"`` (Table 1: JSI DC ACC REC PRE, %), ``"cls"`` (Table 2: ACC PRE REC SPE F1
        in %, AUC as a fraction) or ``"seg4"`` (Table 4's column order).
    convention : ``"mean"`` (per-image mean) or ``"pooled"`` (pixel counts summed over the
        fold) for the segmentation metrics.
    """
    layout = {"seg": SEG_LAYOUT, "cls": CLS_LAYOUT, "seg4": SEG4_LAYOUT}[kind]
    rows = {}
    for r in records:
        m = r["metrics"]
        row = {}
        for c in layout:
            key = f"seg_{c}_{convention}" if kind in ("seg", "seg4") else f"cls_{c}"
            row[c] = _pct(c, m[key]) if key in m else np.nan
        rows[r["fold"] + 1] = row
    df = pd.DataFrame.from_dict(rows, orient="index", columns=layout)
    if df.empty:
        return pd.DataFrame(columns=layout)
    df.index = pd.Index(list(df.index), name="fold", dtype=object)
    mean, std = df.mean(), df.std(ddof=1) if len(df) > 1 else df.mean() * np.nan
    df.loc["mean"] = mean
    df.loc["std"] = std
    return df


def side_by_side(ours: pd.DataFrame, theirs: pd.DataFrame, ours_label: str = "ours",
                 theirs_label: str = "paper") -> pd.DataFrame:
    """Columns ``(metric, ours)``, ``(metric, paper)`` for every metric of ``theirs``."""
    keys = list(dict.fromkeys([*map(_key, ours.index), *map(_key, theirs.index)]))
    nums = sorted((k for k in keys if k.isdigit()), key=int)
    idx = nums + [k for k in ("mean", "std") if k in keys] + \
        [k for k in keys if k not in nums and k not in ("mean", "std")]
    o = ours.copy()
    o.index = [_key(i) for i in o.index]
    t = theirs.copy()
    t.index = [_key(i) for i in t.index]
    cols = {}
    for c in theirs.columns:
        cols[(c, ours_label)] = o[c].reindex(idx) if c in o.columns else pd.Series(np.nan, idx)
        cols[(c, theirs_label)] = t[c].reindex(idx)
    out = pd.DataFrame(cols, index=pd.Index(idx, name=theirs.index.name or "row"))
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def _key(i):
    return str(i)


def compare_experiments(profile: str, experiments: Sequence[str], metrics: Sequence[str],
                        labels: dict[str, str] | None = None, *, records: dict | None = None,
                        seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Mean and std over folds of ``metrics`` (record keys) for each experiment.

    Returns one row per experiment with ``<metric>`` and ``<metric> sd`` in % (AUC fraction),
    plus the number of folds and epochs.
    """
    from .records import load_records

    rows = []
    for e in experiments:
        recs = records[e] if records is not None and e in records else \
            load_records(profile, e, results_dir_for(seed))
        row = {"experiment": (labels or {}).get(e, e), "folds": len(recs),
               "epochs": recs[0]["config"]["epochs"] if recs else np.nan}
        for m in metrics:
            short = _metric_label(m)
            vals = [_pct(short, r["metrics"][m]) for r in recs if m in r["metrics"]]
            row[short] = float(np.mean(vals)) if vals else np.nan
            row[short + " sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("experiment")


def _metric_label(key: str) -> str:
    """``seg_DC_mean`` -> ``DC``, ``cls_AUC`` -> ``AUC``, ``seg_DC_pooled`` -> ``DC pooled``."""
    parts = key.split("_")
    if parts[0] == "seg":
        return parts[1] + (" pooled" if parts[-1] == "pooled" else "")
    if parts[0] == "cls":
        return "_".join(parts[1:])
    return key


def build_notes(records_by_exp: dict[str, list[dict]]) -> list[str]:
    """Plain sentences from the records' ``build_note`` (e.g. ImageNet weights not used)."""
    out = []
    for e, recs in records_by_exp.items():
        notes = sorted({str(r.get("build_note")) for r in recs if r.get("build_note")})
        for n in notes:
            out.append(f"`{e}`: {n}")
    return out


def load_fold_data(records: list[dict], data_dir=None):
    """The BUSI arrays an experiment was trained on (same size, classes, enhancement)."""
    from .data import load_busi

    cfg = records[0]["config"]
    return load_busi(data_dir, image_size=cfg["image_size"], classes=cfg["classes"],
                     enhancement=cfg["enhancement"], max_per_class=cfg["max_per_class"])


def predictions(profile: str, experiment: str, kind: str = "predictions",
                seed: int = DEFAULT_SEED, records: list[dict] | None = None) -> pd.DataFrame:
    """Per-image predictions of all recorded folds (only folds of ``records`` when given)."""
    from .records import load_predictions

    df = load_predictions(profile, experiment, results_dir_for(seed), kind=kind)
    if records is not None and not df.empty:
        df = df[df["fold"].isin([r["fold"] for r in records])].reset_index(drop=True)
    return df


# ============================================================================ figures: training
def plot_learning_curves(records: list[dict], title: str = ""):
    """Training losses per epoch (one line per fold) and the learning rate."""
    import matplotlib.pyplot as plt

    keys = [k for k in ("loss", "mask_loss", "label_loss") if records and k in records[0]["history"][0]]
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(3.2 * (len(keys) + 1), 2.8))
    for ax, k in zip(axes, keys):
        for r in records:
            h = pd.DataFrame(r["history"])
            ax.plot(h["epoch"], h[k], marker="o" if len(h) < 10 else None, ms=3,
                    label=f"fold {r['fold'] + 1}")
        ax.set(title=k.replace("_", " "), xlabel="epoch")
    for r in records:
        h = pd.DataFrame(r["history"])
        axes[-1].plot(h["epoch"], h["lr"], label=f"fold {r['fold'] + 1}")
    axes[-1].set(title="learning rate", xlabel="epoch", yscale="log")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def plot_roc(pred: pd.DataFrame, positive: str = "malignant", title: str = ""):
    """ROC curve of the malignancy probability per fold and pooled over folds."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    for k, g in pred.groupby("fold"):
        y = (g["true_class"] == positive).astype(int)
        if 0 < y.sum() < len(y):
            fpr, tpr, _ = roc_curve(y, g["prob_malignant"])
            ax.plot(fpr, tpr, lw=1, alpha=0.6,
                    label=f"fold {k + 1} (AUC {roc_auc_score(y, g['prob_malignant']):.3f})")
    y = (pred["true_class"] == positive).astype(int)
    if 0 < y.sum() < len(y):
        fpr, tpr, _ = roc_curve(y, pred["prob_malignant"])
        ax.plot(fpr, tpr, color="k", lw=2,
                label=f"pooled (AUC {roc_auc_score(y, pred['prob_malignant']):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="recall (sensitivity)", title=title or "ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    plt.show()


def confusion(pred: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Confusion matrix (rows: true class, columns: predicted class), all folds pooled."""
    cm = pd.crosstab(pd.Categorical(pred["true_class"], categories=list(classes)),
                     pd.Categorical(pred["pred_class"], categories=list(classes)),
                     dropna=False)
    cm.index.name, cm.columns.name = "true", "predicted"
    return cm


def plot_confusion(pred: pd.DataFrame, classes: Sequence[str], title: str = ""):
    import matplotlib.pyplot as plt

    cm = confusion(pred, classes)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(classes), 1.0 + 1.0 * len(classes)))
    ax.imshow(cm.to_numpy(), cmap="Blues")
    ax.grid(False)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, int(cm.iloc[i, j]), ha="center", va="center", fontsize=10)
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix (all folds)")
    fig.tight_layout()
    plt.show()


def _contour(ax, mask, color, lw=1.2):
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[color], linewidths=lw)


def plot_overlays(profile: str, experiment: str, records: list[dict], data=None, *, n: int = 4,
                  worst: bool = True, seed: int = DEFAULT_SEED, data_dir=None, title: str = ""):
    """Test images with the true (green) and predicted (red) lesion outlines, from the
    recorded ``fold<k>_masks.npz`` (no model needed). ``worst``: lowest Dice first."""
    import matplotlib.pyplot as plt

    from .records import experiment_dir, read_masks

    if not records:
        note("no records: no overlays")
        return
    if data is None:
        try:
            data = load_fold_data(records, data_dir)
        except DataError as exc:
            note(f"BUSI images not available ({exc}); overlays skipped.")
            return
    pred = predictions(profile, experiment, seed=seed, records=records)
    pred = pred[pred["true_class"] != "normal"].dropna(subset=["dice"])
    pred = pred.sort_values(["dice", "id"], ascending=[worst, True]).head(n)
    masks = {}
    folder = experiment_dir(profile, experiment, results_dir_for(seed))
    for r in records:
        p = folder / f"fold{r['fold']}_masks.npz"
        if p.is_file():
            ids, m = read_masks(p)
            masks.update(zip(map(str, ids), m))
    index = {str(i): k for k, i in enumerate(data.ids)}
    fig, axes = plt.subplots(1, max(len(pred), 1), figsize=(2.4 * max(len(pred), 1), 2.7),
                             squeeze=False)
    for ax, (_, row) in zip(axes[0], pred.iterrows()):
        k = index[row["id"]]
        ax.imshow(data.images[k], cmap="gray", vmin=0, vmax=255)
        _contour(ax, data.masks[k], "lime")
        if row["id"] in masks:
            _contour(ax, masks[row["id"]], "red")
        ax.set_title(f"{row['id']}\nDice {row['dice']:.2f}, p(mal) {row.get('prob_malignant', np.nan):.2f}",
                     fontsize=7)
        ax.axis("off")
    fig.suptitle(title or ("worst" if worst else "best") + " test images (green: truth, red: prediction)",
                 fontsize=9)
    fig.tight_layout()
    plt.show()


# ============================================================================ EDA
def image_inventory(data_dir=None, cache: bool = True) -> pd.DataFrame:
    """One row per BUSI image (all three classes): size, colour, masks, lesion area, pixel hash.

    Decodes every original file once (about 15 s) and caches the table in the busi_lib cache
    folder, keyed by the pixel manifest, so later calls are instant.
    """
    from PIL import Image

    from .data import (CLASSES, data_manifest, default_cache_dir, find_samples, load_sample,
                       locate_data, manifest_sha256)

    root = locate_data(data_dir)
    samples = find_samples(root, CLASSES)
    manifest = data_manifest(root, samples)
    key = manifest_sha256(manifest)[:16]
    path = default_cache_dir() / f"eda_inventory_{key}_v1.csv"
    if cache and path.is_file():
        return pd.read_csv(path, dtype={"id": str, "pixel_sha256": str})
    rows = []
    for s in samples:
        with Image.open(s.image_path) as im:
            mode = im.mode
            arr = np.asarray(im)
        colour = bool(arr.ndim == 3 and not (np.array_equal(arr[..., 0], arr[..., 1])
                                             and np.array_equal(arr[..., 0], arr[..., 2])))
        img, mask = load_sample(s)
        rows.append({"id": s.id, "class": s.label, "number": s.number, "height": img.shape[0],
                     "width": img.shape[1], "mode": mode, "colour": colour,
                     "n_masks": len(s.mask_paths), "lesion_fraction": float(mask.mean()),
                     "pixel_sha256": manifest[f"{s.label}/{s.image_path.name}"]})
    df = pd.DataFrame(rows)
    if cache:
        from .data import atomic_write_text

        atomic_write_text(path, df.to_csv(index=False))
    return df


def class_count_table(inv: pd.DataFrame) -> pd.DataFrame:
    """Per class: images, mask files, images with several masks, colour images, and the
    counts the paper states."""
    g = inv.groupby("class")
    df = pd.DataFrame({"images (data)": g.size(), "paper states": pd.Series(paper.STATED_COUNTS),
                       "mask files": g["n_masks"].sum(),
                       "images with >1 mask": g["n_masks"].apply(lambda s: int((s > 1).sum())),
                       "colour images": g["colour"].sum().astype(int),
                       "empty masks": g["lesion_fraction"].apply(lambda s: int((s == 0).sum()))})
    df.loc["total"] = df.sum()
    return df.astype(int)


def size_table(inv: pd.DataFrame) -> pd.DataFrame:
    """Image width and height (px) and lesion area fraction (%) per class."""
    g = inv.groupby("class")
    df = pd.DataFrame({"distinct sizes": g.apply(lambda d: len(set(zip(d.width, d.height))),
                                                 include_groups=False),
                       "width min": g["width"].min(), "width median": g["width"].median(),
                       "width max": g["width"].max(), "height min": g["height"].min(),
                       "height median": g["height"].median(), "height max": g["height"].max(),
                       "lesion % median": 100 * g["lesion_fraction"].median(),
                       "lesion % p10": 100 * g["lesion_fraction"].quantile(0.1),
                       "lesion % p90": 100 * g["lesion_fraction"].quantile(0.9)})
    return df


def plot_sizes_and_areas(inv: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for c, d in inv.groupby("class"):
        axes[0].scatter(d["width"], d["height"], s=6, alpha=0.6, color=COLORS.get(c), label=c)
    axes[0].set(xlabel="width (px)", ylabel="height (px)", title="original image sizes")
    axes[0].legend(fontsize=7)
    les = inv[inv["class"] != "normal"]
    data = [100 * les.loc[les["class"] == c, "lesion_fraction"] for c in ("benign", "malignant")]
    bins = np.linspace(0, max(1.0, float(max(d.max() for d in data))), 30)
    for c, d in zip(("benign", "malignant"), data):
        axes[1].hist(d, bins=bins, alpha=0.6, color=COLORS[c], label=f"{c} (n={len(d)})")
    axes[1].set(xlabel="lesion area (% of image)", ylabel="images",
                title="lesion area fraction (normal: no lesion)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    plt.show()


def exact_duplicates(inv: pd.DataFrame) -> pd.DataFrame:
    """Groups of images with identical decoded pixels."""
    d = inv[inv.duplicated("pixel_sha256", keep=False)]
    rows = [{"images": ", ".join(g["id"]), "classes": ", ".join(sorted(set(g["class"]))),
             "cross-class": g["class"].nunique() > 1, "pixel sha256": h[:12]}
            for h, g in d.groupby("pixel_sha256", sort=True)]
    return pd.DataFrame(rows, columns=["images", "classes", "cross-class", "pixel sha256"])


def near_duplicates(data, corr_min: float = 0.99, dhash_max: int = 12) -> pd.DataFrame:
    """Near-duplicate pairs (heuristic of :func:`busi_lib.splits.near_duplicate_pairs`)."""
    from .splits import near_duplicate_pairs

    pairs = near_duplicate_pairs(data.images, corr_min=corr_min, dhash_max=dhash_max)
    cls = [data.class_names[i] for i in data.labels]
    rows = [{"image a": str(data.ids[i]), "image b": str(data.ids[j]), "class a": cls[i],
             "class b": cls[j], "correlation": c, "dHash distance": h,
             "cross-class": cls[i] != cls[j]} for i, j, c, h in pairs]
    return pd.DataFrame(rows, columns=["image a", "image b", "class a", "class b", "correlation",
                                       "dHash distance", "cross-class"])


def plot_pairs(data, pairs: pd.DataFrame, max_pairs: int = 8, title: str = ""):
    """Image pairs side by side with their lesion outlines."""
    import matplotlib.pyplot as plt

    pairs = pairs.head(max_pairs)
    if pairs.empty:
        note("no pairs to show")
        return
    index = {str(i): k for k, i in enumerate(data.ids)}
    n = len(pairs)
    ncol = min(n, 4)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, 2 * ncol, figsize=(2.0 * 2 * ncol, 2.3 * nrow), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for p, (_, row) in enumerate(pairs.iterrows()):
        r, c = divmod(p, ncol)
        for s, col in enumerate(("image a", "image b")):
            k = index[row[col]]
            ax = axes[r, 2 * c + s]
            ax.imshow(data.images[k], cmap="gray", vmin=0, vmax=255)
            _contour(ax, data.masks[k], COLORS.get(data.class_names[data.labels[k]], "y"), 1.0)
            ax.set_title(row[col], fontsize=7, color=COLORS.get(data.class_names[data.labels[k]]))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    plt.show()


def plot_gallery(data, per_class: int = 5, seed: int = DEFAULT_SEED, title: str = ""):
    """A few random images of each class with the lesion outline."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    classes = list(data.class_names)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(1.9 * per_class, 2.0 * len(classes)),
                             squeeze=False)
    for r, c in enumerate(classes):
        idx = np.flatnonzero(data.labels == r)
        pick = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        for ax in axes[r]:
            ax.axis("off")
        for ax, k in zip(axes[r], pick):
            ax.imshow(data.images[k], cmap="gray", vmin=0, vmax=255)
            _contour(ax, data.masks[k], "yellow", 1.0)
            ax.set_title(str(data.ids[k]), fontsize=7, color=COLORS.get(c))
    fig.suptitle(title or "random images per class (yellow: lesion mask)", fontsize=9)
    fig.tight_layout()
    plt.show()


# ============================================================================ GHE
def pick_examples(data, n: int = 3, seed: int = DEFAULT_SEED) -> list[int]:
    """Indices of ``n`` lesion images (alternating classes), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    lesion_classes = [i for i, c in enumerate(data.class_names) if c != "normal"]
    for j in range(n):
        lab = lesion_classes[j % len(lesion_classes)]
        idx = np.flatnonzero((data.labels == lab) & data.masks.reshape(len(data), -1).any(1))
        idx = np.setdiff1d(idx, out)
        out.append(int(rng.choice(idx)))
    return out


def plot_ghe_steps(img: np.ndarray, name: str = "", **ghe_kwargs):
    """Multi-peak GHE step by step: image, histograms with peaks and cuts, mapping, result."""
    import matplotlib.pyplot as plt

    from .enhance import ghe_steps

    s = ghe_steps(img, **ghe_kwargs)
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.9))
    axes[0].imshow(img, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(f"original {name}", fontsize=8)
    axes[0].axis("off")
    lv = np.arange(256)
    ax = axes[1]
    ax.plot(lv, s["histogram"] / s["histogram"].sum(), lw=0.8, color="grey", label="histogram")
    ax.plot(lv, s["generalized"] / s["generalized"].sum(), lw=0.8, label="generalized")
    ax.plot(lv, s["smoothed"] / s["generalized"].sum(), lw=1.5, label="smoothed")
    for p in s["peaks"]:
        ax.axvline(p, color="green", ls="--", lw=0.8)
    for c in s["cuts"]:
        ax.axvline(c, color="red", lw=1.0)
    ax.set(xlabel="grey level", ylabel="fraction",
           title=f"{len(s['peaks'])} peaks (green), {len(s['cuts'])} cuts (red)")
    ax.set_yscale("log")
    ax.legend(fontsize=6)
    axes[2].plot(lv, s["mapping"], color="k")
    axes[2].plot(lv, lv, ls=":", color="grey")
    for c in s["cuts"]:
        axes[2].axvline(c, color="red", lw=1.0)
    axes[2].set(xlabel="input level", ylabel="output level", title="mapping (per-segment HE)")
    axes[3].imshow(s["output"], cmap="gray", vmin=0, vmax=255)
    axes[3].set_title("GHE output", fontsize=8)
    axes[3].axis("off")
    fig.tight_layout()
    plt.show()


def plot_methods(img: np.ndarray, mask: np.ndarray | None = None, name: str = ""):
    """none / HE / CLAHE / GHE of one image, each with its histogram and lesion contrast."""
    import matplotlib.pyplot as plt

    from .enhance import METHODS, enhance, lesion_contrast

    fig, axes = plt.subplots(2, len(METHODS), figsize=(3.0 * len(METHODS), 4.8),
                             gridspec_kw={"height_ratios": [3, 1.3]})
    for j, m in enumerate(METHODS):
        out = enhance(img, m)
        axes[0, j].imshow(out, cmap="gray", vmin=0, vmax=255)
        if mask is not None:
            _contour(axes[0, j], mask, "yellow", 0.8)
        c = lesion_contrast(out, mask) if mask is not None and mask.any() else np.nan
        axes[0, j].set_title(f"{m}  (contrast {c:+.2f})", fontsize=8)
        axes[0, j].axis("off")
        axes[1, j].hist(out.ravel(), bins=64, range=(0, 255), color="k", alpha=0.7)
        axes[1, j].set_yticks([])
        axes[1, j].set_xlabel("grey level", fontsize=7)
    fig.suptitle(f"{name}: enhancement methods (contrast = (mean in - mean out) / sd out)",
                 fontsize=9)
    fig.tight_layout()
    plt.show()


def contrast_by_method(data_dir=None, *, image_size: int = 128, max_per_class=None,
                       classes=("benign", "malignant")) -> pd.DataFrame:
    """Lesion-vs-background contrast of the *network inputs* (after enhancement and resizing)
    for every lesion image and method. One row per image, one column per method."""
    from .data import load_busi
    from .enhance import METHODS, lesion_contrast

    cols = {}
    ids = None
    for m in METHODS:
        d = load_busi(data_dir, image_size=image_size, classes=list(classes), enhancement=m,
                      max_per_class=max_per_class)
        keep = d.masks.reshape(len(d), -1).any(1) & ~d.masks.reshape(len(d), -1).all(1)
        cols[m] = [lesion_contrast(im, mk) for im, mk in zip(d.images[keep], d.masks[keep])]
        if ids is None:
            ids = d.ids[keep]
            labels = [d.class_names[i] for i in d.labels[keep]]
    df = pd.DataFrame(cols, index=pd.Index(ids, name="image"))
    df.insert(0, "class", labels)
    return df


def contrast_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per method: median and mean |contrast|, and how often |contrast| beats ``none``."""
    from .enhance import METHODS

    rows = []
    base = df["none"].abs()
    for m in METHODS:
        a = df[m].abs()
        rows.append({"method": m, "images": int(a.notna().sum()),
                     "median |contrast|": float(a.median()), "mean |contrast|": float(a.mean()),
                     "median contrast": float(df[m].median()),
                     "% images with |contrast| > none": 100 * float((a > base + 1e-12).mean())
                     if m != "none" else np.nan,
                     "median ratio to none": float((a / base).median()) if m != "none" else 1.0})
    return pd.DataFrame(rows).set_index("method")


def plot_contrast(df: pd.DataFrame):
    import matplotlib.pyplot as plt

    from .enhance import METHODS

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.0))
    axes[0].boxplot([df[m].abs() for m in METHODS], tick_labels=list(METHODS), showfliers=False)
    axes[0].set(ylabel="|contrast|", title="lesion vs background, network inputs")
    for m in METHODS[1:]:
        axes[1].scatter(df["none"].abs(), df[m].abs(), s=6, alpha=0.6, label=m)
    lim = float(np.nanmax(df[list(METHODS)].abs().to_numpy())) * 1.05
    axes[1].plot([0, lim], [0, lim], ls=":", color="grey")
    axes[1].set(xlabel="|contrast|, none", ylabel="|contrast|, method",
                title="per image (above the line: method raises it)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    plt.show()


# ============================================================================ ablations
ABLATIONS = [
    # (experiment, reference, what changes)
    ("seg_only", "random_light", "segmentation only (no classification head)"),
    ("cls_only", "random_light", "classification only (no decoder loss)"),
    ("cls_encoder", "random_light", "classifier on encoder output only (not stages 4-5-6)"),
    ("enh_none", "random_light", "no contrast enhancement (instead of GHE)"),
    ("enh_clahe", "random_light", "CLAHE (instead of GHE)"),
    ("ce_loss", "random_light", "cross-entropy (instead of weighted focal loss)"),
    ("plain_blocks", "random_light", "plain conv blocks (instead of residual units)"),
    ("grouped_light", "random_light", "duplicate-grouped folds (instead of random folds)"),
]
ABLATION_METRICS = ["seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_F1", "cls_AUC"]


def ablation_table(records: dict[str, list[dict]]) -> pd.DataFrame:
    """Each variant against its reference: mean over folds and the difference (points).

    A variant's columns are its mean over its recorded folds; ``Δ<metric>`` is the mean of the
    fold-by-fold differences ``variant_k - reference_k`` over the folds both have recorded
    (``Δ folds`` of them), so that a fold recorded for one and not yet for the other does not
    bias the difference. ``sd ΔDC`` and ``sd ΔAUC`` are the sample std of those differences:
    the spread to read a Δ against (NaN below two folds). For ``grouped_light`` fold k holds
    other images than the reference's fold k, so its Δ compares two splits, not paired folds.
    """
    rows = []
    for exp, ref, what in ABLATIONS:
        a, b = records.get(exp, []), records.get(ref, [])
        by_a, by_b = {r["fold"]: r for r in a}, {r["fold"]: r for r in b}
        common = sorted(set(by_a) & set(by_b))
        row = {"variant": exp, "change": what, "folds": f"{len(a)}/{len(b)}",
               "Δ folds": len(common)}
        for m in ABLATION_METRICS:
            lab = _metric_label(m)
            va = [_pct(lab, r["metrics"][m]) for r in a if m in r["metrics"]]
            d = [_pct(lab, by_a[k]["metrics"][m]) - _pct(lab, by_b[k]["metrics"][m])
                 for k in common if m in by_a[k]["metrics"] and m in by_b[k]["metrics"]]
            row[lab] = float(np.mean(va)) if va else np.nan
            row[f"Δ{lab}"] = float(np.mean(d)) if d else np.nan
            if lab in ("DC", "AUC"):
                row[f"sd Δ{lab}"] = float(np.std(d, ddof=1)) if len(d) > 1 else np.nan
        rows.append(row)
    ref_rows = []
    for ref in sorted({r for _, r, _ in ABLATIONS}):
        b = records.get(ref, [])
        row = {"variant": ref + " (reference)", "change": "multi-task, light protocol",
               "folds": str(len(b)), "Δ folds": 0}
        for m in ABLATION_METRICS:
            lab = _metric_label(m)
            vb = [_pct(lab, r["metrics"][m]) for r in b if m in r["metrics"]]
            row[lab] = float(np.mean(vb)) if vb else np.nan
            row[f"Δ{lab}"] = np.nan
            if lab in ("DC", "AUC"):
                row[f"sd Δ{lab}"] = np.nan
        ref_rows.append(row)
    return pd.DataFrame(ref_rows + rows, columns=list((ref_rows + rows)[0])).set_index("variant")


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
    lab = _metric_label(metric)
    form = "{:.3f}" if lab == "AUC" else "{:.1f}%"

    def by_fold(name):
        return {r["fold"]: _pct(lab, r["metrics"][metric]) for r in records.get(name, [])
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


def plot_ablation(records: dict[str, list[dict]], metrics: Sequence[str] = ("seg_DC_mean", "cls_AUC")):
    """Per-fold values (dots) and means (bars) of each variant and its reference."""
    import matplotlib.pyplot as plt

    names = ["random_light"] + [e for e, _, _ in ABLATIONS]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        lab = _metric_label(m)
        for i, e in enumerate(names):
            vals = [_pct(lab, r["metrics"][m]) for r in records.get(e, []) if m in r["metrics"]
                    and np.isfinite(r["metrics"][m])]
            if vals:
                ax.bar(i, np.mean(vals), color="#bbbbbb" if i else "#4c72b0", alpha=0.8)
                ax.scatter(np.full(len(vals), i), vals, s=10, color="k", zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set(title=lab + (" (%)" if lab not in FRACTION_COLS else ""))
    fig.tight_layout()
    plt.show()


# ============================================================================ calibration / BI-RADS
def brier(y: Iterable[int], p: Iterable[float]) -> float:
    from .metrics import brier_score

    return brier_score(list(y), list(p))


def reliability_table(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of the predicted probability: count, mean prediction, observed rate."""
    from .metrics import calibration_bins

    y = np.asarray(y, float)
    p = np.asarray(p, float)
    b = calibration_bins(p, n_bins)
    rows = []
    for k in range(n_bins):
        sel = b == k
        rows.append({"bin": f"{k / n_bins:.1f}-{(k + 1) / n_bins:.1f}", "images": int(sel.sum()),
                     "mean predicted": float(p[sel].mean()) if sel.any() else np.nan,
                     "observed malignant": float(y[sel].mean()) if sel.any() else np.nan})
    return pd.DataFrame(rows).set_index("bin")


def calibration_summary(y, p, n_bins: int = 10) -> pd.DataFrame:
    from .metrics import expected_calibration_error

    y = np.asarray(y, int)
    p = np.asarray(p, float)
    return pd.DataFrame([{"images": len(y), "malignant": int(y.sum()),
                          "ECE": expected_calibration_error(y, p, n_bins),
                          "Brier": brier(y, p),
                          "Brier of the base rate": brier(y, np.full(len(y), y.mean()))}],
                        index=pd.Index(["pooled"], name=f"{n_bins} bins"))


def plot_reliability(y, p, n_bins: int = 10, title: str = ""):
    import matplotlib.pyplot as plt

    t = reliability_table(y, p, n_bins)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    ok = t["images"] > 0
    axes[0].plot([0, 1], [0, 1], ls=":", color="grey")
    axes[0].plot(t.loc[ok, "mean predicted"], t.loc[ok, "observed malignant"], marker="o")
    axes[0].set(xlabel="predicted malignancy probability", ylabel="observed malignant fraction",
                title=title or "reliability diagram", xlim=(0, 1), ylim=(0, 1))
    y = np.asarray(y)
    p = np.asarray(p)
    axes[1].hist([p[y == 0], p[y == 1]], bins=np.linspace(0, 1, n_bins + 1), stacked=True,
                 color=[COLORS["benign"], COLORS["malignant"]], label=["benign", "malignant"])
    axes[1].set(xlabel="predicted malignancy probability", ylabel="images", title="histogram")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    plt.show()


def birads_table(y, p) -> pd.DataFrame:
    """Predictions placed in the BI-RADS likelihood bands of Table 8, with the observed
    malignant fraction in each band beside the band's stated range."""
    bands = paper.birads_band(p)
    y = np.asarray(y, int)
    rows = []
    for lab, lo, hi in paper.BIRADS_BANDS:
        sel = bands == lab
        rows.append({"band": lab, "stated likelihood (%)": f"{100 * lo:g}-{100 * hi:g}",
                     "images": int(sel.sum()), "benign": int((y[sel] == 0).sum()),
                     "malignant": int((y[sel] == 1).sum()),
                     "observed malignant (%)": 100 * float(y[sel].mean()) if sel.any() else np.nan})
    return pd.DataFrame(rows).set_index("band")


def fast_auc(y, p) -> float:
    """ROC AUC from ranks (Mann-Whitney U; ties count one half), as sklearn's roc_auc_score."""
    from scipy.stats import rankdata

    y = np.asarray(y, bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(np.asarray(p, float))
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def grouped_bootstrap_auc(y, p, groups, n_boot: int = 1000, seed: int = 0,
                          alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC and a percentile bootstrap CI, resampling whole groups (patients) with replacement."""
    y = np.asarray(y, int)
    p = np.asarray(p, float)
    g = np.asarray(groups)
    auc = fast_auc(y, p)
    uniq, inv = np.unique(g, return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        idx = np.concatenate([members[k] for k in pick])
        if 0 < y[idx].sum() < len(idx):
            stats.append(fast_auc(y[idx], p[idx]))
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return auc, float(lo), float(hi)


def external_ensemble(ext: pd.DataFrame) -> pd.DataFrame:
    """Mean over folds of each BUS-BRA image's malignancy probability and Dice."""
    agg = {"prob_malignant": "mean", "dice": "mean", "case": "first", "pathology": "first",
           "birads": "first", "device": "first"}
    agg = {k: v for k, v in agg.items() if k in ext.columns}
    out = ext.groupby("id", sort=True).agg(agg)
    out["folds"] = ext.groupby("id").size()
    return out.reset_index()


def external_summary(ext: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per fold and for the fold ensemble: AUC (95 % CI by patient bootstrap) and mean Dice."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for k, g in ext.groupby("fold"):
        y = (g["pathology"] == "malignant").astype(int)
        rows.append({"model": f"fold {k + 1}", "images": len(g), "patients": g["case"].nunique(),
                     "AUC": float(roc_auc_score(y, g["prob_malignant"])), "AUC 95% CI": "",
                     "Dice mean (%)": 100 * float(g["dice"].mean())})
    ens = external_ensemble(ext)
    y = (ens["pathology"] == "malignant").astype(int)
    auc, lo, hi = grouped_bootstrap_auc(y, ens["prob_malignant"], ens["case"], n_boot, seed)
    rows.append({"model": "mean of folds", "images": len(ens), "patients": ens["case"].nunique(),
                 "AUC": auc, "AUC 95% CI": f"{lo:.3f}-{hi:.3f}",
                 "Dice mean (%)": 100 * float(ens["dice"].mean())})
    return pd.DataFrame(rows).set_index("model")


def plot_external(ens: pd.DataFrame):
    """Predicted malignancy probability per true BI-RADS category and per pathology."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    cats = sorted(ens["birads"].unique())
    axes[0].boxplot([ens.loc[ens["birads"] == c, "prob_malignant"] for c in cats],
                    tick_labels=[str(c) for c in cats], showfliers=False)
    for i, c in enumerate(cats):
        v = ens.loc[ens["birads"] == c, "prob_malignant"]
        axes[0].scatter(np.full(len(v), i + 1) + np.linspace(-0.2, 0.2, len(v)), v, s=3,
                        alpha=0.4, color="k")
    axes[0].set(xlabel="BI-RADS (BUS-BRA label)", ylabel="predicted p(malignant)",
                title="by BI-RADS category")
    paths = ["benign", "malignant"]
    axes[1].hist([ens.loc[ens["pathology"] == c, "prob_malignant"] for c in paths],
                 bins=np.linspace(0, 1, 21), color=[COLORS[c] for c in paths], label=paths,
                 alpha=0.7)
    axes[1].set(xlabel="predicted p(malignant)", ylabel="images", title="by biopsy pathology")
    axes[1].legend(fontsize=7)
    axes[2].hist(ens["dice"].dropna(), bins=np.linspace(0, 1, 21), color="#4c72b0")
    axes[2].set(xlabel="Dice", ylabel="images", title="segmentation Dice on BUS-BRA")
    fig.tight_layout()
    plt.show()


def birads_crosstab(ens: pd.DataFrame) -> pd.DataFrame:
    """True BI-RADS (BUS-BRA) against the band of the predicted probability."""
    band = paper.birads_band(ens["prob_malignant"].clip(0, 1))
    ct = pd.crosstab(pd.Categorical(ens["birads"].astype(str), categories=sorted(
        ens["birads"].astype(str).unique())), pd.Categorical(band, categories=[b[0] for b in
                                                                              paper.BIRADS_BANDS]),
        dropna=False)
    ct.index.name, ct.columns.name = "true BI-RADS", "predicted band"
    return ct


# ============================================================================ claims audit, ours
def our_audit(profile: str, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The audited relations checked on our own records of ``multitask`` (what must hold)."""
    from .records import load_records

    recs = load_records(profile, "multitask", results_dir_for(seed))
    rows = []
    if not recs:
        return pd.DataFrame(columns=["check", "ours", "holds"])
    m = [r["metrics"] for r in recs]
    ok_mean = all(x["seg_DC_mean"] >= x["seg_JSI_mean"] - 1e-12 for x in m)
    rows.append({"check": "per-image mean DC >= mean JSI in every fold",
                 "ours": "; ".join(f"fold {r['fold'] + 1}: JSI {100 * r['metrics']['seg_JSI_mean']:.2f}, "
                                   f"DC {100 * r['metrics']['seg_DC_mean']:.2f}" for r in recs),
                 "holds": ok_mean})
    err = max(abs(x["seg_DC_pooled"] - 2 * x["seg_JSI_pooled"] / (1 + x["seg_JSI_pooled"]))
              for x in m)
    rows.append({"check": "pooled DC = 2 JSI / (1 + JSI) in every fold",
                 "ours": "equal to 1e-9" if err < 1e-9 else f"largest difference {100 * err:.3g} points",
                 "holds": err < 1e-9})
    pred = predictions(profile, "multitask", seed=seed, records=recs)
    if not pred.empty:
        y = (pred["true_class"] == "malignant").to_numpy()
        yp = (pred["pred_class"] == "malignant").to_numpy()
        tp, fn = int((y & yp).sum()), int((y & ~yp).sum())
        tn, fp = int((~y & ~yp).sum()), int((~y & yp).sum())
        rec = tp / (tp + fn) if tp + fn else np.nan
        spe = tn / (tn + fp) if tn + fp else np.nan
        imp = paper.implied_classification(100 * rec, 100 * spe, tp + fn, tn + fp)
        acc = (tp + tn) / len(y)
        pre = tp / (tp + fp) if tp + fp else np.nan
        rows.append({"check": "ACC and PRE follow from REC, SPE and the class counts (pooled)",
                     "ours": f"TP {tp}, FN {fn}, TN {tn}, FP {fp}: ACC {100 * acc:.2f} (implied "
                             f"{imp['ACC']:.2f}), PRE {100 * pre:.2f} (implied {imp['PRE']:.2f})",
                     "holds": bool(abs(100 * acc - imp["ACC"]) < 1e-6 and
                                   (np.isnan(pre) or abs(100 * pre - imp["PRE"]) < 1e-6))})
        rows.append({"check": "per-fold REC and SPE are k/n of the fold's class counts",
                     "ours": "; ".join(
                         f"fold {r['fold'] + 1}: REC {100 * r['metrics']['cls_REC']:.2f} "
                         f"(k/{int((pred[pred.fold == r['fold']].true_class == 'malignant').sum())}), "
                         f"SPE {100 * r['metrics']['cls_SPE']:.2f} "
                         f"(k/{int((pred[pred.fold == r['fold']].true_class != 'malignant').sum())})"
                         for r in recs),
                     "holds": all(
                         paper.achievable(100 * r["metrics"]["cls_REC"],
                                          int((pred[pred.fold == r["fold"]].true_class == "malignant").sum()))
                         and paper.achievable(100 * r["metrics"]["cls_SPE"],
                                              int((pred[pred.fold == r["fold"]].true_class != "malignant").sum()))
                         for r in recs)})
    f1_ok = all(abs(x["cls_F1"] - (2 * x["cls_PRE"] * x["cls_REC"] / (x["cls_PRE"] + x["cls_REC"])
                                   if x["cls_PRE"] + x["cls_REC"] else 0.0)) < 1e-9 for x in m)
    rows.append({"check": "F1 = harmonic mean of PRE and REC in every fold",
                 "ours": "; ".join(f"fold {r['fold'] + 1}: F1 {100 * r['metrics']['cls_F1']:.2f}"
                                   for r in recs), "holds": f1_ok})
    return pd.DataFrame(rows).set_index("check")


def data_counts(data_dir=None) -> dict[str, int]:
    """Images per class in the data folder (file names only, nothing decoded)."""
    from .data import CLASSES, find_samples, locate_data

    root = locate_data(data_dir)
    s = find_samples(root, CLASSES)
    return {c: sum(x.label == c for x in s) for c in CLASSES}


def glue(name: str, value, display: bool = False):
    """``myst_nb.glue`` when available (the book build), else nothing (e.g. on Colab)."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return None
    _glue(name, value, display=display)
    return None


def original_sample(data_dir, sample_id: str):
    """Full-resolution grey image and merged mask of one BUSI image (e.g. ``"benign (4)"``)."""
    from .data import CLASSES, find_samples, load_sample, locate_data

    root = locate_data(data_dir)
    label = sample_id.split(" ")[0]
    if label not in CLASSES:
        raise DataError(f"sample id {sample_id!r}: expected '<class> (<n>)'")
    for s in find_samples(root, CLASSES):
        if s.id == sample_id:
            return load_sample(s)
    raise DataError(f"sample {sample_id!r} not found in {root}")


def env_info() -> pd.DataFrame:
    """Python and key package versions, CPU count (for the reproducibility page)."""
    from .records import versions

    v = versions()
    v["cpu_count"] = str(os.cpu_count())
    return pd.DataFrame({"value": v})


# ============================================================================ configuration
def profiles_table() -> pd.DataFrame:
    """The settings that differ between profiles (from :mod:`busi_lib.config`)."""
    from .config import DEFAULTS, LIGHT, PROFILES

    keys = ["image_size", "filters", "bridge_filters", "dense_units", "max_per_class", "n_folds",
            "epochs", "batch_size", "lr", "early_stopping", "precision"]
    rows = {}
    for name, prof in PROFILES.items():
        cfg = {**DEFAULTS, **prof}
        row = {k: str(cfg[k]) for k in keys}
        row["light experiments"] = ", ".join(f"{k} {v}" for k, v in LIGHT[name].items()
                                             if cfg.get(k) != v) or "same"
        rows[name] = row
    df = pd.DataFrame(rows).T
    df.index.name = "profile"
    return df


def profiles_markdown() -> str:
    """:func:`profiles_table` as a Markdown table (written into the book by ``busi_lib.book``)."""
    t = profiles_table()
    cols = ["profile"] + list(t.columns)
    head = [f"`{c}`" if c != "profile" else c for c in cols]
    body = [[f"**{name}**"] + [str(v) for v in row] for name, row in t.iterrows()]
    return ("<!-- generated by busi_lib.book from busi_lib.config; do not edit -->\n\n"
            + _markdown_table(head, body))


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A pipe table from already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def config_vs_paper(cfg: dict) -> pd.DataFrame:
    """Our configuration of an experiment beside the training settings the paper states."""
    ours = {"optimizer": "Adam",
            "lr": f"{cfg['lr']:g}",
            "lr_schedule": f"x{cfg['lr_drop_factor']:g} every {cfg['lr_drop_every']} epochs",
            "batch_size": str(cfg["batch_size"]),
            "epochs": str(cfg["epochs"]) + (f" (early stopping, patience {cfg['early_stopping']})"
                                            if cfg["early_stopping"] else ""),
            "folds": str(cfg["n_folds"]) + f" ({cfg['split']})",
            "augmentation": (f"horizontal flip, vertical flip, rotation {cfg['rotation']:g} degrees"
                             if cfg["augment"] else "none"),
            "enhancement": cfg["enhancement"],
            "input_size": f"{cfg['image_size']} x {cfg['image_size']}",
            "filters": f"{cfg['filters']}, bridge {cfg['bridge_filters']}"}
    return pd.DataFrame({"paper": pd.Series(paper.TRAINING).astype(str), "ours": pd.Series(ours)})


# ----------------------------------------------------------------------------- compute cost
def current_records(profile: str, experiment: str, results_dir=None) -> tuple[dict, list[dict]]:
    """``(config, records)``: today's configuration of ``experiment`` and its fold records made
    with that configuration (records of another configuration hash are left out)."""
    from .config import config_hash, make_config
    from .records import load_records

    cfg = make_config(profile, experiment)
    chash = config_hash(cfg)
    return cfg, [r for r in load_records(profile, experiment, results_dir)
                 if r.get("config_hash") == chash]


def rerun_table(profile: str, results_dir=None) -> pd.DataFrame:
    """One row per recorded rerun (:mod:`busi_lib.rerun`): which fold was trained again, by
    which code, how long it took, and the largest differences from its record."""
    from .rerun import load_reruns

    rows = []
    for r in load_reruns(profile, results_dir):
        rows.append({
            "experiment": r["experiment"], "fold": r["fold"] + 1,
            "recorded by": short_commit(r.get("recorded_git_commit")),
            "rerun by": short_commit(r.get("rerun_git_commit")), "rerun date": r.get("date"),
            "rerun minutes": (r.get("rerun_wall_seconds") or np.nan) / 60,
            "max |diff| metric": r["max_abs_diff"],
            "max |diff| p(malignant)": r.get("max_abs_diff_prob", np.nan),
            "max |diff| image Dice": r.get("max_abs_diff_dice", np.nan),
            "same (tolerance)": f"{'yes' if r['agree'] else 'NO'} ({r['tolerance']:g})"})
    return pd.DataFrame(rows)


def rerun_metrics(profile: str, experiment: str, fold: int, results_dir=None) -> pd.DataFrame:
    """Recorded against rerun value of every metric of one rerun fold (empty if none)."""
    from .rerun import comparison_table, rerun_path

    path = rerun_path(profile, experiment, fold, results_dir)
    if not path.is_file():
        return pd.DataFrame()
    import json

    return comparison_table(json.loads(path.read_text())).astype(float)


def cost_table(profile: str, experiments: Sequence[str] | None = None,
               results_dir=None) -> pd.DataFrame:
    """Measured cost of each experiment of ``profile``, from its fold records.

    One row per experiment (default: :data:`busi_lib.config.BOOK_EXPERIMENTS` plus any other
    experiment with records): folds recorded and planned, epochs per fold, seconds per epoch
    (training only), hours of wall time recorded (training, evaluation and external
    validation), and the hours still to go estimated from the recorded folds' mean. A ``total``
    row sums the book's experiments (its hours to go are unknown, NaN, while an experiment with
    folds to go has no recorded fold); other experiments with records (evidence runs) are
    listed after it, outside the total. Folds made with another configuration are not counted.
    """
    from .config import BOOK_EXPERIMENTS, EXPERIMENTS
    from .records import results_root

    names = list(BOOK_EXPERIMENTS if experiments is None else experiments)
    if experiments is None:
        base = results_root(results_dir) / profile
        names += sorted(p.name for p in base.glob("*") if p.is_dir() and p.name in EXPERIMENTS
                        and p.name not in names and any(p.glob("fold*.json")))
    rows = []
    for e in names:
        cfg, recs = current_records(profile, e, results_dir)
        planned = len(cfg["folds"]) if cfg["folds"] is not None else cfg["n_folds"]
        wall = sum(r["wall_seconds"] for r in recs)
        epochs = sum(r["epochs_run"] for r in recs)
        left = max(planned - len(recs), 0)
        rows.append({
            "experiment": e, "image px": cfg["image_size"], "epochs": cfg["epochs"],
            "folds recorded": len(recs), "folds planned": planned,
            "s per epoch": (sum(r["train_seconds"] for r in recs) / epochs) if epochs else np.nan,
            "hours recorded": wall / 3600,
            "hours to go (est.)": (wall / len(recs) * left / 3600) if recs else
                                  (np.nan if left else 0.0),
        })
    df = pd.DataFrame(rows).set_index("experiment")
    own = df.loc[[e for e in df.index if e in BOOK_EXPERIMENTS or experiments is not None]]
    total = {c: np.nan for c in df.columns}
    left = own["hours to go (est.)"]
    unknown = own["folds planned"] > own["folds recorded"]
    total.update({"folds recorded": own["folds recorded"].sum(),
                  "folds planned": own["folds planned"].sum(),
                  "hours recorded": own["hours recorded"].sum(),
                  # unknown as long as an experiment with folds to go has no recorded fold
                  "hours to go (est.)": np.nan if left[unknown].isna().any() else left.sum()})
    extra = df.drop(own.index)
    out = pd.concat([own, pd.DataFrame([total], index=["total"]), extra])
    out.index.name = "experiment"
    # counts stay integers (nullable: the total has no image size or epochs)
    ints = ["image px", "epochs", "folds recorded", "folds planned"]
    return out.astype({c: "Int64" for c in ints})


def cost_markdown(profile: str, results_dir=None) -> str:
    """:func:`cost_table` as a Markdown table (written into the book by ``busi_lib.book``)."""
    t = cost_table(profile, results_dir=results_dir)
    forms = {"image px": "{:.0f}", "epochs": "{:.0f}", "folds recorded": "{:.0f}",
             "folds planned": "{:.0f}", "s per epoch": "{:.0f}", "hours recorded": "{:.2f}",
             "hours to go (est.)": "{:.2f}"}
    body = [[f"**{name}**" if name == "total" else f"`{name}`"]
            + ["—" if pd.isna(v) else forms.get(c, "{}").format(v) for c, v in row.items()]
            for name, row in t.iterrows()]
    return (f"<!-- generated by busi_lib.book from the fold records of profile {profile}; "
            "do not edit -->\n\n" + _markdown_table(["experiment"] + list(t.columns), body))


def load_bench(path=None) -> pd.DataFrame:
    """The benchmark results appended by ``python -m busi_lib.bench --out`` (one row each)."""
    import json

    from .records import PROJECT_ROOT

    path = Path(path) if path is not None else PROJECT_ROOT / "results" / "bench" / "bench.jsonl"
    if not path.exists():
        return pd.DataFrame()
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    return pd.DataFrame(rows)


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


def latest_bench(bench: pd.DataFrame) -> pd.Series | None:
    """The benchmark run the book shows (one row of :func:`load_bench`), or None: the latest
    full run (``kind`` "bench") if there is one, else the latest ``quick`` run; only runs in the
    precision that ``auto`` picks (a forced ``--precision`` run is a comparison, see
    :func:`bench_precision`)."""
    runs = _auto_runs(bench)
    if runs.empty:
        return None
    full = runs[runs["kind"] == "bench"]
    return (full if len(full) else runs).iloc[-1]


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


def bench_value(bench: pd.DataFrame, key: str) -> float:
    """One figure (a key of :data:`BENCH_FIGURES`) of the latest run, NaN when not recorded."""
    if key not in BENCH_FIGURES:
        raise ConfigError(f"key={key!r}: expected one of {sorted(BENCH_FIGURES)}")
    r = latest_bench(bench)
    if r is None or key not in r.index or r[key] is None:
        return float("nan")
    try:
        return float(r[key])
    except (TypeError, ValueError):
        return float("nan")


def bench_summary(bench: pd.DataFrame) -> pd.DataFrame:
    """The latest ``quick`` or full benchmark run as a two-column table of labelled figures."""
    r = latest_bench(bench)
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


def bench_table_check(bench: pd.DataFrame) -> str:
    """How well the ``--table`` extrapolation (one-batch epochs scaled to 518 images) matches
    the epoch that the latest full run measured at the same size and width; "" when the
    table has no such point or there is no full run."""
    r = latest_bench(bench)
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


# ----------------------------------------------------------------------------- the aim
#: The book's aim for the main model on BUSI 5-fold CV (per-image mean Dice, AUC).
AIM = {"seg_DC_mean": 0.78, "cls_AUC": 0.92}


def aim_table(records: list[dict], aim: dict[str, float] | None = None) -> pd.DataFrame:
    """Mean and sample std over folds of each aimed metric, the aim, and the shortfall.

    ``shortfall`` is ``aim - mean`` (positive: the aim is missed by that much); ``met`` says
    whether the mean reaches the aim. Values are fractions, as in the records.
    """
    aim = AIM if aim is None else aim
    rows = {}
    for key, target in aim.items():
        vals = np.array([r["metrics"][key] for r in records if key in r["metrics"]], float)
        mean = float(vals.mean()) if len(vals) else np.nan
        rows[_metric_label(key)] = {
            "folds": len(vals), "mean": mean,
            "sd": float(vals.std(ddof=1)) if len(vals) > 1 else np.nan,
            "aim": target, "shortfall": target - mean,
            "met": bool(mean >= target) if len(vals) else False}
    return pd.DataFrame(rows).T


def _fold_record(profile: str, experiment: str, fold: int, results_dir=None) -> dict | None:
    """The record of ``fold`` made with today's configuration of ``experiment``, or None (also
    for an experiment unknown to this code)."""
    try:
        _, recs = current_records(profile, experiment, results_dir)
    except ConfigError:
        return None
    return next((r for r in recs if r["fold"] == fold), None)


def fold_evidence(runs: Sequence[tuple[str, str]], fold: int = 0,
                  metrics: Sequence[str] = ("seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_AUC"),
                  results_dir=None) -> pd.DataFrame:
    """One fold of several (profile, experiment) runs side by side, with what differs.

    Only records whose configuration hash matches today's configuration are used; a run
    without such a record for ``fold`` is left out. Metrics in % (AUC as a fraction).
    """
    rows = []
    for profile, exp in runs:
        r = _fold_record(profile, exp, fold, results_dir)
        if r is None:
            continue
        c = r["config"]
        row = {"run": f"{profile} / {exp}", "image px": c["image_size"],
               "width": c["filters"][0], "epochs run": r["epochs_run"],
               "lr schedule": f"{c['lr']:g}, /{1 / c['lr_drop_factor']:g} every {c['lr_drop_every']}",
               "precision": r["precision"],
               "backend": r.get("versions", {}).get("keras_backend", "tensorflow"),
               "device": "GPU" if "gpu" in r.get("versions", {}).get("platform", "") else "CPU",
               "hours": r["wall_seconds"] / 3600}
        row.update({_metric_label(m): _pct(_metric_label(m), r["metrics"][m]) for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


#: float32 reruns of ``random_light`` on fold 0 with other training seeds (noise yardstick)
RESEEDS = tuple(f"random_light_s{s}" for s in (1, 2, 3))


def precision_check(profile: str, reference: str = "random_light",
                    variant: str = "random_light_bf16", reseeds: Sequence[str] = RESEEDS,
                    fold: int = 0,
                    metrics: Sequence[str] = ("seg_DC_mean", "seg_JSI_mean", "cls_ACC", "cls_AUC"),
                    results_dir=None) -> pd.DataFrame:
    """Does another precision move the results by more than noise? (issue 5)

    One fold of ``reference`` (float32) and of ``variant`` (the same experiment in another
    precision), both with today's configuration, and the noise that training alone makes on
    that fold: the reference and its ``reseeds`` (float32, same split, other training seeds).
    Per metric (in %, AUC as a fraction): the two values, ``delta`` = variant - reference, the
    mean and sample sd of the float32 runs on the fold (``seeds``: how many), the reference's
    fold-to-fold sd (``sd folds``) and ``within noise``: with at least 3 float32 runs on the fold,
    variant >= their mean - 2 sd; otherwise delta >= -sd folds. Empty when the reference or the
    variant fold is not recorded.
    """
    _, ref_all = current_records(profile, reference, results_dir)
    r = next((x for x in ref_all if x["fold"] == fold), None)
    v = _fold_record(profile, variant, fold, results_dir)
    if r is None or v is None:
        return pd.DataFrame()
    runs = [r] + [x for x in (_fold_record(profile, e, fold, results_dir) for e in reseeds)
                  if x is not None]
    rows = {}
    for m in metrics:
        lab = _metric_label(m)
        folds = np.array([_pct(lab, x["metrics"][m]) for x in ref_all], float)
        seeds = np.array([_pct(lab, x["metrics"][m]) for x in runs], float)
        a, b = _pct(lab, r["metrics"][m]), _pct(lab, v["metrics"][m])
        sd_f = float(folds.std(ddof=1)) if len(folds) > 1 else np.nan
        sd_s = float(seeds.std(ddof=1)) if len(seeds) > 1 else np.nan
        within = (b >= seeds.mean() - 2 * sd_s) if len(seeds) >= 3 else (
            b - a >= -sd_f if sd_f == sd_f else False)
        rows[lab] = {r["precision"]: a, v["precision"]: b, "delta": b - a,
                     "mean seeds": float(seeds.mean()), "sd seeds": sd_s, "seeds": len(seeds),
                     "sd folds": sd_f, "within noise": bool(within)}
    return pd.DataFrame(rows).T


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Image by image, b against a (prediction tables of one fold)."""
    m = a.merge(b, on="id", suffixes=("_a", "_b"))
    d = 100 * (m["dice_b"] - m["dice_a"]).dropna()
    return {"n": len(m), "dice_delta_mean": float(d.mean()),
            "dice_delta_se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan,
            "class_agreement": float((m["pred_class_a"] == m["pred_class_b"]).mean()),
            "prob_max_abs_diff": float((m["prob_malignant_a"] - m["prob_malignant_b"]).abs().max())}


def precision_paired(profile: str, reference: str = "random_light",
                     variant: str = "random_light_bf16", reseeds: Sequence[str] = RESEEDS,
                     fold: int = 0, results_dir=None) -> dict:
    """Image by image on the same test fold, ``variant`` against ``reference`` and each recorded
    reseed against ``reference``: ``n`` images, mean Dice difference (points) and its standard
    error, the share of images whose predicted class agrees, the largest |difference| of
    p(malignant). Returns ``{"variant": {...}, "reseeds": [{...}, ...], "reference_seconds",
    "variant_seconds"}``; an empty dict when the reference or the variant fold is missing."""
    from .records import load_predictions

    r = _fold_record(profile, reference, fold, results_dir)
    v = _fold_record(profile, variant, fold, results_dir)
    if r is None or v is None:
        return {}

    def preds(exp):
        p = load_predictions(profile, exp, results_dir)
        return p[p["fold"] == fold].drop(columns="fold")
    a = preds(reference)
    out = {"variant": _paired(a, preds(variant)), "reseeds": [],
           "reference_seconds": r["wall_seconds"], "variant_seconds": v["wall_seconds"]}
    for e in reseeds:
        if _fold_record(profile, e, fold, results_dir) is not None:
            out["reseeds"].append(_paired(a, preds(e)))
    return out


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
