"""The one path from inputs to numbers: open -> subsample -> check -> extract -> score.

Every verb goes through here: ``score``, ``extract``, ``stats``, each ``probe``, ``leaderboard``,
``check``, ``demo``, ``ref build``, the Python API, the streaming Evaluator and
:mod:`genbench.testing`. Inputs are taken by role (``generated``, ``reference``; the probes add
``train`` and ``test``). Each may be an image source (folder, archive, array file, data set
``NAME:SPLIT``, in-memory array or tensor, ImageSource, generator) or a feature file written by
``genbench extract``; a reference may also be a statistics file or a reference id from the
manifest (``fashion-mnist:train``).

**The extractor**, the same rule for every verb (:func:`choose_extractor`): an explicit
``--extractor`` wins; else the extractor a loaded input records (a feature or statistics file, a
reference id); else the data set's default (:data:`DATASET_EXTRACTORS`: ``fmnist-cnn`` for
Fashion-MNIST and Stacked Fashion-MNIST); else ``inception-v3``.

**Compatibility**: :mod:`genbench.stats.compatibility` is the policy (which identity fields must
match, what happens without metadata); :func:`check_inputs` applies it here, for every verb.
Inputs that are all feature or statistics files score without building a network.
"""
from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import DEFAULT_EXTRACTOR, ExtractOptions, MetricOptions
from .errors import ConfigError, InputError
from .extraction.distributed import for_this_rank, is_main_process
from .extraction.engine import precision_deviation
from .features import build_extractor
from .features.base import INCEPTION_METRIC_NAMES, FeatureExtractor, MetricNames
from .metrics.inputs import Evaluated
from .metrics.registry import (
    GEN_FEATURES,
    GEN_LOGITS,
    METRICS,
    REF_FEATURES,
    compute_plan,
    preflight_metrics,
    resolve_metrics,
)
from .results.provenance import build_provenance
from .results.records import ScoreResult
from .sources.arrays import npz_keys
from .sources.base import ImageSource
from .stats.compatibility import IDENTITY_FIELDS, Side, check_compatible, identity_fields
from .stats.feature_stats import FeatureStats
from .stats.io import FeatureFile, SavedStats, UnknownProvenanceWarning, load_features, load_stats
from .util.files import sha256_file

__all__ = ["IDENTITY_FIELDS", "DATASET_EXTRACTORS", "Evaluated", "Pending", "choose_extractor", "open_input",
           "check_inputs", "extract_source", "extract_input", "score"]

#: data set name -> the extractor used for it when no --extractor is given and no loaded input records one
DATASET_EXTRACTORS = {"fashion-mnist": "fmnist-cnn", "stacked-fashion-mnist": "fmnist-cnn"}


# ----------------------------------------------------------------------------- inputs


@dataclass
class Pending:
    """An input that still has to go through the extractor."""

    role: str
    source: ImageSource
    flag: str | None = None

    @property
    def what(self) -> str:
        return f"{self.role} input {self.source.location or self.source.kind}" + (f" ({self.flag})" if self.flag else "")


def _is_stats_file(path: Path) -> bool:
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    keys = npz_keys(path)  # the zip directory only; InputError naming the file when it is no .npz
    return "mu" in keys and "sigma" in keys and "features" not in keys


def dataset_of(obj: Any) -> str | None:
    """The data set an input names (``fashion-mnist`` for ``fashion-mnist:train`` or a source read from it)."""
    if isinstance(obj, (str, Path)):
        spec = str(obj)
        if Path(spec).exists():
            return None
    elif isinstance(obj, ImageSource):
        spec = str(obj.location or "")
    else:
        return None
    match = re.match(r"([A-Za-z0-9][\w.-]*):", spec)
    return match.group(1) if match else None


def choose_extractor(options: ExtractOptions, loaded: Sequence[Evaluated], inputs: Sequence[Any] = ()) -> tuple[str, str | None]:
    """Extractor name and preprocessing: ``options`` first, then what a loaded input records, then the data set's
    default (:data:`DATASET_EXTRACTORS`, from the specs or sources in ``inputs``), then ``inception-v3``.

    The preprocessing follows the same order, from an input built with the chosen extractor.
    """
    name, preprocessing = options.extractor, options.preprocessing
    for ev in loaded:
        if ev.identity:
            name = name or ev.identity.get("extractor")
            if name == ev.identity.get("extractor"):
                preprocessing = preprocessing or ev.identity.get("preprocessing")
    if name is None:
        name = next((DATASET_EXTRACTORS[d] for d in map(dataset_of, inputs) if d in DATASET_EXTRACTORS), None)
    return name or DEFAULT_EXTRACTOR, preprocessing


