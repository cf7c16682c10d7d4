"""One metric's result as a typed value: a point value or a mean/std spread, an optional 95% interval.

The JSON form is what ``score --json`` has always written, and stays: ``{"value": x}`` for point
metrics (FD, precision), ``{"mean": m, "std": s}`` for metrics over splits or subsets (IS, KID),
plus ``"ci95": [lo, hi]`` where a bootstrap interval was asked for and metric-specific extras
(``"splits": 10``, ``"k": 3``). The *headline* number is ``value``, else ``mean``: the rule every
table, gate and page uses, through :meth:`MetricValue.headline` or :func:`headline`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

_CORE = ("value", "mean", "std", "ci95")


@dataclass(frozen=True)
class MetricValue:
    """``value`` (point metrics) or ``mean``/``std`` (spread metrics); ``ci95`` = (lo, hi) or None; ``extra``:
    the metric's own keys (``splits``, ``k``, ...)."""

    value: float | None = None
    mean: float | None = None
    std: float | None = None
    ci95: tuple[float, float] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.value is None) == (self.mean is None):
            raise ConfigError(f"a metric value has either 'value' or 'mean', got value={self.value!r}, mean={self.mean!r}")

    @property
    def headline(self) -> float:
        """The number a table shows: ``value``, else ``mean``."""
        return float(self.value if self.value is not None else self.mean)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> MetricValue:
        """Read a metric entry of a result document; ConfigError naming the entry when it has neither key."""
        if "value" not in entry and "mean" not in entry:
            raise ConfigError(f"metric entry {dict(entry)!r} has neither 'value' nor 'mean'")
        ci = entry.get("ci95")
        return cls(
            value=None if entry.get("value") is None else float(entry["value"]),
            mean=None if entry.get("mean") is None else float(entry["mean"]),
            std=None if entry.get("std") is None else float(entry["std"]),
            ci95=None if ci is None else (float(ci[0]), float(ci[1])),
            extra={k: v for k, v in entry.items() if k not in _CORE},
        )


def headline(entry: Mapping[str, Any] | MetricValue) -> float:
    """The headline number of a metric entry (a result document's dict or a MetricValue): ``value``, else ``mean``."""
    return entry.headline if isinstance(entry, MetricValue) else MetricValue.from_dict(entry).headline
