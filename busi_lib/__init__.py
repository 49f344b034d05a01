"""busi_lib: the library behind the BUSI multi-task book, in layers, each a sub-package.

``config``, ``records`` and ``errors`` sit at the root; then, from the bottom up:

- ``data``: BUSI, BUS-BRA, images, folds, enhancement, augmentation;
- ``nn``: the Residual-U-Net, the baselines, losses, optimisers, building and loading networks;
- ``eval``: inference, metrics, mask shape, calibration, operating points, shape fusion;
- ``experiments``: training one network, cross-validation, tuning, shift, reruns, benchmarks;
- ``analysis``: statistics, comparisons, leakage, context reliance, the paper's claims;
- ``serve``: the predictor, users' images, the out-of-distribution check, the release;
- ``book``: what the chapters show, and the build.

A module imports only from its own layer and the layers below it; ``serve`` imports only from
``data``, ``nn`` and ``eval``; nothing imports ``book`` (``tests/test_structure.py``). The layers
from ``nn`` up import Keras; ``data`` needs numpy, Pillow and scikit-image only.
"""

__version__ = "0.1.0"

from busi_lib.errors import ConfigError, DataError  # noqa: F401