def open_input(
    obj: Any,
    role: str,
    extractor_name: str | None = None,
    data_dir: str | None = None,
    *,
    flag: str | None = None,
    preprocessing: str | None = None,
    allow_stats: bool = True,
    reference_ids: bool = True,
) -> Evaluated | Pending:
    """What the user passed for ``role`` (CLI ``flag``): a loaded Evaluated (feature or statistics file, reference id)
    or a Pending image source. (The probes' seeded subsample of either: :func:`genbench.probes.inputs.open_probe_input`.)

    ``extractor_name`` (and ``preprocessing``) pick among the statistics a ``dataset:split`` has (None: the data
    set's default extractor).
    ``allow_stats=False`` refuses a statistics file (the probes need per-sample features);
    ``reference_ids=False`` reads ``NAME:SPLIT`` as the data set's images, never as its bundled statistics.
    """
    from .sources.resolve import as_source, is_feature_file

    if isinstance(obj, (str, Path)):
        spec = str(obj)
        path = Path(spec)
        if not path.exists() and allow_stats and reference_ids:
            from .stats.reference import lookup_reference

            entry = lookup_reference(spec, extractor_name or DATASET_EXTRACTORS.get(dataset_of(spec) or ""), preprocessing)
            if entry is None and extractor_name is None:
                entry = lookup_reference(spec)
            if entry is not None:
                if entry.kind == "features":  # a published KID reference: per-sample features
                    ev = _from_feature_file(entry.load_features(), role, flag)
                    ev.info.update(entry.source_info())
                    return ev
                saved = entry.load()
                return _from_saved_stats(saved, role, f"reference id {entry.id}", entry.source_info(), flag)
        if path.is_file() and is_feature_file(path):
            return _from_feature_file(load_features(path), role, flag)
        if _is_stats_file(path):
            if not allow_stats:
                raise InputError(
                    f"{path}" + (f" ({flag})" if flag else "") + ": a statistics file keeps only mean and covariance, "
                    "but this needs per-sample features; pass images or a feature file written by `genbench extract`"
                )
            if role != "reference":
                raise InputError(
                    f"{path}: a statistics file can only be the reference (--ref); the generated side needs "
                    "images or a feature file"
                )
            with warnings.catch_warnings():  # the compatibility policy says what is unchecked, once
                warnings.simplefilter("ignore", UnknownProvenanceWarning)
                saved = load_stats(path)
            return _from_saved_stats(saved, role, str(path), {"sha256": sha256_file(path)}, flag)
        source = as_source(spec, data_dir=data_dir)
    else:
        source = as_source(obj)
    if len(source) == 0:
        raise InputError(f"{flag or role} {source.location or source.kind}: no images")
    return Pending(role, source, flag)


def _from_saved_stats(saved: SavedStats, role: str, description: str, info: dict, flag: str | None = None) -> Evaluated:
    return Evaluated(role, description, saved.meta, saved.stats, info={"kind": "statistics", "location": description,
                                                                         **info}, flag=flag)


def _from_feature_file(ff: FeatureFile, role: str, flag: str | None = None) -> Evaluated:
    return Evaluated(
        role,
        str(ff.path),
        ff.meta,
        FeatureStats.from_features(ff.features),
        features=ff.features,
        logits=ff.logits,
        labels=ff.labels,
        files=ff.files,
        info={"kind": "features", "location": str(ff.path)},
        flag=flag,
    )


def subset_evaluated(ev: Evaluated, idx: np.ndarray) -> Evaluated:
    """The rows ``idx`` [K] of an Evaluated that holds per-sample features; statistics are recomputed."""
    if ev.features is None:
        raise ConfigError(f"{ev.what}: only per-sample features can be subsampled")
    features = ev.features[idx]
    return Evaluated(
        ev.role, ev.description, ev.identity, FeatureStats.from_features(features), features=features,
        logits=None if ev.logits is None else ev.logits[idx],
        labels=None if ev.labels is None else np.asarray(ev.labels)[idx],
        files=None if ev.files is None else [ev.files[i] for i in idx],
        info={**ev.info, "subset": len(idx)}, flag=ev.flag,
    )


# ----------------------------------------------------------------------------- extraction


