"""One exception type per kind of user mistake.

Every error a user can fix derives from :class:`SERError`; its message says what went wrong and
what to do. The command line prints such messages without a traceback.
"""
from __future__ import annotations


class SERError(Exception):
    """Base class for errors the user can act on."""


class DatasetError(SERError):
    """The dataset root is missing, empty or not in the RAVDESS layout."""


class AudioError(SERError):
    """An audio file cannot be read, is empty or silent, or has an unsupported format."""


class DownloadError(SERError):
    """A download failed; running the same command again resumes it."""


class ChecksumError(DownloadError):
    """A downloaded archive does not have the expected checksum."""


class UnsafeArchiveError(DownloadError):
    """An archive holds entries that would be written outside the target folder."""


class SplitError(SERError):
    """A requested split or emotion subset cannot be built from the actors and clips present."""


class ConfigError(SERError):
    """An option has a value that cannot work (for example a batch larger than the data)."""


class BackboneError(SERError):
    """A pretrained encoder cannot be loaded (offline, wrong name or a broken folder)."""


class CheckpointError(SERError):
    """A checkpoint is corrupt, from another version, or does not fit the request."""


class DeviceError(SERError):
    """A compute or audio device was asked for but is not available."""


class TrainingError(SERError):
    """Training cannot go on (for example the loss became NaN)."""


class ExportError(SERError):
    """A model cannot be exported (the message says what to use instead)."""
