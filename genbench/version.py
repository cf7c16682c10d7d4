"""The version of genbench (also in pyproject.toml): a module of its own, so that every layer can read it."""
from __future__ import annotations

__version__ = "0.1.0"
