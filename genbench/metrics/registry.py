"""The metric registry: each metric says what inputs it needs and how to compute itself.

Inputs come by role: ``generated`` and ``reference`` :class:`~genbench.evaluate.Evaluated`
objects. A metric's output is a small dict: ``{"value": x}`` for point metrics,
``{"mean": m, "std": s}`` for split/subset metrics, plus ``"ci95": [lo, hi]`` where
bootstrap intervals were asked for (:class:`~genbench.metrics.values.MetricValue` reads one).

Each metric declares here, once, whether higher values are better (``higher_is_better``); the gate,
the leaderboard, the reports and the pages read it through :func:`direction`. The registry is
complete on import: ``genbench.metrics`` imports every built-in registration. Work that several
metrics of one plan share (the k-NN sweep of precision/recall/density/coverage) goes through
:func:`shared`, which lives as long as one :func:`compute_plan` call and holds nothing after it.
"""
from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..config import MetricOptions
from ..errors import ConfigError
from ..registry import Registry, did_you_mean
from ..util.progress import current as current_progress
from .bootstrap import bootstrap_frechet_interval, bootstrap_mean_interval
from .fid import FrechetReference, frechet_distance, frechet_distance_from_stats
from .inception_score import inception_score
from .kid import kernel_inception_distance, spread_problem

if TYPE_CHECKING:
    from ..features.base import MetricNames
    from .inputs import Evaluated

T = TypeVar("T")

# What a metric may need from the two roles.
GEN_STATS, REF_STATS = "generated statistics", "reference statistics"
GEN_FEATURES, REF_FEATURES = "generated features", "reference features"
GEN_LOGITS = "generated classifier logits"


@dataclass(frozen=True)
class MetricSpec:
    kind: str
    needs: frozenset[str]
    compute: Callable[[Evaluated, Evaluated, MetricOptions], dict]
    description: str
    #: Checks the sample counts (generated, reference) against the options before any extraction; raises ConfigError.
    preflight: Callable[[int, int, MetricOptions], None] | None = None
    #: True: higher values are better (IS, precision); False: lower (FD, KID); None: not declared (a plug-in's choice).
    higher_is_better: bool | None = None


METRICS: Registry[MetricSpec] = Registry("metric", flag="--metrics")


def register_metric(kind: str, needs: set[str], description: str,
                    preflight: Callable[[int, int, MetricOptions], None] | None = None,
                    higher_is_better: bool | None = None) -> Callable:
    def decorate(fn: Callable[[Evaluated, Evaluated, MetricOptions], dict]) -> Callable:
        METRICS.register(kind)(MetricSpec(kind, frozenset(needs), fn, description, preflight, higher_is_better))
        return fn

    return decorate


# ----------------------------------------------------------------------------- directions and names

#: First words of reported names that name a kind differently (the Inception names).
_KIND_ALIASES = {"fid": "fd"}
_INFINITY = "_infinity"


def metric_kind(name: str) -> str | None:
    """The registered kind of a reported metric name (``fd_fmnist`` -> ``fd``, ``fid_infinity`` -> ``fd-infinity``,
    ``precision`` -> ``precision``), or None when no registered kind matches."""
    if name in METRICS:
        return METRICS.canonical(name)
    suffix = ""
    if name.endswith(_INFINITY):
        name, suffix = name[: -len(_INFINITY)], "-infinity"
    head = name.split("_", 1)[0]
    head = _KIND_ALIASES.get(head, head)
    return head + suffix if head + suffix in METRICS else None


def direction(name: str) -> str | None:
    """``"lower"`` or ``"higher"``: which values of the reported metric ``name`` are better; None when undeclared."""
    kind = metric_kind(name)
    better = METRICS.get(kind).higher_is_better if kind is not None else None
    return None if better is None else ("higher" if better else "lower")


# ----------------------------------------------------------------------------- computing a plan

_PLAN_WORK: contextvars.ContextVar[dict[Hashable, Any] | None] = contextvars.ContextVar("plan_work", default=None)


def shared(key: Hashable, work: Callable[[], T]) -> T:
    """``work()``, done once per :func:`compute_plan` call for metrics that share it (outside a plan: every time)."""
    memo = _PLAN_WORK.get()
    if memo is None:
        return work()
    if key not in memo:
        memo[key] = work()
    return memo[key]


@contextlib.contextmanager
def plan_scope() -> Iterator[None]:
    """The lifetime of :func:`shared` work: one plan's metrics on one generated/reference pair."""
    token = _PLAN_WORK.set({})
    try:
        yield
    finally:
        _PLAN_WORK.reset(token)


#: Work on the reference side alone (FD's prepared reference), kept for as long as a prepared run lives.
_REFERENCE_WORK: contextvars.ContextVar[dict | None] = contextvars.ContextVar("genbench_reference_work", default=None)


