"""Against the peers: their reported numbers, and ours on their protocols, scored their way.

Ours are measured on the protocols of :mod:`busi_lib.data.protocols`. The peers' numbers below are what they published; nothing here recomputes or adjusts them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from busi_lib.analysis.stats import t_interval
from busi_lib.data.protocols import fold_parts, peer_oversample
from busi_lib.errors import ConfigError
from busi_lib.eval.metrics import fast_auc, grouped_bootstrap_auc

#: What each peer reports for its protocol, as published (source named).
PEER_REPORTED: dict[str, dict] = {
    "peer_curated": {
        "peer": "Aumente-Maestro, Diez and Remeseiro 2024 (Computer Methods and Programs in "
                "Biomedicine 108540; repository caumente/multi_task_breast_cancer)",
        "source": "their Table 5 (the README's image output/images/table_5.png), multi-task "
                  "model with prediction refining and deterministic oversampling, as quoted "
                  "in issue 29",
        "metrics": {"Dice, benign images": 0.773, "Dice, malignant images": 0.711,
                    "3-class accuracy": 0.802},
    },
    "peer_grouped_locked": {
        "peer": "repository wajidali99/breast-ultrasound-classification (ImageNet DenseNet121, "
                "224 px)",
        "source": "its results/tables/v2_summary.json, as quoted in issue 29 (ranges over its "
                  "model variants)",
        "metrics": {"pooled out-of-fold AUC": (0.924, 0.940),
                    "locked-test ensemble AUC": (0.969, 0.977),
                    "BUS-BRA ensemble AUC": (0.750, 0.776)},
    },
    "peer_segbench": {
        "peer": "repository FengheTan9/Medical-Image-Segmentation-Benchmarks (CMUNeXt, "
                "TransUNet; 256 px)",
        "source": "its README, as quoted in issue 29 (Dice and IoU in percent there)",
        "metrics": {"Dice, CMUNeXt": 0.7986, "IoU, CMUNeXt": 0.7156, "Dice, TransUNet": 0.7985},
    },
}

#: What differs between the peer's set-up and ours on the peer's protocol: (aspect, theirs, ours).
DIFFERENCES: dict[str, list[tuple[str, str, str]]] = {
    "peer_curated": [
        ("images", "Curated BUSI (450: 222 benign, 164 malignant, 64 normal), 128 px",
         "the same keep-list, 128 px (squashed; their preprocessing crops and resizes "
         "before their loader: not rebuilt)"),
        ("folds", "4-fold stratified (seed 1993), 20 % of each training part for validation",
         "the same calls on the keep-list's order (their file order assumed)"),
        ("network", "multi-task nnU-Net-style network, width 24, deep supervision, "
         "prediction-refining module", "our Residual-U-Net (width 16) with its classification "
         "head on the decoder and a crop of the predicted lesion; their refining applied to "
         "our predictions in a second table (peer_refine)"),
        ("training", "Adam 1e-4, plateau decay, up to 200 epochs, best epoch on validation",
         "the released recipe's schedule: {epochs} epochs, cosine decay, the last epoch; the validation "
         "part is held out, monitored, and used for one choice only: the three-class call "
         "(choose_class_call)"),
        ("imbalance", "deterministic oversampling (their deterministic_oversampling: each "
         "class repeated round(1 / its share) times, about x2 benign, x3 malignant, x7 normal)",
         "class-weighted focal loss (balanced weights, about 0.5, 0.7 and 1.8)"),
        ("augmentation", "flips and rotation", "flips, rotation, scale, intensity and noise"),
        ("pretraining", "none", "none"),
    ],
}
#: The segmentation benchmark (their README and ``main.py``, read 2026-12-04): what differs at
#: either of our image sizes.
DIFFERENCES["peer_segbench"] = [
    ("images", "BUSI's 647 benign and malignant images, three random 70/30 splits, 256 px",
     "their three published test lists, image for image; {size}"),
    ("network", "CMUNeXt (3.14 M parameters; their best), segmentation only",
     "our Residual-U-Net (3.2 M parameters), segmentation and a benign/malignant head"),
    ("training", "SGD 0.01, momentum 0.9, polynomial decay, 300 epochs, batch 8 (the README's "
     "command), BCE + Dice", "the released recipe: {epochs} epochs, Adam 1e-3 with cosine "
     "decay, batch 8, Dice + BCE and the classification loss"),
    ("which epoch", "the one with the best IoU on the 30 % part (their main.py keeps that "
     "checkpoint), the same images the README reports on: a choice made on the scored images",
     "the last epoch; the 30 % part is read once, to score"),
    ("augmentation", "random 90-degree rotations and flips",
     "flips, rotation, scale, intensity and noise"),
    ("metric", "IoU over each batch of the 30 % part, averaged over batches, and Dice from it",
     "per-image mean and pooled over all pixels (the two bracket theirs)"),
    ("pretraining", "none for CMUNeXt", "none"),
]
#: ``peer_curated_os`` differs from ``peer_curated`` in the handling of imbalance only.
DIFFERENCES["peer_curated_os"] = [
    (a, p, "the same oversampling (busi_lib.data.protocols.peer_oversample), then the "
     "class-weighted focal loss with weights from the oversampled counts (about 1 each)")
    if a == "imbalance" else (a, p, o) for a, p, o in DIFFERENCES["peer_curated"]]


def differences(name: str, epochs: int | str, size: str = "") -> pd.DataFrame:
    """What differs between the peer's set-up and ours on protocol ``name`` (one row per
    aspect: ``aspect``, ``the peer``, ``ours``), with the epochs our folds ran (their records'
    ``epochs_run``) and, where the table has one, our image ``size`` written in."""
    if name not in DIFFERENCES:
        raise ConfigError(f"name={name!r}: expected one of {sorted(DIFFERENCES)}")
    return pd.DataFrame([(a, p, o.format(epochs=epochs, size=size))
                         for a, p, o in DIFFERENCES[name]],
                        columns=["aspect", "the peer", "ours"])


def training_budget(folds: pd.DataFrame, records: list[dict],
                    classes: Sequence[str] = ("benign", "malignant", "normal")) -> dict:
    """How much training one experiment's folds got: epochs, images seen per epoch (after the
    peer's oversampling where the record's configuration asks for it,
    :func:`busi_lib.data.protocols.peer_oversample`) and gradient steps per fold
    (``epochs x ceil(images / batch size)``, as the trainer counts them).

    Parameters
    ----------
    folds : the protocol's fold table (``class``, ``fold``, ``val<k>`` where it has them), as
        written to ``results/splits/``
    records : the experiment's fold records (``fold``, ``epochs_run``, ``config``)
    classes : the class order of the labels

    Returns
    -------
    dict with ``epochs``, ``images_per_epoch`` and ``steps`` (each the mean over the folds),
    ``batch_size`` and ``folds``.
    """
    if not records:
        raise ConfigError("no records: expected the experiment's fold records")
    if "class" not in folds.columns:
        raise ConfigError("the fold table has no 'class' column; expected a results/splits table")
    unknown = sorted(set(folds["class"]) - set(classes))
    if unknown:
        raise ConfigError(f"classes {unknown} in the fold table; expected only {list(classes)}")
    label = folds["class"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    rows = []
    for r in records:
        train, _, _ = fold_parts(folds, int(r["fold"]))
        n = len(train)
        if r["config"].get("oversample", "none") == "peer":
            n = len(peer_oversample(label[train]))
        batch = int(r["config"]["batch_size"])
        rows.append((int(r["epochs_run"]), n, int(r["epochs_run"]) * math.ceil(n / batch), batch))
    e, n, steps, batch = (np.array(c) for c in zip(*rows))
    return {"epochs": float(e.mean()), "images_per_epoch": float(n.mean()),
            "steps": float(steps.mean()), "batch_size": int(batch[0]), "folds": len(rows)}


def budget_sentence(reference: str, ref_budget: dict, candidate: str, cand_budget: dict) -> str:
    """What else than the named change differs between two trainings' budgets, in one or two
    sentences (empty when epochs and steps agree)."""
    same_epochs = ref_budget["epochs"] == cand_budget["epochs"]
    ratio = cand_budget["steps"] / ref_budget["steps"]
    if same_epochs and abs(ratio - 1) < 0.005:
        return ""
    return (f"The two trainings differ in their length too: `{candidate}` ran "
            f"{cand_budget['epochs']:.0f} epochs of about {cand_budget['images_per_epoch']:.0f} "
            f"images, {cand_budget['steps']:.0f} gradient steps per fold, against "
            f"{ref_budget['epochs']:.0f} epochs of about {ref_budget['images_per_epoch']:.0f} "
            f"images, {ref_budget['steps']:.0f} steps, for `{reference}` ({ratio:.2f} times as "
            "many steps). The rule judges the two trainings as they ran, so its difference "
            "mixes the change with the length of training; these runs cannot say how much "
            "each contributes.")


#: The segmentation benchmark's metrics, from our fold records: (label, record key). Their
#: code computes IoU over each batch of test images and Dice from it (2 IoU / (1 + IoU)); the
#: per-image mean and the value pooled over all test pixels bracket that.
SEGBENCH_METRICS = (("Dice, mean per image", "seg_DC_mean"), ("IoU, mean per image", "seg_JSI_mean"),
                    ("Dice, pooled pixels", "seg_DC_pooled"), ("IoU, pooled pixels", "seg_JSI_pooled"),
                    ("AUC, malignant vs benign", "cls_AUC"))
#: The value each of ours is set beside (CMUNeXt, their best; the benchmark segments only, so
#: our classifier's AUC has none).
SEGBENCH_PEER = {"Dice, mean per image": "Dice, CMUNeXt", "IoU, mean per image": "IoU, CMUNeXt",
                 "Dice, pooled pixels": "Dice, CMUNeXt", "IoU, pooled pixels": "IoU, CMUNeXt"}

#: Aims of issue 29 for the curated protocol: at or above the peer's reported values.
CURATED_METRICS = ("Dice, benign images", "Dice, malignant images", "Dice, normal images",
                   "3-class accuracy", "AUC, malignant vs rest")


def curated_fold_metrics(pred: pd.DataFrame) -> pd.DataFrame:
    """Per test fold, the curated protocol's metrics scored as the peer scores them.

    Dice per class is the mean of the per-image Dice over that class's images; a normal image
    (empty ground truth) scores 1 when the predicted mask is empty and 0 otherwise (the peer's
    ``dice_score``). The 3-class accuracy counts the arg-max class; the AUC is malignant
    against the rest, from ``prob_malignant``.

    Parameters
    ----------
    pred : the folds' per-image predictions (``fold``, ``true_class``, ``dice``,
        ``pred_area_frac``, ``pred_class``, ``prob_malignant``)
    """
    need = {"fold", "true_class", "dice", "pred_area_frac", "pred_class", "prob_malignant"}
    if pred is None or not len(pred):
        raise ConfigError("no predictions: expected the recorded folds' per-image tables")
    if not need <= set(pred.columns):
        raise ConfigError(f"predictions lack columns {sorted(need - set(pred.columns))}; "
                          "expected those of a 3-class multi-task experiment")
    rows = []
    for k, g in pred.groupby("fold"):
        normal = g["true_class"] == "normal"
        empty = np.asarray(g["pred_area_frac"].fillna(0) <= 0)
        peer_dice = np.where(normal, empty.astype(float), g["dice"].to_numpy(float))
        rows.append({
            "fold": int(k),
            "Dice, benign images": float(peer_dice[g["true_class"] == "benign"].mean()),
            "Dice, malignant images": float(peer_dice[g["true_class"] == "malignant"].mean()),
            "Dice, normal images": float(peer_dice[normal].mean()) if normal.any() else np.nan,
            "3-class accuracy": float((g["pred_class"] == g["true_class"]).mean()),
            "AUC, malignant vs rest": fast_auc(g["true_class"] == "malignant",
                                               g["prob_malignant"]),
            "images": int(len(g))})
    return pd.DataFrame(rows)


def peer_refine(pred: pd.DataFrame) -> pd.DataFrame:
    """The Curated-BUSI peer's *prediction refining*, applied to per-image predictions.

    Their code (``src/utils/models.py``, switched on in their ``src/config.yaml`` by
    ``overlap_seg_based_on_class`` and ``overlap_class_based_on_seg``) makes mask and class agree
    after inference, with no parameter to tune:

    - an image **classified normal** gets an empty mask (a lesion image then scores Dice 0, a
      normal image Dice 1);
    - an image whose mask (thresholded at 0.5, before the first rule) is **empty** is classified
      normal.

    Both rules read the network's raw outputs, so their order does not matter. Returns a copy
    of ``pred`` with ``dice``, ``pred_area_frac`` and ``pred_class`` refined; the probabilities
    (and so the AUC) are unchanged.
    """
    need = {"true_class", "dice", "pred_area_frac", "pred_class"}
    if not need <= set(pred.columns):
        raise ConfigError(f"predictions lack columns {sorted(need - set(pred.columns))}; "
                          "expected those of a 3-class multi-task experiment")
    out = pred.copy()
    empty = out["pred_area_frac"].fillna(0).to_numpy() <= 0
    called_normal = (out["pred_class"] == "normal").to_numpy()
    lesion = (out["true_class"] != "normal").to_numpy()
    out.loc[called_normal & lesion, "dice"] = 0.0
    out.loc[called_normal, "pred_area_frac"] = 0.0
    out.loc[empty, "pred_class"] = "normal"
    return out


def missed_lesions_table(pred: pd.DataFrame) -> pd.DataFrame:
    """Where the curated protocol's lesion Dice is lost, per true class of lesion image: the
    share with no predicted mask at all (Dice 0), the Dice over all images (the peer's way),
    the Dice over the images with a mask, and the share called normal.

    The Dice over the images with a mask selects images by our own output: it explains the
    Dice over all, and is not comparable with the peer's number, which counts every image.

    Parameters
    ----------
    pred : the folds' per-image predictions (``true_class``, ``dice``, ``pred_area_frac``,
        ``pred_class``)
    """
    need = {"true_class", "dice", "pred_area_frac", "pred_class"}
    if pred is None or not len(pred):
        raise ConfigError("no predictions: expected the recorded folds' per-image tables")
    if not need <= set(pred.columns):
        raise ConfigError(f"predictions lack columns {sorted(need - set(pred.columns))}; "
                          "expected those of a 3-class multi-task experiment")
    rows = []
    for c in ("benign", "malignant"):
        g = pred[pred["true_class"] == c]
        if not len(g):
            continue
        masked = g["pred_area_frac"].fillna(0).to_numpy() > 0
        rows.append({"lesion class": c, "images": int(len(g)),
                     "no mask predicted": float(1 - masked.mean()),
                     "Dice, all images": float(g["dice"].mean()),
                     "Dice, images with a mask": float(g["dice"][masked].mean())
                     if masked.any() else np.nan,
                     "called normal": float((g["pred_class"] == "normal").mean())})
    return pd.DataFrame(rows)


def missed_lesions_sentence(table: pd.DataFrame) -> str:
    """What :func:`missed_lesions_table` says about the gap to the peer's Dice, one sentence
    per lesion class below the peer's value."""
    reported = PEER_REPORTED["peer_curated"]["metrics"]
    said = []
    for _, r in table.iterrows():
        peer = reported.get(f"Dice, {r['lesion class']} images")
        if peer is None or r["Dice, all images"] >= peer:
            continue
        where = (f"where a mask is predicted its Dice is {r['Dice, images with a mask']:.3f}, "
                 + ("at or above" if r["Dice, images with a mask"] >= peer else "below")
                 + f" the peer's {peer:.3f}")
        why = ("so the gap there is lesions missed entirely, not their outlines"
               if r["Dice, images with a mask"] >= peer else
               "so the outlines fall short too, beside the lesions missed entirely")
        said.append(f"On {r['lesion class']} images, {r['no mask predicted']:.0%} get no mask "
                    f"at all (Dice 0); {where}, {why}.")
    return " ".join(said)


