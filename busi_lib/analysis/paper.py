"""The paper's REPORTED numbers, as data, and the claims audit computed from them.

Everything in this module comes from Chowdary et al. (2022), *Ultrasonic Imaging* 44(1)
("the paper"), its tables and text as printed. These are the paper's numbers, never
ours: the book shows them *beside* our reproduced numbers, labelled "paper", and never mixes
them into our results. Percentages are kept as printed (``84.37`` means 84.37 %); AUC is a
fraction, as printed.

The second half of the module is the *claims audit*: arithmetic on the paper's own numbers
(and on the real BUSI class counts) that shows where they cannot all be true at once:

* :func:`audit_dice_jaccard` - Dice >= Jaccard for every image, for per-image means and for
  pooled counts; Table 1 reports JSI > DC in two folds;
* :func:`audit_implied_classification` - REC and SPE with 210 malignant / 437 benign images
  imply ACC and PRE far from the reported ones;
* :func:`implied_class_ratio` - the benign:malignant ratio that the reported PRE, REC, SPE
  would need;
* :func:`audit_fold_granularity` - per-fold REC / SPE must be k/n for the fold's class counts;
* :func:`audit_f1` - F1 is the harmonic mean of PRE and REC, so it lies between them;
* :func:`audit_means` - the "Mean" rows against the mean of the fold rows;
* :func:`audit_improvements` - the improvements claimed in the abstract and conclusion
  against Tables 4 and 6;
* :func:`audit_table4_swap` - Table 4's "Ours" row against Table 1;
* :func:`audit_least_recall` - the "least recall" sentence against Tables 1 and 2;
* :func:`audit_class_counts` - the class counts stated in the paper against the data.

:func:`claims_audit` collects them into one table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from busi_lib.eval.metrics import dice_from_jaccard

CITATION = ("Chowdary J, Yogarajah P, Chaurasia P, Guruviah V. A multi-task learning framework "
            "for automated segmentation and classification of breast tumors from ultrasound "
            "images. Ultrasonic Imaging 2022;44(1):3-12.")
SOURCE = "paper (Chowdary et al. 2022), as reported"

SEG_COLS = ["JSI", "DC", "ACC", "REC", "PRE"]
CLS_COLS = ["ACC", "PRE", "REC", "SPE", "F1", "AUC"]

# --------------------------------------------------------------------------- reported tables
_T1 = [
    (84.37, 83.45, 88.03, 84.96, 86.77),
    (83.80, 84.02, 87.80, 84.90, 86.56),
    (85.06, 85.90, 88.35, 85.93, 85.60),
    (83.65, 83.72, 87.55, 86.29, 85.36),
    (86.74, 87.00, 88.67, 86.04, 86.38),
]
_T1_MEAN = (84.72, 84.81, 88.08, 85.62, 86.13)

_T2 = [
    (97.53, 97.60, 98.65, 93.67, 98.14, 0.98),
    (98.44, 98.53, 99.32, 95.42, 98.93, 1.00),
    (97.60, 98.05, 98.16, 92.57, 98.10, 0.99),
    (97.69, 98.14, 99.24, 94.63, 98.68, 0.97),
    (98.07, 98.29, 98.60, 96.96, 98.44, 1.00),
]
_T2_MEAN = (97.86, 98.12, 98.79, 94.65, 98.45, 0.99)

#: Table 4 as extracted (columns ACC PRE RE JSI DC). The row labels in the extracted text are
#: reference numbers in scrambled order; the rows are DeepLabV3+, UNet++, UNet, FPN and DAF
#: in an order that cannot be recovered, so they are labelled "row 1".."row 5".
_T4 = [
    ("row 1", 86.90, 86.60, 76.90, 70.00, 78.80),
    ("row 2", 83.00, 76.00, 74.20, 80.00, 78.60),
    ("row 3", 85.30, 84.60, 82.30, 79.70, 75.00),
    ("row 4", 85.90, 86.60, 80.60, 76.80, 82.00),
    ("row 5", 84.00, 85.30, 81.50, 71.50, 80.20),
    ("Ours", 88.08, 85.62, 86.13, 84.72, 84.81),
]
T4_METHODS = ("DeepLabV3+", "UNet++", "UNet", "FPN", "DAF")

#: Table 6, classification methods from the literature (rows are reference numbers).
_T6 = [
    ("ref. 26", 86.30, 88.65, 85.00, 84.00, 89.43, 0.92),
    ("ref. 15", 90.30, 91.00, 94.50, 90.10, 92.71, 0.96),
    ("ref. 33", 96.70, 95.41, 96.45, 94.33, 95.92, 0.97),
    ("ref. 29", 94.53, 95.09, 70.00, 89.02, 80.63, 0.92),
    ("Ours", 97.86, 98.12, 98.79, 94.65, 98.45, 0.99),
]

#: Table 7, transfer learning (pre-trained networks).
_T7 = [
    ("ResNet50", 86.00, 86.66, 82.85, 83.33, 89.23, 0.83),
    ("VGG19", 86.00, 83.33, 89.25, 80.90, 86.55, 0.87),
    ("DenseNet201", 86.00, 86.66, 86.66, 85.00, 85.66, 0.86),
    ("InceptionV3", 88.00, 90.00, 86.77, 89.00, 88.36, 0.88),
    ("MobileNet", 86.00, 83.33, 86.70, 80.90, 86.55, 0.87),
    ("InceptionResNetV2", 84.00, 83.33, 86.55, 80.47, 84.91, 0.84),
    ("Proposed model", 97.86, 98.12, 98.79, 94.65, 98.45, 0.99),
]
#: Our experiment name for each Table 7 row.
T7_EXPERIMENTS = {"ResNet50": "base_resnet50", "VGG19": "base_vgg19",
                  "DenseNet201": "base_densenet201", "InceptionV3": "base_inceptionv3",
                  "MobileNet": "base_mobilenet", "InceptionResNetV2": "base_inceptionresnetv2",
                  "Proposed model": "multitask"}
#: Our experiment name for each segmentation baseline of Table 4.
T4_EXPERIMENTS = {"DeepLabV3+": "base_deeplabv3p", "UNet++": "base_unetpp", "UNet": "base_unet",
                  "FPN": "base_fpn", "DAF": "base_attunet"}

#: The one sentence on the 3-class variant (benign, malignant, normal).
THREE_CLASS = {"ACC": 97.5, "PRE": 99.0, "REC": 98.12, "SPE": 93.59, "F1": 99.32, "AUC": 0.983}

#: Class counts as stated in the paper, and as in the BUSI release (Al-Dhabyani et al. 2020).
STATED_COUNTS = {"benign": 133, "malignant": 210, "normal": 437}
RELEASE_COUNTS = {"benign": 437, "malignant": 210, "normal": 133}
#: The paper also says there are "more malignant instances than benign".

#: Improvements claimed (percentage points): abstract and discussion, and conclusion.
CLAIMED_IMPROVEMENTS = {
    ("segmentation", "ACC"): {"abstract": 1.08, "discussion": 1.08},
    ("segmentation", "REC"): {"abstract": 4.13, "discussion": 4.13, "conclusion": 4.13},
    ("classification", "ACC"): {"abstract": 1.16, "discussion": 1.16},
    ("classification", "REC"): {"abstract": 2.34, "discussion": 2.34, "conclusion": 2.14},
}
#: "Among the five folds, the least recall reported for segmentation and classification were
#: 84.90% (during fold 2) and 97.60% (during fold 1)".
LEAST_RECALL = {"segmentation": (84.90, 2), "classification": (97.60, 1)}

#: Training settings stated in the paper (for the side-by-side configuration table).
TRAINING = {"optimizer": "Adam", "lr": 1e-4, "lr_schedule": "divided by 10 every 20 epochs",
            "batch_size": 16, "epochs": 500, "folds": 5, "augmentation":
            "horizontal flip, vertical flip, rotation 30 degrees", "enhancement":
            "multi-peak generalized histogram equalization (GHE)", "input_size": "not given",
            "filters": "not given"}

#: Table 8 (BI-RADS categories, condensed) with the malignancy-likelihood bands of category 3-5.
TABLE8 = [
    ("0", "Incomplete", "additional imaging needed", "-"),
    ("1", "Negative", "nothing to report", "-"),
    ("2", "Benign finding", "routine follow-up", "no sign of cancer"),
    ("3", "Probably benign", "short-interval follow-up", "<= 2 %"),
    ("4A", "Low suspicion", "biopsy considered", "> 2 % to <= 10 %"),
    ("4B", "Moderate suspicion", "biopsy considered", "> 10 % to <= 50 %"),
    ("4C", "High suspicion", "biopsy considered", "> 50 % to < 95 %"),
    ("5", "Highly suggestive of malignancy", "biopsy strongly recommended", ">= 95 %"),
    ("6", "Known biopsy-proven malignancy", "treatment / follow-up", "known cancer"),
]
#: Likelihood bands used to map a malignancy probability to a BI-RADS-like category, and the
#: mapping itself: defined once in :mod:`busi_lib.eval.calibration` (shared with the predictor).
from busi_lib.eval.calibration import BIRADS_BANDS, birads_band  # noqa: E402,F401  (re-exported)


def table1() -> pd.DataFrame:
    """Table 1: segmentation per fold (JSI DC ACC REC PRE, %), rows 1..5 and ``mean``."""
    df = pd.DataFrame(_T1 + [_T1_MEAN], columns=SEG_COLS,
                      index=pd.Index([1, 2, 3, 4, 5, "mean"], name="fold", dtype=object))
    return df


def table2() -> pd.DataFrame:
    """Table 2: classification per fold (ACC PRE REC SPE F1 in %, AUC fraction)."""
    return pd.DataFrame(_T2 + [_T2_MEAN], columns=CLS_COLS,
                        index=pd.Index([1, 2, 3, 4, 5, "mean"], name="fold", dtype=object))


def table4() -> pd.DataFrame:
    """Table 4 as extracted (ACC PRE REC JSI DC, %); row labels scrambled, see ``_T4``."""
    rows = [r[1:] for r in _T4]
    return pd.DataFrame(rows, columns=["ACC", "PRE", "REC", "JSI", "DC"],
                        index=pd.Index([r[0] for r in _T4], name="method"))


def table6() -> pd.DataFrame:
    """Table 6: classification methods from the literature."""
    return pd.DataFrame([r[1:] for r in _T6], columns=CLS_COLS,
                        index=pd.Index([r[0] for r in _T6], name="method"))


def table7() -> pd.DataFrame:
    """Table 7: transfer-learning baselines and the proposed model."""
    return pd.DataFrame([r[1:] for r in _T7], columns=CLS_COLS,
                        index=pd.Index([r[0] for r in _T7], name="model"))


def table8() -> pd.DataFrame:
    """Table 8 (condensed): BI-RADS category, meaning, action, likelihood of malignancy."""
    df = pd.DataFrame(TABLE8, columns=["category", "assessment", "action",
                                       "likelihood of malignancy"]).set_index("category")
    return df


def three_class() -> pd.Series:
    return pd.Series(THREE_CLASS, name="paper 3-class")


# --------------------------------------------------------------------------- audit helpers
def implied_dice(j):
    """The Dice a printed Jaccard index implies (:func:`busi_lib.eval.metrics.dice_from_jaccard`),
    for J a fraction or a percentage (> 1 means percent, as the paper prints it)."""
    j = np.asarray(j, np.float64)
    pct = np.any(j > 1)
    d = dice_from_jaccard(j / 100 if pct else j)
    return d * 100 if pct else d


def audit_dice_jaccard(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per row of Table 1: JSI, reported DC, the Dice implied by JSI and the verdicts.

    For one image Dice = 2J/(1+J) >= J. For a per-image mean over a fold, mean Dice lies in
    ``[mean J, 2 mean J / (1 + mean J)]`` (Jensen: the map is concave); for pooled pixel
    counts Dice equals ``2J/(1+J)`` exactly. ``DC >= JSI`` is required either way.
    """
    t = table1() if table is None else table
    out = pd.DataFrame({"JSI": t["JSI"].astype(float), "DC reported": t["DC"].astype(float)})
    out["DC implied by JSI (pooled)"] = implied_dice(out["JSI"].to_numpy())
    out["DC >= JSI"] = out["DC reported"] >= out["JSI"]
    out["DC - JSI"] = out["DC reported"] - out["JSI"]
    return out


