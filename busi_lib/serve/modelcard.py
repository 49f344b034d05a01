"""The model card of a released model (Markdown ``models/README.md``), from its release record.

Every number comes from ``release.json`` (:func:`busi_lib.serve.release.release`): the fold records and
the measurements made by the release; nothing is hard-coded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from busi_lib.serve.modelfiles import DEFAULT_MODEL
from busi_lib.serve.predictor import bench_text


def _f(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)


def _table(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    lines += ["| " + " | ".join(_f(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


#: The card's fixed prose: what the model is for, its limits and where earlier releases are
#: (``{image_size}``: the network's input size).
FIXED_SECTIONS = """\
## Intended use

Research and teaching: to see what a network trained on BUSI says about other images, \
and how far that can be trusted. **Not** for diagnosis, screening, triage or any \
decision about a person.

## Limits

- **Other scanners and populations.** BUSI comes from one hospital (Baheya, Cairo) and \
one scanner family; BUS-BRA numbers above show what a change of scanner, country and \
framing does. Expect worse on other sets.
- **No normal / no-lesion handling.** The model was trained on images that contain one \
lesion. On an image without a lesion it may still outline something and give a \
probability; when its mask is empty the predictor gives no band. It cannot say \
'normal'.
- **One lesion per image**; the outline is at the network's resolution \
({image_size} px) brought back to the image size, so it is coarse.
- **Calibration** was fitted on BUSI's out-of-fold predictions of single fold models; \
the ensemble averages calibrated fold probabilities. On other data (see BUS-BRA) the \
probability can be badly calibrated, and then the band is misleading.
- **Labels and duplicates**: BUSI has known label noise and near-duplicate images \
(the `grouped` split keeps those in one fold).
- Annotations burnt into the image, colour Doppler, 16-bit or very large images are \
converted (with a warning) but were not in the training data.

## Earlier releases

