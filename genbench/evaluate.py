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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import DEFAULT_EXTRACTOR, ExtractOptions, MetricOptions
from .errors import ConfigError, InputError
from .extraction.ranks import for_this_rank, is_main_process
from .features import build_extractor
from .features.identity import INCEPTION_METRIC_NAMES, MetricNames
from .metrics.inputs import Evaluated
from .metrics.registry import (
    GEN_FEATURES,
    GEN_LOGITS,
    METRICS,
    REF_FEATURES,
    TEST_FEATURES,
    TRAIN_FEATURES,
    compute_plan,
    preflight_metrics,
    resolve_metrics,
)
from .results.provenance import build_provenance
from .results.records import ScoreResult
from .sources.arrays import npz_keys
from .sources.base import ImageSource
from .sources.generator import generator_options
from .stats.compatibility import IDENTITY_FIELDS, Side, check_compatible, identity_fields, stated_fields
from .stats.feature_stats import FeatureStats
from .stats.io import FeatureFile, SavedStats, UnknownProvenanceWarning, load_features, load_stats
from .util.files import sha256_file

if TYPE_CHECKING:
    from .features.base import FeatureExtractor

__all__ = ["IDENTITY_FIELDS", "DATASET_EXTRACTORS", "Evaluated", "Pending", "Run", "prepare_run", "default_metrics",
           "choose_extractor", "open_input", "check_inputs", "extract_source", "extract_input", "score"]

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
    generator: Any = None,
) -> Evaluated | Pending:
    """What the user passed for ``role`` (CLI ``flag``): a loaded Evaluated (feature or statistics file, reference id)
    or a Pending image source. (The probes' seeded subsample of either: :func:`genbench.probes.inputs.open_probe_input`.)

    ``extractor_name`` (and ``preprocessing``) pick among the statistics a ``dataset:split`` has (None: the data
    set's default extractor).
    ``allow_stats=False`` refuses a statistics file (the probes need per-sample features);
    ``reference_ids=False`` reads ``NAME:SPLIT`` as the data set's images, never as its bundled statistics.
    ``generator`` (:class:`~genbench.sources.generator.GeneratorOptions`): how a ``py:`` spec or a callable is drawn.
    """
    from .sources.resolve import as_source, is_feature_file

    if isinstance(obj, (str, Path)):
        spec = str(obj)
        path = Path(spec)
        if not path.exists() and allow_stats and reference_ids:
            from .stats.lookup import lookup_reference

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
        source = as_source(spec, data_dir=data_dir, generator=generator)
    else:
        source = as_source(obj, generator=generator)
    if len(source) == 0:
        raise InputError(f"{flag or role} {source.location or source.kind}: no images")
    return Pending(role, source, flag)


def _from_saved_stats(saved: SavedStats, role: str, description: str, info: dict, flag: str | None = None) -> Evaluated:
    unknown = {} if saved.n_known else {"n_known": False}  # a file without a count: n is recorded as None
    bank = saved.bank_features  # a merged shards' bank (genbench merge): a seeded sample of the rows, for KID/PR
    return Evaluated(role, description, saved.meta, saved.stats, features=bank,
                     info={"kind": "statistics", "location": description, **info, **unknown,
                           **({"bank_rows": len(bank)} if bank is not None else {})}, flag=flag,
                     layers=dict(saved.layers))  # sFID's spatial statistics, where the file has them


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
    return split_layers(extractor, Evaluated(
        role,
        f"{source.location or source.kind} ({role})",
        extractor.identity().to_dict(),
        out.stats,
        features=out.features,
        logits=out.logits,
        labels=out.labels if source.has_labels else None,
        files=[source.key(i) for i in range(len(source))] if keep_features else None,  # names go with features
        info={**source.info().to_dict(), **out.info},
    ))


