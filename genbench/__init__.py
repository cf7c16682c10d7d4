"""genbench: a benchmark suite for image generative models."""
from __future__ import annotations

from .version import __version__

__all__ = ["__version__", "score", "extract", "compute_stats", "compute_partial_stats", "merge_stats", "Evaluator"]


def __getattr__(name: str):
    # The API pulls in torch; import it lazily so `import genbench` stays cheap.
    if name in ("score", "extract", "compute_stats"):
        from . import api

        return getattr(api, name)
    if name in ("compute_partial_stats", "merge_stats"):
        from . import shards

        return getattr(shards, name)
    if name == "Evaluator":
        from .evaluator import Evaluator

        return Evaluator
    raise AttributeError(name)
