"""nbval settings for the reference notebooks in this folder.

Standard-error streams are not compared: TensorFlow writes C++ log lines there that no
environment variable silences, and Python warnings vary with package versions. Every other
output (text, tables, Markdown) is compared after the substitutions of
``tests/nbval_sanitize.cfg``; cells tagged ``nbval-ignore-output`` (training logs, timings)
are run but not compared. Images are never compared (nbval's default).
"""

try:
    from nbval import plugin as _nbval
except ImportError:  # nbval not installed: nothing to configure
    _nbval = None

if _nbval is not None and not getattr(_nbval.IPyNbFile, "_busi_skip_stderr", False):
    _init = _nbval.IPyNbFile.__init__

    def _init_skip_stderr(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self.skip_compare = tuple(self.skip_compare) + ("stderr",)

    _nbval.IPyNbFile.__init__ = _init_skip_stderr
    _nbval.IPyNbFile._busi_skip_stderr = True
