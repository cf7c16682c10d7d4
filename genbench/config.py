"""Defaults, in one place, as frozen dataclasses; ``to_dict()`` feeds provenance."""
from __future__ import annotations

import numbers
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .errors import ConfigError

DEFAULT_EXTRACTOR = "inception-v3"
DEFAULT_SEED = 0
MAX_SEED = 2**32 - 1  # numpy's and torch's seeded generators accept 0 .. 2**32 - 1

#: --batch-size when none is given, per (extractor, device type), where bench/bench_batch_size.py measured a
#: better one than DEFAULT_BATCH_SIZE (reports/bench.md, "Default batch size"): on the CPU fmnist-cnn's 28x28
#: forward is so cheap that per-batch overhead dominates at 64 (256: about 2x the images/s), and Inception-v3
#: is no slower at 32 than at 64 (faster in the quieter runs) with a third less peak memory. CUDA is not
#: measured yet: 64.
BATCH_SIZES: dict[tuple[str, str], int] = {("fmnist-cnn", "cpu"): 256, ("inception-v3", "cpu"): 32}
DEFAULT_BATCH_SIZE = 64


def default_batch_size(extractor: str | None, device: str) -> int:
    """BATCH_SIZES[(extractor, device type)], else DEFAULT_BATCH_SIZE (also while the extractor is not known
    yet, None: it may come from the reference; ExtractOptions.for_extractor() settles it then)."""
    if extractor is None:
        return DEFAULT_BATCH_SIZE
    return BATCH_SIZES.get((extractor, str(device).split(":")[0]), DEFAULT_BATCH_SIZE)


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
    batch_size: int | None = None  # None: default_batch_size(extractor, device); see for_extractor()
    device: str = "cpu"
    workers: int = 0
    data_dir: str | None = None
    progress: bool = True
    cache: bool = True  # read/write the feature cache (genbench.extraction.cache); --no-cache turns it off for one run
    precision: str = "float32"  # float32 | tf32 (CUDA) | bf16; see genbench.extraction.engine
    allow_unverified_weights: bool = False  # accept a --weights file whose sha256 is not the published one
    weights_sha256: str | None = None  # --weights-sha256: pin for weights without a published sha256 (DINOv2)

    def __post_init__(self) -> None:
        from .extraction.devices import check_device

        object.__setattr__(self, "device", check_device(self.device, "device (--device)"))
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", default_batch_size(self.extractor, self.device))
            object.__setattr__(self, "_default_batch", True)  # not a field: dataclasses.replace() drops it
        _at_least(self, {"batch_size": ("--batch-size", 1), "workers": ("--workers", 0)})
        if self.precision not in ("float32", "tf32", "bf16"):
            raise ConfigError(f"precision (--precision) {self.precision!r}: expected float32, tf32 or bf16")

    def for_extractor(self, name: str) -> ExtractOptions:
        """These options once the extractor is chosen (e.g. from the reference's metadata): a batch size that
        was not given becomes ``name``'s default on this device."""
        if not getattr(self, "_default_batch", False) or self.extractor == name:
            return self
        return replace(self, batch_size=default_batch_size(name, self.device))

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

    def __post_init__(self) -> None:
        _at_least(self, {"seed": ("--seed", 0), "is_splits": ("--is-splits", 1), "kid_subsets": ("--kid-subsets", 1),
                         "kid_subset_size": ("--kid-subset-size", 2), "bootstrap": ("--bootstrap", 0),
                         "prdc_k_precision_recall": ("--pr-k", 1), "prdc_k_density_coverage": ("--dc-k", 1)})
        if self.seed > MAX_SEED:
            raise ConfigError(f"seed (--seed) must be at most {MAX_SEED}, got {self.seed}")

    def to_dict(self) -> dict:
        return asdict(self)


def _at_least(options: object, limits: dict[str, tuple[str, int]]) -> None:
    """ConfigError naming the keyword and the CLI flag unless each field is an integer >= its minimum."""
    for name, (flag, low) in limits.items():
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ConfigError(f"{name} ({flag}) must be an integer >= {low}, got {value!r}")
