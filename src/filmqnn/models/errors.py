"""Error type for model construction problems (unknown name, bad weights file)."""


class ModelError(Exception):
    """Raised when a model cannot be built or its weights cannot be loaded; the message says why."""