def extract_source(
    source: ImageSource,
    extractor: FeatureExtractor,
    options: ExtractOptions,
    role: str = "generated",
    keep_features: bool = True,
    keep_logits: bool = True,
) -> Evaluated:
    """Stream ``source`` through ``extractor`` once; statistics always, features/logits when asked.

    Goes through the feature cache (:mod:`genbench.extraction.cache`; ``options.cache``) and, under torchrun, splits the
    work across ranks (:mod:`genbench.extraction.distributed`), where ranks other than 0 get no features or logits.
    ``info["cache"]`` records "hit", "miss", "partial" (resumed) or "off". Per-image ``files`` (names)
    are kept with the features only, so memory stays flat when only statistics are asked for.
    """
    from .extraction.distributed import extract_features
    from .extraction.request import ExtractionRequest

    warn_repeats(source)
    out = extract_features(ExtractionRequest(source, extractor, options, role, keep_features, keep_logits))
    return Evaluated(
        role,
        f"{source.location or source.kind} ({role})",
        extractor.identity().to_dict(),
        out.stats,
        features=out.features,
        logits=out.logits,
        labels=out.labels if source.has_labels else None,
        files=[source.key(i) for i in range(len(source))] if keep_features else None,  # names go with features
        info={**source.info().to_dict(), **out.info},
    )


def repeats_message(source: ImageSource) -> str | None:
    """What to say of a source that repeats images (see ``ImageSource.repeats``), or None."""
    repeated = source.repeats()
    if not repeated:
        return None
    return (f"{source.location or source.kind}: {repeated} of {len(source)} images repeat earlier ones; repeats "
            "shrink the measured diversity (recall, coverage) and bias FD and KID: score distinct images only")


def warn_repeats(source: ImageSource) -> None:
    message = repeats_message(source)
    if message:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


# ----------------------------------------------------------------------------- compatibility


def run_identity(extractor: FeatureExtractor, options: ExtractOptions) -> dict[str, Any]:
    """The identity features extracted in this run carry: the extractor's, plus the arithmetic precision."""
    return {**extractor.identity().to_dict(), "precision": options.precision}


def run_side(name: str, identity: dict[str, Any] | None) -> Side:
    """How the policy names the extractor of this run (extractor ``name``) in its messages."""
    return Side(f"this run's extractor {name}", identity)


def check_inputs(loaded: Sequence[Evaluated], expected: Side | None) -> dict[str, list[str]]:
    """Apply the compatibility policy (:mod:`genbench.stats.compatibility`) to the loaded inputs.

    ``expected``: this run's extractor when images are extracted too, else None (the inputs are compared with
    the first that records its identity). Also refuses features whose width is not the expected one.
    Returns the unchecked fields per input (warned about once); raises ReferenceStatsError.
    """
    unchecked = check_compatible([Side(ev.what, ev.identity) for ev in loaded], expected)
    want = identity_fields(expected.identity) if expected is not None else None
    dims = {ev.stats.dim for ev in loaded}
    for ev in loaded:
        width = (want or {}).get("feature_dim")
        if isinstance(width, int) and ev.stats.dim != width:
            raise_width(ev, width, expected.what if expected is not None else "")
    if want is None and len(dims) > 1:
        first = loaded[0]
        other = next(ev for ev in loaded if ev.stats.dim != first.stats.dim)
        raise_width(other, first.stats.dim, first.what)
    return unchecked


def raise_width(ev: Evaluated, width: int, other: str) -> None:
    from .errors import ReferenceStatsError

    raise ReferenceStatsError(f"{ev.what} has {ev.stats.dim}-dimensional features, but {other} gives {width}; "
                              "features made under different settings cannot be compared")


def _build_for(name: str, preprocessing: str | None, xo: ExtractOptions, loaded: Sequence[Evaluated]) -> FeatureExtractor:
    """The extractor; a preprocessing that came from an input's metadata is named as coming from that input."""
    try:
        return build_extractor(name, xo.weights, preprocessing, xo.device, xo.allow_unverified_weights,
                               xo.weights_sha256)
    except ConfigError as exc:
        origin = next((ev.description for ev in loaded if ev.identity and xo.preprocessing is None
                       and ev.identity.get("preprocessing") == preprocessing), None)
        if origin is None or preprocessing is None or "preprocessing" not in str(exc):
            raise
        detail = str(exc).replace(" (--preprocessing)", "")
        raise ConfigError(f"the preprocessing {preprocessing!r} recorded in {origin} does not fit extractor {name}: "
                          f"{detail}") from None


