"""Registers precision, recall, density and coverage in the metric registry.

Roles: ``reference`` features are the real manifold, ``generated`` the fake one.
Precision and density say how much of the generated set lies where real data is
(fidelity); recall and coverage say how much of the real data the generated set
reaches (diversity). The four share one sweep of generated-vs-reference distances.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import MetricOptions
from .prdc import PRDC, prdc
from .registry import GEN_FEATURES, REF_FEATURES, register_metric

if TYPE_CHECKING:
    from ..evaluate import Evaluated

_last: tuple[tuple, PRDC] | None = None


def _shared_prdc(gen: "Evaluated", ref: "Evaluated", opt: MetricOptions) -> PRDC:
    """One computation per (generated, reference, k) for all four metrics of a run."""
    global _last
    key = (id(gen.features), id(ref.features), opt.prdc_k_precision_recall, opt.prdc_k_density_coverage)
    if _last is None or _last[0] != key:
        value = prdc(ref.features, gen.features, precision_recall_k=opt.prdc_k_precision_recall,
                     density_coverage_k=opt.prdc_k_density_coverage)
        _last = (key, value)
    return _last[1]


def _register(kind: str, k_field: str, description: str) -> None:
    def compute(gen: "Evaluated", ref: "Evaluated", opt: MetricOptions) -> dict:
        return {"value": getattr(_shared_prdc(gen, ref, opt), kind), "k": getattr(opt, k_field)}

    register_metric(kind, {GEN_FEATURES, REF_FEATURES}, description)(compute)


_register("precision", "prdc_k_precision_recall", "improved precision: share of generated samples inside the real manifold")
_register("recall", "prdc_k_precision_recall", "improved recall: share of real samples inside the generated manifold")
_register("density", "prdc_k_density_coverage", "density: how many real k-NN balls hold each generated sample, over k")
_register("coverage", "prdc_k_density_coverage", "coverage: share of real samples whose k-NN ball holds a generated sample")
