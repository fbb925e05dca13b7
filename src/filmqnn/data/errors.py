"""Error type for data-set problems (missing files, corrupt files, unknown names)."""


class DatasetError(Exception):
    """Raised when a data set cannot be loaded; the message says what is wrong and how to fix it."""