@dataclass
class Prepared:
    """Inputs opened and checked, the extractor chosen (and built when images need it); nothing extracted yet."""

    inputs: list[Evaluated | Pending]
    name: str  # the extractor's name
    extractor: FeatureExtractor | None  # None when every input is already features or statistics
    options: ExtractOptions  # with the chosen extractor's batch size when none was given
    identity: dict[str, Any] | None  # what the numbers are made under (this run's extractor, or the inputs')
    unchecked: dict[str, list[str]]

    @property
    def loaded(self) -> list[Evaluated]:
        return [x for x in self.inputs if isinstance(x, Evaluated)]

    @property
    def pending(self) -> list[Pending]:
        return [x for x in self.inputs if isinstance(x, Pending)]

    def extract(self, keep_features: bool = True, keep_logits: bool = False) -> list[Evaluated]:
        """Every input as an Evaluated, in order: pending sources go through the extractor once each."""
        out = []
        for item in self.inputs:
            if isinstance(item, Pending):
                assert self.extractor is not None
                ev = extract_source(item.source, self.extractor, self.options, item.role, keep_features, keep_logits)
                ev.flag = item.flag
                item = ev
            out.append(item)
        return out


def prepare(inputs: Sequence[Evaluated | Pending], options: ExtractOptions, specs: Sequence[Any] = (),
            build: bool | None = None) -> Prepared:
    """Choose the extractor (:func:`choose_extractor`), build it when a pending source needs it (or ``build``),
    and apply the compatibility policy. Cheap: nothing is extracted."""
    inputs = list(inputs)
    loaded = [x for x in inputs if isinstance(x, Evaluated)]
    name, preprocessing = choose_extractor(options, loaded, [*specs, *(p.source for p in inputs
                                                                       if isinstance(p, Pending))])
    xo = options.for_extractor(name)
    extractor = None
    if build or (build is None and any(isinstance(x, Pending) for x in inputs)):
        extractor = _build_for(name, preprocessing, xo, loaded)
        identity: dict[str, Any] | None = run_identity(extractor, xo)
        unchecked = check_inputs(loaded, run_side(name, identity))
    else:
        if options.extractor is not None:  # an explicit --extractor is checked against the files' metadata
            for ev in loaded:
                recorded = (ev.identity or {}).get("extractor")
                if recorded is not None and recorded != options.extractor:
                    from .errors import ReferenceStatsError
                    from .stats.compatibility import mismatch_message

                    raise ReferenceStatsError(mismatch_message(ev.what, "extractor", recorded, "--extractor",
                                                               options.extractor))
        unchecked = check_inputs(loaded, None)
        identity = next((identity_fields(ev.identity) for ev in loaded if ev.identity is not None), None)
    return Prepared(inputs, name, extractor, xo, identity, unchecked)


def extract_input(obj: Any, options: ExtractOptions, keep_features: bool = True, keep_logits: bool = True,
                  role: str = "source") -> tuple[Evaluated, dict[str, Any]]:
    """One input's features (``genbench extract``) or statistics (``genbench stats``, ``ref build``) and the metadata
    to save with them. A feature file is read, not re-extracted: its statistics need no network."""
    xo = for_this_rank(options)  # under torchrun: cuda -> cuda:LOCAL_RANK
    item = open_input(obj, role, xo.extractor, xo.data_dir, allow_stats=False)
    ready = prepare([item], xo, [obj])
    (ev,) = ready.extract(keep_features=keep_features, keep_logits=keep_logits)
    identity = ev.identity if isinstance(item, Evaluated) else ready.identity  # a feature file keeps its own meta
    return ev, {**(identity or {}), "source": ev.info, "n": ev.n}


# ----------------------------------------------------------------------------- scoring


