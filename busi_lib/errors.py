"""Exception types raised by busi_lib.

Both derive from :class:`ValueError`, so callers that only want "bad input" can catch that.
"""


class DataError(ValueError):
    """The data on disk is not what busi_lib expects (missing, unreadable, inconsistent)."""


class ConfigError(ValueError):
    """A configuration or notebook parameter is out of range or unknown."""