def split_layers(extractor: FeatureExtractor, ev: Evaluated) -> Evaluated:
    """An extractor that streams several layers at once (inception-v3 ``pool3+spatial``) gives the first as the
    features and the others' statistics in ``ev.layers`` (exact: blocks of the same float64 sums)."""
    parts: dict[str, dict] = getattr(extractor, "part_identities", dict)()
    if len(parts) < 2:
        return ev
    (first, first_id), *rest = parts.items()
    d = int(first_id["feature_dim"])
    total, outer = ev.stats.total, ev.stats.outer
    start, layers = d, {}
    for name, ident in rest:
        stop = start + int(ident["feature_dim"])
        layers[name] = FeatureStats(ev.stats.n, total[start:stop].copy(), outer[start:stop, start:stop].copy())
        start = stop
    ev.stats = FeatureStats(ev.stats.n, total[:d].copy(), outer[:d, :d].copy())
    ev.features = None if ev.features is None else np.ascontiguousarray(ev.features[:, :d])
    ev.identity = {**(ev.identity or {}), **first_id}
    ev.layers = layers
    return ev


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
    """The identity features extracted in this run carry: the extractor's (its first part where it streams several
    layers, see :func:`split_layers`), plus the arithmetic precision."""
    parts: dict[str, dict] = getattr(extractor, "part_identities", dict)()
    own = next(iter(parts.values())) if parts else extractor.identity().to_dict()
    return {**own, "precision": options.precision, **({"protocol": options.protocol} if options.protocol else {})}


def run_side(name: str, identity: dict[str, Any] | None) -> Side:
    """How the policy names the extractor of this run (extractor ``name``) in its messages."""
    return Side(f"this run's extractor {name}", identity)


def check_inputs(loaded: Sequence[Evaluated], expected: Side | None, warn: bool = True) -> dict[str, list[str]]:
    """Apply the compatibility policy (:mod:`genbench.stats.compatibility`) to the loaded inputs.

    ``expected``: this run's extractor when images are extracted too, else None (the inputs are compared with
    the first that records its identity). Also refuses features whose width is not the expected one.
    Returns the unchecked fields per input (warned about once); raises ReferenceStatsError.
    """
    unchecked = check_compatible([Side(ev.what, ev.identity) for ev in loaded], expected, warn=warn)
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
                               xo.weights_sha256, layer=xo.layer)
    except ConfigError as exc:
        origin = next((ev.description for ev in loaded if ev.identity and xo.preprocessing is None
                       and ev.identity.get("preprocessing") == preprocessing), None)
        if origin is None or preprocessing is None or "preprocessing" not in str(exc):
            raise
        detail = str(exc).replace(" (--preprocessing)", "")
        raise ConfigError(f"the preprocessing {preprocessing!r} recorded in {origin} does not fit extractor {name}: "
                          f"{detail}") from None


def build_run_extractor(name: str, options: ExtractOptions) -> FeatureExtractor:
    """A new extractor ``name`` under ``options`` (weights, preprocessing, device, verification), owned by the caller
    (a board hands it to each row's run; nothing else sees it)."""
    return _build_for(name, options.preprocessing, options.for_extractor(name), [])


# ----------------------------------------------------------------------------- the prepared run

Item = Evaluated | Pending


def count(obj: Item) -> int:
    """Samples an input has (or will have once extracted): per-sample rows where kept, else the statistics' n."""
    if isinstance(obj, Pending):
        return len(obj.source)
    return len(obj.features) if obj.features is not None else obj.n


def describe(obj: Item) -> str:
    if isinstance(obj, Pending):
        return obj.source.location or obj.source.kind
    return obj.description


def default_metrics(gen_has_logits: bool, ref_has_features: bool) -> list[str]:
    """The one default-metric rule, for every verb and the Evaluator: FD; IS where the generated side has classifier
    logits; KID where the reference keeps per-sample features."""
    return ["fd"] + (["is"] if gen_has_logits else []) + (["kid"] if ref_has_features else [])


