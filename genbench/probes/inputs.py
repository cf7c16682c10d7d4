"""Inputs of the probes: open, subsample (seeded), extract each once, through genbench.evaluate.

A probe input is what the user passed for one role (``samples``, ``train``, ``test``,
``reference``): an image source (folder, archive, array file, data set ``NAME:SPLIT``,
in-memory array, ImageSource) or a feature file written by ``genbench extract``; the
sensitivity probe's reference may also be a statistics file. Opening, the seeded subsample,
the choice of extractor and the compatibility checks are :mod:`genbench.evaluate`'s, the same
for every verb; this module keeps what the probes add on top: the role's CLI flag, the rows kept
of the original input, and the probes' provenance of inputs.

Default extractor (:func:`genbench.evaluate.choose_extractor`): ``--extractor`` when given; else
the extractor a loaded feature file was built with; else the data set's own network when an
input names one (``fashion-mnist:*`` -> ``fmnist-cnn``); else ``inception-v3``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import ExtractOptions
from ..errors import ConfigError
from ..evaluate import (
    DATASET_EXTRACTORS,
    Evaluated,
    extract_source,
    open_input,
    run_identity,
    subset_evaluated,
)
from ..evaluate import choose_extractor as choose_for_inputs
from ..features.base import FeatureExtractor
from ..sources.base import ImageSource
from ..sources.subset import SubsetSource, subsample_indices
from ..stats.compatibility import Side, check_compatible
from ..util.progress import Steps

__all__ = ["DATASET_EXTRACTORS", "ProbeInput", "SubsetSource", "subsample_indices",
           "open_probe_input", "subset_evaluated", "choose_extractor", "build_for", "check_identities", "extract_pending",
           "run_identity", "input_identity", "provenance_inputs"]

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
    opened = open_input(obj, role, None, data_dir, flag=flag, allow_stats=allow_stats, reference_ids=False)
    if isinstance(opened, Evaluated):
        where = opened.description
        if opened.features is None:  # a statistics file (allowed only where allow_stats)
            if max_n is not None:
                raise ConfigError(f"{where} ({flag}): a statistics file cannot be subsampled; drop the sample limit")
            return ProbeInput(role, flag, where, evaluated=opened, n_original=opened.n, info=opened.info)
        n = opened.n
        idx = subsample_indices(n, max_n, seed, stream)
        ev = opened if idx is None else subset_evaluated(opened, idx)
        return ProbeInput(role, flag, where, evaluated=ev, indices=idx, n_original=n,
                          info={"kind": "features", "location": where})
    source: ImageSource = opened.source
    n = len(source)
    idx = subsample_indices(n, max_n, seed, stream)
    if idx is not None:
        source = SubsetSource(source, idx)
    return ProbeInput(role, flag, source.location or source.kind, source=source, indices=idx, n_original=n)


# ----------------------------------------------------------------------------- extractor choice


def choose_extractor(options: ExtractOptions, inputs: list[ProbeInput], specs: list[Any]) -> tuple[str, str | None]:
    """Extractor name and preprocessing for a probe run: :func:`genbench.evaluate.choose_extractor`."""
    loaded = [item.evaluated for item in inputs if item.evaluated is not None]
    return choose_for_inputs(options, loaded, [*specs, *(item.source for item in inputs if item.source is not None)])


def build_for(options: ExtractOptions, inputs: list[ProbeInput], specs: list[Any], needed: bool = True,
              ) -> tuple[str, FeatureExtractor | None, ExtractOptions]:
    """The extractor's name, the extractor (None unless ``needed``) and the options with its batch size, by the rule
    every verb follows (:func:`genbench.evaluate.choose_extractor`)."""
    from ..evaluate import _build_for

    name, preprocessing = choose_extractor(options, inputs, specs)
    xo = options.for_extractor(name)
    loaded = [item.evaluated for item in inputs if item.evaluated is not None]
    return name, (_build_for(name, preprocessing, xo, loaded) if needed else None), xo


def check_identities(items: list[tuple[str, dict | None]]) -> dict[str, list[str]]:
    """The compatibility policy (:mod:`genbench.stats.compatibility`) on (what, identity) pairs, the first being
    what the others must match: ReferenceStatsError at a field that differs; a warning, and the returned
    unchecked fields, for an input without metadata."""
    if not items:
        return {}
    sides = [Side(what, ident) for what, ident in items]
    return check_compatible(sides[1:], sides[0])


def extract_pending(
    inputs: list[ProbeInput],
    extractor: FeatureExtractor | None,
    options: ExtractOptions,
    keep_features: bool = True,
    keep_logits: bool = False,
    steps: Steps | None = None,
) -> None:
    """Extract every input that is still an image source (in place): ``item.evaluated`` is set.

    ``steps``: each extraction is the next step of this job ("step k of N" in its progress line).
    ``extractor`` may be None when no input is still an image source.
    """
    for item in inputs:
        if item.evaluated is None:
            assert item.source is not None  # open_probe_input gives an input a source or loaded features
            assert extractor is not None, f"{item.role} input {item.description} needs an extractor"
            with steps.step() if steps is not None else contextlib.nullcontext():
                item.evaluated = extract_source(item.source, extractor, options, item.role, keep_features, keep_logits)
            item.info = dict(item.evaluated.info)
        elif keep_features and item.evaluated.features is None:
            raise ConfigError(f"{item.description} ({item.flag}) has no per-sample features, which this probe needs")


def input_identity(item: ProbeInput, extractor: FeatureExtractor | None, options: ExtractOptions) -> dict | None:
    """The identity an input was built with: its file's meta, or the run's extractor for image sources."""
    if item.source is not None:
        return run_identity(extractor, options) if extractor is not None else {}
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
