"""The memorization probe: does a generated set copy its training set?

    report = run_memorization_probe("samples/", train="fashion-mnist:train", test="fashion-mnist:test")
    report.verdict, report.to_dict()["ct"], report.to_dict()["memorized_fraction"]

Three inputs are extracted with one extractor (default ``fmnist-cnn`` for Fashion-MNIST; see
:mod:`genbench.probes.inputs`): the generated samples, the generator's training set and a held-out
test split of the same distribution. Their features go to
:func:`genbench.metrics.memorization.memorization_statistics`; this module adds input handling,
early validation, the report, and the gallery of the most suspicious samples.

Statistics reported (names as in the ``--json`` document):

``ct``
    C_T of Meehan et al. (2020), k-means cells fitted on the training set. Negative: generated
    samples are closer to the training set than held-out data is; positive: farther.
``memorized_fraction``
    Share of generated samples whose nearest / second-nearest training distance ratio is below
    1/3 (``ratio_threshold``); ``heldout.memorized_fraction`` is the same for the test split.
``authenticity``
    Alaa et al. (2022): share of generated samples farther from their nearest training point than
    that point is from its own nearest training neighbour; ``heldout.authenticity`` calibrates it.
``train_test_gap``
    ``gap_excess``: (mean NN distance to train - to test) of the generated samples minus the same
    for held-out samples, divided by the held-out mean NN distance to train. About 0 for a model
    that generalises; negative when generated samples sit closer to the training set than to
    unseen data of the same distribution.

Verdict (thresholds in :class:`genbench.metrics.memorization.MemorizationThresholds`, printed with
every report): ``copying`` when the memorized fraction exceeds the held-out one by more than 0.01
or ``train_test_gap`` < -0.10 (C_T < -3 and an authenticity drop > 0.10 are reported as signals but
alone do not make a copying verdict, because mode shrinkage also triggers them); otherwise
``underfitting`` when C_T > 3; otherwise ``no-evidence``.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ExtractOptions
from ..errors import ConfigError
from ..metrics.knn import DEFAULT_MAX_MEMORY_BYTES, plan_chunk_rows
from ..metrics.memorization import (
    MIN_CELL_GENERATED,
    N_CELLS,
    RATIO_THRESHOLD,
    TRAIN_SPECIFIC_SIGNALS,
    MemorizationStats,
    MemorizationThresholds,
    Verdict,
    copying_signals,
    memorization_statistics,
    memorization_verdict,
    most_suspicious,
)
from ..util import progress
from .inputs import ProbeInput, SubsetSource, extract_inputs, open_probe_input, prepare_probe, provenance_inputs

DEFAULT_TRAIN = "fashion-mnist:train"
DEFAULT_TEST = "fashion-mnist:test"
#: Samples shown in the gallery by default.
GALLERY_COUNT = 16


@dataclass(frozen=True)
class MemorizationOptions:
    """Options of the probe (they change the numbers, so they are recorded in provenance).

    ``max_samples`` caps the generated and the test set (seeded subsample without replacement);
    ``max_train`` caps the training set (default: all of it, since a copy of a dropped training
    image cannot be recognised). ``chunk_size`` / ``max_memory_bytes`` bound the distance blocks.
    """

    seed: int = 0
    n_cells: int = N_CELLS
    min_cell_generated: int = MIN_CELL_GENERATED
    ratio_threshold: float = RATIO_THRESHOLD
    max_samples: int | None = None
    max_train: int | None = None
    chunk_size: int | None = None
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
    gallery_count: int = GALLERY_COUNT

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MemorizationReport:
    """The probe's outcome: statistics, verdict, thresholds, suspicious samples and provenance."""

    stats: MemorizationStats
    verdict: Verdict
    signals: list[str]
    thresholds: MemorizationThresholds
    suspicious: list[dict]
    provenance: dict
    gallery: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ct(self) -> float:
        return self.stats.ct.ct

    @property
    def memorized_fraction(self) -> float:
        return self.stats.nn_ratio_fraction

    @property
    def authenticity(self) -> float:
        return self.stats.authenticity

    @property
    def train_test_gap(self) -> float:
        return self.stats.gap_excess

    def to_dict(self) -> dict:
        s = self.stats
        return {
            "probe": "memorization",
            "verdict": self.verdict,
            "signals": self.signals,
            "ct": self.ct,
            "memorized_fraction": self.memorized_fraction,
            "authenticity": self.authenticity,
            "train_test_gap": self.train_test_gap,
            "heldout": {
                "memorized_fraction": s.heldout_nn_ratio_fraction,
                "authenticity": s.heldout_authenticity,
                "train_test_gap": 0.0,
            },
            "thresholds": {**self.thresholds.to_dict(), "ratio_threshold": s.ratio_threshold,
                           "min_cell_generated": s.ct.min_cell_generated},
            "details": s.to_dict(),
            "suspicious": self.suspicious,
            "gallery": self.gallery,
            "provenance": self.provenance,
            **self.extra,
        }

    def format_text(self) -> str:
        """A readable summary with the thresholds that decide the verdict."""
        s, t = self.stats, self.thresholds
        p = self.provenance
        inputs = p.get("inputs", {})
        fired = set(self.signals)

        def mark(name: str) -> str:
            return "SIGNAL" if name in fired else ""

        rows = [
            ("statistic", "generated", "held-out", "copying signal when", ""),
            ("C_T", f"{s.ct.ct:+.3f}", "-", f"< {t.ct_copying:g} (underfitting > {t.ct_underfitting:g})", mark("ct")),
            ("memorized fraction", f"{s.nn_ratio_fraction:.4f}", f"{s.heldout_nn_ratio_fraction:.4f}",
             f"exceeds held-out by > {t.nn_ratio_excess:g} (ratio < {s.ratio_threshold:.3g})", mark("nn_ratio")),
            ("authenticity", f"{s.authenticity:.4f}", f"{s.heldout_authenticity:.4f}",
             f"below held-out by > {t.authenticity_drop:g}", mark("authenticity")),
            ("train-test gap", f"{s.gap_excess:+.4f}", "0", f"< {t.gap_excess:g}", mark("gap")),
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        rule = (f"copying needs one of {', '.join(TRAIN_SPECIFIC_SIGNALS)}" if t.require_train_specific
                else "copying on any signal")
        lines.append(f"verdict: {self.verdict}  ({rule}; C_T cells used {s.ct.cells_used}/{s.ct.n_cells})")
        lines.append(
            f"(extractor {p.get('extractor')}, n generated {s.n_generated}, n train {s.n_train}, n test {s.n_test}, "
            f"seed {p.get('seed')}, {p.get('wall_time_s')} s; samples {inputs.get('generated', {}).get('location')})"
        )
        if self.gallery:
            lines.append(f"gallery: {self.gallery}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- validation


def check_sizes(n_generated: int, n_train: int, n_test: int, options: MemorizationOptions) -> None:
    """Refuse sample counts the statistics cannot work with, naming the CLI options. Raises ConfigError."""
    if options.n_cells < 1:
        raise ConfigError(f"n_cells (--n-cells) must be at least 1, got {options.n_cells}")
    if n_train < max(2, options.n_cells):
        raise ConfigError(
            f"the training set (--train) has {n_train} samples, but C_T's k-means needs at least "
            f"n_cells={options.n_cells} (--n-cells) and at least 2; use fewer cells or more training data"
        )
    if n_test < 2:
        raise ConfigError(f"the test set (--test) has {n_test} samples; at least 2 are needed")
    if n_generated <= options.min_cell_generated:
        raise ConfigError(
            f"{n_generated} generated samples: C_T only uses cells holding more than {options.min_cell_generated} "
            f"generated samples, so at least {options.min_cell_generated + 1} are needed (more than "
            f"{options.min_cell_generated} per cell for each of the n_cells={options.n_cells} (--n-cells) cells is "
            "better); pass more samples or raise --max-samples"
        )
    if options.gallery_count < 0:
        raise ConfigError(f"gallery count must be non-negative, got {options.gallery_count}")
    # The largest distance block has one column per training (or test) sample.
    plan_chunk_rows(max(n_train, n_test), chunk_size=options.chunk_size, max_memory_bytes=options.max_memory_bytes)


# ----------------------------------------------------------------------------- the probe


def run_memorization_probe(
    samples: Any,
    train: Any = DEFAULT_TRAIN,
    test: Any = DEFAULT_TEST,
    *,
    options: MemorizationOptions = MemorizationOptions(),
    extract_options: ExtractOptions | None = None,
    thresholds: MemorizationThresholds | None = None,
    gallery: str | Path | None = None,
) -> MemorizationReport:
    """Run the memorization probe on ``samples`` against ``train`` with ``test`` as the held-out split.

    Inputs: image sources (paths, data set specs, arrays, ImageSource) or feature files. Writes a
    PNG gallery of the most suspicious samples beside their nearest training images when ``gallery``
    is a path (images needed for both). Raises ConfigError for too few samples or a chunk that cannot
    fit, ReferenceStatsError when inputs were built with different extractors or preprocessing.
    Progress (``extract_options.progress``): every extraction and the statistics are numbered steps.
    """
    xo = extract_options or ExtractOptions()
    with progress.enabled(xo.progress):
        return _run_memorization_probe(samples, train, test, options, xo, thresholds, gallery)


def _run_memorization_probe(samples: Any, train: Any, test: Any, options: MemorizationOptions, xo: ExtractOptions,
                            thresholds: MemorizationThresholds | None, gallery: str | Path | None) -> MemorizationReport:
    started = time.perf_counter()
    thresholds = thresholds or MemorizationThresholds()
    # Open everything (cheap) and validate before any extraction.
    gen_in = open_probe_input(samples, "generated", "SAMPLES", data_dir=xo.data_dir, max_n=options.max_samples,
                              seed=options.seed, stream=0)
    train_in = open_probe_input(train, "train", "--train", data_dir=xo.data_dir, max_n=options.max_train,
                                seed=options.seed, stream=2)
    test_in = open_probe_input(test, "test", "--test", data_dir=xo.data_dir, max_n=options.max_samples,
                               seed=options.seed, stream=1)
    inputs = [gen_in, train_in, test_in]
    check_sizes(gen_in.n, train_in.n, test_in.n, options)
    _warn_overlap(gen_in, test_in)
    if gallery is not None:
        for item in (gen_in, train_in):
            if item.source is None:
                raise ConfigError(
                    f"--gallery needs images of the generated and training sets, but {item.flag} is a feature file "
                    f"({item.description}); pass images or drop --gallery"
                )
    pending = [item for item in inputs if item.evaluated is None]
    # Train and test first: a mismatch between them is the most important refusal.
    run = prepare_probe({"train": train_in, "test": test_in, "generated": gen_in}, xo, [samples, train, test])
    xo = run.options
    steps = progress.Steps(len(pending) + 1)  # each extraction, then the statistics
    extract_inputs(run, {"train": train_in, "test": test_in, "generated": gen_in}, keep_features=True, steps=steps)

    # every input is evaluated, with features (open_probe_input refuses statistics files here)
    assert train_in.evaluated is not None and test_in.evaluated is not None and gen_in.evaluated is not None
    train_f, test_f, gen_f = train_in.evaluated.features, test_in.evaluated.features, gen_in.evaluated.features
    assert train_f is not None and test_f is not None and gen_f is not None
    with steps.step():
        stats = memorization_statistics(
            train_f, test_f, gen_f,
            seed=options.seed, n_cells=options.n_cells, min_cell_generated=options.min_cell_generated,
            ratio_threshold=options.ratio_threshold, chunk_size=options.chunk_size,
            max_memory_bytes=options.max_memory_bytes, progress=progress.current(),
        )
    verdict = memorization_verdict(stats, thresholds)
    signals = copying_signals(stats, thresholds)
    picks = most_suspicious(stats, options.gallery_count)
    suspicious = [{**p.to_dict(), "generated_key": _key(gen_in, p.generated_index),
                   "train_key": _key(train_in, p.train_index)} for p in picks]
    provenance = run.provenance({}, inputs=provenance_inputs([gen_in, train_in, test_in]),
                                options={"options": options.to_dict()}, seed=options.seed)
    report = MemorizationReport(stats, verdict, signals, thresholds, suspicious, provenance)
    if gallery is not None:
        report.gallery = str(write_gallery(report, gen_in, train_in, gallery))
    provenance["wall_time_s"] = round(time.perf_counter() - started, 3)  # the gallery included
    return report


def _rows_of_base(item: ProbeInput) -> tuple[str, np.ndarray | None]:
    """(fingerprint of the innermost source, its rows used by ``item`` or None for all of them)."""
    src, rows = item.source, None
    while isinstance(src, SubsetSource):
        rows = src.indices if rows is None else src.indices[rows]
        src = src.base
    return (src.fingerprint() if src is not None else ""), rows


def _warn_overlap(gen_in: ProbeInput, test_in: ProbeInput) -> None:
    """Warn when SAMPLES and --test share images (a held-out calibration needs disjoint data)."""
    (a, rows_a), (b, rows_b) = _rows_of_base(gen_in), _rows_of_base(test_in)
    if not a or a != b:
        return
    shared = (min(gen_in.n, test_in.n) if rows_a is None or rows_b is None
              else len(np.intersect1d(rows_a, rows_b)))
    if shared:
        warnings.warn(
            f"SAMPLES and --test share {shared} images: those have distance 0 to the test set, which biases the "
            "train-test gap upwards. To calibrate on real data, pass two disjoint parts of the held-out data",
            stacklevel=3)


def _key(item: ProbeInput, index: int) -> str:
    ev = item.evaluated
    if item.source is not None:
        return item.source.key(index)
    if ev is not None and ev.files is not None:
        return ev.files[index]
    return str(index)


def write_gallery(report: MemorizationReport, gen_in: ProbeInput, train_in: ProbeInput, path: str | Path) -> Path:
    """PNG of the most suspicious generated samples (left) beside their nearest training images (right)."""
    from ..results.plots import pair_gallery

    assert gen_in.source is not None and train_in.source is not None  # the probe refuses --gallery for feature files
    pairs = []
    for entry in report.suspicious:
        a = gen_in.source.read(entry["generated_index"])
        b = train_in.source.read(entry["train_index"])
        pairs.append((a, b, f"ratio {entry['ratio']:.2f}  d {entry['distance']:.3g}"))
    title = (f"memorization probe: verdict {report.verdict}; C_T {report.ct:+.2f}, memorized "
             f"{report.memorized_fraction:.3f}, authenticity {report.authenticity:.3f}")
    return pair_gallery(pairs, path, title=title)


def memorized_mask(report: MemorizationReport) -> np.ndarray:
    """bool [m]: generated samples whose NN distance ratio is below the threshold."""
    return report.stats.generated_ratio < report.stats.ratio_threshold
