"""The model chapter 8 shows: the release when there is one, else a tiny demonstration model.

The demonstration model is trained (smoke folds) and released in the cache folder; the book's
views call this module, never the other way round, so the serving layer never trains.
"""

from __future__ import annotations

from pathlib import Path

from busi_lib.config import RELEASED_EXPERIMENT
from busi_lib.data.busi import default_cache_dir
from busi_lib.errors import DataError
from busi_lib.experiments.crossval import run_cv
from busi_lib.records import MODELS_DIR
from busi_lib.serve.modelfiles import verify_release
from busi_lib.serve.release import model_name, release


def demo_model(data_dir=None, *, profile: str = "smoke", experiment: str = "multitask_grouped",
               verbose: bool = False) -> Path:
    """A tiny released model for when no real release exists (tests, CI, the smoke book).

    Trains the ``smoke`` folds of ``experiment`` (well under a minute, deterministic: the same
    folds as the committed smoke records) into the cache folder and releases them there, without
    BUS-BRA. Its predictions are meaningless; it only shows that the machinery works. Reused
    when already made.
    """

    root = default_cache_dir() / "demo_model"
    target = root / "models" / model_name(profile, experiment)
    if (target / "config.json").is_file():
        try:
            verify_release(target)
            return target
        except DataError:
            pass
    run_cv(profile, experiment, data_dir=data_dir, results_dir=root / "results",
           verbose=1 if verbose else 0)
    return release(profile, experiment, results_dir=root / "results", out=root / "models",
                   data_dir=data_dir, external=False, bench_repeats=0,
                   verbose=verbose)


def model_for_book(profile: str, model=None, data_dir=None,
                   experiment: str = "multitask_grouped") -> tuple[Path, bool]:
    """``(model folder, is_demo)`` for the chapter *Try the model*: ``model`` when given, else
    the released ``models/<RELEASED_EXPERIMENT>_<profile>``, else the demonstration model
    (:func:`demo_model` of ``experiment``, trained in the cache on the smoke profile)."""

    if model not in (None, ""):
        return Path(model), False
    released = MODELS_DIR / model_name(profile, RELEASED_EXPERIMENT)
    if (released / "config.json").is_file():
        return released, False
    return demo_model(data_dir, experiment=experiment), True
