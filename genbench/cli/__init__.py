"""The command line: the ``genbench`` group (app), shared options, and one module per verb group."""
from .app import main, run

__all__ = ["main", "run"]
