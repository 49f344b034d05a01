"""Released-model files: their sha256, the model card's file table, and the check against it.

A released model is a folder ``models/<name>/`` (written by :mod:`busi_lib.serve.release`) beside
its model card ``models/README.md``, whose table lists every file with its sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from busi_lib.config import RELEASED_EXPERIMENT
from busi_lib.errors import DataError
from busi_lib.records import sha256_file  # noqa: F401  (part of this module's interface)

#: Where released models live; the default model is ``MODELS_DIR / DEFAULT_MODEL``.
DEFAULT_MODEL = f"{RELEASED_EXPERIMENT}_cpu"
_WEIGHTS_RE = re.compile(r"^fold(\d+)\.weights\.h5$")
_CARD_ROW = re.compile(r"^\|\s*`?([\w.\-/]+)`?\s*\|\s*[\d,]+\s*\|\s*`?([0-9a-f]{64})`?\s*\|")


def weights_files(model_dir: str | os.PathLike) -> list[Path]:
    """The ``fold<k>.weights.h5`` files of a released model, in fold order."""
    files = [p for p in Path(model_dir).iterdir() if _WEIGHTS_RE.match(p.name)]
    return sorted(files, key=lambda p: int(_WEIGHTS_RE.match(p.name).group(1)))


def ensemble_sha256(files: Sequence[Path], hashes: dict[str, str] | None = None) -> str:
    """sha256 of the weights files together: the sha256 of the lines ``<sha256>  <name>``, as
    ``sha256sum fold*.weights.h5 | sha256sum`` prints it in the model folder."""
    lines = "".join(f"{(hashes or {}).get(p.name) or sha256_file(p)}  {p.name}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def read_card(card: str | os.PathLike) -> dict[str, str]:
    """``relative path -> sha256`` from the file table of a model card (``models/README.md``)."""
    out = {}
    for line in Path(card).read_text().splitlines():
        m = _CARD_ROW.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def verify_release(model_dir: str | os.PathLike, card: str | os.PathLike | None = None
                   ) -> dict[str, str]:
    """Check every file of a released model against the model card; return ``name -> sha256``.

    ``card`` defaults to ``README.md`` in the folder above the model folder.

    Raises
    ------
    DataError
        No card, a file the card does not list, a file the card lists that is missing, or a
        sha256 that differs (the message names the file and both hashes).
    """
    d = Path(model_dir)
    card = Path(card) if card is not None else d.parent / "README.md"
    if not card.is_file():
        raise DataError(f"model card {str(card)!r} not found; a released model is checked against "
                        "its card (written by `python -m busi_lib.serve.release`)")
    listed = {k.split("/", 1)[1]: v for k, v in read_card(card).items()
              if k.startswith(d.name + "/")}
    if not listed:
        raise DataError(f"model card {str(card)!r} lists no file of {d.name!r}; expected rows "
                        f"'| {d.name}/<file> | bytes | sha256 |'")
    present = {p.name for p in d.iterdir() if p.is_file()}
    checked = {n for n in present if _WEIGHTS_RE.match(n) or n in ("config.json",
                                                                      "calibration.json")}
    unlisted = sorted(checked - set(listed))
    if unlisted:
        raise DataError(f"{unlisted} in {str(d)!r} not listed in the model card {str(card)!r}; "
                        "expected only the released files")
    missing = sorted(set(listed) - present)
    if missing:
        raise DataError(f"{missing} listed in the model card {str(card)!r} but missing from "
                        f"{str(d)!r}")
    out = {}
    for name, want in sorted(listed.items()):
        got = sha256_file(d / name)
        if got != want:
            raise DataError(f"{str(d / name)!r} has sha256 {got}, but the model card says {want}: "
                            "the file changed or is corrupt; download or release it again")
        out[name] = got
    return out


def to_float16(src: Path, dst: Path) -> None:
    """Copy a Keras ``.weights.h5`` file with every float32 array stored as float16 (Keras casts
    them back to the variables' float32 when it loads them)."""
    import h5py

    def copy(a, b):
        for k, v in a.attrs.items():
            b.attrs[k] = v
        for k, v in a.items():
            if isinstance(v, h5py.Dataset):
                arr = v[()]
                if isinstance(arr, np.ndarray) and arr.dtype == np.float32:
                    arr = arr.astype(np.float16)
                d = b.create_dataset(k, data=arr)
                for kk, vv in v.attrs.items():
                    d.attrs[kk] = vv
            else:
                copy(v, b.create_group(k))

    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        copy(a, b)
