"""Synthetic BUSI-layout data for the tests (importable as ``synthetic``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from busi_lib.eval import inference


def _lesion_image(rng, size, cls, bright):
    """A grey speckle image with a dark elliptic 'lesion' and its mask."""
    h, w = size
    img = rng.normal(bright, 20, (h, w)).clip(0, 255)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.integers(h // 3, 2 * h // 3), rng.integers(w // 3, 2 * w // 3)
    ry, rx = rng.integers(h // 8, h // 4), rng.integers(w // 8, w // 4)
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    img[mask] = rng.normal(40 if cls == "benign" else 70, 10, mask.sum()).clip(0, 255)
    return img.astype(np.uint8), mask


def make_busi(root: Path, n_benign=8, n_malignant=8, n_normal=0, seed=0, size=(48, 64)) -> Path:
    """Write a BUSI-layout folder with mixed mask formats (as the real release has).

    benign masks are 1-bit, malignant masks 8-bit grey 0/255, one benign image has two masks
    (the second RGBA), normal masks are all-black RGB. Images are RGB with R=G=B.
    """
    rng = np.random.default_rng(seed)
    for cls, n in (("benign", n_benign), ("malignant", n_malignant), ("normal", n_normal)):
        if n == 0:
            continue
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            img, mask = _lesion_image(rng, size, cls, 120 + 5 * i)
            Image.fromarray(np.stack([img] * 3, -1)).save(d / f"{cls} ({i}).png")
            if cls == "normal":
                Image.fromarray(np.zeros(size + (3,), np.uint8)).save(d / f"{cls} ({i})_mask.png")
            elif cls == "benign":
                Image.fromarray(mask).convert("1").save(d / f"{cls} ({i})_mask.png")
            else:
                Image.fromarray(mask.astype(np.uint8) * 255).save(d / f"{cls} ({i})_mask.png")
        if cls == "benign":
            extra = np.zeros(size + (4,), np.uint8)
            extra[2:6, 2:6] = (255, 255, 255, 255)
            Image.fromarray(extra, "RGBA").save(d / "benign (1)_mask_1.png")
    return root


def spy_model_inputs(monkeypatch) -> list:
    """Record every image array the model is shown: the training images (and early-stopping
    validation images) given to ``trainer.fit_model`` and the images given to
    ``inference.network_outputs``. Loading or evaluating BUS-BRA raises. Returns the list the arrays
    are appended to (tests that a choice never sees a test fold)."""
    from busi_lib.experiments import external, trainer

    seen: list[np.ndarray] = []
    real_fit, real_predict = trainer.fit_model, inference.network_outputs

    def spy_fit(cfg, images, masks, labels, **kw):
        seen.append(images.copy())
        if kw.get("val") is not None:
            seen.append(kw["val"][0].copy())
        return real_fit(cfg, images, masks, labels, **kw)

    def spy_predict(model, cfg, images):
        seen.append(images.copy())
        return real_predict(model, cfg, images)

    def no_busbra(*a, **k):
        raise AssertionError("BUS-BRA was loaded while choosing something")

    monkeypatch.setattr(trainer, "fit_model", spy_fit)
    monkeypatch.setattr(inference, "network_outputs", spy_predict)
    monkeypatch.setattr(external, "load_busbra", no_busbra)
    monkeypatch.setattr(external, "evaluate_external", no_busbra)
    return seen
