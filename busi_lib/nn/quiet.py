"""Silencing TensorFlow's C++ start-up lines on the command line (:class:`quiet_native_stderr`)."""

from __future__ import annotations

import os
import sys


class quiet_native_stderr:
    """Send file descriptor 2 to ``/dev/null`` inside the block, then restore it.

    TensorFlow's C++ start-up lines ("oneDNN custom operations are on", "All log messages
    before absl::InitializeLog() ...") are written at import and at the first operation, before
    any logging setting applies (no environment variable silences them); the command line wraps
    loading and the first prediction in this. Python exceptions still propagate and are printed
    after the block. ``BUSI_TF_LOGS=1`` keeps the lines.
    """

    def __enter__(self):
        self._saved = None
        if os.environ.get("BUSI_TF_LOGS") == "1":
            return self
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:                 # no real file descriptor 2 (some notebook kernels)
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def start_backend_quietly(verbose: bool = False) -> None:
    """Import Keras and run one operation with file descriptor 2 silenced, so that a command's
    output starts with its own lines; ``verbose`` (or ``BUSI_TF_LOGS=1``) keeps TensorFlow's."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbose:
        return
    with quiet_native_stderr():
        import keras

        keras.ops.convert_to_numpy(keras.ops.ones((1,)) + 1)

