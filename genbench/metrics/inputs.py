"""What a metric is computed from: one input after extraction (statistics, and where kept, per-sample arrays)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..stats.feature_stats import FeatureStats


@dataclass
class Evaluated:
    """One input after extraction, or loaded from a feature or statistics file.

    ``identity``: the metadata the features were made under (None: unknown, e.g. a plain mu/sigma file);
    ``flag``: the CLI option the input came from, for messages (``--ref``, ``--train``).
    """

    role: str
    description: str
    identity: dict[str, Any] | None
    stats: FeatureStats
    features: np.ndarray | None = None  # float32 [N, D]
    logits: np.ndarray | None = None  # float32 [N, K]
    labels: np.ndarray | None = None  # int64 [N]
    files: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    flag: str | None = None
    #: statistics of further layers of the same images (``spatial`` for sFID), by layer name
    layers: dict[str, FeatureStats] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.stats.n

    @property
    def what(self) -> str:
        """How messages name this input: ``reference input ref.npz (--ref)``."""
        return f"{self.role} input {self.description}" + (f" ({self.flag})" if self.flag else "")
