"""Inputs of the probes: open, subsample (seeded), extract each once, check they share one extractor.

A probe input is what the user passed for one role (``samples``, ``train``, ``test``,
``reference``): an image source (folder, archive, array file, data set ``NAME:SPLIT``,
in-memory array, ImageSource) or a feature file written by ``genbench extract``; the
sensitivity probe's reference may also be a statistics file. Image sources are
extracted with :func:`genbench.evaluate.extract_source` (so the feature cache applies);
feature files are used as they are, after their ``meta`` has been checked against the
extractor of the run.

Default extractor: ``--extractor`` when given; else the extractor a loaded feature file
was built with; else the data set's own network when an input names a data set in
:data:`DATASET_EXTRACTORS` (``fashion-mnist:*`` -> ``fmnist-cnn``); else ``inception-v3``.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_EXTRACTOR, ExtractOptions
from ..errors import ConfigError, InputError, ReferenceStatsError
from ..evaluate import IDENTITY_FIELDS, Evaluated, extract_source
from ..features.base import FeatureExtractor
from ..sources.base import ImageSource
from ..stats.feature_stats import FeatureStats
from ..util.progress import Steps

#: data set name -> the extractor the probes use for it by default
DATASET_EXTRACTORS = {"fashion-mnist": "fmnist-cnn", "stacked-fashion-mnist": "fmnist-cnn"}

#: Identity fields compared between inputs: the extractor identity plus the arithmetic precision.
COMPARED_FIELDS = IDENTITY_FIELDS + ("precision",)


# ----------------------------------------------------------------------------- subsets


def subsample_indices(n: int, max_n: int | None, seed: int, stream: int) -> np.ndarray | None:
    """Sorted indices of a seeded subsample of ``max_n`` out of ``n`` (without replacement), or None for all.

    ``stream`` separates the draws of different roles made with one seed.
    """
    if max_n is None or n <= max_n:
        return None
    if max_n < 1:
        raise ConfigError(f"max_samples must be a positive number of samples, got {max_n}")
    rng = np.random.default_rng([int(seed), int(stream)])
    return np.sort(rng.choice(n, size=int(max_n), replace=False))


class SubsetSource(ImageSource):
    """The images ``indices`` [K] (in that order) of a base source."""

    kind = "subset"

    def __init__(self, base: ImageSource, indices: np.ndarray) -> None:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= len(base))):
            raise InputError(f"{base.location or base.kind}: subset indices must lie in [0, {len(base)})")
        self.base = base
        self.indices = idx
        digest = hashlib.sha256(idx.tobytes()).hexdigest()[:16]
        self._digest = digest
        self.location = f"{base.location or base.kind}[subset {len(idx)} of {len(base)}, {digest}]"

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, index: int) -> np.ndarray:
        return self.base.read(int(self.indices[index]))

    def read_batch(self, start: int, stop: int):
        chosen = self.indices[start:stop]
        if len(chosen) and chosen[-1] - chosen[0] == len(chosen) - 1:  # contiguous: the base's fast path
            return self.base.read_batch(int(chosen[0]), int(chosen[-1]) + 1)
        return super().read_batch(start, min(stop, len(self)))

    def key(self, index: int) -> str:
        return self.base.key(int(self.indices[index]))

    def label(self, index: int) -> int | None:
        return self.base.label(int(self.indices[index]))

    @property
    def has_labels(self) -> bool:
        return self.base.has_labels

    def fingerprint(self) -> str:
        inner = self.base.fingerprint()
        return f"{inner}|subset={self._digest}|n={len(self.indices)}" if inner else ""


# ----------------------------------------------------------------------------- opening


@dataclass
class ProbeInput:
    """One role's input: a source still to extract, or features already loaded (or both after extraction).

    ``indices`` are the rows of the original input that were kept (None = all); ``source`` is the
    (subsampled) image source, None for feature and statistics files.
    """

    role: str
    flag: str
    description: str
    source: ImageSource | None = None
    evaluated: Evaluated | None = None
    indices: np.ndarray | None = None
    n_original: int = 0
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        if self.evaluated is not None:
            return self.evaluated.n
        return len(self.source) if self.source is not None else 0


def _is_stats_file(path: Path) -> bool:
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            return "mu" in data.files and "sigma" in data.files and "features" not in data.files
    except (ValueError, OSError):
        return False


def open_probe_input(
    obj: Any,
    role: str,
    flag: str,
    *,
    data_dir: str | None = None,
    max_n: int | None = None,
    seed: int = 0,
    stream: int = 0,
    allow_stats: bool = False,
) -> ProbeInput:
    """Open what was passed for ``role`` (CLI ``flag``), subsampled to at most ``max_n`` (seeded by ``seed``, ``stream``).

    Raises InputError for a statistics file where per-sample features are needed (unless
    ``allow_stats``), and whatever the source resolver raises for a bad spec.
    """
    from ..evaluate import _from_feature_file
    from ..sources.resolve import as_source, is_feature_file
    from ..stats.io import load_features, load_stats

    if isinstance(obj, (str, Path)):
        path = Path(obj)
        if path.is_file() and is_feature_file(path):
            ff = load_features(path)
            ev = _from_feature_file(ff, role)
            n = ev.n
            idx = subsample_indices(n, max_n, seed, stream)
            if idx is not None:
                ev = subset_evaluated(ev, idx)
            return ProbeInput(role, flag, str(path), evaluated=ev, indices=idx, n_original=n,
                              info={"kind": "features", "location": str(path)})
        if _is_stats_file(path):
            if not allow_stats:
                raise InputError(
                    f"{path} ({flag}): a statistics file keeps only mean and covariance, but this probe needs "
                    "per-sample features; pass images or a feature file written by `genbench extract`"
                )
            if max_n is not None:
                raise ConfigError(f"{path} ({flag}): a statistics file cannot be subsampled; drop the sample limit")
            saved = load_stats(path)
            ev = Evaluated(role, str(path), saved.meta, saved.stats, info={"kind": "statistics", "location": str(path)})
            return ProbeInput(role, flag, str(path), evaluated=ev, n_original=saved.stats.n, info=ev.info)
        source = as_source(str(obj), data_dir=data_dir)
    else:
        source = as_source(obj)
    n = len(source)
    if n == 0:
        raise InputError(f"{flag} {source.location or source.kind}: no images")
    idx = subsample_indices(n, max_n, seed, stream)
    if idx is not None:
        source = SubsetSource(source, idx)
    return ProbeInput(role, flag, source.location or source.kind, source=source, indices=idx, n_original=n)


def subset_evaluated(ev: Evaluated, idx: np.ndarray) -> Evaluated:
    """The rows ``idx`` of an Evaluated that holds per-sample features; statistics are recomputed."""
    if ev.features is None:
        raise ConfigError(f"{ev.description}: only per-sample features can be subsampled")
    features = ev.features[idx]
    return Evaluated(
        ev.role, ev.description, ev.identity, FeatureStats.from_features(features), features=features,
        logits=None if ev.logits is None else ev.logits[idx],
        labels=None if ev.labels is None else np.asarray(ev.labels)[idx],
        files=None if ev.files is None else [ev.files[i] for i in idx],
        info={**ev.info, "subset": len(idx)},
    )


# ----------------------------------------------------------------------------- extractor choice


def _dataset_default(specs: list[Any]) -> str | None:
    for spec in specs:
        if isinstance(spec, str) and ":" in spec and not Path(spec).exists():
            name = spec.split(":", 1)[0]
            if name in DATASET_EXTRACTORS:
                return DATASET_EXTRACTORS[name]
    return None


def choose_extractor(options: ExtractOptions, inputs: list[ProbeInput], specs: list[Any]) -> tuple[str, str | None]:
    """Extractor name and preprocessing for a probe run (see the module docstring for the order)."""
    name, preprocessing = options.extractor, options.preprocessing
    for item in inputs:
        ident = item.evaluated.identity if item.evaluated is not None else None
        if ident:
            name = name or ident.get("extractor")
            if name == ident.get("extractor"):
                preprocessing = preprocessing or ident.get("preprocessing")
    return name or _dataset_default(specs) or DEFAULT_EXTRACTOR, preprocessing


def check_identities(items: list[tuple[str, dict | None]], fields: tuple[str, ...] = COMPARED_FIELDS) -> None:
    """Refuse inputs built under other settings: every identity is compared with the first one.

    ``items``: (what, identity) pairs, e.g. ("train input x.npz (--train)", meta). An identity of
    None (a feature file without metadata) is refused, since it cannot be checked.
    Raises ReferenceStatsError naming both inputs and the field that differs.
    """
    if not items:
        return
    first_what, first = items[0]
    for what, ident in items:
        if ident is None:
            raise ReferenceStatsError(
                f"{what} carries no provenance (no 'meta' entry), so its extractor and preprocessing cannot be "
                "checked; re-create it with `genbench extract`"
            )
    for what, ident in items[1:]:
        for key in fields:
            if key in ident and key in first and ident[key] != first[key]:
                raise ReferenceStatsError(
                    f"{what} was built with {key}={ident[key]!r}, but {first_what} with {key}={first[key]!r}; "
                    "features made under different settings cannot be compared"
                )


def extract_pending(
    inputs: list[ProbeInput],
    extractor: FeatureExtractor,
    options: ExtractOptions,
    keep_features: bool = True,
    keep_logits: bool = False,
    steps: Steps | None = None,
) -> None:
    """Extract every input that is still an image source (in place): ``item.evaluated`` is set.

    ``steps``: each extraction is the next step of this job ("step k of N" in its progress line).
    """
    for item in inputs:
        if item.evaluated is None:
            with steps.step() if steps is not None else contextlib.nullcontext():
                item.evaluated = extract_source(item.source, extractor, options, item.role, keep_features, keep_logits)
            item.info = dict(item.evaluated.info)
        elif keep_features and item.evaluated.features is None:
            raise ConfigError(f"{item.description} ({item.flag}) has no per-sample features, which this probe needs")


def run_identity(extractor: FeatureExtractor | None, options: ExtractOptions) -> dict:
    """The identity new extractions of this run carry (extractor identity plus precision)."""
    if extractor is None:
        return {}
    return {**extractor.identity().to_dict(), "precision": options.precision}


def input_identity(item: ProbeInput, extractor: FeatureExtractor | None, options: ExtractOptions) -> dict | None:
    """The identity an input was built with: its file's meta, or the run's extractor for image sources."""
    if item.source is not None:
        return run_identity(extractor, options)
    ident = item.evaluated.identity if item.evaluated is not None else None
    if ident is None:
        return None
    return {**ident, "precision": ident.get("precision", "float32")}


def provenance_inputs(inputs: list[ProbeInput]) -> dict:
    """Per role: kind, location, n used, n of the original input, cache state."""
    out = {}
    for item in inputs:
        entry = {k: v for k, v in item.info.items() if k in ("kind", "location", "cache", "precision")}
        entry.setdefault("location", item.description)
        entry["n"] = item.n
        entry["n_original"] = item.n_original
        entry["subsampled"] = item.indices is not None
        out[item.role] = entry
    return out
