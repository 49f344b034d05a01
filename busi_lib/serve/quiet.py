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