def implied_classification(rec: float, spe: float, n_pos: int = 210, n_neg: int = 437
                           ) -> dict[str, float]:
    """ACC, PRE and F1 (%) implied by REC and SPE (%) with ``n_pos`` positives, ``n_neg`` negatives.

    Expected (possibly fractional) confusion counts: TP = REC n_pos, FN = n_pos - TP,
    TN = SPE n_neg, FP = n_neg - TN. PRE is NaN when nothing is predicted positive (and F1
    when there is neither a positive nor a predicted positive).
    """
    tp = rec / 100 * n_pos
    tn = spe / 100 * n_neg
    fp, fn = n_neg - tn, n_pos - tp
    acc = (tp + tn) / (n_pos + n_neg)
    pre = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan")
    return {"TP": tp, "FN": fn, "TN": tn, "FP": fp, "ACC": 100 * acc, "PRE": 100 * pre,
            "F1": 100 * f1}


def audit_implied_classification(n_pos: int = 210, n_neg: int = 437) -> pd.DataFrame:
    """Reported ACC/PRE/F1 of Table 2 (mean) against those implied by its REC and SPE.

    Rows: with the real counts (210 malignant, 437 benign) and with the counts the paper
    states (210 malignant, 133 benign).
    """
    t = table2().loc["mean"]
    rows = []
    for label, npos, nneg in [(f"real counts ({n_pos} malignant, {n_neg} benign)", n_pos, n_neg),
                              (f"paper's stated counts ({STATED_COUNTS['malignant']} malignant, "
                               f"{STATED_COUNTS['benign']} benign)", STATED_COUNTS["malignant"],
                               STATED_COUNTS["benign"])]:
        imp = implied_classification(t["REC"], t["SPE"], npos, nneg)
        rows.append({"counts": label, "REC": t["REC"], "SPE": t["SPE"],
                     "ACC implied": imp["ACC"], "ACC reported": t["ACC"],
                     "PRE implied": imp["PRE"], "PRE reported": t["PRE"],
                     "F1 implied": imp["F1"], "F1 reported": t["F1"]})
    return pd.DataFrame(rows).set_index("counts")