@dataclass
class Run:
    """A prepared run: the one place that decides the extractor, the resolved options, the metric plan, the
    compatibility result and the provenance of a computation. Nothing is extracted until asked.

    ``inputs``: by role, each a loaded :class:`Evaluated` or a :class:`Pending` source. ``streamed``: roles whose
    features arrive from outside (the Evaluator's generated side, fed by ``update()``). ``plan``: (output name, kind)
    pairs of the registry, empty when the run has no generated/reference pair to score (extract, stats, probes).
    """

    inputs: dict[str, Item]
    name: str  # the extractor's name
    extractor: FeatureExtractor | None  # None when every input is already features or statistics
    options: ExtractOptions  # with the chosen extractor's batch size when none was given
    metric_options: MetricOptions
    plan: list[tuple[str, str]]
    identity: dict[str, Any] | None  # what the numbers are made under (this run's extractor, or the inputs')
    unchecked: dict[str, list[str]]
    streamed: tuple[str, ...] = ()
    started: float = field(default_factory=time.perf_counter)
    _evaluated: dict[str, Evaluated] = field(default_factory=dict, repr=False)
    #: reference-side work of the plan (FD's factor), kept across computes where the run computes many times (a
    #: streamed generated side, a sweep through :meth:`with_generated`); None: one-shot, the classic routes.
    _reference_memo: dict | None = field(default=None, repr=False)
    #: Also give the per-sample arrays (genbench.metrics.per_sample) with the score: keeps both sides' features.
    per_sample: bool = False

    @property
    def loaded(self) -> list[Evaluated]:
        return [x for x in self.inputs.values() if isinstance(x, Evaluated)]

    @property
    def pending(self) -> list[Pending]:
        return [x for x in self.inputs.values() if isinstance(x, Pending)]

    @property
    def needs(self) -> set[str]:
        """What the plan's metrics need (the registry's GEN_*/REF_* constants)."""
        return set().union(*(METRICS.get(kind).needs for _, kind in self.plan)) if self.plan else set()

    def keeps(self, role: str) -> tuple[bool, bool]:
        """(keep per-sample features, keep logits) for ``role``: what the plan needs of it (bootstrap intervals need
        the generated features); roles outside the plan keep their features."""
        needs = self.needs
        if role == "generated":
            return (GEN_FEATURES in needs or self.metric_options.bootstrap > 0 or self.per_sample,
                    GEN_LOGITS in needs or self.per_sample)
        if role == "reference":
            return REF_FEATURES in needs or self.per_sample, False
        return True, False

    def evaluated(self, role: str, keep_features: bool | None = None, keep_logits: bool | None = None) -> Evaluated:
        """``role``'s input as an Evaluated: loaded ones as they are, pending sources extracted once (memoised)."""
        if role in self._evaluated:
            return self._evaluated[role]
        item = self.inputs[role]
        if isinstance(item, Pending):
            assert self.extractor is not None  # prepare_run builds the extractor when a source is pending
            features, logits = self.keeps(role)
            ev = extract_source(item.source, self.extractor, self.options, role,
                                features if keep_features is None else keep_features,
                                logits if keep_logits is None else keep_logits)
            ev.flag = item.flag
            item = ev
        self._evaluated[role] = item
        return item

    def extract(self, source: ImageSource, role: str, keep_features: bool = True, keep_logits: bool = False,
                extractor: FeatureExtractor | None = None) -> Evaluated:
        """A source derived from this run's inputs (a transformed copy, one channel of a stack) through this run's
        extractor and options (or ``extractor``: the same network under another preprocessing policy)."""
        net = extractor or self.extractor
        if net is None:
            raise ConfigError(f"{role}: images need an extractor, but this run scores feature files only")
        return extract_source(source, net, self.options, role, keep_features, keep_logits)

    def compute(self, evaluated: Mapping[str, Evaluated] | None = None) -> dict[str, dict]:
        """The plan's metrics on the generated/reference pair (``evaluated`` overrides a role: the Evaluator's
        stream); where the run computes many times (the Evaluator, a sweep) the reference-side work (FD's factor) is done
        once."""
        given = dict(evaluated or {})
        ref = given.get("reference") or self.evaluated("reference")
        gen = given.get("generated") or self.evaluated("generated")
        for ev in (gen, ref):
            if ev.n < 2:
                raise InputError(f"the {ev.role} input {ev.description} has {ev.n} sample(s); statistics need at least 2")
        preflight_metrics(self.plan, count(gen), count(ref), self.metric_options)
        from .util.progress import enabled as progress_enabled

        with progress_enabled(self.options.progress):  # k-NN, KID and bootstrap phases on stderr unless --quiet
            return compute_plan(self.plan, gen, ref, self.metric_options, self._reference_memo, self._roles())

    def _roles(self) -> dict[str, Evaluated]:
        """The extra roles given to this run (``train``, ``test``) for the metrics that need them."""
        return {need: self.evaluated(role) for role, need in (("train", TRAIN_FEATURES), ("test", TEST_FEATURES))
                if role in self.inputs}

    def provenance(self, evaluated: Mapping[str, Evaluated], *, options: dict | None = None,
                   extra: dict | None = None, stamp: dict | None = None,
                   inputs: dict[str, dict] | None = None, seed: int | None = None) -> dict:
        """The result's provenance (:func:`genbench.results.provenance.build_provenance`) for this run: its identity,
        the inputs by role (``inputs`` replaces the default ``{**info, "n": n}`` per role), the metric options (where
        the run has a plan) and ``options``, the seed (``seed``, else the metric options'), the extraction options
        where this run extracted anything, and whether the weights were verified."""
        mo = self.metric_options
        return build_provenance(
            self.identity,
            inputs if inputs is not None else {role: {**ev.info, "n": ev.n if ev.info.get("n_known", True) else None}
                                               for role, ev in evaluated.items()},
            options={**({"metric_options": mo.to_dict()} if self.plan else {}), **(options or {})},
            seed=mo.seed if seed is None else seed,
            extract_options=self.options if (self.pending or self.streamed) else None,
            started=self.started,
            unchecked=self.unchecked,
            # False only when this run's extractor was built from a file whose sha256 is not the published one.
            extra={"weights_verified": bool(getattr(self.extractor, "weights_verified", True)), **(extra or {})},
            stamp=stamp,
        )

    def score(self) -> ScoreResult:
        """Extract what is pending, compute the plan and build the result (``genbench score``)."""
        ref = self.evaluated("reference")  # the reference first, as every verb extracts it
        gen = self.evaluated("generated")
        if not is_main_process():  # under torchrun, rank 0 alone computes metrics and reports
            return ScoreResult({}, {"rank": int(os.environ.get("RANK", "0")), "note": "metrics are computed on rank 0"})
        precision_check = {}
        gen_in = self.inputs["generated"]
        if self.options.precision != "float32" and isinstance(gen_in, Pending):
            assert self.extractor is not None
            from .extraction.engine import precision_deviation

            precision_check = {"precision_check": precision_deviation(gen_in.source, self.extractor, self.options,
                                                                      ref.stats)}
        values = self.compute({"generated": gen, "reference": ref})
        roles: dict[str, Evaluated] = {r: self.evaluated(r) for r in ("train", "test") if r in self.inputs}
        result = ScoreResult(values, self.provenance({"generated": gen, "reference": ref, **roles},
                                                     extra=precision_check))
        if self.per_sample:
            from .metrics.per_sample import per_sample_arrays

            result.samples = per_sample_arrays(gen, ref, self.metric_options, roles.get("train"))
        return result

    def with_generated(self, generated: Any) -> Run:
        """A run of the same extractor, options, plan and (already extracted) reference on another generated input:
        how the leaderboard and sweeps score many inputs against one reference. Checks and preflight as
        :func:`prepare_run`."""
        ref = self.evaluated("reference")
        item = generated if isinstance(generated, (Evaluated, Pending)) else open_input(
            generated, "generated", self.name, self.options.data_dir,
            generator=generator_options(self.options, self.metric_options.seed))
        expected = run_side(self.name, self.identity) if self.extractor is not None else None
        loaded = [ref] + ([item] if isinstance(item, Evaluated) else [])
        unchecked = check_inputs(loaded, expected)
        if isinstance(item, Pending) and self.extractor is None:
            raise ConfigError(f"{item.what}: images need an extractor, but this run scores feature files only")
        _check_available(self.needs, ref, item, self.plan)
        _check_counts([item], self.plan, self.metric_options, ref)
        run = Run({"reference": ref, "generated": item}, self.name, self.extractor, self.options, self.metric_options,
                  self.plan, self.identity, unchecked)
        run._evaluated["reference"] = ref
        if self._reference_memo is None:
            self._reference_memo = {}
        run._reference_memo = self._reference_memo  # the same reference: its prepared work carries over
        return run