def reference_reused() -> bool:
    """True inside a :func:`compute_plan` given a reference memo: the run computes against this reference many times
    (the Evaluator, a sweep), so reference-side work is worth preparing once (:func:`prepared`)."""
    return _REFERENCE_WORK.get() is not None


def prepared(key: Hashable, work: Callable[[], T]) -> T:
    """``work()`` on the reference side only, done once per prepared run (the memo :func:`compute_plan` is given),
    so a training loop's repeated computes against one reference reuse it; without a memo: every time."""
    memo = _REFERENCE_WORK.get()
    if memo is None:
        return work()
    if key not in memo:
        memo[key] = work()
    return memo[key]


def compute_plan(plan: list[tuple[str, str]], gen: Evaluated, ref: Evaluated, opt: MetricOptions,
                 reference_memo: dict | None = None) -> dict[str, dict]:
    """Every (output name, kind) of ``plan`` on one generated/reference pair; shared work is done once.

    ``reference_memo``: where reference-side work (:func:`prepared`) is kept between calls; it must belong to this
    one reference (a prepared run that computes many times owns one). None: a one-shot computation.
    """
    token = _REFERENCE_WORK.set(reference_memo)
    try:
        with plan_scope():
            return {out_name: METRICS.get(kind).compute(gen, ref, opt) for out_name, kind in plan}
    finally:
        _REFERENCE_WORK.reset(token)


def preflight_metrics(plan: list[tuple[str, str]], n_generated: int, n_reference: int, opt: MetricOptions) -> None:
    """Refuse options the sample counts cannot satisfy (KID subset size, IS splits, k of k-NN) before extracting."""
    for _, kind in plan:
        check = METRICS.get(kind).preflight
        if check is not None:
            check(n_generated, n_reference, opt)


