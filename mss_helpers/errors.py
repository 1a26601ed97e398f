"""The project's error classes: mistakes a user can make, and what to do about them.

Every class here derives from :class:`UserError`. ``cli.main`` turns a
``UserError`` (and a few predictable foreign errors, see ``cli``) into one line
``error: ...`` on stderr and a non-zero exit code; ``--debug`` or
``MSS_DEBUG=1`` shows the traceback. Modules raise these and never print or
exit. This module imports nothing of the package, so every floor can use it.
The builtin base classes are kept so ``except FileNotFoundError`` /
``except ValueError`` in callers keep working.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message names what is wrong and how to fix it."""


class DataRootError(UserError, FileNotFoundError):
    """A data root that is missing, empty or not laid out as MUSDB18 / the embedded set."""


class AudioError(UserError, ValueError):
    """Audio that cannot be read or used: unreadable file, wrong rate or channels, silent, non-finite."""


class SoundfontError(UserError, FileNotFoundError):
    """No usable General MIDI soundfont."""


class WeightsNotFoundError(UserError, FileNotFoundError):
    """Pretrained weights that are neither in a local folder nor downloadable here."""


class RunNotFoundError(UserError, FileNotFoundError):
    """A training run (checkpoint) that a step needs has not been made yet."""


class ConfigError(UserError, ValueError):
    """An unknown preset, method or option value (e.g. k < 1)."""


class TrainingError(UserError, RuntimeError):
    """Training cannot go on; the last good checkpoint is kept."""


class NonFiniteLossError(TrainingError, FloatingPointError):
    """The loss or the gradients became NaN/infinite; no checkpoint is written for that step.

    Also a ``FloatingPointError``, the type ``train.fit`` raised before.
    """