def implied_class_ratio(pre: float | None = None, rec: float | None = None,
                        spe: float | None = None) -> dict[str, float]:
    """The negatives:positives ratio that makes PRE, REC and SPE (%) consistent, and the ACC
    it implies.

    PRE = REC n_pos / (REC n_pos + (1 - SPE) n_neg)  =>  n_neg / n_pos = REC (1/PRE - 1) / (1 - SPE).
    """
    t = table2().loc["mean"]
    pre = t["PRE"] if pre is None else pre
    rec = t["REC"] if rec is None else rec
    spe = t["SPE"] if spe is None else spe
    p, r, s = pre / 100, rec / 100, spe / 100
    ratio = r * (1 / p - 1) / (1 - s)
    acc = (r + s * ratio) / (1 + ratio)
    return {"neg_per_pos": ratio, "ACC implied": 100 * acc,
            "real neg_per_pos": RELEASE_COUNTS["benign"] / RELEASE_COUNTS["malignant"]}


def achievable(value_pct: float, n: int, decimals: int = 2) -> bool:
    """True if some k/n (k = 0..n), as a percentage rounded to ``decimals``, equals ``value_pct``."""
    if n <= 0:
        return False
    half = 0.5 * 10 ** (-decimals) + 1e-9
    k = np.arange(n + 1)
    return bool(np.any(np.abs(100 * k / n - value_pct) <= half))