def prepare_run(
    inputs: Mapping[str, Any],
    extract_options: ExtractOptions | None = None,
    metric_options: MetricOptions | None = None,
    metrics: Sequence[str] | None = None,
    *,
    streamed: Sequence[str] = (),
    specs: Sequence[Any] = (),
    build: bool | None = None,
    extractor: FeatureExtractor | None = None,
    scored: bool = True,
) -> Run:
    """Open the inputs (``role -> spec``, or already opened :class:`Evaluated`/:class:`Pending` items; the reference
    is opened first), choose the extractor (:func:`choose_extractor`), build it when a pending source or a streamed
    role needs it (or ``build``; ``extractor`` hands one in), apply the compatibility policy, resolve the metric plan
    (``metrics``; None: :func:`default_metrics`) and check every count against the options. Cheap: nothing is
    extracted. A plan is resolved when the run has a generated (given or ``streamed``) and a reference role, unless
    ``scored`` is False (a probe that computes its own statistics from the run's features).
    """
    started = time.perf_counter()
    xo = for_this_rank(extract_options or ExtractOptions())  # under torchrun: cuda -> cuda:LOCAL_RANK
    mo = metric_options or MetricOptions()
    if xo.protocol is not None:  # the protocol's extractor, preprocessing and layer (or a refusal)
        from .stats.paper_protocols import apply_extract_protocol, get_protocol

        xo = apply_extract_protocol(get_protocol(xo.protocol), xo)
    elif metrics is not None and "sfid" in metrics and xo.layer is None:
        xo = xo.replaced(layer="pool3+spatial")  # sFID beside the pool3 metrics: both layers in one pass
    order = sorted(inputs, key=lambda role: role != "reference")  # a bad reference fails before anything else
    items: dict[str, Item] = {}
    drawn = generator_options(xo, mo.seed)  # how a py: generator input is drawn
    for role in order:
        obj = inputs[role]
        if isinstance(obj, (Evaluated, Pending)):
            items[role] = obj
        elif role == "reference":
            items[role] = open_input(obj, role, xo.extractor, xo.data_dir, flag="--ref", preprocessing=xo.preprocessing,
                                     generator=drawn)
        else:
            items[role] = open_input(obj, role, xo.extractor, xo.data_dir, flag=_ROLE_FLAGS.get(role),
                                     generator=drawn)
    items = {role: items[role] for role in inputs}  # the caller's order
    loaded = [x for x in items.values() if isinstance(x, Evaluated)]
    name, preprocessing = choose_extractor(xo, loaded, [*specs, *(inputs[r] for r in inputs if not isinstance(
        inputs[r], (Evaluated, Pending))), *(p.source for p in items.values() if isinstance(p, Pending))])
    if extractor is not None:
        name = extractor.name
    xo = xo.for_extractor(name)
    needs_network = bool(streamed) or any(isinstance(x, Pending) for x in items.values())
    if extractor is None and (build or (build is None and needs_network)):
        extractor = _build_for(name, preprocessing, xo, loaded)
    if extractor is not None:
        identity: dict[str, Any] | None = run_identity(extractor, xo)
        if len(loaded) > 1:  # the files among themselves first (in the caller's order): the most telling refusal
            check_inputs(loaded, None, warn=False)
        unchecked = check_inputs(loaded, run_side(name, identity))
    else:
        if xo.extractor is not None:  # an explicit --extractor is checked against the files' metadata
            for ev in loaded:
                recorded = (ev.identity or {}).get("extractor")
                if recorded is not None and recorded != xo.extractor:
                    from .errors import ReferenceStatsError
                    from .stats.compatibility import mismatch_message

                    raise ReferenceStatsError(mismatch_message(ev.what, "extractor", recorded, "--extractor",
                                                               xo.extractor))
        unchecked = check_inputs(loaded, None)
    for ev in loaded:  # a file without metadata takes the space --extractor/--preprocessing state (unchecked)
        if stated := stated_fields(ev.what, ev.identity, {"extractor": xo.extractor,
                                                          "preprocessing": xo.preprocessing}):
            ev.identity, ev.info = {**(ev.identity or {}), **stated}, {**ev.info, "stated": stated}
    if extractor is None:
        identity = next((identity_fields(ev.identity) for ev in loaded if ev.identity is not None), None)

    plan: list[tuple[str, str]] = []
    has_generated = "generated" in items or "generated" in streamed
    if scored and has_generated and "reference" in items:
        ref_in = items["reference"]
        gen_in = items.get("generated")
        names = extractor.metric_names if extractor is not None else _names_for(name)
        ref_has_features = isinstance(ref_in, Pending) or ref_in.features is not None
        gen_has_logits = (extractor is not None and extractor.logits_dim is not None) if not isinstance(
            gen_in, Evaluated) else gen_in.logits is not None
        chosen = list(metrics) if metrics is not None else default_metrics(gen_has_logits, ref_has_features)
        plan = resolve_metrics(chosen, names, name)
        if not plan:
            raise ConfigError("metrics (--metrics): at least one metric is needed")
        needs = set().union(*(METRICS.get(kind).needs for _, kind in plan))
        if GEN_LOGITS in needs and not isinstance(gen_in, Evaluated) and (extractor is None
                                                                           or extractor.logits_dim is None):
            wanting = [n for n, kind in plan if GEN_LOGITS in METRICS.get(kind).needs]
            raise ConfigError(f"metrics {', '.join(wanting)} (--metrics) need classifier logits, but extractor "
                              f"{name} has no classifier head")
        _check_available(needs, ref_in, gen_in, plan)
        _check_counts([x for x in items.values()], plan, mo, ref_in)
    run = Run(items, name, extractor, xo, mo, plan, identity, unchecked, tuple(streamed), started)
    if streamed:
        run._reference_memo = {}
    return run


