"""busi_lib: data, enhancement, model, losses, metrics and cross-validation for the BUSI book.

The heavy modules (``model``, ``losses``, ``train``) import Keras; import them explicitly::

    from busi_lib import data, splits, enhance      # numpy / Pillow / scikit-image only
    from busi_lib import model, losses, metrics, train
"""

__version__ = "0.1.0"

from .errors import ConfigError, DataError  # noqa: F401
