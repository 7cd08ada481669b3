"""Typed errors. The CLI turns every `McuforgeError`, and every OS error on a path, into one line on
stderr and exit code 2; any other exception is a bug: one line naming the log file that holds its
traceback, exit code 70 (see `mcuforge.cli`)."""

from __future__ import annotations


class McuforgeError(Exception):
    """Base class of every error that is the user's input's fault (bad file, bad name, does not fit)."""


class UnknownModelError(McuforgeError):
    """A model name that is not in the zoo registry and not a file."""


class SpecError(McuforgeError):
    """A block-string spec or a JSON config that cannot be parsed or built."""


class InvalidGraphError(McuforgeError):
    """A graph that fails validation (shapes disagree, names do not resolve, a cycle)."""


class UnsupportedOpError(McuforgeError):
    """An operator the IR does not support, e.g. "unsupported op GATHER_ND at operator #12 (tensor x)"."""


class ModelFileError(McuforgeError):
    """A model file that is missing, truncated or corrupt."""


class InvalidValueError(InvalidGraphError, ModelFileError):
    """A value a model carries that no op can use (a zero point outside its dtype, a dilation
    beyond the input, a multiplier that is not representable ...), found by
    `mcuforge.ops.validation.validate_model`; the message names the operator, the tensor and the field."""


class DoesNotFitError(McuforgeError):
    """A model that needs more memory than the target has."""

    def __init__(self, what: str, needed_bytes: int, available_bytes: int):
        self.what = what
        self.needed_bytes = needed_bytes
        self.available_bytes = available_bytes
        super().__init__(
            f"{what} does not fit: needs {needed_bytes:,} B, {available_bytes:,} B available "
            f"(over by {needed_bytes - available_bytes:,} B)"
        )


class FolderBusyError(McuforgeError):
    """An output folder whose lock another mcuforge process holds for longer than we wait."""


class DatasetError(McuforgeError):
    """A data set that is missing, truncated, corrupt or laid out in a way no loader understands."""


class AudioFileError(McuforgeError):
    """An audio file that is not a WAV, is truncated, or is not the mono 16-bit PCM at the rate a
    front end needs; the message names the file and what is wrong."""
