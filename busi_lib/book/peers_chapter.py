"""Chapter 10 (*Against the peers*): each section's tables and glued values.

The peers' numbers are shown as they published them, labelled, in their own rows or tables;
ours come from the committed fold records of the experiments of
:data:`busi_lib.config.PEER_EXPERIMENTS`, which rebuild the peers' protocols
(:mod:`busi_lib.data.protocols`).
"""

from __future__ import annotations

import pandas as pd

from busi_lib.analysis import peers
from busi_lib.book import booktext, runs, view
from busi_lib.config import PEER_EXPERIMENTS, experiments, make_config
from busi_lib.data.splits import config_splits_path
from busi_lib.experiments import external
from busi_lib.records import VALIDATION_KIND, load_predictions

#: What the chapter says where a value cannot be computed for want of records.
NA = "not recorded yet"


def _ci(mean: float, lo: float, hi: float) -> str:
    return f"{mean:.3f} ({lo:.3f} to {hi:.3f})"


#: The curated protocol's reference training and its candidate (the peer's oversampling),
#: judged by :func:`busi_lib.analysis.peers.choose_curated_training`.
CURATED, CURATED_CANDIDATE = "peer_curated", "peer_curated_os"


def _epochs(records: list[dict]) -> str:
    """The epochs the records ran, e.g. ``"60"`` or ``"30 or 60"``."""
    return " or ".join(map(str, sorted({int(r["epochs_run"]) for r in records})))


def curated_training(profile: str, seed: int) -> str:
    """Which training of the curated protocol the section shows: :data:`CURATED`, or
    :data:`CURATED_CANDIDATE` once all its folds are recorded and the validation rule
    (:func:`busi_lib.analysis.peers.choose_curated_training`) keeps it. Shows the rule's table
    and verdict, or says how far the candidate is."""
    cand = CURATED_CANDIDATE
    if cand not in experiments(profile):
        return CURATED
    n_folds = make_config(profile, cand)["n_folds"]
    recs = runs.experiment_records(profile, cand, seed=seed)
    what = ("the peer's oversampling (each class repeated about the inverse of its share, as "
            "their loader does) in place of our class weights alone")
    if len(recs) < n_folds:
        done = (f"None of its {n_folds} folds is trained yet" if not recs else
                f"{len(recs)} of its {n_folds} folds {'is' if len(recs) == 1 else 'are'} "
                "trained")
        view.md(f"A second training, `{cand}`, uses {what}. {done}; its rule (the pooled validation 3-class accuracy must "
                "beat this one's, paired bootstrap interval above zero) is judged when all are.")
        return CURATED
    folds = [r["fold"] for r in recs]
    val = {n: load_predictions(profile, n, runs.results_dir_for(seed), kind=VALIDATION_KIND)
           for n in (CURATED, cand)}
    val = {n: v[v["fold"].isin(folds)] if len(v) else v for n, v in val.items()}
    if any(len(v) == 0 or set(v["fold"]) != set(folds) for v in val.values()):
        view.note(f"`{cand}` is trained but the validation predictions of both trainings are not "
                  "all recorded, so it is not judged (`python -m busi_lib.experiments.crossval "
                  f"--validation-predictions --experiment {cand}` writes them).")
        return CURATED
    choice = peers.choose_curated_training(val[CURATED], val[cand], seed=seed)
    acc = choice["accuracy"]
    view.show(pd.DataFrame([{"training": f"{CURATED} (class weights)",
                             "3-class accuracy, validation parts": acc["reference"]},
                            {"training": f"{cand} (the peer's oversampling)",
                             "3-class accuracy, validation parts": acc["candidate"]}]),
              f"Two trainings on the curated protocol, judged on the {choice['n']} validation "
              "images of the folds (never a test fold)", decimals=3)
    view.md(f"`{cand}` uses {what}. On the validation parts it changes the 3-class accuracy by "
            f"{choice['difference']:+.3f} (95 % paired bootstrap interval {choice['low']:+.3f} "
            f"to {choice['high']:+.3f}), so "
            + (f"it replaces `{CURATED}` below." if choice["kept"] else
               f"`{CURATED}` stays (the rule, fixed before its folds ran, asks for an interval "
               "above zero)."))
    ref_recs = runs.experiment_records(profile, CURATED, seed=seed)
    folds_table = split_table(profile, cand, seed)
    if folds_table is not None and ref_recs:
        budgets = {n: peers.training_budget(folds_table, r) for n, r in
                   ((CURATED, ref_recs), (cand, recs))}
        view.show(pd.DataFrame([{"training": n, "epochs": b["epochs"],
                                 "images per epoch": b["images_per_epoch"],
                                 "gradient steps per fold": b["steps"]}
                                for n, b in budgets.items()]),
                  "How long each training ran (mean over the folds)", decimals=0)
        said = peers.budget_sentence(CURATED, budgets[CURATED], cand, budgets[cand])
        if said:
            view.md(said)
    return cand if choice["kept"] else CURATED


