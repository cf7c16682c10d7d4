"""A fixed subset of another source, in a given index order (seeded subsets, one class, ...)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputError
from .base import ImageSource, stack_if_same_size


def subsample_indices(n: int, max_n: int | None, seed: int, stream: int = 0) -> np.ndarray | None:
    """Sorted indices [max_n] of a seeded subsample of ``max_n`` out of ``n`` (without replacement), or None for all.

    ``stream`` separates the draws of different roles made with one seed (the probes' ``--max-samples``).
    """
    if max_n is None or n <= max_n:
        return None
    if max_n < 1:
        raise ConfigError(f"max_samples must be a positive number of samples, got {max_n}")
    rng = np.random.default_rng([int(seed), int(stream)])
    return np.sort(rng.choice(n, size=int(max_n), replace=False))


class SubsetSource(ImageSource):
    """Images ``indices`` [n] of ``base``, in that order."""

    kind = "subset"

    def __init__(self, base: ImageSource, indices: np.ndarray, description: str = "") -> None:
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(base)):
            raise InputError(f"{base.location or base.kind}: subset indices outside 0..{len(base) - 1}")
        self.base, self.indices = base, indices
        if not description:
            import hashlib

            digest = hashlib.sha256(indices.tobytes()).hexdigest()[:16]
            description = f"subset {len(indices)} of {len(base)}, {digest}"
        self.location = f"{base.location or base.kind}[{description}]"

    @classmethod
    def seeded(cls, base: ImageSource, n: int, seed: int, what: str) -> SubsetSource:
        """``n`` distinct images of ``base`` chosen by ``seed``; InputError when it has fewer."""
        if n > len(base):
            raise InputError(f"{what} has {len(base)} images; {n} were asked for (--n)")
        return cls(base, np.random.default_rng(seed).permutation(len(base))[:n], f"{n} images, seed {seed}")

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, index: int) -> np.ndarray:
        return self.base.read(int(self.indices[index]))

    def read_batch(self, start: int, stop: int):
        chosen = self.indices[start:stop]
        if len(chosen) and chosen[-1] - chosen[0] == len(chosen) - 1 and np.all(np.diff(chosen) == 1):
            return self.base.read_batch(int(chosen[0]), int(chosen[-1]) + 1)  # a contiguous run: the base's fast path
        return stack_if_same_size([self.base.read(int(i)) for i in chosen])

    def key(self, index: int) -> str:
        return self.base.key(int(self.indices[index]))

    @property
    def has_labels(self) -> bool:
        return self.base.has_labels

    def label(self, index: int) -> int | None:
        return self.base.label(int(self.indices[index]))

    def repeats(self) -> int:
        own = len(self.indices) - len(np.unique(self.indices))
        return own + min(self.base.repeats(), len(self.indices))

    def fingerprint(self) -> str:
        inner = self.base.fingerprint()
        if not inner:
            return ""
        import hashlib

        return hashlib.sha256(inner.encode() + self.indices.tobytes()).hexdigest()
