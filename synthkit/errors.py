"""Errors a user can act on.

Every error synthkit raises on purpose says what went wrong *and the fix*, so that a
student never has to read a traceback from inside llama.cpp or transformers.
"""


class SynthkitError(Exception):
    """Base class: something the user can fix; the message names the fix."""


class ModelLoadError(SynthkitError):
    """The model file or directory is missing, unreadable or of the wrong kind."""


class PromptTooLongError(SynthkitError, ValueError):
    """A prompt does not fit in the model's context window."""


class InvalidSamplingError(SynthkitError, ValueError):
    """A sampling parameter is out of range."""


class DeviceUnavailableError(SynthkitError):
    """A device (e.g. CUDA) was asked for but is not present."""


class GenerationError(SynthkitError):
    """The backend failed while generating (e.g. out of KV-cache slots)."""