def split_table(profile: str, name: str, seed: int) -> pd.DataFrame | None:
    """The committed fold table (``results/splits/``) of experiment ``name``, or ``None``."""
    cfg = make_config(profile, name, **({} if int(seed) == runs.DEFAULT_SEED else {"seed": seed}))
    path = config_splits_path(cfg, runs.results_dir_for(seed))
    return pd.read_csv(path) if path.is_file() else None


def curated(profile: str, seed: int, level: float = 0.95) -> pd.DataFrame | None:
    """The Curated-BUSI section: ours beside the peer's reported numbers, per fold, and what
    differs. Returns the summary (``None`` without records)."""
    name = CURATED
    rep = peers.PEER_REPORTED[CURATED]
    if name not in experiments(profile):
        view.note(f"profile `{profile}` does not define `{name}`.")
        booktext.glue("peer_curated_opening", f"profile `{profile}` does not define it")
        return None
    recs = runs.experiment_records(profile, name, seed=seed)
    pred = runs.predictions(profile, name, seed=seed, records=recs) if recs else None
    if not recs or pred is None or pred.empty:
        view.note(f"`{name}` has no recorded fold yet: ours is {NA}.")
        booktext.glue("peer_curated_opening", f"our network on this protocol is {NA}")
        return None
    shown_name = curated_training(profile, seed)
    if shown_name != name:
        name = shown_name
        recs = runs.experiment_records(profile, name, seed=seed)
        pred = runs.predictions(profile, name, seed=seed, records=recs)
    weights = {r["fold"]: r["class_weights"] for r in recs}
    val = load_predictions(profile, name, runs.results_dir_for(seed), kind=VALIDATION_KIND)
    val = val[val["fold"].isin(list(weights))] if len(val) else val
    if len(val) and set(val["fold"]) == set(weights):
        choice = peers.choose_class_call(val, weights, seed=seed)
        view.show(class_call_table(choice), "The three-class call, chosen on the validation "
                  "parts (never a test fold): 3-class accuracy of each call", decimals=3)
        view.md(class_call_sentence(choice))
        call = choice["chosen"]
    else:
        view.note("The folds' validation predictions are not all recorded, so the three-class "
                  "call is the arg-max (`python -m busi_lib.experiments.crossval "
                  f"--validation-predictions --experiment {name}` writes them).")
        call = peers.CLASS_CALLS[0]
    pred = peers.apply_class_call(pred, weights, call)
    per_fold = peers.curated_fold_metrics(pred)
    summary = peers.curated_summary(per_fold, level)
    shown = summary.rename(columns={"low": f"{level:.0%} low", "high": f"{level:.0%} high"})
    view.show(shown, "Curated BUSI, 4-fold protocol: ours (mean of the test folds, t interval; "
                     f"training `{name}`, three-class call: {call}) beside the peer's reported "
                     "value", decimals=3)
    view.md(f"The peer's values: {rep['peer']}, {rep['source']}.")
    view.show(per_fold.rename(columns={"fold": "test fold"}).assign(
        **{"test fold": per_fold["fold"] + 1}), "Ours per test fold", decimals=3)
    refined = peers.curated_summary(peers.curated_fold_metrics(peers.peer_refine(pred)), level)
    view.show(refined.rename(columns={"low": f"{level:.0%} low", "high": f"{level:.0%} high"}),
              "The same predictions with the peer's prediction refining (a lesion called normal "
              "loses its mask; an empty mask makes the image normal), as their reported values "
              "were made", decimals=3)
    view.md(refining_sentence(pred, summary, refined))
    missed = peers.missed_lesions_table(pred)
    view.show(missed, "Where the lesion Dice is lost: lesions with no mask at all, and the Dice "
                      "of those with one (this second Dice selects images by our output: it "
                      "explains, it is not comparable with the peer's)", decimals=3)
    view.md(peers.missed_lesions_sentence(missed))
    view.show(peers.differences(name, _epochs(recs)), "What differs")
    s = summary.set_index("metric")
    parts = [f"{m.split(', ')[1] if ', ' in m else m} "
             f"{_ci(*s.loc[m, ['ours, mean of folds', 'low', 'high']])}"
             for m in ("Dice, benign images", "Dice, malignant images", "3-class accuracy")]
    peer = rep["metrics"]
    booktext.glue("peer_curated_opening",
                  f"our network reaches Dice on {parts[0]}, Dice on {parts[1]} and "
                  f"{parts[2]} (mean of {len(per_fold)} test folds, {level:.0%} t interval); "
                  f"they report {peer['Dice, benign images']:.3f}, "
                  f"{peer['Dice, malignant images']:.3f} and {peer['3-class accuracy']:.3f}")
    return summary