def _is_sizes(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    if opt.is_split_size is not None:
        if n_gen < opt.is_split_size:
            raise ConfigError(f"IS over splits of {opt.is_split_size} images (--is-split-size) needs at least "
                              f"{opt.is_split_size} generated samples; the generated input has {n_gen}")
        return
    if n_gen < opt.is_splits:
        raise ConfigError(f"IS needs at least as many generated samples as splits (--is-splits={opt.is_splits}); "
                          f"the generated input has {n_gen}")


def _kid_sizes(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    if min(n_gen, n_ref) < opt.kid_subset_size:
        raise ConfigError(
            f"KID subset size (--kid-subset-size={opt.kid_subset_size}) must be between 2 and the smaller sample "
            f"count ({n_gen} generated, {n_ref} reference); pass --kid-subset-size {max(2, min(n_gen, n_ref))} or less"
        )


@register_metric("fd", {GEN_STATS, REF_STATS}, "Frechet distance of the feature Gaussians (FID on Inception)",
                 higher_is_better=False)
def _fd(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    if opt.covariance == "biased":  # StyleGAN's FeatureStats.get_mean_cov: divide by N
        return {"value": _frechet("fd-reference-biased", (gen.stats.mean(), biased_cov(gen.stats)),
                                  lambda: (ref.stats.mean(), biased_cov(ref.stats))), "covariance": "biased"}
    if reference_reused():  # many distances to one reference: its factor once (equal to 1e-13 relative)
        reference = prepared("fd-reference", lambda: FrechetReference.from_stats(ref.stats))
        value = reference.distance(gen.stats.mean(), gen.stats.cov())
    else:
        value = frechet_distance_from_stats(gen.stats, ref.stats)
    out: dict = {"value": value}
    if opt.bootstrap and gen.features is not None:
        with current_progress().phase("bootstrap interval of FD", opt.bootstrap, "replicates") as bar:
            out["ci95"] = list(bootstrap_frechet_interval(gen.features, ref.stats, opt.bootstrap, opt.seed,
                                                          on_replicate=bar.advance))
    return out


def _frechet(key: str, gen: tuple[np.ndarray, np.ndarray], ref: Callable[[], tuple[np.ndarray, np.ndarray]]) -> float:
    """FD of (mu, sigma) pairs, the reference's factor prepared once where the run reuses its reference."""
    if reference_reused():
        return prepared(key, lambda: FrechetReference(*ref())).distance(*gen)
    return frechet_distance(*gen, *ref())


def biased_cov(stats) -> np.ndarray:
    """The covariance divided by N (StyleGAN's convention): the unbiased one times (N - 1) / N."""
    return stats.cov() * ((stats.n - 1) / stats.n)


@register_metric("is", {GEN_LOGITS}, "Inception Score (classifier score on a domain network)", preflight=_is_sizes,
                 higher_is_better=True)
def _is(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    assert gen.logits is not None  # GEN_LOGITS is a declared need
    if opt.is_split_size is not None:  # ADM's rule: contiguous, unshuffled splits of a fixed size
        from .inception_score import inception_score_split_size

        spread, splits = inception_score_split_size(gen.logits, opt.is_split_size)
        return {"mean": spread.mean, "std": spread.std, "splits": splits, "split_size": opt.is_split_size}
    spread = inception_score(gen.logits, splits=opt.is_splits, seed=opt.seed)
    return {"mean": spread.mean, "std": spread.std, "splits": opt.is_splits}


@register_metric("kid", {GEN_FEATURES, REF_FEATURES}, "Kernel Inception Distance (unbiased MMD^2, cubic kernel)",
                 preflight=_kid_sizes, higher_is_better=False)
def _kid(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    assert gen.features is not None and ref.features is not None  # GEN_FEATURES and REF_FEATURES are declared needs
    label = f"KID over {opt.kid_subsets} subsets of {opt.kid_subset_size}"
    with current_progress().phase(label, opt.kid_subsets, "subsets") as bar:
        spread, values = kernel_inception_distance(
            gen.features, ref.features, subsets=opt.kid_subsets, subset_size=opt.kid_subset_size, seed=opt.seed,
            on_subset=bar.advance,
        )
    out: dict = {"mean": spread.mean, "std": spread.std, "subsets": opt.kid_subsets, "subset_size": opt.kid_subset_size}
    problem = spread_problem(len(gen.features), len(ref.features), opt.kid_subset_size, opt.kid_subsets)
    if problem is not None and (opt.bootstrap or opt.kid_subsets > 1):  # a zero-width interval is no interval
        warnings.warn(f"{problem}; KID's std over subsets is 0 and its 95% interval is left out",
                      RuntimeWarning, stacklevel=2)
        out["interval"] = f"omitted: {problem}"
    elif opt.bootstrap:
        out["ci95"] = list(bootstrap_mean_interval(values, opt.bootstrap, opt.seed))
    return out


@register_metric("fd-infinity", {GEN_FEATURES, REF_STATS}, "FD extrapolated to N -> infinity (Chong & Forsyth 2020)",
                 higher_is_better=False)
def _fd_infinity(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    from .infinity import fd_infinity

    assert gen.features is not None  # GEN_FEATURES is a declared need
    return fd_infinity(gen.features, ref.stats.mean(), ref.stats.cov(), seed=opt.seed).to_dict()


@register_metric("is-infinity", {GEN_LOGITS}, "IS extrapolated to N -> infinity, one split per size (Chong & Forsyth 2020)",
                 higher_is_better=True)
def _is_infinity(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    from .infinity import is_infinity

    assert gen.logits is not None  # GEN_LOGITS is a declared need
    return is_infinity(gen.logits, seed=opt.seed).to_dict()


# What sFID needs: the statistics of the spatial layer (Evaluated.layers["spatial"]) of both roles.
GEN_SPATIAL, REF_SPATIAL = "generated spatial statistics", "reference spatial statistics"


@register_metric("sfid", {GEN_SPATIAL, REF_SPATIAL},
                 "sFID: Frechet distance of inception-v3's spatial features (ADM: 7 channels of mixed_6/conv)",
                 higher_is_better=False)
def _sfid(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    sides = []
    for ev in (gen, ref):
        stats = ev.layers.get("spatial")
        if stats is None:
            raise ConfigError(f"metric sfid (--metrics) needs the spatial features of the {ev.role} input "
                              f"{ev.description}, which has none; extract images with inception-v3, or give a "
                              "reference with spatial statistics (an ADM reference batch's mu_s/sigma_s)")
        sides.append(stats)
    return {"value": _frechet("sfid-reference", (sides[0].mean(), sides[0].cov()),
                              lambda: (sides[1].mean(), sides[1].cov()))}


def _adm_pr_sizes(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    k = opt.prdc_k_precision_recall
    if min(n_gen, n_ref) <= k:
        raise ConfigError(f"precision/recall with k={k} (--pr-k) need more than {k} samples on each side "
                          f"({n_gen} generated, {n_ref} reference)")


def _adm_pr(gen: Evaluated, ref: Evaluated, opt: MetricOptions):
    from .adm import adm_precision_recall

    ref_features, gen_features = ref.features, gen.features
    assert gen_features is not None and ref_features is not None  # declared needs
    k = opt.prdc_k_precision_recall
    return shared(("adm-pr", k), lambda: adm_precision_recall(ref_features, gen_features, k))


@register_metric("precision-adm", {GEN_FEATURES, REF_FEATURES},
                 "ADM's precision: samples within some reference k-NN ball (squared radii, <=)", preflight=_adm_pr_sizes,
                 higher_is_better=True)
def _precision_adm(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    pr = _adm_pr(gen, ref, opt)
    return {"value": pr.precision, "k": pr.k}


@register_metric("recall-adm", {GEN_FEATURES, REF_FEATURES},
                 "ADM's recall: reference vectors within some sample k-NN ball (squared radii, <=)",
                 preflight=_adm_pr_sizes, higher_is_better=True)
def _recall_adm(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    pr = _adm_pr(gen, ref, opt)
    return {"value": pr.recall, "k": pr.k}


#: The one space CMMD is defined in: CLIP ViT-L/14@336 embeddings under the reference's preprocessing.
CMMD_SPACE = {"extractor": "clip-vit-l14-336", "preprocessing": "clip-cmmd"}


@register_metric("cmmd", {GEN_FEATURES, REF_FEATURES},
                 "CMMD: RBF-kernel MMD (sigma 10, x1000) of L2-normalised CLIP ViT-L/14@336 embeddings",
                 higher_is_better=False)
def _cmmd(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    from .cmmd import SCALE, SIGMA, cmmd

    for ev in (gen, ref):
        identity = ev.identity or {}
        wrong = {k: identity.get(k) for k, v in CMMD_SPACE.items() if identity.get(k) != v}
        if wrong:
            raise ConfigError(
                f"metric cmmd (--metrics) is defined on {CMMD_SPACE['extractor']} embeddings with preprocessing "
                f"{CMMD_SPACE['preprocessing']}, but the {ev.role} input {ev.description} has "
                + ", ".join(f"{k}={v!r}" for k, v in wrong.items()) + "; " + _cmmd_hint(ev, wrong)
            )
    assert gen.features is not None and ref.features is not None  # GEN_FEATURES and REF_FEATURES are declared needs
    return {"value": cmmd(gen.features, ref.features), "sigma": SIGMA, "scale": SCALE,
            "estimator": "biased (V-statistic) MMD^2 of L2-normalised embeddings"}


def _cmmd_hint(ev: Evaluated, wrong: dict[str, Any]) -> str:
    """What makes CMMD work for an input outside its space: state the space of plain features, or extract anew."""
    flags = f"--extractor {CMMD_SPACE['extractor']} --preprocessing {CMMD_SPACE['preprocessing']}"
    from_file = ev.info.get("kind") in ("features", "statistics")
    if not from_file:  # images extracted in this run
        return f"pass {flags}"
    if all(v is None for v in wrong.values()):  # a file that does not say which space it is in
        return (f"if its features are {CMMD_SPACE['extractor']} embeddings of images under {CMMD_SPACE['preprocessing']}"
                f" preprocessing, say so with {flags} (recorded as stated, unchecked)")
    return (f"a file records the space it was made in; extract the images again with `genbench extract IMAGES "
            f"{flags}` (or score the images themselves with {flags})")


def output_name(kind: str, names: MetricNames | None) -> str:
    """The name a metric kind is reported under for an extractor (``fd`` -> ``fid`` or ``fd_fmnist``;
    ``fd-infinity`` -> ``fid_infinity`` or ``fd_fmnist_infinity``)."""
    if names is None:  # no extractor chosen (e.g. `genbench list`): the generic kind
        return kind
    base = {"fd": names.fd, "is": names.is_, "kid": names.kid}
    if kind.endswith("-infinity") and kind[: -len("-infinity")] in base:
        return base[kind[: -len("-infinity")]] + "_infinity"
    return base.get(kind, kind)


def resolve_metrics(requested: list[str], names: MetricNames | None, extractor: str) -> list[tuple[str, str]]:
    """Map requested names to (output name, kind) pairs; unknown or mismatched names raise ConfigError.

    Accepted: generic kinds (``fd``, ``is``, ``kid``, ...) and the extractor's own names
    (``fid`` for Inception, ``fd_fmnist`` for the Fashion-MNIST network, ...); ``names`` None (no extractor
    chosen): the generic kinds only.
    """
    own = {output_name(kind, names): kind for kind in METRICS.names()}
    inception_names = {"fid": "fd", "is": "is", "kid": "kid"}
    resolved: list[tuple[str, str]] = []
    for name in requested:
        if name in own:
            kind = own[name]
        elif name in METRICS:
            kind = name
        elif name in inception_names or name.startswith(("fd_", "is_", "kid_")):
            raise ConfigError(
                f"metric {name!r} (--metrics) belongs to another extractor; with extractor {extractor!r} "
                f"the names are: {', '.join(sorted(own))}"
            )
        else:
            known = set(own) | set(METRICS.names())
            raise ConfigError(
                f"unknown metric {name!r} (--metrics){did_you_mean(name, known)}; expected one of: {', '.join(sorted(known))}"
            )
        pair = (output_name(kind, names), kind)
        if pair not in resolved:
            resolved.append(pair)
    return resolved