`models/` holds one release. The previous one, `multitask_grouped_cpu` (the paper's \
network under the recipe, without the robustness augmentation), is in the project's \
history: `git checkout 6b4d4b1 -- models/` restores it and its card, and \
`--model models/multitask_grouped_cpu` uses it.
"""

#: The configuration keys the card's recipe table shows.
CARD_CONFIG_KEYS = ("image_size", "enhancement", "resize", "normalize", "filters",
                    "bridge_filters", "epochs", "batch_size", "lr", "schedule", "seg_loss",
                    "cls_loss", "augment", "tta", "mask_threshold", "postprocess", "split",
                    "n_folds", "seed", "precision")


def model_card(info: dict[str, Any], bench: dict[str, Any] | None = None) -> str:
    """The model card ``models/README.md`` of a release (Markdown), from ``release.json`` and,
    when given, the latest ``predict --bench --record`` row of the model: one function per
    section, the fixed prose in :data:`FIXED_SECTIONS`."""
    cfg = info.get("config") or {}
    lines = (_intro(info) + _use(info) + _files(info) + _data(info) + _recipe(info)
             + _numbers(info, bench)
             + FIXED_SECTIONS.format(image_size=cfg.get("image_size")).split("\n")
             + _retrain(info))
    return "\n".join(lines)


def _intro(c: dict) -> list[str]:
    name = c["name"]
    return [
        f"# Model card: `{name}`",
        "",
        f"**{c['note']}**",
        "",
        f"Multi-task Residual-U-Net (Chowdary et al., 2022, as reproduced in this book): from one "
        f"breast-ultrasound image it outlines the lesion and gives the probability that it is "
        f"malignant. Experiment `{c['experiment']}`, profile `{c['profile']}`: the {c['n_folds']} "
        f"models of its {c['n_folds']}-fold cross-validation, used together as an ensemble (the "
        f"mean of their calibrated probabilities and of their mask probabilities), as nnU-Net "
        f"ships its folds. Each image of BUSI was a test image of exactly one of them, so the "
        f"cross-validation numbers below are the honest estimate of what the ensemble does on "
        f"images like BUSI's; the ensemble itself was never tested on BUSI.",
        "",
        f"Written by `python -m busi_lib.serve.release --profile {c['profile']} --experiment "
        f"{c['experiment']}` on {c['created_utc']} (code {c['release_git_commit']}). Every number "
        "here comes from the fold records and from measurements made by that command; "
        f"`{name}/release.json` holds them all.",
        "",
    ]


def _use(c: dict) -> list[str]:
    name = c["name"]
    return [
        "## Use",
        "",
        "```bash",
        ".venv/bin/python -m busi_lib.serve.predictor IMAGE [IMAGE ...] --out DIR"
        + ("" if name == DEFAULT_MODEL else f" --model models/{name}"),
        "```",
        "",
        "```python",
        "from busi_lib.serve.predictor import predict",
        "out = predict(\"image.png\")   # prob_malignant, birads_band, mask_area_fraction, mask, ...",
        "```",
        "",
        "The chapter *Try the model* of the book shows it on BUS-BRA images.",
        "",
    ]


def _files(c: dict) -> list[str]:
    name = c["name"]
    f16 = c["float16"]
    lines = [
        "## Files",
        "",
        "The predictor checks every file against this table before it loads anything.",
        "",
        "| file | bytes | sha256 |",
        "| --- | --- | --- |",
    ]
    for fname, d in c["files"].items():
        lines.append(f"| {name}/{fname} | {d['bytes']:,} | `{d['sha256']}` |")
    lines += [
        "",
        f"Weights sha256 (all folds): `{c['weights_sha256']}` "
        f"(`cd models/{name} && sha256sum fold*.weights.h5 | sha256sum`).",
        "",
        f"Weights only (`fold<k>.weights.h5`, Keras), {c['n_params']:,} parameters per fold, "
        f"stored as **{'float16' if f16['used'] else 'float32'}**; the network is rebuilt from "
        f"`config.json` with `busi_lib.nn.build.build_float32` and computes in float32. No code is "
        f"deserialised (the training checkpoints were read with `safe_mode=True`).",
        "",
    ]
    return lines


def _data(c: dict) -> list[str]:
    return [
        "## Data and licence",
        "",
        f"- Trained on **BUSI** (Al-Dhabyani et al., *Data in Brief* 28, 2020, "
        f"doi:10.1016/j.dib.2019.104863): {c['n_lesion_images']} benign and malignant images "
        f"({c['n_malignant']} malignant), normal images not used; data sha256 "
        f"`{c['data_sha256']}` (decoded pixels). BUSI's licence could not be established from a "
        "primary source (mirrors say CC0, CC BY 4.0 or 'other'): treat it, and these weights "
        "derived from it, as *research use, terms per the original source*, and cite the dataset.",
        "- Tested, never trained or tuned, on **BUS-BRA** (Gomez-Flores et al., *Medical Physics* "
        "51(4), 2024, doi:10.1002/mp.16812), folds 1-2 of its official partition; its licence "
        "(MIT-style) requires citing that article.",
        "",
    ]


def _recipe(c: dict) -> list[str]:
    name = c["name"]
    cfg = c.get("config") or {}
    cfg_keys = CARD_CONFIG_KEYS
    return [
        "## Recipe",
        "",
        f"Configuration hash `{c['config_hash']}`, split seed {c['seed']}"
        + (f", training seed {c['train_seed']}" if c.get("train_seed") is not None else "")
        + f"; the full configuration is `{name}/config.json`.",
        "",
        "| " + " | ".join(k for k in cfg_keys if k in cfg) + " |",
        "|" + "|".join(" --- " for k in cfg_keys if k in cfg) + "|",
        "| " + " | ".join(str(cfg[k]) for k in cfg_keys if k in cfg) + " |",
        "",
        *([f"The experiment's definition in `busi_lib/config.py` now differs from these records "
           f"in {', '.join(f'`{k}`' for k in c['config_differs_from_current_definition'])}: the "
           "records' configuration is what was trained and released.", ""]
          if c.get("config_differs_from_current_definition") else []),
        "Fold records (`results/" + f"{c['profile']}/{c['experiment']}/fold<k>.json`):",
        "",
        _table(c["records"], ["fold", "n_test", "dice_mean", "auc", "accuracy", "epochs",
                              "precision", "train_seconds", "git_commit"]),
        "",
    ]


def _numbers(c: dict, bench: dict[str, Any] | None) -> list[str]:
    f16 = c["float16"]
    oof = c["oof"]
    lines = [
        "## Numbers to expect",
        "",
        f"**BUSI, cross-validation** (out-of-fold: each image predicted by the fold model that "
        f"did not see it, recomputed from the released weights with the predictor's pipeline): "
        f"mean Dice {_f(oof['dice_mean'])}, AUC {_f(oof['auc'])} "
        f"({c['n_lesion_images']} images).",
        "",
        "Calibration of p(malignant): " + cal_sentence(c),
        "",
        fusion_sentence(c.get("fusion") or {"used": False}),
        "",
        _table([{"data": "BUSI CV, before", **oof["calibration_before"]},
                {"data": "BUSI CV, after (cross-fitted)", **oof["calibration_after_crossfit"]}]
               + ([{"data": "BUS-BRA, before", **c["busbra"]["calibration_before"]},
                   {"data": "BUS-BRA, after", **c["busbra"]["calibration_after"]}]
                  if "busbra" in c else []),
               ["data", "images", "malignant", "ECE", "Brier", "Brier of the base rate"]),
        "",
        "BI-RADS-like bands of the calibrated probability (3: <= 2 %, 4A: 2-10 %, 4B: 10-50 %, "
        "4C: 50-95 %, 5: >= 95 %) on BUSI, cross-fitted, with the observed malignant fraction:",
        "",
        _table(oof["bands_crossfit"], ["band", "stated likelihood (%)", "images", "benign",
                                       "malignant", "observed malignant (%)"]),
        "",
    ]
    if "busbra" in c:
        b = c["busbra"]
        lines += [
            f"**BUS-BRA, external** (the released ensemble, unchanged; {b['images']} images of "
            f"{b['patients']} patients, {b['malignant']} malignant): AUC {_f(b['auc'])} (95 % CI "
            f"{_f(b['auc_ci95'][0])}-{_f(b['auc_ci95'][1])}, {b['n_boot']} patient-level "
            f"bootstrap resamples), mean Dice {_f(b['dice_mean'])}"
            + (f", no lesion found on {100 * b['no_lesion_found']:.1f} % of the images"
               if b.get("no_lesion_found") is not None else "") + ". AUC by scanner: "
            + ", ".join(f"{d} {_f(v)}" for d, v in b["auc_by_device"].items()) + ".",
            "",
            _table(b["bands"], ["band", "stated likelihood (%)", "images", "benign", "malignant",
                                "observed malignant (%)"]),
            "",
        ]
        if b.get("operating_points"):
            lines += operating_lines(b, "BUS-BRA")
    else:
        lines += ["**BUS-BRA, external**: not evaluated (BUS-BRA was not found at release).", ""]
    if c.get("operating_points_crossfit"):
        lines += operating_lines({"operating_points": c["operating_points_crossfit"]},
                                 "BUSI (cross-fitted calibration, out of fold)")
    if c.get("ood"):
        lines += ood_lines(c["ood"], c.get("busbra"))
    if c.get("records_external"):
        lines += ["Recorded BUS-BRA numbers of the single fold models:", "",
                  _table(c["records_external"], ["fold", "auc", "dice_mean"]), ""]
    lines += [
        f"**float16 check**: pooled out-of-fold Dice {_f(f16['float32']['dice_mean'], 4)} "
        f"(float32) vs {_f(f16['float16']['dice_mean'], 4)} (float16), AUC "
        f"{_f(f16['float32']['auc'], 4)} vs {_f(f16['float16']['auc'], 4)}: moved by "
        f"{_f(f16['moved']['dice_mean'], 4)} and {_f(f16['moved']['auc'], 4)} (tolerance "
        f"{f16['tolerance']}), so the weights are stored as "
        f"{'float16' if f16['used'] else 'float32'}.",
        "",
    ]
    t = c.get("timing")
    if t:
        lines += [f"**Speed** (measured by the release on {t['cpu_cores']} cores, {t['cpu']}, "
                  f"while the machine did whatever else it was doing): loading the {c['n_folds']} folds and the first prediction "
                  f"{t['load_and_first_predict_s']} s (TensorFlow import not included), one "
                  f"500 x 500 image {t['predict_500px_median_s']} s (median of {t['repeats']}). "
                  "`python -m busi_lib.serve.predictor --bench 20` measures it from a cold start.", ""]
    if bench:
        lines += [f"**Speed, latest `python -m busi_lib.serve.predictor --bench {bench['repeats']}`** "
                  f"({bench['date'][:10]}, {bench['cpu_cores']} cores, {bench['cpu']}, load average "
                  f"before it {bench['load_average_before'][0]}): {bench_text(bench)}.", ""]
    return lines


def _retrain(c: dict) -> list[str]:
    return [
        "## How to retrain",
        "",
        "```bash",
        f".venv/bin/python -m busi_lib.experiments.crossval --profile {c['profile']} --experiment "
        f"{c['experiment']}     # resumable; recorded folds are skipped",
        f".venv/bin/python -m busi_lib.serve.release --profile {c['profile']} --experiment "
        f"{c['experiment']}   # = make model" + ("" if c["profile"] == "cpu" else
                                                  f" PROFILE={c['profile']}"),
        "```",
        "",
        "The fold models are written to `results/<profile>/<experiment>/models/` (not "
        "committed) when each fold finishes; the release needs all of them on the same machine.",
        "",
    ]


def cal_sentence(c: dict) -> str:
    cal = c["calibration"]
    return (f"{cal['describe']} ({cal['fitted_on']}; never on BUS-BRA). On BUSI the 'after' "
            "numbers are cross-fitted: each fold's predictions calibrated by a calibrator fitted "
            "on the other folds.")


def operating_lines(b: dict, data: str) -> list[str]:
    """The card's table of sensitivity and specificity at the calibrated thresholds (and the
    radiologists' BI-RADS points where recorded), from a release record's
    ``operating_points``."""
    op = b["operating_points"]
    rows = list(op["model"]) + list(op.get("radiologists", []))

    def pct(r, k):
        lo, hi = r[k[:4] + "_low"], r[k[:4] + "_high"]
        return f"{100 * r[k]:.1f} ({100 * lo:.1f}-{100 * hi:.1f})"

    out = [f"Operating points on {data} (Wilson 95 % intervals):", "",
           "| reader | sensitivity % | specificity % | cancers missed |", "| --- | --- | --- | --- |"]
    out += [f"| {r['reader']} | {pct(r, 'sensitivity')} | {pct(r, 'specificity')} | "
            f"{r['fn']} of {r['tp'] + r['fn']} |" for r in rows]
    s95 = op["spec_at_sens95"]
    out += ["", f"At the threshold that keeps 95 % sensitivity (read off these same images, so "
                f"flattering) the specificity is {100 * s95['specificity']:.1f} %."]
    if op.get("spec_at_radiologist_sens"):
        r = op["spec_at_radiologist_sens"]
        out[-1] += (f" At the radiologists' sensitivity ({100 * r['sensitivity']:.1f} %) it is "
                    f"{100 * r['specificity']:.1f} %.")
    return out + [""]


def ood_lines(o: dict, busbra: dict | None) -> list[str]:
    """The card's paragraph on the out-of-distribution check (``ood.json``)."""
    line = (f"**Out-of-distribution check** (`ood.json`, `busi_lib.serve.ood`): image statistics "
            f"(grey levels, texture, edges, colour) of each input are compared with BUSI's "
            f"training images; above the threshold {o['threshold']:.2f} (the "
            f"{100 * o['quantile']:.1f} % quantile of held-out BUSI scores; "
            f"{100 * o['held_out_flagged']:.1f} % of held-out BUSI images exceed it) the "
            "predictor warns that the image is unlike its training images and gives no band. "
            "It flags random noise, checkerboards, colour photographs and screenshots of text "
            "(tested); it does not reliably flag a grey photograph.")
    if busbra and busbra.get("out_of_distribution") is not None:
        line += (f" On BUS-BRA (another scanner family, real ultrasound) it flags "
                 f"{100 * busbra['out_of_distribution']:.1f} % of the images.")
    return [line, ""]


def fusion_sentence(f: dict) -> str:
    """The card's sentence on the shape fusion (``fusion.json``)."""
    if not f.get("used"):
        return ("Shape fusion: not shipped (the selection rules of `busi_lib.analysis.fusion_selection`, judged on "
                "BUSI's folds only, did not keep it): `prob_malignant` is the calibrated network's.")
    return (f"Shape fusion (`fusion.json`, kept by the selection rules of `busi_lib.analysis.fusion_selection`): "
            f"`prob_malignant` is a logistic regression on the network's logit and the shape "
            f"descriptors of the predicted mask, fitted on {f['n_fit']} BUSI out-of-fold "
            f"predictions (weights, standardised: {f['describe']}); cross-fitted on BUSI it "
            f"reaches an AUC of {f['auc_crossfit']:.3f}. `prob_malignant_network` keeps the "
            "calibrated network's probability.")
