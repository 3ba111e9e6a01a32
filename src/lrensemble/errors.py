"""Errors a user can cause. Each carries one clear sentence; the CLI prints it and exits 2."""


class LREnsembleError(Exception):
    """Base class of every error caused by user input (names, parameters, files, shapes)."""


class UnknownNameError(LREnsembleError, KeyError):
    """A registry (policies, models, datasets, optimizers) has no entry of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ParameterError(LREnsembleError, ValueError):
    """A parameter has the wrong type or a value outside its valid range."""


class ConfigError(LREnsembleError, ValueError):
    """A configuration file or object is malformed.

    `location` (keys leading to the bad value) and `detail` (the problem alone) let an enclosing
    configuration report a nested problem with its full path.
    """

    def __init__(self, message: str, location: tuple[object, ...] = (), detail: str = "") -> None:
        super().__init__(message)
        self.location = tuple(location)
        self.detail = detail


class DataError(LREnsembleError, OSError):
    """A data file is missing, unreadable or malformed."""


class CheckpointError(LREnsembleError, OSError):
    """A checkpoint or weights file is missing, unreadable, truncated or does not fit the model."""
