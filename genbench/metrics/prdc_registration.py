"""Registers precision, recall, density and coverage in the metric registry.

Roles: ``reference`` features are the real manifold, ``generated`` the fake one.
Precision and density say how much of the generated set lies where real data is
(fidelity); recall and coverage say how much of the real data the generated set
reaches (diversity). The four share one sweep of generated-vs-reference distances.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import MetricOptions
from ..errors import ConfigError
from .prdc import PRDC, prdc
from .registry import GEN_FEATURES, REF_FEATURES, register_metric, shared

if TYPE_CHECKING:
    from .inputs import Evaluated


def _shared_prdc(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> PRDC:
    """One k-NN sweep per (generated, reference, k) for all four metrics of a plan (see registry.shared)."""
    from ..util.progress import current

    assert gen.features is not None and ref.features is not None  # GEN_FEATURES and REF_FEATURES are declared needs
    gen_f, ref_f = gen.features, ref.features
    ks = (opt.prdc_k_precision_recall, opt.prdc_k_density_coverage)
    return shared(("prdc", id(gen_f), id(ref_f), ks),
                  lambda: prdc(ref_f, gen_f, precision_recall_k=ks[0], density_coverage_k=ks[1], progress=current()))


def _register(kind: str, k_field: str, description: str) -> None:
    def compute(gen: Evaluated, ref: Evaluated, opt: MetricOptions) -> dict:
        return {"value": getattr(_shared_prdc(gen, ref, opt), kind), "k": getattr(opt, k_field)}

    def sizes(n_gen: int, n_ref: int, opt: MetricOptions) -> None:
        # The four share one computation: --pr-k needs k+1 samples on both sides, --dc-k on the reference side.
        pr_k, dc_k = opt.prdc_k_precision_recall, opt.prdc_k_density_coverage
        for k, flag, role, n in ((pr_k, "--pr-k", "reference", n_ref), (pr_k, "--pr-k", "generated", n_gen),
                                 (dc_k, "--dc-k", "reference", n_ref)):
            if n < k + 1:
                raise ConfigError(f"{kind} with k={k} ({flag}) needs at least {k + 1} {role} samples (the k-th "
                                  f"neighbour of a point excludes the point itself); the {role} input has {n}")

    register_metric(kind, {GEN_FEATURES, REF_FEATURES}, description, preflight=sizes, higher_is_better=True)(compute)



_register("precision", "prdc_k_precision_recall", "improved precision: share of generated samples inside the real manifold")
_register("recall", "prdc_k_precision_recall", "improved recall: share of real samples inside the generated manifold")
_register("density", "prdc_k_density_coverage", "density: how many real k-NN balls hold each generated sample, over k")
_register("coverage", "prdc_k_density_coverage", "coverage: share of real samples whose k-NN ball holds a generated sample")