def class_call_table(choice: dict) -> pd.DataFrame:
    """:func:`busi_lib.analysis.peers.choose_class_call`'s result, one row per call."""
    rows = []
    for c, a in choice["accuracy"].items():
        d = choice["candidates"].get(c)
        rows.append({"three-class call": c, "3-class accuracy, validation parts": a,
                     "difference from arg-max": "" if d is None else
                     f"{d['difference']:+.3f} ({d['low']:+.3f} to {d['high']:+.3f}, "
                     f"{d['level']:.1%})",
                     "chosen": "yes" if c == choice["chosen"] else ""})
    return pd.DataFrame(rows)


def class_call_sentence(choice: dict) -> str:
    """The choice of the three-class call, in one sentence."""
    said = [f"{c} changed it by {d['difference']:+.3f} ({d['level']:.1%} interval "
            f"{d['low']:+.3f} to {d['high']:+.3f})" for c, d in choice["candidates"].items()]
    chosen = choice["chosen"]
    return (f"On the {choice['n']} validation images of the {choice['folds']} folds, the "
            f"arg-max call has a 3-class accuracy of {choice['accuracy']['arg-max']:.3f}; "
            + "; ".join(said) + ". "
            + ("No interval is above zero, so the test folds are called by the arg-max"
               if chosen == "arg-max" else f"So the test folds are called by {chosen}")
            + " (each rule was fixed before the numbers it judges existed).")


def refining_sentence(pred: pd.DataFrame, raw: pd.DataFrame, refined: pd.DataFrame) -> str:
    """What the peer's prediction refining does to ours, and why, in two sentences."""
    lesion = pred["true_class"] != "normal"
    called = int(((pred["pred_class"] == "normal") & lesion).sum())
    r, f = raw.set_index("metric"), refined.set_index("metric")
    m = "ours, mean of folds"
    return (f"With the peer's refining, ours moves from {r.loc['Dice, benign images', m]:.3f} to "
            f"{f.loc['Dice, benign images', m]:.3f} on benign images, from "
            f"{r.loc['Dice, malignant images', m]:.3f} to "
            f"{f.loc['Dice, malignant images', m]:.3f} on malignant ones and from "
            f"{r.loc['Dice, normal images', m]:.3f} to {f.loc['Dice, normal images', m]:.3f} on "
            f"normal ones; the 3-class accuracy goes from {r.loc['3-class accuracy', m]:.3f} to "
            f"{f.loc['3-class accuracy', m]:.3f}. Refining pays only where the classifier "
            f"rarely calls a lesion normal, and ours calls {called} of {int(lesion.sum())} "
            "lesions normal.")


def grouped_locked(profile: str, seed: int, n_boot: int = 1000) -> pd.DataFrame | None:
    """The grouped, locked-test section: ours (pooled out-of-fold, locked test and BUS-BRA
    AUCs of the fold models) beside the peer's reported ranges. Returns the summary."""
    name = "peer_grouped_locked"
    rep = peers.PEER_REPORTED[name]
    if name not in experiments(profile):
        booktext.glue("peer_grouped_locked_opening", f"profile `{profile}` does not define it")
        return None
    recs = runs.experiment_records(profile, name, seed=seed)
    if not recs:
        booktext.glue("peer_grouped_locked_opening", f"our network on this protocol is {NA}")
        view.md(f"`{name}`: ours is {NA}.")
        view.show(_reported_rows(name), f"Reported by {rep['peer']}")
        view.md(f"Source: {rep['source']}.")
        return None
    folds = [r["fold"] for r in recs]
    oof = runs.predictions(profile, name, seed=seed, records=recs)
    locked = load_predictions(profile, name, runs.results_dir_for(seed), kind="locked")
    locked = locked[locked["fold"].isin(folds)] if len(locked) else None
    ens, _ = external.load_ensemble(profile, name, runs.results_dir_for(seed), folds=folds)
    summary = peers.grouped_locked_summary(oof, locked, ens, n_boot=n_boot, seed=seed)
    view.show(summary.rename(columns={"low": "95% low", "high": "95% high"}),
              f"Grouped folds with a locked test set: ours ({len(recs)} fold model(s); bootstrap "
              f"intervals, {n_boot} resamples) beside the peer's reported range", decimals=3)
    view.md(f"The peer's values: {rep['peer']}, {rep['source']}.")
    booktext.glue("peer_grouped_locked_opening", grouped_locked_sentence(summary, len(recs)))
    return summary


