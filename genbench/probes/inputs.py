"""Inputs of the probes: open, subsample (seeded), then one prepared run of genbench.evaluate extracts each once.

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

from ..config import ExtractOptions, MetricOptions
from ..errors import ConfigError
from ..evaluate import DATASET_EXTRACTORS, Evaluated, Pending, Run, open_input, prepare_run, subset_evaluated
from ..sources.base import ImageSource
from ..sources.subset import SubsetSource, subsample_indices
from ..util.progress import Steps

__all__ = ["DATASET_EXTRACTORS", "ProbeInput", "SubsetSource", "subsample_indices", "open_probe_input",
           "subset_evaluated", "prepare_probe", "extract_inputs", "provenance_inputs"]

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


# ----------------------------------------------------------------------------- the prepared run


def item(probe_input: ProbeInput) -> Evaluated | Pending:
    """A probe input as the prepared run takes it: its loaded features, or its (subsampled) source still to extract."""
    if probe_input.evaluated is not None:
        return probe_input.evaluated
    assert probe_input.source is not None  # open_probe_input gives an input a source or loaded features
    return Pending(probe_input.role, probe_input.source, probe_input.flag)


def prepare_probe(inputs: dict[str, ProbeInput], options: ExtractOptions, specs: list[Any], *,
                  metric_options: MetricOptions | None = None, metrics: list[str] | None = None,
                  needed: bool | None = None) -> Run:
    """The probe's prepared run (:func:`genbench.evaluate.prepare_run`): the extractor by the rule every verb follows,
    built when an input is still images (or ``needed``), and the compatibility policy over every input, in the order
    of ``inputs`` (keyed by the run's role; the first one with metadata anchors the comparison when no network is
    built). ``metrics``: the plan a probe scores with (its inputs keyed ``generated`` and ``reference``); None: no
    plan, the probe computes its own statistics from the features."""
    return prepare_run({role: item(x) for role, x in inputs.items()}, options, metric_options, metrics, specs=specs,
                       build=needed, scored=metrics is not None)


def extract_inputs(run: Run, inputs: dict[str, ProbeInput], keep_features: bool = True, keep_logits: bool = False,
                   steps: Steps | None = None) -> None:
    """Every input through the run (in place: ``item.evaluated`` is set); each extraction is the next of ``steps``."""
    for role, probe_input in inputs.items():
        if probe_input.evaluated is None:
            with steps.step() if steps is not None else contextlib.nullcontext():
                probe_input.evaluated = run.evaluated(role, keep_features=keep_features, keep_logits=keep_logits)
            probe_input.info = dict(probe_input.evaluated.info)
        elif keep_features and probe_input.evaluated.features is None:
            raise ConfigError(f"{probe_input.description} ({probe_input.flag}) has no per-sample features, which this "
                              "probe needs")


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