def score(
    generated: Any,
    reference: Any,
    metrics: list[str] | None = None,
    extract_options: ExtractOptions | None = None,
    metric_options: MetricOptions | None = None,
) -> ScoreResult:
    """Score ``generated`` against ``reference``; see the module docstring for the accepted inputs."""
    started = time.perf_counter()
    xo = for_this_rank(extract_options or ExtractOptions())  # under torchrun: cuda -> cuda:LOCAL_RANK
    mo = metric_options or MetricOptions()
    # Load the reference first: a bad reference should fail before any extraction.
    ref_in = open_input(reference, "reference", xo.extractor, xo.data_dir, flag="--ref", preprocessing=xo.preprocessing)
    gen_in = open_input(generated, "generated", xo.extractor, xo.data_dir)
    ready = prepare([ref_in, gen_in], xo, [reference, generated])
    xo, extractor, name = ready.options, ready.extractor, ready.name
    names = extractor.metric_names if extractor is not None else _names_for(name)
    ref_has_features = isinstance(ref_in, Pending) or ref_in.features is not None
    gen_has_logits = (extractor is not None and extractor.logits_dim is not None) if isinstance(gen_in, Pending) \
        else gen_in.logits is not None
    if metrics is None:
        metrics = ["fd"] + (["is"] if gen_has_logits else []) + (["kid"] if ref_has_features else [])
    plan = resolve_metrics(metrics, names, name)
    needs = set().union(*(METRICS.get(kind).needs for _, kind in plan)) if plan else set()
    _check_available(needs, ref_in, gen_in, plan)
    for obj in (gen_in, ref_in):  # sizes against options, before any extraction
        if _count(obj) < 2:
            raise InputError(f"the {obj.role} input {_description(obj)} has {_count(obj)} sample(s); "
                             "statistics need at least 2")
    preflight_metrics(plan, _count(gen_in), _count(ref_in), mo)

    evaluated: dict[str, Evaluated] = {ev.role: ev for ev in ready.loaded}
    for p in ready.pending:
        assert extractor is not None
        keep_features = (GEN_FEATURES if p.role == "generated" else REF_FEATURES) in needs or (
            p.role == "generated" and mo.bootstrap > 0
        )
        keep_logits = p.role == "generated" and GEN_LOGITS in needs
        evaluated[p.role] = extract_source(p.source, extractor, xo, p.role, keep_features, keep_logits)
    gen, ref = evaluated["generated"], evaluated["reference"]
    if not is_main_process():  # under torchrun, rank 0 alone computes metrics and reports
        return ScoreResult({}, {"rank": int(os.environ.get("RANK", "0")), "note": "metrics are computed on rank 0"})
    precision_check = {}
    if xo.precision != "float32" and any(p.role == "generated" for p in ready.pending):
        assert extractor is not None
        gen_source = next(p.source for p in ready.pending if p.role == "generated")
        precision_check = {"precision_check": precision_deviation(gen_source, extractor, xo, ref.stats)}

    from .util.progress import enabled as progress_enabled

    with progress_enabled(xo.progress):  # k-NN, KID and bootstrap phases on stderr unless --quiet
        values = compute_plan(plan, gen, ref, mo)
    provenance = build_provenance(
        ready.identity,
        {"generated": {**gen.info, "n": gen.n}, "reference": {**ref.info, "n": ref.n}},
        options={"metric_options": mo.to_dict()},
        seed=mo.seed,
        extract_options=xo if ready.pending else None,
        started=started,
        unchecked=ready.unchecked,
        # False only when this run's extractor was built from a file whose sha256 is not the published one.
        extra={"weights_verified": bool(getattr(extractor, "weights_verified", True)), **precision_check},
    )
    return ScoreResult(values, provenance)


def _count(obj: Evaluated | Pending) -> int:
    """Samples an input has (or will have once extracted)."""
    if isinstance(obj, Pending):
        return len(obj.source)
    return len(obj.features) if obj.features is not None else obj.n


def _description(obj: Evaluated | Pending) -> str:
    if isinstance(obj, Pending):
        return obj.source.location or obj.source.kind
    return obj.description


def _names_for(extractor_name: str) -> MetricNames:
    """Metric names of an extractor without loading its weights where they are known statically."""
    if extractor_name == "inception-v3":
        return INCEPTION_METRIC_NAMES
    from .features import static_metric_names

    return static_metric_names(extractor_name) or build_extractor(extractor_name).metric_names


def _check_available(needs: set[str], ref_in, gen_in, plan) -> None:
    for role, obj, need in (
        ("reference", ref_in, REF_FEATURES),
        ("generated", gen_in, GEN_FEATURES),
        ("generated", gen_in, GEN_LOGITS),
    ):
        if need not in needs or isinstance(obj, Pending):
            continue
        have = obj.features if need != GEN_LOGITS else obj.logits
        if have is None:
            wanting = [n for n, kind in plan if need in METRICS.get(kind).needs]
            raise ConfigError(
                f"metrics {', '.join(wanting)} (--metrics) need {need}, but the {role} input {obj.description} "
                "has none (a statistics file keeps only mean and covariance); pass images or a feature file"
            )
