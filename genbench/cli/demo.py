"""The offline main job: real Fashion-MNIST test images and degraded copies, scored against bundled statistics.

Shows in one table what the domain metrics see: the held-out test split sits close to
the training statistics, and blur and noise push the Frechet distance up as they grow.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..config import DemoOptions, ExtractOptions, MetricOptions
from ..evaluate import score
from ..sources.resolve import as_source
from ..sources.transforms import TransformedSource

DEMO_ROWS: tuple[tuple[str, list[tuple[str, float]]], ...] = (
    ("test split", []),
    ("blur sigma=1", [("gaussian-blur", 1.0)]),
    ("blur sigma=2", [("gaussian-blur", 2.0)]),
    ("noise std=16", [("gaussian-noise", 16.0)]),
    ("noise std=48", [("gaussian-noise", 48.0)]),
)


@dataclass
class DemoRow:
    name: str
    metrics: dict[str, dict]
    seconds: float


_DEFAULTS = DemoOptions()


def run_demo(reference: str = _DEFAULTS.reference, samples: str = _DEFAULTS.samples,
             seed: int = MetricOptions().seed, data_dir: str | None = ExtractOptions.data_dir,
             batch_size: int = _DEFAULTS.batch_size, progress: bool = False) -> list[DemoRow]:
    """Score ``samples`` and transformed copies of it against ``reference``; one row per variant."""
    base = as_source(samples, data_dir=data_dir)
    xo = ExtractOptions(batch_size=batch_size, data_dir=data_dir, progress=progress)
    mo = MetricOptions(seed=seed)
    rows = []
    for name, steps in DEMO_ROWS:
        source = TransformedSource(base, steps, seed=seed) if steps else base
        started = time.perf_counter()
        result = score(source, reference, None, xo, mo)
        rows.append(DemoRow(name, result.metrics, time.perf_counter() - started))
    return rows


def format_rows(rows: list[DemoRow]) -> str:
    names = list(rows[0].metrics)
    header = f"{'images':<16}" + "".join(f"{n:>22}" for n in names) + f"{'seconds':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = []
        for n in names:
            m = row.metrics[n]
            cells.append(f"{m['value']:>22.4f}" if "value" in m else f"{m['mean']:>14.4f} ± {m['std']:<5.3f}")
        lines.append(f"{row.name:<16}" + "".join(cells) + f"{row.seconds:>10.1f}")
    return "\n".join(lines)
