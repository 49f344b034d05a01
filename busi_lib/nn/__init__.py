"""The network layer: the Residual-U-Net, the baselines, losses, optimisers, building and loading.

Keras (and TensorFlow behind it) is imported here once, with TensorFlow's C++ start-up lines
silenced (:mod:`busi_lib.nn.quiet`; ``BUSI_TF_LOGS=1`` keeps them), so that a command's output
starts with its own lines.
"""

import os

from busi_lib.nn.quiet import quiet_native_stderr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
with quiet_native_stderr():
    import keras  # noqa: F401,E402
