"""The book's figures: the data, GHE and contrast, training curves, ROC, masks, calibration.

The data (sizes, pairs, gallery), GHE step by step and lesion contrast, learning curves, ROC,
confusion matrix, mask overlays, ablations, reliability and the external test.

Each function draws one figure with matplotlib and shows it (``plt.show()``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from busi_lib.book.runs import DEFAULT_SEED, load_fold_data, predictions, results_dir_for
from busi_lib.book.tables import ABLATIONS_V1, confusion
from busi_lib.book.view import FRACTION_COLS, metric_label, note, pct
from busi_lib.data.enhance import METHODS, enhance, ghe_steps, lesion_contrast
from busi_lib.errors import DataError
from busi_lib.eval.calibration import reliability_table
from busi_lib.records import experiment_dir, read_masks

COLORS = {"benign": "#1b9e77", "malignant": "#d95f02", "normal": "#7570b3"}


#: Outline colours (Okabe-Ito, safe for colour-blind readers): the reference outline and the
#: predicted one (the predictor's overlay colour, ``busi_lib.serve.userimage.OUTLINE_RGB``).
TRUTH_COLOUR = "#56B4E9"
PRED_COLOUR = "#E69F00"


def _contour(ax, mask, color, lw=1.2):
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[color], linewidths=lw)


# ============================================================================ data (chapter 1)
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


# ============================================================================ enhancement (chapter 2)
def plot_ghe_steps(img: np.ndarray, name: str = "", **ghe_kwargs):
    """Multi-peak GHE step by step: image, histograms with peaks and cuts, mapping, result."""
    import matplotlib.pyplot as plt

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


def plot_contrast(df: pd.DataFrame):
    import matplotlib.pyplot as plt

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


# ============================================================================ training and results
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


def plot_loss_panels(records: dict[str, list[dict]], title: str = "", cols: int = 4):
    """Training loss per epoch, one panel per experiment and one line per fold (log scale): a
    network that did not train shows as a flat line from the first epochs. Failure records of
    diverged folds (:func:`busi_lib.records.load_divergences`) may be given with the records:
    their line ends where the loss turned NaN. Experiments with no record are left out;
    returns the figure, or ``None`` when none is recorded."""
    import matplotlib.pyplot as plt

    if not (isinstance(cols, int) and cols >= 1):
        raise ValueError(f"cols={cols!r}: expected a positive integer")
    have = {e: r for e, r in records.items() if r}
    if not have:
        return None
    rows = -(-len(have) // cols)
    fig, axes = plt.subplots(rows, min(cols, len(have)), squeeze=False,
                             figsize=(2.9 * min(cols, len(have)), 2.4 * rows))
    for ax, (e, recs) in zip(axes.flat, have.items()):
        for r in recs:
            h = pd.DataFrame(r["history"])
            ax.plot(h["epoch"], h["loss"], lw=1, marker="x" if r.get("diverged_at") else None,
                    label=f"fold {r['fold'] + 1}"
                    + (f" (diverged, epoch {r['diverged_at']})" if r.get("diverged_at") else ""))
        ax.set(title=e, xlabel="epoch", yscale="log")
    for ax in list(axes.flat)[len(have):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("training loss")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_roc(pred: pd.DataFrame, positive: str = "malignant", title: str = "",
             threshold: float | None = None):
    """ROC curve of the malignancy probability per fold and pooled over folds; with
    ``threshold``, the pooled operating point of ``p >= threshold`` marked on it."""
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
        if threshold is not None:
            hit = pred["prob_malignant"].to_numpy() >= threshold
            sens, spec = hit[y == 1].mean(), (~hit[y == 0]).mean()
            ax.plot([1 - spec], [sens], "o", color=PRED_COLOUR, ms=7, zorder=5,
                    label=f"p >= {threshold:g}: sensitivity {sens:.2f}, specificity {spec:.2f}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="1 - specificity", ylabel="recall (sensitivity)", title=title or "ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    plt.show()


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


def overlay_cases(pred: pd.DataFrame, n_per_class: int = 2) -> pd.DataFrame:
    """Rows of ``pred`` to show, per class (benign, malignant): the ``n_per_class`` worst, the
    ``n_per_class`` closest to the class's median Dice (typical) and the best, with a
    ``case`` column (worst, typical, best), in that order."""
    pred = pred[pred["true_class"].isin(["benign", "malignant"])].dropna(subset=["dice"])
    by_class = {c: g.sort_values(["dice", "id"]) for c, g in pred.groupby("true_class")}
    parts = []
    for case in ("worst", "typical", "best"):
        for cls in ("benign", "malignant"):
            g = by_class.get(cls)
            if g is None:
                continue
            if case == "worst":
                part = g.head(n_per_class)
            elif case == "best":
                part = g.tail(n_per_class).iloc[::-1]
            else:
                dist = (g["dice"] - g["dice"].median()).abs()
                part = g.assign(_d=dist).sort_values(["_d", "id"]).drop(columns="_d").head(n_per_class)
            parts.append(part.assign(case=case))
    return pd.concat(parts).reset_index(drop=True) if parts else pred.iloc[0:0].assign(case=[])


def plot_overlays(profile: str, experiment: str, records: list[dict], data=None, *, n: int = 4,
                  worst: bool = True, seed: int = DEFAULT_SEED, data_dir=None, title: str = "",
                  cases: pd.DataFrame | None = None):
    """Test images with the true (sky blue) and predicted (orange) lesion outlines, from the
    recorded ``fold<k>_masks.npz`` (no model needed). ``worst``: lowest Dice first; ``cases``
    (from :func:`overlay_cases`): these rows instead, titled with their case."""
    import matplotlib.pyplot as plt

    if not records:
        note("no records: no overlays")
        return
    if data is None:
        try:
            data = load_fold_data(records, data_dir)
        except DataError as exc:
            note(f"BUSI images not available ({exc}); overlays skipped.")
            return
    if cases is None:
        pred = predictions(profile, experiment, seed=seed, records=records)
        pred = pred[pred["true_class"] != "normal"].dropna(subset=["dice"])
        pred = pred.sort_values(["dice", "id"], ascending=[worst, True]).head(n)
    else:
        pred = cases
    masks = {}
    folder = experiment_dir(profile, experiment, results_dir_for(seed))
    for r in records:
        p = folder / f"fold{r['fold']}_masks.npz"
        if p.is_file():
            ids, m = read_masks(p)
            masks.update(zip(map(str, ids), m))
    index = {str(i): k for k, i in enumerate(data.ids)}
    cols = min(max(len(pred), 1), 4)
    rows = (max(len(pred), 1) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.ravel()[len(pred):]:
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), pred.iterrows()):
        k = index[row["id"]]
        ax.imshow(data.images[k], cmap="gray", vmin=0, vmax=255)
        _contour(ax, data.masks[k], TRUTH_COLOUR)
        if row["id"] in masks:
            _contour(ax, masks[row["id"]], PRED_COLOUR)
        head = f"{row['case']}: " if "case" in row else ""
        ax.set_title(f"{head}{row['id']}\nDice {row['dice']:.2f}, p(mal) "
                     f"{row.get('prob_malignant', np.nan):.2f}", fontsize=7)
        ax.axis("off")
    fig.suptitle(title or ("worst" if worst else "best") + " test images (sky blue: truth, orange: prediction)",
                 fontsize=9)
    fig.tight_layout()
    plt.show()


def plot_ablation(records: dict[str, list[dict]], metrics: Sequence[str] = ("seg_DC_mean", "cls_AUC")):
    """Per-fold values (dots) and means (bars) of each variant and its reference."""
    import matplotlib.pyplot as plt

    names = ["random_light"] + [e for e, _, _ in ABLATIONS_V1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        lab = metric_label(m)
        for i, e in enumerate(names):
            vals = [pct(lab, r["metrics"][m]) for r in records.get(e, []) if m in r["metrics"]
                    and np.isfinite(r["metrics"][m])]
            if vals:
                ax.bar(i, np.mean(vals), color="#bbbbbb" if i else "#4c72b0", alpha=0.8)
                ax.scatter(np.full(len(vals), i), vals, s=10, color="k", zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set(title=lab + (" (%)" if lab not in FRACTION_COLS else ""))
    fig.tight_layout()
    plt.show()


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


def plot_dice_histogram(pred: pd.DataFrame, title: str = ""):
    """Per-image Dice of the test images, benign and malignant stacked, with the median of
    each class."""
    import matplotlib.pyplot as plt

    pred = pred[pred["true_class"].isin(["benign", "malignant"])].dropna(subset=["dice"])
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    bins = np.linspace(0, 1, 21)
    groups = [pred.loc[pred["true_class"] == c, "dice"] for c in ("benign", "malignant")]
    ax.hist(groups, bins=bins, stacked=True, color=[TRUTH_COLOUR, PRED_COLOUR],
            label=[f"{c} (median {g.median():.2f}, n = {len(g)})"
                   for c, g in zip(("benign", "malignant"), groups)])
    ax.set(xlabel="Dice of one test image", ylabel="images",
           title=title or "per-image Dice, test folds pooled")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    plt.show()

