"""The project's own error types.

Everything a user can cause (a bad file, a wrong layer, nothing painted) raises a subclass of
:class:`CryoliError` whose message is one plain sentence: the GUI shows it as a notification and the
command line prints it as one line before exiting non-zero.
"""


class CryoliError(Exception):
    """An error the user can fix; its message is shown as is."""


class FileFormatError(CryoliError):
    """A file is missing, unreadable, truncated or not of the expected format."""


class InputError(CryoliError):
    """Inputs do not fit together (shapes, scales, classes) or are empty."""


class CheckpointError(CryoliError):
    """A model file is not a usable napari-cryoli checkpoint."""