#: The score options that supply the extra roles, for messages.
_ROLE_FLAGS = {"train": "--train", "test": "--test"}


def _check_counts(items: Sequence[Item], plan: list[tuple[str, str]], mo: MetricOptions, ref: Item) -> None:
    """Sizes against options, before any extraction: at least 2 samples each, and the metrics' own minimums."""
    for obj in items:
        if count(obj) < 2:
            raise InputError(f"the {obj.role} input {describe(obj)} has {count(obj)} sample(s); "
                             "statistics need at least 2")
    gen = next((x for x in items if x.role == "generated"), None)
    if gen is not None:
        preflight_metrics(plan, count(gen), count(ref), mo)


def extract_input(obj: Any, options: ExtractOptions, keep_features: bool = True, keep_logits: bool = True,
                  role: str = "source") -> tuple[Evaluated, dict[str, Any]]:
    """One input's features (``genbench extract``) or statistics (``genbench stats``, ``ref build``) and the metadata
    to save with them. A feature file is read, not re-extracted: its statistics need no network."""
    xo = for_this_rank(options)
    item = open_input(obj, role, xo.extractor, xo.data_dir, allow_stats=False, generator=generator_options(xo))
    run = prepare_run({role: item}, xo, specs=[obj])
    ev = run.evaluated(role, keep_features=keep_features, keep_logits=keep_logits)
    identity = ev.identity if isinstance(item, Evaluated) else run.identity  # a feature file keeps its own meta
    return ev, {**(identity or {}), "source": ev.info, "n": ev.n}


