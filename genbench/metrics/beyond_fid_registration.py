"""Registers the metrics papers report beyond FID: vendi, mifid, top_precision/top_recall, rarity, realism,
alpha_precision/beta_recall, authenticity, fld and fld_gap.

Roles: ``generated`` and ``reference`` as everywhere; the *training* set of MiFID and authenticity is the
``--train`` input where one is given (:data:`~.registry.TRAIN_FEATURES`), else the reference; FLD needs
both ``--train`` and ``--test`` (:data:`~.registry.TEST_FEATURES`). Each function is pure (see its module);
here the options are read, the sample counts checked before extraction (``preflight``), the inputs checked
to come from one feature space, and work shared within a plan (:func:`~.registry.shared`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..config import MetricOptions
from ..errors import ConfigError
from ..stats.compatibility import Side, check_compatible
from .bootstrap import bootstrap_mean_interval
from .registry import (
    GEN_FEATURES,
    GEN_STATS,
    REF_FEATURES,
    REF_STATS,
    TEST_FEATURES,
    TRAIN_FEATURES,
    plan_role,
    register_metric,
    require_role,
    shared,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .alpha_precision import AlphaPrecisionResult, Authenticity
    from .fld import FLDResult
    from .inputs import Evaluated
    from .realism import SampleScores
    from .top_pr import TopPR


def _features(ev: Evaluated) -> np.ndarray:
    if ev.features is None:
        raise ConfigError(f"the {ev.what} has no per-sample features; pass images or a feature file written by "
                          "`genbench extract`")
    return ev.features


def _same_space(*evs: Evaluated) -> None:
    """ReferenceStatsError when inputs were extracted under different settings (extractor, weights, layer, ...)."""
    check_compatible([Side(ev.what, ev.identity) for ev in evs], warn=False)


def _train(gen: Evaluated, ref: Evaluated) -> Evaluated:
    train = plan_role(TRAIN_FEATURES)
    if train is None:
        return ref
    _same_space(gen, ref, train)
    return train


def _bootstrap(values: np.ndarray, opt: MetricOptions) -> dict:
    if not opt.bootstrap or len(values) < 2:
        return {}
    return {"ci95": list(bootstrap_mean_interval(np.asarray(values, dtype=np.float64), opt.bootstrap, opt.seed))}


def _at_least(n: int, minimum: int, metric: str, role: str, why: str) -> None:
    if n < minimum:
        raise ConfigError(f"{metric} needs at least {minimum} {role} samples ({why}); the {role} input has {n}")


# ------------------------------------------------------------------------------------------------ Vendi
def _vendi_pre(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    from .vendi import parse_order

    parse_order(opt.vendi_q)
    _at_least(n_gen, 1, "vendi", "generated", "a similarity kernel")


@register_metric("vendi", {GEN_FEATURES}, "Vendi score: effective number of distinct generated samples (cosine "
                 "kernel, order --vendi-q)", preflight=_vendi_pre, higher_is_better=True)
def _vendi(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    from .vendi import vendi_score

    return {"value": vendi_score(_features(gen), opt.vendi_q, name=gen.what), "q": opt.vendi_q, "kernel": "cosine"}


# ------------------------------------------------------------------------------------------------ MiFID
def _mifid_pre(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    from .mifid import mifid_from

    mifid_from(1.0, 1.0, opt.mifid_eps)  # checks the threshold
    _at_least(n_gen, 2, "mifid", "generated", "a covariance")
    _at_least(n_ref, 2, "mifid", "reference", "a covariance")


@register_metric("mifid", {GEN_STATS, REF_STATS, GEN_FEATURES, REF_FEATURES},
                 "memorization-informed FD: FD over the mean minimum cosine distance to the training set (--train, "
                 "else the reference) when it is below --mifid-eps", preflight=_mifid_pre, higher_is_better=False)
def _mifid(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    from .fid import frechet_distance_from_stats
    from .mifid import memorization_distance, mifid_from

    train = _train(gen, ref)
    fd = frechet_distance_from_stats(gen.stats, ref.stats)
    d_mem = memorization_distance(_features(gen), _features(train))
    return {"value": mifid_from(fd, d_mem, opt.mifid_eps), "fd": fd, "memorization_distance": d_mem,
            "eps": opt.mifid_eps, "penalised": bool(d_mem < opt.mifid_eps), "train": train.description}


# ----------------------------------------------------------------------------------------------- TopP&R
def _top_pr_pre(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    from .top_pr import min_samples

    if not 0 < opt.top_pr_alpha < 1:
        raise ConfigError(f"the TopP&R significance level (--top-pr-alpha) must be in (0, 1), got {opt.top_pr_alpha}")
    least = min_samples(4)  # the narrowest features TopP&R accepts; wider ones need up to min_samples(32)
    for role, n in (("reference", n_ref), ("generated", n_gen)):
        _at_least(n, least, "TopP&R", role, f"its bandwidth uses the 5 d-th neighbour; {min_samples(32)} for "
                  "features of 32 or more dimensions")


def _shared_top_pr(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> TopPR:
    from ..util.progress import current
    from .top_pr import top_pr

    g, r = _features(gen), _features(ref)

    def work() -> TopPR:
        with current().phase("TopP&R: kernel densities and confidence bands", 4, "sweeps") as bar:
            return top_pr(r, g, seed=opt.seed, alpha=opt.top_pr_alpha, on_step=bar.advance)

    return shared(("top_pr", id(g), id(r), opt.seed, opt.top_pr_alpha), work)


def _register_top(kind: str, attr: str, description: str) -> None:
    def compute(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
        res = _shared_top_pr(gen, ref, opt)
        return {"value": getattr(res, attr), "f1": res.f1, "alpha": opt.top_pr_alpha, "projected": res.projected,
                "significant_real": res.significant_real, "significant_generated": res.significant_generated}

    register_metric(kind, {GEN_FEATURES, REF_FEATURES}, description, preflight=_top_pr_pre,
                    higher_is_better=True)(compute)


_register_top("top_precision", "precision", "TopP&R precision: share of significant generated samples in the "
              "real support (KDE with a bootstrap confidence band)")
_register_top("top_recall", "recall", "TopP&R recall: share of significant real samples in the generated support")


# -------------------------------------------------------------------------------------- realism, rarity
def _shared_scores(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> SampleScores:
    from ..util.progress import current
    from .realism import sample_scores

    g, r = _features(gen), _features(ref)
    return shared(("sample_scores", id(g), id(r), opt.realism_k, opt.rarity_k),
                  lambda: sample_scores(r, g, realism_k=opt.realism_k, rarity_k=opt.rarity_k, progress=current()))


def _k_pre(flag: str, field: str, metric: str) -> Callable[[int, int, MetricOptions], None]:
    def check(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
        k = getattr(opt, field)
        _at_least(n_ref, k + 1, f"{metric} with k={k} ({flag})", "reference", "the k-th neighbour excludes the point")

    return check


@register_metric("realism", {GEN_FEATURES, REF_FEATURES}, "realism score (Kynkaanniemi et al. 2019): median over "
                 "generated samples of the best ratio of a real k-NN ball's squared radius to the squared distance",
                 preflight=_k_pre("--realism-k", "realism_k", "realism"), higher_is_better=True)
def _realism(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    return _shared_scores(gen, ref, opt).realism_summary()


@register_metric("rarity", {GEN_FEATURES, REF_FEATURES}, "rarity score (Han et al. 2022): mean radius of the "
                 "smallest real k-NN ball holding a generated sample (samples inside some ball)",
                 preflight=_k_pre("--rarity-k", "rarity_k", "rarity"))
def _rarity(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    scores = _shared_scores(gen, ref, opt)
    return {**scores.rarity_summary(), **_bootstrap(scores.rarity[scores.rarity > 0], opt)}


# ------------------------------------------------------------------- alpha-precision, beta-recall, authenticity
def _alpha_pre(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    _at_least(n_ref, 2, "alpha_precision/beta_recall", "reference", "a nearest other real sample")
    _at_least(n_gen, 1, "alpha_precision/beta_recall", "generated", "a nearest generated sample")


def _shared_alpha(gen: Evaluated, ref: Evaluated) -> AlphaPrecisionResult:
    from .alpha_precision import alpha_precision_beta_recall

    g, r = _features(gen), _features(ref)
    return shared(("alpha_precision", id(g), id(r)), lambda: alpha_precision_beta_recall(r, g))


@register_metric("alpha_precision", {GEN_FEATURES, REF_FEATURES}, "integrated alpha-precision (Alaa et al. 2022, "
                 "embedding-free: raw features, centre at the real mean)", preflight=_alpha_pre, higher_is_better=True)
def _alpha_precision(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    return {"value": _shared_alpha(gen, ref).alpha_precision, "variant": "embedding-free", "steps": 30}


@register_metric("beta_recall", {GEN_FEATURES, REF_FEATURES}, "integrated beta-recall (Alaa et al. 2022, "
                 "embedding-free)", preflight=_alpha_pre, higher_is_better=True)
def _beta_recall(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    return {"value": _shared_alpha(gen, ref).beta_recall, "variant": "embedding-free", "steps": 30}


def shared_authenticity(gen: Evaluated, ref: Evaluated) -> tuple[Authenticity, Evaluated]:
    """The authenticity result of a plan (per-sample flags and nearest training samples), computed once."""
    from .alpha_precision import authenticity

    train = _train(gen, ref)
    g, t = _features(gen), _features(train)
    return shared(("authenticity", id(g), id(t)), lambda: authenticity(t, g)), train


@register_metric("authenticity", {GEN_FEATURES, REF_FEATURES}, "authenticity (Alaa et al. 2022): share of generated "
                 "samples farther from their nearest training sample (--train, else the reference) than it is from "
                 "its own neighbour", preflight=lambda n_gen, n_ref, opt: _at_least(
                     n_ref, 2, "authenticity", "reference", "a nearest other training sample"),
                 higher_is_better=True)
def _authenticity(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    res, train = shared_authenticity(gen, ref)
    return {"value": res.value, "train": train.description, **_bootstrap(res.authentic.astype(np.float64), opt)}


# -------------------------------------------------------------------------------------------------- FLD
def _shared_fld(gen: Evaluated, opt: MetricOptions, metric: str) -> tuple[FLDResult, Evaluated, Evaluated]:
    from ..util.progress import current
    from .fld import EPOCHS, fld

    train, test = require_role(TRAIN_FEATURES, metric), require_role(TEST_FEATURES, metric)
    _same_space(gen, train, test)
    g, tr, te = _features(gen), _features(train), _features(test)

    def work() -> FLDResult:
        with current().phase("FLD: fitting the mixtures", 2 * EPOCHS, "epochs") as bar:
            return fld(tr, te, g, seed=opt.seed, on_epoch=bar.advance)

    return shared(("fld", id(g), id(tr), id(te), opt.seed), work), train, test


def _fld_pre(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
    _at_least(n_gen, 1, "fld", "generated", "a mixture component")


@register_metric("fld", {GEN_FEATURES, TRAIN_FEATURES, TEST_FEATURES}, "Feature Likelihood Divergence "
                 "(Jiralerspong et al. 2023): test NLL under a mixture fitted on the generated samples, over a "
                 "train-half baseline, x100 (--train, --test)", preflight=_fld_pre, higher_is_better=False)
def _fld(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    res, train, test = _shared_fld(gen, opt, "fld")
    return {"value": res.fld, "nll_test": res.nll_test, "baseline_nll": res.baseline_nll,
            "n_generated_used": res.n_generated_used, "dropped_dims": res.dropped_dims,
            "train": train.description, "test": test.description,
            **({"warnings": list(res.warnings)} if res.warnings else {})}


@register_metric("fld_gap", {GEN_FEATURES, TRAIN_FEATURES, TEST_FEATURES}, "FLD generalization gap: 100 (train NLL "
                 "- test NLL); the more negative, the more overfit (--train, --test)", preflight=_fld_pre,
                 higher_is_better=True)
def _fld_gap(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
    res, train, test = _shared_fld(gen, opt, "fld_gap")
    return {"value": res.gap, "nll_train": res.nll_train, "nll_test": res.nll_test,
            "train": train.description, "test": test.description}
