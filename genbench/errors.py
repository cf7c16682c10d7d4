"""One exception family for everything a user can get wrong.

The CLI maps every :class:`GenbenchError` to a one-line message and exit code 2.
Messages name the file or option involved and say what was expected.
"""
from __future__ import annotations


class GenbenchError(Exception):
    """Base class: a problem with the user's input, options or environment."""

    exit_code = 2


class InputError(GenbenchError):
    """An image, array, archive or feature file that cannot be used as given."""


class ConfigError(GenbenchError):
    """An option or combination of options that is invalid."""


class ReferenceStatsError(GenbenchError):
    """Statistics that are missing, tampered with, or built under other settings."""


class WeightsError(GenbenchError):
    """Model weights that are missing, unreachable or fail their checksum."""
