"""busi_lib.experiments.crossval: determinism, kill-and-resume, recorded folds skipped, integrity checks.

Tiny configuration: the smoke profile on 8 + 8 synthetic images, fold 0 of 2, 3 epochs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("keras")

from busi_lib.errors import ConfigError, DataError  # noqa: E402
from busi_lib.experiments import crossval  # noqa: E402

pytestmark = pytest.mark.slow
TINY = dict(folds=[0], epochs=3, external=False)
RECORD_FIELDS = {"experiment", "profile", "fold", "seed", "config", "config_hash", "data_sha256",
                 "git_commit", "versions", "wall_seconds", "n_train", "n_test", "metrics",
                 "history", "determinism", "precision"}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from synthetic import make_busi

    return make_busi(tmp_path_factory.mktemp("busi") / "Dataset_BUSI_with_GT")


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    """One uninterrupted run, shared by the determinism and resume tests."""
    res = tmp_path_factory.mktemp("ref")
    os.environ["BUSI_CACHE"] = str(res / "cache")
    rec = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                       **TINY)[0]
    return rec, res


def _preds(res: Path, exp="multitask"):
    return pd.read_csv(res / "smoke" / exp / "fold0_predictions.csv")


def test_record_contents(reference):
    rec, res = reference
    assert RECORD_FIELDS <= set(rec)
    assert rec["n_train"] == 8 and rec["n_test"] == 8 and rec["epochs_run"] == 3
    assert len(rec["history"]) == 3 and rec["history"][0]["epoch"] == 1
    assert {"seg_DC_mean", "seg_DC_pooled", "seg_JSI_mean", "cls_AUC", "cls_SPE"} <= set(rec["metrics"])
    assert rec["metrics"]["seg_DC_mean"] >= rec["metrics"]["seg_JSI_mean"]
    p = _preds(res)
    assert list(p.columns[:2]) == ["id", "true_class"] and len(p) == 8
    assert {"prob_malignant", "dice", "pred_class"} <= set(p.columns)
    saved = json.loads((res / "smoke" / "multitask" / "fold0.json").read_text())
    assert saved["metrics"] == rec["metrics"]
    assert (res / "splits").is_dir() and len(list((res / "splits").glob("*.csv"))) == 1


def test_same_seed_same_numbers_other_seed_other_numbers(reference, tiny_data, tmp_path):
    rec, res = reference
    again = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=tmp_path / "a",
                         verbose=0, **TINY)[0]
    assert again["metrics"] == rec["metrics"]
    assert [h["loss"] for h in again["history"]] == [h["loss"] for h in rec["history"]]
    pd.testing.assert_frame_equal(_preds(tmp_path / "a"), _preds(res))
    other = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=tmp_path / "b",
                         verbose=0, seed=7, **TINY)[0]
    assert other["seed"] == 7
    assert [h["loss"] for h in other["history"]] != [h["loss"] for h in rec["history"]]


def test_train_seed_keeps_the_split_and_changes_the_training(reference, tiny_data, tmp_path):
    rec, res = reference
    other = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=tmp_path / "t",
                         verbose=0, train_seed=7, **TINY)[0]
    assert other["seed"] == 42 and other["determinism"]["keras_seed"] == 7 + 0
    assert other["config_hash"] != rec["config_hash"]
    # same test images (the split comes from seed 42), other weights and losses
    assert list(_preds(tmp_path / "t")["id"]) == list(_preds(res)["id"])
    assert [h["loss"] for h in other["history"]] != [h["loss"] for h in rec["history"]]


def test_recorded_fold_is_skipped_and_never_overwritten(reference, tiny_data, monkeypatch):
    rec, res = reference
    monkeypatch.setattr(crossval, "train_fold", lambda *a, **k: pytest.fail("retrained"))
    again = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                         **TINY)[0]
    assert again == rec
    path = res / "smoke" / "multitask" / "fold0.json"
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="config_hash"):
        crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                     folds=[0], epochs=4, external=False)
    assert path.read_bytes() == before


def test_changed_data_is_reported_before_training(reference, tiny_data, tmp_path, monkeypatch):
    import shutil

    from PIL import Image

    rec, res = reference
    changed = tmp_path / "changed"
    shutil.copytree(tiny_data, changed)
    p = changed / "malignant" / "malignant (3).png"
    arr = __import__("numpy").asarray(Image.open(p)).copy()
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(p)
    monkeypatch.setattr(crossval, "train_fold", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(DataError, match=r"changed 1 \(e.g. \['malignant/malignant \(3\).png'\]\)"):
        crossval.run_cv("smoke", "multitask", data_dir=changed, results_dir=res, verbose=0, **TINY)
    (changed / "benign" / "benign (8).png").unlink()
    (changed / "benign" / "benign (8)_mask.png").unlink()
    with pytest.raises(DataError, match="missing 2"):
        crossval.run_cv("smoke", "multitask", data_dir=changed, results_dir=res, verbose=0, **TINY)


def test_killed_run_resumes_to_the_same_record(reference, tiny_data, tmp_path):
    """SIGKILL a real training process after its first checkpoint, run again, compare."""
    rec, _ = reference
    res = tmp_path / "res"
    cmd = [sys.executable, "-m", "busi_lib.experiments.crossval", "--profile", "smoke", "--experiment",
           "multitask", "--data-dir", str(tiny_data), "--results-dir", str(res), "--folds", "0",
           "--epochs", "3", "--set", "external=false"]
    env = {**os.environ, "BUSI_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = res / "smoke" / "multitask" / "checkpoints" / "fold0" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (res / "smoke" / "multitask" / "fold0.json").exists()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 3
    resumed = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                           **TINY)[0]
    assert resumed["resumed_at"] == [done]
    assert resumed["metrics"] == rec["metrics"]
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in rec["history"]]
    pd.testing.assert_frame_equal(_preds(res), _preds(reference[1]))
    # no temporary files left behind next to the records
    assert not [p for p in (res / "smoke" / "multitask").iterdir() if p.name.startswith(".")]


def test_stop_after_epochs_then_continue(reference, tiny_data, tmp_path):
    rec, _ = reference
    res = tmp_path / "r"
    assert crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                        stop_after_epochs=2, **TINY) == []
    out = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                       **TINY)[0]
    assert out["resumed_at"] == [2] and out["metrics"] == rec["metrics"]


def test_diverged_training_is_stopped_recorded_as_a_failure_and_skipped(tiny_data, tmp_path,
                                                                        monkeypatch):
    """A loss that turns NaN in epoch 2 stops the training there: the fold is not evaluated,
    its failure is written (not as a fold record), and the next call skips it."""
    import keras

    from busi_lib import records

    fit = keras.Model.fit

    def nan_from_epoch_2(self, *a, **k):
        h = fit(self, *a, **k)
        if k.get("initial_epoch", 0) >= 1:
            h.history["loss"][-1] = float("nan")
        return h

    monkeypatch.setattr(keras.Model, "fit", nan_from_epoch_2)
    res = tmp_path / "r"
    out = crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                       **TINY)
    assert out == []
    folder = records.experiment_dir("smoke", "multitask", res)
    assert not (folder / "fold0.json").exists() and records.load_records(
        "smoke", "multitask", res) == []
    fail = json.loads((folder / "diverged_fold0.json").read_text())
    assert fail["diverged_at"] == 2 and len(fail["history"]) == 2
    assert fail["history"][-1]["loss"] != fail["history"][-1]["loss"]          # NaN
    assert [d["fold"] for d in records.load_divergences("smoke", "multitask", res)] == [0]
    assert not (folder / "checkpoints" / "fold0").exists()
    monkeypatch.setattr(crossval, "train_fold", lambda *a, **k: pytest.fail("retrained"))
    assert crossval.run_cv("smoke", "multitask", data_dir=tiny_data, results_dir=res, verbose=0,
                        **TINY) == []


def test_validation_predictions_score_exactly_the_validation_part(reference, tiny_data,
                                                                   tmp_path, monkeypatch):
    """The fold model scores the rows of its fold's validation part and nothing else (never a
    test image); a second call writes nothing; a folds table without a validation part and a
    missing fold model are refused with what to do."""
    import shutil

    import numpy as np

    from synthetic import spy_model_inputs

    rec, res = reference
    work = tmp_path / "res"
    shutil.copytree(res, work)
    folder = work / "smoke" / "multitask"
    with pytest.raises(ConfigError, match="fold 0 has no validation part"):
        crossval.validation_predictions("smoke", "multitask", data_dir=tiny_data,
                                        results_dir=work, verbose=False, **TINY)
    real_parts = crossval.fold_parts

    def with_val(folds, k):                     # a protocol with a validation part
        train, _, test = real_parts(folds, k)
        return train[3:], train[:3], test
    monkeypatch.setattr(crossval, "fold_parts", with_val)
    seen = spy_model_inputs(monkeypatch)
    written = crossval.validation_predictions("smoke", "multitask", data_dir=tiny_data,
                                              results_dir=work, verbose=False, **TINY)
    assert written == [folder / "fold0_validation.csv"]
    val = pd.read_csv(written[0])
    assert len(val) == 3 and not set(val["id"]) & set(_preds(work)["id"])
    assert len(seen) == 1 and len(seen[0]) == 3
    log = json.loads((folder / "validation.json").read_text())
    assert log["0"]["n"] == 3 and len(log["0"]["model_sha256"]) == 64
    # the test-fold tables are untouched and do not pick the validation table up
    from busi_lib.records import load_predictions
    assert len(load_predictions("smoke", "multitask", work)) == 8
    assert np.array_equal(load_predictions("smoke", "multitask", work, kind="validation")["id"],
                          val["id"])
    assert crossval.validation_predictions("smoke", "multitask", data_dir=tiny_data,
                                           results_dir=work, verbose=False, **TINY) == []
    written[0].unlink()
    (folder / "models" / "fold0.keras").unlink()
    with pytest.raises(ConfigError, match="fold0.keras not found: the fold models are not "
                                          "committed"):
        crossval.validation_predictions("smoke", "multitask", data_dir=tiny_data,
                                        results_dir=work, verbose=False, **TINY)
