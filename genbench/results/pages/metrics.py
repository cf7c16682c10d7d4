"""How a reported metric is read: its direction (arrow), axis label with units, and number formatting.

Direction comes from :func:`genbench.gate.better`, the one place it is declared per metric kind
(``fd_fmnist`` -> ``fd`` -> lower is better). Units: Frechet distance and KID are in squared feature
units of the extractor (comparable only within one extractor); IS is a score between 1 and the number of
classes; precision, recall and coverage are fractions in [0, 1]; density is about 1 when the generated
set looks like the reference (higher means denser where the reference is dense).
"""
from __future__ import annotations

import math

from ...errors import ConfigError
from ...metrics.registry import direction as better
from ...metrics.registry import metric_kind

_AXIS = {
    "fd": "Fréchet distance (squared feature units)",
    "kid": "KID (unbiased MMD², cubic kernel)",
    "is": "score (1 to the number of classes)",
    "precision": "precision (fraction of generated samples, 0 to 1)",
    "recall": "recall (fraction of reference samples, 0 to 1)",
    "density": "density (about 1 when generated ≈ reference)",
    "coverage": "coverage (fraction of reference samples, 0 to 1)",
}
#: Significant digits shown per metric kind (the rest is noise at the sample sizes genbench runs).
_DIGITS = {"fd": 4, "kid": 3, "is": 4, "precision": 3, "recall": 3, "density": 3, "coverage": 3}


def direction(name: str) -> str | None:
    """``"lower"``, ``"higher"`` or None (undeclared) for a reported metric name."""
    return better(name)


def arrow(name: str) -> str:
    """``↓`` (lower is better), ``↑`` (higher is better) or ``""``."""
    return {"lower": "↓", "higher": "↑"}.get(direction(name) or "", "")


def arrow_title(name: str) -> str:
    return {"lower": "lower is better", "higher": "higher is better"}.get(direction(name) or "", "no direction declared")


def axis_label(name: str) -> str:
    """``fd_fmnist: Fréchet distance (squared feature units), lower is better``."""
    kind = (metric_kind(name) or "").removesuffix("-infinity")
    what = _AXIS.get(kind)
    tail = {"lower": ", lower is better", "higher": ", higher is better"}.get(direction(name) or "", "")
    return f"{name}: {what}{tail}" if what else f"{name}{tail}"


def fmt(name: str, value: float | None) -> str:
    """A metric value with the significant digits its kind warrants (``""`` for None)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return "n/a"
    kind = (metric_kind(name) or "").removesuffix("-infinity")
    digits = _DIGITS.get(kind, 4)
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits:
        return f"{value:.0f}"
    if abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.{digits}g}"


def fmt_spread(name: str, mean: float, std: float | None) -> str:
    """``± 0.136`` (3 significant digits), ``± 0`` when the spread is zero up to rounding, ``""`` without one."""
    if std is None or not isinstance(std, (int, float)) or not math.isfinite(std):
        return ""
    if std == 0 or abs(std) < 1e-12 * max(abs(mean), 1e-300):
        return "± 0"
    return f"± {std:.3g}"


def fmt_interval(name: str, ci) -> str:
    """``[164.6, 173.9]`` for a (lo, hi) pair, ``""`` otherwise."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or not all(isinstance(v, (int, float)) for v in ci):
        return ""
    return f"[{fmt(name, float(ci[0]))}, {fmt(name, float(ci[1]))}]"


def headline(entry) -> float | None:
    """The headline number of a metric entry: ``value`` or ``mean`` (None when it has neither)."""
    from ...metrics.values import MetricValue

    try:
        return MetricValue.from_dict(entry).headline if isinstance(entry, dict) else None
    except (ConfigError, TypeError, ValueError):
        return None


def interval(entry) -> tuple[float, float] | None:
    """The entry's ``ci95`` as floats, or None."""
    ci = entry.get("ci95") if isinstance(entry, dict) else None
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return float(ci[0]), float(ci[1])
    return None