# ----------------------------------------------------------------------------- scoring


def score(
    generated: Any,
    reference: Any,
    metrics: list[str] | None = None,
    extract_options: ExtractOptions | None = None,
    metric_options: MetricOptions | None = None,
    *,
    train: Any = None,
    test: Any = None,
    per_sample: bool = False,
) -> ScoreResult:
    """Score ``generated`` against ``reference``; see the module docstring for the accepted inputs (and
    :func:`genbench.api.run_score`, which runs ``extract_options.protocol`` through
    :func:`genbench.protocols.score_protocol`, a layer above). ``train``/``test``: the training
    and held-out inputs of the metrics that need them (fld, fld_gap; mifid and authenticity use ``train`` instead of
    the reference); ``per_sample``: also the per-sample arrays, as ``result.samples``. ConfigError for a protocol."""
    if extract_options is not None and extract_options.protocol is not None:
        raise ConfigError(f"--protocol {extract_options.protocol}: a protocol's run is scored by "
                          "genbench.protocols.score_protocol (genbench.score and `genbench score` call it)")
    extra = {role: spec for role, spec in (("train", train), ("test", test)) if spec is not None}
    run = prepare_run({"reference": reference, "generated": generated, **extra}, extract_options, metric_options,
                      metrics, specs=[reference, generated, *extra.values()])
    run.per_sample = per_sample
    return run.score()


def _names_for(extractor_name: str) -> MetricNames:
    """Metric names of an extractor without loading its weights where they are known statically."""
    if extractor_name == "inception-v3":
        return INCEPTION_METRIC_NAMES
    from .features import static_metric_names

    return static_metric_names(extractor_name) or build_extractor(extractor_name).metric_names


def _check_available(needs: set[str], ref_in: Item, gen_in: Item | None, plan: list[tuple[str, str]]) -> None:
    for role, obj, need in (
        ("reference", ref_in, REF_FEATURES),
        ("generated", gen_in, GEN_FEATURES),
        ("generated", gen_in, GEN_LOGITS),
    ):
        if need not in needs or obj is None or isinstance(obj, Pending):
            continue
        have = obj.features if need != GEN_LOGITS else obj.logits
        if have is None:
            wanting = [n for n, kind in plan if need in METRICS.get(kind).needs]
            raise ConfigError(
                f"metrics {', '.join(wanting)} (--metrics) need {need}, but the {role} input {obj.description} "
                "has none (a statistics file keeps only mean and covariance); pass images or a feature file"
            )