def grouped_locked_sentence(summary: pd.DataFrame, n_models: int) -> str:
    """The grouped, locked-test comparison in one sentence (for the introduction)."""
    s = summary.set_index("metric")
    rep = peers.PEER_REPORTED["peer_grouped_locked"]["metrics"]
    parts = [f"{m} {s.loc[m, 'ours']:.3f} ({s.loc[m, 'low']:.3f} to {s.loc[m, 'high']:.3f}; "
             f"theirs {rep[m][0]:.3f} to {rep[m][1]:.3f})" for m in s.index if m in rep]
    return (f"with {n_models} fold model{'' if n_models == 1 else 's'} from scratch at 128 px "
            f"against their ImageNet "
            f"DenseNet121 at 224 px, ours reaches " + ", ".join(parts))


def segbench(profile: str, seed: int, level: float = 0.95) -> dict[str, pd.DataFrame]:
    """The segmentation-benchmark section: ours on the three published splits, at their 256 px
    and at our 128 px, beside the peer's reported Dice and IoU. Returns the summaries by
    experiment (those recorded)."""
    rep = peers.PEER_REPORTED["peer_segbench"]
    out, recorded = {}, {}
    for name, size in (("peer_segbench", "256 px, as theirs"),
                       ("peer_segbench_128", "128 px, ours: an approximation")):
        if name not in experiments(profile):
            continue
        recs = recorded[name] = runs.experiment_records(profile, name, seed=seed)
        if not recs:
            view.md(f"`{name}` ({size}): {NA}.")
            continue
        out[name] = peers.segbench_summary(recs, level)
        view.show(out[name].rename(columns={"low": f"{level:.0%} low",
                                            "high": f"{level:.0%} high"}),
                  f"Segmentation benchmark, {size}: ours (mean of {len(recs)} splits, t "
                  "interval) beside the peer's reported value", decimals=3)
    view.md(f"The peer's values: {rep['peer']}, {rep['source']}.")
    n_planned = (make_config(profile, "peer_segbench")["n_folds"]
                 if "peer_segbench" in recorded else 0)
    if len(recorded) == 2:
        by_size = peers.segbench_size_table(recorded["peer_segbench_128"],
                                            recorded["peer_segbench"])
        if len(by_size):
            view.show(by_size, "The same splits at both image sizes: mean per-image Dice",
                      decimals=3)
        view.md(peers.segbench_size_sentence(by_size, n_planned))
    if recorded:
        sizes = " or ".join(f"{make_config(profile, n)['image_size']} px ({n})"
                            for n in recorded)
        all_recs = [r for recs in recorded.values() for r in recs]
        view.show(peers.differences("peer_segbench", _epochs(all_recs) or "no", sizes),
                  "What differs")
    for name, summary in out.items():
        d = summary.set_index("metric").loc["Dice, mean per image"]
        booktext.glue(f"{name}_dice", _ci(d["ours, mean of splits"], d["low"], d["high"]))
    booktext.glue("peer_segbench_opening", segbench_sentence(out, n_planned))
    return out


def segbench_sentence(summaries: dict[str, pd.DataFrame], n_planned: int) -> str:
    """The segmentation-benchmark comparison in one sentence (for the introduction), from
    :func:`segbench`'s summaries by experiment."""
    peer = peers.PEER_REPORTED["peer_segbench"]["metrics"]["Dice, CMUNeXt"]
    sizes = {"peer_segbench": "at their 256 px", "peer_segbench_128": "at our 128 px"}
    parts = []
    for name, where in sizes.items():
        if name not in summaries:
            continue
        d = summaries[name].set_index("metric").loc["Dice, mean per image"]
        n = int(d["splits"])
        of = f"{n} of its {n_planned} splits" if n < n_planned else f"its {n} splits"
        value = (f"{d['ours, mean of splits']:.3f}" if n < 2 else
                 _ci(d["ours, mean of splits"], d["low"], d["high"]))
        parts.append(f"{value} {where} (mean of {of})")
    if not parts:
        return f"our network is {NA}; CMUNeXt reports a Dice of {peer:.3f}"
    return ("our network's mean per-image Dice is " + " and ".join(parts)
            + f", against the {peer:.3f} CMUNeXt reports")


def _reported_rows(name: str) -> pd.DataFrame:
    return pd.DataFrame([{"metric": m, "reported": (f"{v[0]:.3f} to {v[1]:.3f}"
                                                    if isinstance(v, tuple) else f"{v:.3f}")}
                         for m, v in peers.PEER_REPORTED[name]["metrics"].items()])


def reported_only(name: str) -> None:
    """A peer's reported numbers alone, labelled."""
    rep = peers.PEER_REPORTED[name]
    view.show(_reported_rows(name), f"Reported by {rep['peer']}")
    view.md(f"Source: {rep['source']}.")


def how_made(profile: str, seed: int) -> None:
    """The closing section: where each of our rows comes from."""
    for name in PEER_EXPERIMENTS:
        if name in experiments(profile):
            recs = runs.experiment_records(profile, name, seed=seed)
            if recs:
                runs.show_provenance(recs, name)
            else:
                view.md(f"`{name}`: {NA}.")