def smallest_denominator(value_pct: float, decimals: int = 2, n_max: int = 10000) -> int | None:
    """Smallest n for which ``value_pct`` (rounded to ``decimals``) can be some k/n."""
    for n in range(1, n_max + 1):
        if achievable(value_pct, n, decimals):
            return n
    return None


def fold_counts(n_pos: int = 210, n_neg: int = 437, n_folds: int = 5) -> list[tuple[int, int]]:
    """Possible (positives, negatives) per test fold of a stratified k-fold split."""
    pos = sorted({n_pos // n_folds, -(-n_pos // n_folds)})
    neg = sorted({n_neg // n_folds, -(-n_neg // n_folds)})
    return [(p, q) for p in pos for q in neg]


def audit_fold_granularity(n_pos: int = 210, n_neg: int = 437, n_folds: int = 5) -> pd.DataFrame:
    """Can each fold's REC and SPE of Table 2 be a fraction k/n with that fold's class counts?

    With a stratified 5-fold split of 210 malignant and 437 benign images each test fold holds
    42 malignant and 87 or 88 benign images, so REC must be k/42 and SPE k/87 or k/88.
    """
    t = table2().drop(index="mean")
    pos = sorted({p for p, _ in fold_counts(n_pos, n_neg, n_folds)})
    neg = sorted({q for _, q in fold_counts(n_pos, n_neg, n_folds)})
    rows = []
    for fold, r in t.iterrows():
        rows.append({
            "fold": fold, "REC": r["REC"], "SPE": r["SPE"],
            f"REC = k/{'|'.join(map(str, pos))} possible": any(achievable(r["REC"], n) for n in pos),
            f"SPE = k/{'|'.join(map(str, neg))} possible": any(achievable(r["SPE"], n) for n in neg),
            "smallest n for REC": smallest_denominator(r["REC"]),
            "smallest n for SPE": smallest_denominator(r["SPE"]),
        })
    return pd.DataFrame(rows).set_index("fold")


def audit_f1() -> pd.DataFrame:
    """F1 reported against the harmonic mean of PRE and REC, for every row that reports them."""
    rows = []
    sources = [("Table 2 fold " + str(i), r) for i, r in table2().iterrows()]
    sources += [("Table 6 " + str(i), r) for i, r in table6().iterrows()]
    sources += [("Table 7 " + str(i), r) for i, r in table7().iterrows()]
    sources += [("3-class sentence", three_class())]
    for name, r in sources:
        h = 2 * r["PRE"] * r["REC"] / (r["PRE"] + r["REC"])
        lo, hi = min(r["PRE"], r["REC"]), max(r["PRE"], r["REC"])
        rows.append({"row": name.replace("fold mean", "mean"), "PRE": r["PRE"], "REC": r["REC"],
                     "F1 reported": r["F1"], "F1 = harmonic mean": h,
                     "difference": r["F1"] - h,
                     "F1 between PRE and REC": lo - 0.005 <= r["F1"] <= hi + 0.005,
                     "consistent (|diff| <= 0.05)": abs(r["F1"] - h) <= 0.05})
    return pd.DataFrame(rows).set_index("row")


def audit_means() -> pd.DataFrame:
    """The "mean" row of Tables 1 and 2 against the mean of their five fold rows.

    ``rounded`` / ``truncated``: the reported mean equals the mean of the folds rounded /
    truncated to the printed number of decimals.
    """
    rows = []
    for name, t in (("Table 1", table1()), ("Table 2", table2())):
        folds = t.drop(index="mean").astype(float)
        for col in t.columns:
            m = float(folds[col].mean())
            rep = float(t.loc["mean", col])
            rounded = abs(round(m, 2) - rep) < 1e-9
            truncated = abs(math.floor(m * 100 + 1e-9) / 100 - rep) < 1e-9
            rows.append({"table": name, "metric": col, "mean of folds": m, "reported mean": rep,
                         "rounded": rounded, "truncated": truncated,
                         "consistent": rounded or truncated})
    return pd.DataFrame(rows).set_index(["table", "metric"])


def audit_improvements() -> pd.DataFrame:
    """Claimed improvements (points) against ours minus the best competitor in Tables 4 and 6.

    Segmentation uses Table 4 as extracted (the best value of each column among the five
    baselines) and both our Table 1 value and the Table 4 "Ours" value; classification uses
    Table 6.
    """
    t1m, t4, t6 = table1().loc["mean"], table4(), table6()
    base4 = t4.drop(index="Ours")
    base6 = t6.drop(index="Ours")
    rows = []
    for (task, metric), claims in CLAIMED_IMPROVEMENTS.items():
        if task == "segmentation":
            best = float(base4[metric].max())
            ours = {"Table 1": float(t1m[metric]), "Table 4 'Ours'": float(t4.loc["Ours", metric])}
        else:
            best = float(base6[metric].max())
            ours = {"Table 6 'Ours'": float(t6.loc["Ours", metric])}
        for where, claimed in claims.items():
            for src, val in ours.items():
                rows.append({"task": task, "metric": metric, "claimed in": where,
                             "claimed (points)": claimed, "ours from": src, "ours": val,
                             "best competitor": best, "computed (points)": val - best,
                             "matches": abs(val - best - claimed) <= 0.005})
    return pd.DataFrame(rows)


def audit_table4_swap() -> pd.DataFrame:
    """Table 4's "Ours" row against Table 1's mean row, metric by metric."""
    t1m, t4o = table1().loc["mean"], table4().loc["Ours"]
    rows = []
    for m in ["ACC", "PRE", "REC", "JSI", "DC"]:
        rows.append({"metric": m, "Table 1 mean": float(t1m[m]), "Table 4 'Ours'": float(t4o[m]),
                     "equal": float(t1m[m]) == float(t4o[m])})
    return pd.DataFrame(rows).set_index("metric")


def audit_least_recall() -> pd.DataFrame:
    """The "least recall ... 84.90% (fold 2) and 97.60% (fold 1)" sentence against the tables."""
    rows = []
    for task, table in (("segmentation", table1()), ("classification", table2())):
        folds = table.drop(index="mean")
        rec = folds["REC"].astype(float)
        claimed, claimed_fold = LEAST_RECALL[task]
        hits = [f"{c} fold {i}" for i, r in folds.iterrows() for c in folds.columns
                if abs(float(r[c]) - claimed) < 1e-9]
        rows.append({"task": task, "claimed least REC": claimed, "claimed fold": claimed_fold,
                     "least REC in table": float(rec.min()), "its fold": int(rec.idxmin()),
                     "consistent": abs(float(rec.min()) - claimed) < 1e-9
                     and int(rec.idxmin()) == claimed_fold,
                     "where the claimed value appears": ", ".join(hits) or "nowhere"})
    return pd.DataFrame(rows).set_index("task")


def audit_class_counts(counts: dict[str, int] | None = None) -> pd.DataFrame:
    """Class counts stated in the paper against ``counts`` (default: the BUSI release)."""
    counts = RELEASE_COUNTS if counts is None else counts
    rows = [{"class": c, "paper states": STATED_COUNTS[c], "data": int(counts.get(c, 0)),
             "equal": STATED_COUNTS[c] == int(counts.get(c, 0))} for c in STATED_COUNTS]
    return pd.DataFrame(rows).set_index("class")


def claims_audit(counts: dict[str, int] | None = None) -> pd.DataFrame:
    """One row per audited claim: what the paper says, what its own numbers imply, verdict."""
    counts = RELEASE_COUNTS if counts is None else counts
    rows = []

    dj = audit_dice_jaccard().drop(index="mean")
    bad = [str(i) for i, ok in dj["DC >= JSI"].items() if not ok]
    rows.append(("Dice >= Jaccard (Table 1)",
                 "JSI and DC per fold", f"JSI > DC in fold(s) {', '.join(bad)}" if bad
                 else "DC >= JSI in every fold", not bad))

    sw = audit_table4_swap()
    swapped = (sw.loc["PRE", "Table 4 'Ours'"] == sw.loc["REC", "Table 1 mean"]
               and sw.loc["REC", "Table 4 'Ours'"] == sw.loc["PRE", "Table 1 mean"])
    t4col = "Table 4 'Ours'"
    rows.append(("Table 4 'Ours' = Table 1 mean",
                 f"PRE {sw.loc['PRE', t4col]:.2f}, REC {sw.loc['REC', t4col]:.2f}",
                 "PRE and REC swapped relative to Table 1" if swapped else "same values",
                 not swapped))

    ic = audit_implied_classification(counts["malignant"], counts["benign"]).iloc[0]
    ok = abs(ic["ACC implied"] - ic["ACC reported"]) < 0.5 and \
        abs(ic["PRE implied"] - ic["PRE reported"]) < 0.5
    rows.append(("ACC and PRE follow from REC and SPE (real counts)",
                 f"ACC {ic['ACC reported']:.2f}, PRE {ic['PRE reported']:.2f}",
                 f"implied ACC {ic['ACC implied']:.2f}, PRE {ic['PRE implied']:.2f}", ok))

    ratio = implied_class_ratio()
    rows.append(("Class balance implied by PRE, REC, SPE",
                 f"real benign:malignant = {ratio['real neg_per_pos']:.2f}",
                 f"PRE/REC/SPE need benign:malignant = {ratio['neg_per_pos']:.2f}",
                 abs(ratio["neg_per_pos"] - ratio["real neg_per_pos"]) < 0.1))

    fg = audit_fold_granularity(counts["malignant"], counts["benign"])
    ok_rec = bool(fg.iloc[:, 2].all())
    ok_spe = bool(fg.iloc[:, 3].all())
    rows.append(("Per-fold REC and SPE are k/n (Table 2)",
                 "REC, SPE per fold",
                 f"REC possible in {int(fg.iloc[:, 2].sum())}/5 folds, "
                 f"SPE in {int(fg.iloc[:, 3].sum())}/5 folds", ok_rec and ok_spe))

    f1 = audit_f1()
    tc = f1.loc["3-class sentence"]
    rows.append(("3-class F1 is the harmonic mean of PRE and REC",
                 f"F1 {tc['F1 reported']:.2f} (PRE {tc['PRE']:.2f}, REC {tc['REC']:.2f})",
                 f"harmonic mean {tc['F1 = harmonic mean']:.2f}", bool(tc["F1 between PRE and REC"])))
    others = f1.drop(index="3-class sentence")
    bad_f1 = [i for i, r in others.iterrows() if not r["F1 between PRE and REC"]]
    rows.append(("F1 between PRE and REC (Tables 2, 6, 7)", f"{len(others)} rows",
                 ("F1 outside [PRE, REC] in: " + "; ".join(bad_f1)) if bad_f1 else
                 "every F1 lies between PRE and REC", not bad_f1))

    imp = audit_improvements()
    rec = imp[(imp["task"] == "classification") & (imp["metric"] == "REC")]
    comp = float(rec["computed (points)"].iloc[0])
    claims = {r["claimed in"]: r["claimed (points)"] for _, r in rec.iterrows()}
    rows.append(("Classification recall improvement: abstract vs conclusion",
                 f"abstract +{claims['abstract']:.2f}, conclusion +{claims['conclusion']:.2f}",
                 f"Table 6: {rec['ours'].iloc[0]:.2f} - {rec['best competitor'].iloc[0]:.2f} = "
                 f"+{comp:.2f}", claims["abstract"] == claims["conclusion"]))
    seg = imp[imp["task"] == "segmentation"]
    seg_ok = seg.groupby("metric")["matches"].any()
    rows.append(("Segmentation improvements (ACC +1.08, REC +4.13) from Table 4",
                 "+1.08, +4.13",
                 "; ".join(f"{m}: " + ", ".join(f"{r['ours from']} +{r['computed (points)']:.2f}"
                                                for _, r in seg[seg['metric'] == m]
                                                .drop_duplicates('ours from').iterrows())
                           for m in ("ACC", "REC")), bool(seg_ok.all())))

    lr = audit_least_recall()
    c = lr.loc["classification"]
    rows.append(("Least classification recall '97.60% (fold 1)'",
                 "97.60 in fold 1", f"least REC in Table 2 is {c['least REC in table']:.2f} "
                 f"(fold {c['its fold']}); 97.60 is {c['where the claimed value appears']}",
                 bool(c["consistent"])))

    means = audit_means()
    rows.append(("Mean rows = mean of folds (Tables 1, 2)", f"{len(means)} means",
                 f"{int(means['consistent'].sum())}/{len(means)} agree "
                 f"({int(means['rounded'].sum())} rounded, "
                 f"{int((~means['rounded'] & means['truncated']).sum())} only when truncated)",
                 bool(means["consistent"].all())))

    cc = audit_class_counts(counts)
    rows.append(("Class counts (benign, malignant, normal)",
                 ", ".join(str(v) for v in cc["paper states"]),
                 "data: " + ", ".join(str(v) for v in cc["data"]), bool(cc["equal"].all())))
    rows.append(("'More malignant instances than benign'", "malignant > benign",
                 f"data: {counts['malignant']} malignant, {counts['benign']} benign",
                 counts["malignant"] > counts["benign"]))
    return pd.DataFrame(rows, columns=["claim", "paper", "computed from the paper / data",
                                       "consistent"])
