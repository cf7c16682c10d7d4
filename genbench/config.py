"""Defaults, in one place, as frozen dataclasses; ``to_dict()`` feeds provenance."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_EXTRACTOR = "inception-v3"
DEFAULT_SEED = 0


def cache_dir() -> Path:
    """Root of genbench's caches: $GENBENCH_CACHE, else ~/.cache/genbench."""
    env = os.environ.get("GENBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "genbench"


@dataclass(frozen=True)
class ExtractOptions:
    """How features are extracted: which network, on what, how fast."""

    extractor: str | None = None  # None: follow the reference, else DEFAULT_EXTRACTOR
    weights: str | None = None
    preprocessing: str | None = None  # None: follow the reference, else the extractor's default
    batch_size: int = 64
    device: str = "cpu"
    workers: int = 0
    data_dir: str | None = None
    progress: bool = True
    cache: bool = True  # read/write the feature cache (genbench.cache); --no-cache turns it off for one run
    precision: str = "float32"  # float32 | tf32 (CUDA) | bf16; see genbench.engine
    allow_unverified_weights: bool = False  # accept a --weights file whose sha256 is not the published one

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MetricOptions:
    """Options of the metrics themselves (they change the numbers, so they are recorded)."""

    seed: int = DEFAULT_SEED
    is_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    bootstrap: int = 0  # bootstrap replicates for 95% intervals of FD and KID; 0 = off
    prdc_k_precision_recall: int = 3
    prdc_k_density_coverage: int = 5

    def to_dict(self) -> dict:
        return asdict(self)