def curated_summary(per_fold: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Ours (mean over the test folds with its *t* interval, cut to [0, 1] where it overshoots:
    every metric is a fraction) beside the peer's reported value, one row per metric; ``aim`` says whether our mean reaches the peer's value and, where it
    does not, whether the interval does."""
    reported = PEER_REPORTED["peer_curated"]["metrics"]
    rows = []
    for m in CURATED_METRICS:
        mean, lo, hi = t_interval(per_fold[m], level)
        lo, hi = max(lo, 0.0), min(hi, 1.0)        # every metric here is a fraction
        peer = reported.get(m, np.nan)
        aim = _aim(mean, hi, peer)
        rows.append({"metric": m, "ours, mean of folds": mean, "low": lo, "high": hi,
                     "folds": int(per_fold[m].notna().sum()), "peer reported": peer,
                     "aim": aim})
    return pd.DataFrame(rows)


def _aim(mean: float, hi: float, peer: float) -> str:
    if np.isnan(peer):
        return "no reported value"
    if mean >= peer:
        return "reached"
    return f"below by {peer - mean:.3f}" + (" (interval reaches it)" if hi >= peer
                                            else " (interval below it)")


def segbench_summary(records: list[dict], level: float = 0.95) -> pd.DataFrame:
    """Ours on the segmentation benchmark's splits (mean of the repeats with its *t* interval)
    beside the peer's reported value, one row per metric of :data:`SEGBENCH_METRICS`."""
    if not records:
        raise ConfigError("no records: expected the fold records of a peer_segbench experiment")
    reported = PEER_REPORTED["peer_segbench"]["metrics"]
    rows = []
    for label, key in SEGBENCH_METRICS:
        vals = [r["metrics"][key] for r in records]
        mean, lo, hi = t_interval(vals, level)
        peer = reported[SEGBENCH_PEER[label]] if label in SEGBENCH_PEER else np.nan
        rows.append({"metric": label, "ours, mean of splits": mean, "low": lo, "high": hi,
                     "splits": len(vals), "peer reported (CMUNeXt)": peer,
                     "aim": _aim(mean, hi, peer)})
    return pd.DataFrame(rows)


def segbench_size_table(small: list[dict], large: list[dict],
                        key: str = "seg_DC_mean") -> pd.DataFrame:
    """Ours at two image sizes on the same segmentation-benchmark splits, split by split: the
    metric ``key`` of each size's record and their difference (large minus small). Only the
    splits recorded at both sizes are shown, in split order.

    Parameters
    ----------
    small, large : the fold records of the two experiments (``fold``, ``metrics``,
        ``config`` with ``image_size``)
    """
    a = {int(r["fold"]): r for r in small}
    b = {int(r["fold"]): r for r in large}
    rows = []
    for k in sorted(set(a) & set(b)):
        ra, rb = a[k], b[k]
        if key not in ra["metrics"] or key not in rb["metrics"]:
            raise ConfigError(f"key={key!r} is not in the records' metrics; expected one of "
                              f"{sorted(ra['metrics'])}")
        sa, sb = ra["config"]["image_size"], rb["config"]["image_size"]
        rows.append({"split": k + 1, f"{sa} px": ra["metrics"][key],
                     f"{sb} px": rb["metrics"][key],
                     "difference": rb["metrics"][key] - ra["metrics"][key]})
    return pd.DataFrame(rows)


def segbench_size_sentence(table: pd.DataFrame, n_planned: int) -> str:
    """What the larger image size changed, from :func:`segbench_size_table`, in one sentence
    (no interval: a handful of splits)."""
    if not len(table):
        return ("No split is recorded at both image sizes yet, so what the size changes is "
                "not measured.")
    sizes = [c for c in table.columns if c.endswith(" px")]
    d = table["difference"]
    each = ", ".join(f"{v:+.3f}" for v in d)
    which = (f"all {len(table)} splits" if len(table) == n_planned else
             f"the {len(table)} of {n_planned} splits")
    return (f"On {which} trained at both sizes, "
            f"{sizes[1]} instead of {sizes[0]} changes the mean per-image Dice by "
            f"{d.mean():+.3f} on average (split by split: {each}). With so few splits this is "
            "a direction, not an interval.")


def grouped_locked_summary(oof: pd.DataFrame, locked: pd.DataFrame | None,
                           busbra: pd.DataFrame | None, n_boot: int = 1000,
                           seed: int = 0) -> pd.DataFrame:
    """Ours on the grouped, locked-test protocol, as the peer reports it: the pooled
    out-of-fold AUC (each image scored by the fold model that did not train on it), the
    locked test set's AUC for the fold models' mean probability, and BUS-BRA's for the same
    ensemble; percentile bootstrap intervals over images (BUS-BRA: over patients).

    Parameters
    ----------
    oof : the folds' test predictions (``true_class``, ``prob_malignant``)
    locked : every fold model's predictions on the locked test set (``id``, ``fold``,
        ``true_class``, ``prob_malignant``), or ``None``
    busbra : the fold ensemble's BUS-BRA table (``pathology``, ``prob_malignant``, ``case``),
        or ``None``
    """
    if oof is None or not len(oof):
        raise ConfigError("no out-of-fold predictions: expected the recorded folds' tables")
    reported = PEER_REPORTED["peer_grouped_locked"]["metrics"]
    rows = []

    def add(label, y, p, groups, peer_key, n_models):
        auc, lo, hi = grouped_bootstrap_auc(np.asarray(y, int), p, groups, n_boot, seed)
        peer = reported[peer_key]
        rows.append({"metric": label, "ours": auc, "low": lo, "high": hi, "images": len(p),
                     "fold models": n_models, "peer reported": f"{peer[0]:.3f} to {peer[1]:.3f}",
                     "aim": _aim(auc, hi, peer[0])})

    add("pooled out-of-fold AUC", oof["true_class"] == "malignant", oof["prob_malignant"],
        np.arange(len(oof)), "pooled out-of-fold AUC", oof["fold"].nunique())
    if locked is not None and len(locked):
        ens = locked.groupby("id").agg(true_class=("true_class", "first"),
                                       prob_malignant=("prob_malignant", "mean"))
        add("locked-test ensemble AUC", ens["true_class"] == "malignant", ens["prob_malignant"],
            np.arange(len(ens)), "locked-test ensemble AUC", locked["fold"].nunique())
    if busbra is not None and len(busbra):
        add("BUS-BRA ensemble AUC", busbra["pathology"] == "malignant", busbra["prob_malignant"],
            busbra["case"], "BUS-BRA ensemble AUC", oof["fold"].nunique())
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- three-class call
#: The three-class calls compared on the curated protocol's validation parts (issue 29):
#:
#: - "arg-max": the arg-max of the network's class probabilities (the default);
#: - "class weights undone": the arg-max after the training's class weights are undone
#:   (``p_c / w_c``: a loss weighted by ``w_c`` raises each class's predicted probability
#:   roughly in that proportion, which could make the network call the rare normal class on
#:   lesions);
#: - "mask decides normal": normal exactly when the predicted mask is empty, and otherwise the
#:   likelier of benign and malignant (the peer's second refining rule, made the only way to
#:   call an image normal).
CLASS_CALLS = ("arg-max", "class weights undone", "mask decides normal")
#: The level of each candidate's interval against "arg-max", in the order the rules were fixed
#: (2026-12-04): "class weights undone" before any validation prediction existed (95 %); "mask
#: decides normal" after that verdict (not kept) and before any predicted mask of the
#: validation parts was looked at, at 1 - 0.05 / 2 for the second look at the same images.
CLASS_CALL_LEVELS = {"class weights undone": 0.95, "mask decides normal": 0.975}


def three_class_call(pred: pd.DataFrame, class_weights, call: str,
                     classes=("benign", "malignant", "normal")) -> np.ndarray:
    """The class called for each image of ``pred`` (columns ``prob_<class>``, and
    ``pred_area_frac`` for "mask decides normal") by ``call``, one of :data:`CLASS_CALLS`;
    ``class_weights`` in the order of ``classes`` (a fold record's ``class_weights``)."""
    if call not in CLASS_CALLS:
        raise ConfigError(f"call={call!r}: expected one of {CLASS_CALLS}")
    cols = [f"prob_{c}" for c in classes]
    need = set(cols) | ({"pred_area_frac"} if call == "mask decides normal" else set())
    if not need <= set(pred.columns):
        raise ConfigError(f"predictions lack columns {sorted(need - set(pred.columns))}; "
                          "expected those of a 3-class multi-task experiment")
    w = np.asarray(class_weights, float)
    if w.shape != (len(classes),) or not (w > 0).all():
        raise ConfigError(f"class_weights={list(class_weights)!r}: expected {len(classes)} "
                          "positive weights")
    p = pred[cols].to_numpy(float)
    if call == "class weights undone":
        p = p / w
    if call == "mask decides normal":
        lesion = [c != "normal" for c in classes]
        called = np.asarray(classes)[lesion][p[:, lesion].argmax(axis=1)]
        empty = pred["pred_area_frac"].fillna(0).to_numpy() <= 0
        return np.where(empty, "normal", called)
    return np.asarray(classes)[p.argmax(axis=1)]


def choose_class_call(val: pd.DataFrame, weights: dict[int, list], n_boot: int = 2000,
                      seed: int = 0) -> dict:
    """The rule for the curated protocol's three-class call: on the validation parts of all
    folds pooled (each image called by its own fold's model), the 3-class accuracy of each
    call of :data:`CLASS_CALLS`, and for each candidate of :data:`CLASS_CALL_LEVELS` a paired
    percentile bootstrap interval (over images, at that candidate's level) of its difference
    from "arg-max". A candidate is kept when its interval is above zero; the test folds get the
    kept candidate with the highest accuracy, or "arg-max" when none is kept. No test image is
    read.

    Parameters
    ----------
    val : the folds' validation predictions (``fold``, ``true_class``, ``prob_<class>``,
        ``pred_area_frac``)
    weights : fold -> that fold's training class weights (its record's ``class_weights``)

    Returns
    -------
    dict with ``accuracy`` (call -> pooled accuracy), ``candidates`` (call -> ``difference``,
    ``low``, ``high``, ``level``, ``kept``), ``n`` (images), ``folds`` and ``chosen``.
    """
    if val is None or not len(val):
        raise ConfigError("no validation predictions: expected fold<k>_validation.csv tables "
                          "(python -m busi_lib.experiments.crossval --validation-predictions)")
    missing = sorted(set(val["fold"]) - set(weights))
    if missing:
        raise ConfigError(f"no class weights for folds {missing}: expected every fold's record")
    parts = [(k, g) for k, g in val.groupby("fold", sort=True)]
    truth = np.concatenate([g["true_class"].to_numpy() for _, g in parts])
    right = {call: (np.concatenate([three_class_call(g, weights[k], call) for k, g in parts])
                    == truth).astype(float) for call in CLASS_CALLS}
    draws = _paired_draws(len(truth), n_boot, seed)
    cands = {}
    for call, level in CLASS_CALL_LEVELS.items():
        diff = right[call] - right[CLASS_CALLS[0]]
        lo, hi = _interval(diff, draws, level)
        cands[call] = {"difference": float(diff.mean()), "low": float(lo), "high": float(hi),
                       "level": level, "kept": bool(lo > 0)}
    acc = {c: float(r.mean()) for c, r in right.items()}
    kept = [c for c in cands if cands[c]["kept"]]
    return {"accuracy": acc, "candidates": cands, "n": int(len(truth)), "folds": len(parts),
            "chosen": max(kept, key=acc.get) if kept else CLASS_CALLS[0]}


def _paired_draws(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` resamples (rows) of ``n`` paired images, with replacement."""
    return np.random.default_rng(seed).integers(0, n, (n_boot, n))


def _interval(diff: np.ndarray, draws: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval at ``level`` of the mean of ``diff`` over the resamples ``draws``."""
    lo, hi = np.quantile(diff[draws].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def apply_class_call(pred: pd.DataFrame, weights: dict[int, list], call: str) -> pd.DataFrame:
    """A copy of the folds' predictions ``pred`` (with ``fold``) whose ``pred_class`` is made by
    ``call`` with each fold's own training class weights."""
    out = pred.copy()
    for k, g in out.groupby("fold"):
        if k not in weights:
            raise ConfigError(f"no class weights for fold {k}: expected every fold's record")
        out.loc[g.index, "pred_class"] = three_class_call(g, weights[k], call)
    return out


def choose_curated_training(reference: pd.DataFrame, candidate: pd.DataFrame,
                            n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """The rule for a retrained curated candidate (``peer_curated_os``: the peer's
    oversampling), fixed 2026-12-04 before any of its folds ran: on the validation parts of all
    folds pooled, the 3-class accuracy (arg-max) of the candidate's fold models and of
    ``peer_curated``'s on the same images, and a paired percentile bootstrap interval (over
    images) of the difference. The candidate replaces ``peer_curated`` in the chapter only
    when that interval is above zero. No test image is read.

    Parameters
    ----------
    reference, candidate : the two experiments' validation predictions (``fold``, ``id``,
        ``true_class``, ``pred_class``), the same images in each fold

    Returns
    -------
    dict with ``accuracy`` (``reference`` and ``candidate``), ``difference``, ``low``,
    ``high``, ``n``, ``folds`` and ``kept``.
    """
    for name, t in (("reference", reference), ("candidate", candidate)):
        if t is None or not len(t):
            raise ConfigError(f"no {name} validation predictions: expected fold<k>_validation.csv "
                              "tables of both experiments")
    key = ["fold", "id"]
    ref, cand = (t.sort_values(key).reset_index(drop=True) for t in (reference, candidate))
    if not ref[key].equals(cand[key]):
        raise ConfigError("the two experiments' validation parts hold other images; expected "
                          "the same protocol, folds and seed")
    right = {n: (t["pred_class"] == t["true_class"]).to_numpy(float)
             for n, t in (("reference", ref), ("candidate", cand))}
    diff = right["candidate"] - right["reference"]
    lo, hi = _interval(diff, _paired_draws(len(diff), n_boot, seed), level)
    return {"accuracy": {n: float(r.mean()) for n, r in right.items()},
            "difference": float(diff.mean()), "low": float(lo), "high": float(hi),
            "n": int(len(diff)), "folds": int(ref["fold"].nunique()), "kept": bool(lo > 0)}
