"""Figures of the probes' reports, drawn from their saved documents (so a JSON report can be drawn again).

The probes write them next to their reports; the HTML report pages draw the same figure from the document.
"""
from __future__ import annotations

import math

from .pages.metrics import axis_label
from .plots import Panel, render_panels, strength_axis


def render_sensitivity_figure(points: list[dict], transforms: dict[str, dict], metric: str):
    """One panel per transform: ``metric`` against the transform's real strength (its unit on the x axis),
    with the point's 95% interval as error bars (``ci95``, from bootstrap replicates), else ± its std (KID
    over subsets, IS over splits). ``points`` and ``transforms`` as in :meth:`SensitivityReport.to_dict`
    (so a saved JSON report can be drawn again). Returns a PIL image."""
    panels, shown = [], set()
    for transform, info in transforms.items():
        pts = sorted((p for p in points if p["transform"] == transform and p["metric"] == metric),
                     key=lambda p: p["level"])
        if not pts:
            continue
        xs, labels, reverse = strength_axis([p["strength"] for p in pts])
        labels = labels or {x: f"{x:g}" for x in xs}
        intervals: list[tuple[float, float] | None] = []
        for p in pts:
            ci, std, value = p.get("ci95"), p.get("std"), p.get("value")
            if ci is not None and len(ci) == 2 and None not in ci:
                intervals.append((float(ci[0]), float(ci[1])))
                shown.add("ci")
            elif std is not None and value is not None and math.isfinite(std):
                intervals.append((value - std, value + std))
                shown.add("std")
            else:
                intervals.append(None)
        panels.append(Panel(transform, f"strength: {info.get('unit', '')}", xs,
                            [math.nan if p.get("value") is None else p["value"] for p in pts], intervals, labels,
                            reverse))
    bars = {"ci": "error bars: seeded 95% bootstrap interval over the degraded samples (reference fixed)",
            "std": "error bars: +/- 1 std over KID subsets or IS splits (the spread of the estimates)"}
    note = "; ".join(bars[k] for k in sorted(shown)) if shown else "no error bars: score with bootstrap replicates for 95% intervals"
    note += ". x: each transform's own strength at the measured points, weakest at the left (0 or none = untransformed)."
    return render_panels(panels, title=f"{metric} of degraded held-out images against the reference",
                         subtitle=axis_label(metric), ylabel=metric, note=note)
