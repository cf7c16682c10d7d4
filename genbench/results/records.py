"""Result records: metric values plus provenance, as JSON documents."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

RESULT_SCHEMA_VERSION = 1


@dataclass
class ScoreResult:
    """``metrics`` maps a metric name to its values (``value``, or ``mean``/``std``; ``ci95`` where asked);
    ``provenance`` records everything that produced them."""

    metrics: dict[str, dict]
    provenance: dict
    extra: dict = field(default_factory=dict)
    #: Per-sample arrays (genbench.metrics.per_sample) where asked for (``per_sample=True``); not part of the JSON.
    samples: dict | None = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str) -> dict:
        return self.metrics[name]

    def value(self, name: str) -> float:
        """The headline number of a metric: ``value`` or ``mean``."""
        from ..metrics.values import headline

        return headline(self.metrics[name])

    def to_dict(self) -> dict:
        return {"schema_version": RESULT_SCHEMA_VERSION, "metrics": self.metrics, "provenance": self.provenance, **self.extra}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict) -> ScoreResult:
        extra = {k: v for k, v in data.items() if k not in ("schema_version", "metrics", "provenance")}
        return cls(dict(data["metrics"]), dict(data["provenance"]), extra)

    def format_table(self) -> str:
        """A readable table for the terminal."""
        from ..metrics.values import MetricValue

        rows = []
        for name, entry in self.metrics.items():
            v = MetricValue.from_dict(entry)
            text = f"{v.value:.6g}" if v.value is not None else f"{v.mean:.6g} ± {_spread(v.headline, v.std)}"
            if v.ci95 is not None:
                text += f"   95% CI [{v.ci95[0]:.6g}, {v.ci95[1]:.6g}]"
            rows.append((name, text))
        width = max((len(n) for n, _ in rows), default=6)
        p = self.provenance
        inputs = p.get("inputs", {})
        lines = [f"{name:<{width}}  {text}" for name, text in rows]
        lines.append(
            f"(extractor {p.get('extractor')}, preprocessing {p.get('preprocessing')}, "
            f"n generated {inputs.get('generated', {}).get('n')}, n reference {inputs.get('reference', {}).get('n')}, "
            f"seed {p.get('seed')}, {p.get('wall_time_s')} s)"
        )
        if p.get("weights_verified") is False:
            lines.append(f"warning: unverified weights (sha256 {p.get('weights_sha256')} is not the published one; "
                         "--allow-unverified-weights): these numbers are not comparable with published ones")
        return "\n".join(lines)


def _spread(mean: float, std: float | None) -> str:
    """A standard deviation for the table: ``0`` when it is zero up to rounding (e.g. one IS split)."""
    if std is None:
        return "?"
    if abs(std) < 1e-12 * abs(mean) or std == 0:
        return "0"
    return f"{std:.3g}"
