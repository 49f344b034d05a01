"""An experiment's fold records for a chapter: loaded (never trained), current, with provenance.

Records are kept to today's configuration of the experiment; the provenance line names
where they come from (profile, seed, data hash, commit, folds); predictions are read per fold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from busi_lib.book.view import md, note
from busi_lib.config import book_experiments, config_hash, make_config
from busi_lib.data.busi import load_busi
from busi_lib.errors import ConfigError
from busi_lib.records import load_predictions, load_records, results_root

#: The seed of the recorded runs; another seed writes its records under ``results/seed<k>``.
DEFAULT_SEED = 42


def results_dir_for(seed: int) -> Path | None:
    """``None`` (the default results folder) for the default seed, else ``results/seed<k>``.

    Records of one experiment and profile live in one folder per configuration, so a run with
    another seed must not write beside the default one (``run_cv`` refuses to mix them).
    """
    if int(seed) == DEFAULT_SEED:
        return None

    return results_root() / f"seed{int(seed)}"


def experiment_records(profile: str, experiment: str, *, seed: int = DEFAULT_SEED,
                       folds: Sequence[int] | None = None, **overrides) -> list[dict]:
    """The fold records of ``experiment`` in ``profile`` made with its current configuration.

    A view never trains: folds that are planned (``folds``, default all of the configuration's)
    but not recorded are named in a note with the command that trains them; records of another
    configuration are left out, with a note. A bad parameter raises :class:`ConfigError`.
    """
    ov = dict(overrides)
    if int(seed) != DEFAULT_SEED:
        ov["seed"] = int(seed)
    if folds is not None:
        ov["folds"] = [int(k) for k in folds]
    cfg = make_config(profile, experiment, **ov)
    recs = load_records(profile, experiment, results_dir_for(seed))
    chash = config_hash(cfg)
    stale = [r for r in recs if r.get("config_hash") != chash]
    if stale:
        note(f"`{experiment}` ({profile}): {len(stale)} recorded fold(s) were made with another "
             f"configuration (hash {stale[0].get('config_hash')}, now {chash}) and are left out.")
    current = [r for r in recs if r.get("config_hash") == chash]
    planned = list(cfg["folds"]) if cfg["folds"] is not None else list(range(cfg["n_folds"]))
    missing = sorted(set(planned) - {r["fold"] for r in current})
    if missing:
        seed_arg = (f" --set seed={int(seed)} --results-dir results/seed{int(seed)}"
                    if int(seed) != DEFAULT_SEED else "")
        note(f"`{experiment}` ({profile}): fold(s) {', '.join(str(k + 1) for k in missing)} not "
             f"recorded; `busi-train --profile {profile} --experiment {experiment}{seed_arg}` "
             "trains them" + (" (`make results`: every experiment of the book)."
                              if experiment in book_experiments(profile) else "."))
    return current


def current_records(profile: str, experiment: str, results_dir=None) -> tuple[dict, list[dict]]:
    """``(config, records)``: today's configuration of ``experiment`` and its fold records made
    with that configuration (records of another configuration hash are left out)."""

    cfg = make_config(profile, experiment)
    chash = config_hash(cfg)
    return cfg, [r for r in load_records(profile, experiment, results_dir)
                 if r.get("config_hash") == chash]


def fold_record(profile: str, experiment: str, fold: int, results_dir=None) -> dict | None:
    """The record of ``fold`` made with today's configuration of ``experiment``, or None (also
    for an experiment unknown to this code)."""
    try:
        _, recs = current_records(profile, experiment, results_dir)
    except ConfigError:
        return None
    return next((r for r in recs if r["fold"] == fold), None)


def planned_folds(profile: str, experiment: str) -> list[int]:
    """The folds today's configuration of ``experiment`` trains (light ones: fewer)."""

    cfg = make_config(profile, experiment)
    return list(cfg["folds"]) if cfg["folds"] is not None else list(range(cfg["n_folds"]))


def short_commit(c: str | None) -> str:
    """A git commit shortened to 7 characters (``+dirty`` kept), ``unknown`` when missing."""
    if not c:
        return "unknown"
    dirty = c.endswith("+dirty")
    return c.split("+")[0][:7] + ("+dirty" if dirty else "")


def provenance(records: list[dict], experiment: str | None = None) -> str:
    """One line naming what the numbers come from: profile, seed (and the training seed where
    it differs from the split's), data, commit, folds."""
    if not records:
        return f"`{experiment}`: no records"
    r0 = records[0]
    exp = experiment or r0.get("experiment", "?")
    n_folds = r0["config"]["n_folds"]
    seeds = sorted({r["seed"] for r in records})
    train_seeds = sorted({r["config"].get("train_seed") for r in records} - {None})
    data = sorted({r["data_sha256"][:8] for r in records})
    commits = sorted({short_commit(r.get("git_commit")) for r in records})
    prec = sorted({r.get("precision", "?") for r in records})
    folds = ", ".join(str(r["fold"] + 1) for r in records)
    return (f"`{exp}` · profile **{r0['profile']}** · seed {', '.join(map(str, seeds))}"
            + (f" (split), training seed {', '.join(map(str, train_seeds))}" if train_seeds else "")
            + " · "
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

    cfg = records[0]["config"]
    return load_busi(data_dir, image_size=cfg["image_size"], classes=cfg["classes"],
                     enhancement=cfg["enhancement"], max_per_class=cfg["max_per_class"])


def predictions(profile: str, experiment: str, kind: str = "predictions",
                seed: int = DEFAULT_SEED, records: list[dict] | None = None) -> pd.DataFrame:
    """Per-image predictions of all recorded folds (only folds of ``records`` when given)."""

    df = load_predictions(profile, experiment, results_dir_for(seed), kind=kind)
    if records is not None and not df.empty:
        df = df[df["fold"].isin([r["fold"] for r in records])].reset_index(drop=True)
    return df
