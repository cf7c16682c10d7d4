"""PNG figures drawn with PIL alone: line plots with error bars, scatter plots, bar charts, sensitivity panels,
image-pair galleries.

Every series or point gets its own colour *and* marker shape (:func:`series_style`: 14 colours and 14
shapes, so 14 series differ in both, and up to 196 in at least one), legends show the marker, axes carry
their labels with units, and error bars show whatever interval the caller has (a 95% bootstrap interval,
or a standard deviation: the caller says which in ``note``). ``render_*`` functions return a PIL image;
the others write a PNG atomically (:func:`genbench.util.atomic.atomic_path`) and return its path.

Fonts: PIL's bundled scalable default font (``ImageFont.load_default(size)``), falling back to the bitmap
default where PIL was built without FreeType. matplotlib would add a dependency of several tens of MB
(with fonttools, kiwisolver, contourpy, ...) for the handful of chart kinds drawn here, and its output
depends on its version and font setup; these few hundred lines give the same pixels on every machine.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..util.atomic import atomic_path

#: 14 distinct colours: the Okabe-Ito palette without its yellow, then seven more of other hue or lightness.
PALETTE = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (230, 159, 0),
           (0, 0, 0), (128, 128, 128), (150, 50, 50), (40, 100, 40), (110, 80, 170), (170, 150, 20),
           (0, 110, 120), (230, 60, 140))
#: 14 marker shapes; ``-open`` ones are drawn as outlines.
MARKERS = ("circle", "square", "triangle", "diamond", "triangle-down", "plus", "cross", "star", "hexagon",
           "triangle-left", "triangle-right", "circle-open", "square-open", "diamond-open")
GRID = (232, 232, 232)
INK = (30, 30, 30)
MUTED = (90, 90, 90)


#: Characters the bundled font lacks, and what is drawn instead.
_PLAIN = str.maketrans({"é": "e", "²": "^2", "≈": "~", "↓": "", "↑": "", "–": "-", "—": "-", "×": "x", "μ": "mu",
                        "σ": "sigma", "…": "..."})


def plain(text: str) -> str:
    """``text`` in the characters PIL's bundled font has (``Fréchet`` -> ``Frechet``, ``MMD²`` -> ``MMD^2``)."""
    return str(text).translate(_PLAIN)


class _Draw(ImageDraw.ImageDraw):
    """ImageDraw that draws and measures text through :func:`plain`."""

    def text(self, xy, text, *args, **kw):
        return super().text(xy, plain(text), *args, **kw)

    def textbbox(self, xy, text, *args, **kw):
        return super().textbbox(xy, plain(text), *args, **kw)


def series_style(index: int) -> tuple[tuple[int, int, int], str]:
    """(colour, marker) of the ``index``-th series: distinct in both for the first 14, in the pair for 196."""
    n = len(PALETTE)
    return PALETTE[index % n], MARKERS[(index + index // n) % len(MARKERS)]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # PIL without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top  # type: ignore[return-value]  # PIL types the bbox float; whole pixels at xy (0, 0)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """Greedy word wrap of ``text`` into lines at most ``width`` pixels wide."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if line and _text_size(draw, trial, font)[0] > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def draw_marker(draw: ImageDraw.ImageDraw, x: float, y: float, marker: str, colour, r: float = 5.0) -> None:
    """One marker of shape ``marker`` (see :data:`MARKERS`) centred at (x, y), radius about ``r`` pixels."""
    shape, _, style = marker.partition("-open")
    hollow = marker.endswith("-open")
    fill, width = (None, 2) if hollow else (colour, 1)

    def poly(points: list[tuple[float, float]]) -> None:
        draw.polygon([(x + px * r, y + py * r) for px, py in points], fill=fill, outline=colour, width=width)

    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=colour, width=width)
    elif shape == "square":
        poly([(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)])
    elif shape == "diamond":
        poly([(0, -1.15), (1.0, 0), (0, 1.15), (-1.0, 0)])
    elif shape.startswith("triangle"):
        base = [(0, -1.15), (1.05, 0.8), (-1.05, 0.8)]
        turn = {"triangle": 0, "triangle-down": 180, "triangle-left": 270, "triangle-right": 90}[shape]
        c, s = math.cos(math.radians(turn)), math.sin(math.radians(turn))
        poly([(px * c - py * s, px * s + py * c) for px, py in base])
    elif shape in ("plus", "cross"):
        t = 0.32
        arm = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t)]
        if shape == "cross":
            c = math.sqrt(0.5)
            arm = [((px - py) * c * 1.1, (px + py) * c * 1.1) for px, py in arm]
        poly(arm)
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = 1.2 if k % 2 == 0 else 0.5
            a = math.radians(-90 + 36 * k)
            pts.append((rad * math.cos(a), rad * math.sin(a)))
        poly(pts)
    elif shape == "hexagon":
        poly([(math.cos(math.radians(60 * k)), math.sin(math.radians(60 * k))) for k in range(6)])
    else:
        raise ValueError(f"unknown marker {marker!r}; expected one of {', '.join(MARKERS)}")


# ----------------------------------------------------------------------------- axes


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw), default=10 * power)
    first = math.floor(lo / step) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten covering [lo, hi] (lo > 0), with 2 and 5 between them when the range is under 3 decades."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if last - first < 3 else (1,)
    ticks = [m * 10.0 ** e for e in range(first, last + 1) for m in steps]
    inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    below = [t for t in ticks if t < lo]
    above = [t for t in ticks if t > hi]
    return ([below[-1]] if below else []) + inside + ([above[0]] if above else [])


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.1e}"
    if abs(value) >= 1e4 and float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.4g}"


@dataclass
class Axis:
    """Data -> pixel mapping on [lo, hi] to pixels [a, b]; ``log`` (lo > 0) and ``reverse`` flip the scale."""

    lo: float
    hi: float
    a: float
    b: float
    log: bool = False
    reverse: bool = False
    ticks: list[float] = field(default_factory=list)
    labels: dict[float, str] = field(default_factory=dict)

    def _t(self, v: float) -> float:
        f = math.log10 if self.log else (lambda z: z)
        lo, hi = f(self.lo), f(self.hi)
        t = (f(max(v, self.lo * 1e-12)) - lo) / (hi - lo) if self.log else (v - lo) / (hi - lo)
        return 1.0 - t if self.reverse else t

    def __call__(self, v: float) -> float:
        return self.a + self._t(v) * (self.b - self.a)

    def label(self, tick: float) -> str:
        return self.labels.get(tick, _fmt(tick))


def make_axis(values: Sequence[float], a: float, b: float, *, log: bool = False, reverse: bool = False,
              include_zero: bool = False, ticks: Sequence[float] | None = None,
              labels: dict[float, str] | None = None, pad: float = 0.0) -> Axis:
    """An axis covering the finite ``values`` (and 0 with ``include_zero``) on round ticks."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v) and (not log or v > 0)]
    if include_zero and not log:
        finite.append(0.0)
    if not finite:
        finite = [1.0, 10.0] if log else [0.0, 1.0]
    lo, hi = min(finite), max(finite)
    if pad and hi > lo:
        span = (math.log10(hi) - math.log10(lo)) if log else hi - lo
        if log:
            lo, hi = lo / 10 ** (pad * span), hi * 10 ** (pad * span)
        else:  # padding never pushes a non-negative range below zero
            lo, hi = (max(lo - pad * span, 0.0) if lo >= 0 else lo - pad * span), hi + pad * span
    if ticks is None:
        if log:
            if hi <= lo:
                lo, hi = lo / 2, hi * 2
            ticks = log_ticks(lo, hi)
        else:
            ticks = nice_ticks(lo, hi)
    ticks = sorted(ticks)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    if hi <= lo:
        hi = lo + 1
    return Axis(lo, hi, a, b, log, reverse, list(ticks), dict(labels or {}))


def _draw_axes(img: Image.Image, draw: ImageDraw.ImageDraw, x: Axis, y: Axis, box: tuple[float, float, float, float],
               xlabel: str, ylabel: str, small, *, ylabel_x: float = 4) -> None:
    """Grid, ticks, tick labels and axis labels for the plot area ``box`` = (left, top, right, bottom)."""
    left, top, right, bottom = box
    for t in y.ticks:
        py = y(t)
        draw.line([(left, py), (right, py)], fill=GRID)
        draw.line([(left - 5, py), (left, py)], fill=INK)
        text = y.label(t)
        tw, th = _text_size(draw, text, small)
        draw.text((left - 8 - tw, py - th / 2 - 3), text, fill=INK, font=small)
    last_right = -math.inf
    for t in sorted(x.ticks, key=x):
        px = x(t)
        draw.line([(px, top), (px, bottom)], fill=GRID)
        draw.line([(px, bottom), (px, bottom + 5)], fill=INK)
        text = x.label(t)
        tw, _ = _text_size(draw, text, small)
        if px - tw / 2 > last_right + 4:  # skip labels that would overlap their neighbour
            draw.text((px - tw / 2, bottom + 8), text, fill=INK, font=small)
            last_right = px + tw / 2
    draw.rectangle([left, top, right, bottom], outline=(150, 150, 150))
    xw, _ = _text_size(draw, xlabel, small)
    draw.text(((left + right - xw) / 2, bottom + 28), xlabel, fill=INK, font=small)
    if ylabel:
        yw, yh = _text_size(draw, ylabel, small)
        tag = Image.new("RGBA", (yw + 6, yh + 8), (255, 255, 255, 0))
        _Draw(tag).text((3, 0), ylabel, fill=INK, font=small)
        tag = tag.rotate(90, expand=True)
        img.paste(tag, (int(ylabel_x), int((top + bottom - tag.height) / 2)), tag)


def _title(draw: ImageDraw.ImageDraw, text: str, width: int, font, y: float = 10) -> float:
    """Centred (wrapped) title; returns the y below it."""
    for line in _wrap(draw, text, font, width - 40):
        tw, th = _text_size(draw, line, font)
        draw.text(((width - tw) / 2, y), line, fill=INK, font=font)
        y += th + 8
    return y


def _note(draw: ImageDraw.ImageDraw, text: str | None, width: int, height: int, small) -> None:
    if not text:
        return
    lines = _wrap(draw, text, small, width - 24)
    y = height - 6 - 17 * len(lines)
    for line in lines:
        draw.text((12, y), line, fill=MUTED, font=small)
        y += 17


def _error_bar(draw: ImageDraw.ImageDraw, p1: tuple[float, float], p2: tuple[float, float], colour,
               vertical: bool = True, cap: float = 4) -> None:
    draw.line([p1, p2], fill=colour, width=2)
    for px, py in (p1, p2):
        draw.line([(px - cap, py), (px + cap, py)] if vertical else [(px, py - cap), (px, py + cap)], fill=colour, width=2)


def _legend(img_draw: ImageDraw.ImageDraw, entries: list[tuple[str, tuple, str]], x: float, y: float, small,
            line: bool = True, row: int = 20) -> None:
    for i, (name, colour, marker) in enumerate(entries):
        ly = y + row * i + 8
        if line:
            img_draw.line([(x, ly), (x + 24, ly)], fill=colour, width=2)
        draw_marker(img_draw, x + 12, ly, marker, colour, 4.5)
        img_draw.text((x + 32, ly - 8), name, fill=INK, font=small)


def _interval(errors, name, i) -> tuple[float, float] | None:
    if not errors or name not in errors or i >= len(errors[name]):
        return None
    iv = errors[name][i]
    if iv is None or len(iv) != 2 or not all(v is not None and math.isfinite(v) for v in iv):
        return None
    return float(iv[0]), float(iv[1])


# ----------------------------------------------------------------------------- line and scatter plots


def render_line_plot(
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    xtick_labels: dict[float, str] | None = None,
    errors: dict[str, Sequence[tuple[float, float] | None]] | None = None,
    size: tuple[int, int] = (760, 480),
    note: str | None = None,
    log_x: bool = False,
    reverse_x: bool = False,
) -> Image.Image:
    """One line with markers per series (name -> [(x, y), ...]); ``errors`` name -> [(lo, hi) or None, ...]
    per point draws vertical error bars. Non-finite y values are skipped."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = _Draw(img)
    font, small = _font(15), _font(12)
    ys = [y for pts in series.values() for _, y in pts]
    ys += [v for intervals in (errors or {}).values() for iv in intervals if iv for v in iv]
    xs = [x for pts in series.values() for x, _ in pts]
    top = _title(draw, title, width, font) + 6
    legend_w = 46 + max((_text_size(draw, name, small)[0] for name in series), default=0)
    notes_h = 17 * len(_wrap(draw, note, small, width - 24)) + 8 if note else 0
    bottom = height - 52 - notes_h
    yaxis = make_axis(ys, bottom, top, pad=0.04)
    left = 30 + max(_text_size(draw, yaxis.label(t), small)[0] for t in yaxis.ticks) + 12
    right = width - legend_w - 14
    xaxis = make_axis(xs, left, right, log=log_x, reverse=reverse_x,
                      ticks=sorted(xtick_labels) if xtick_labels else None, labels=xtick_labels, pad=0.03)
    _draw_axes(img, draw, xaxis, yaxis, (left, top, right, bottom), xlabel, ylabel, small)
    entries = []
    for i, (name, pts) in enumerate(series.items()):
        colour, marker = series_style(i)
        entries.append((name, colour, marker))
        coords = [(xaxis(x), yaxis(y)) for x, y in pts if y is not None and math.isfinite(y)]
        if len(coords) > 1:
            draw.line(coords, fill=colour, width=2)
        for j, (x, _y) in enumerate(pts):
            iv = _interval(errors, name, j)
            if iv is not None:
                _error_bar(draw, (xaxis(x), yaxis(iv[0])), (xaxis(x), yaxis(iv[1])), colour)
        for cx, cy in coords:
            draw_marker(draw, cx, cy, marker, colour, 5)
    _legend(draw, entries, right + 14, top, small, line=True)
    _note(draw, note, width, height, small)
    return img


def line_plot(series: dict[str, Sequence[tuple[float, float]]], path: str | Path, **kw) -> Path:
    """:func:`render_line_plot` written to ``path`` (PNG)."""
    return _save(render_line_plot(series, **kw), path)


@dataclass(frozen=True)
class ScatterPoint:
    """One labelled point; ``xerr`` / ``yerr`` are (lo, hi) intervals or None."""

    label: str
    x: float
    y: float
    xerr: tuple[float, float] | None = None
    yerr: tuple[float, float] | None = None


def _place_labels(draw, points: list[tuple[float, float, str]], font, box) -> list[tuple[float, float] | None]:
    """Greedy direct-label placement: 8 spots around each point, none overlapping a marker or placed label."""
    left, top, right, bottom = box
    taken = [(px - 6, py - 6, px + 6, py + 6) for px, py, _ in points]
    out: list[tuple[float, float] | None] = []

    def free(b) -> bool:
        if b[0] < left + 2 or b[2] > right - 2 or b[1] < top + 2 or b[3] > bottom - 2:
            return False
        return all(b[2] <= t[0] or b[0] >= t[2] or b[3] <= t[1] or b[1] >= t[3] for t in taken)

    for px, py, text in points:
        tw, th = _text_size(draw, text, font)
        spots = [(px + 9, py - th / 2 - 3), (px - 9 - tw, py - th / 2 - 3), (px - tw / 2, py - th - 14),
                 (px - tw / 2, py + 8), (px + 8, py - th - 10), (px + 8, py + 4), (px - 8 - tw, py - th - 10),
                 (px - 8 - tw, py + 4)]
        placed = None
        for sx, sy in spots:
            b = (sx - 1, sy + 2, sx + tw + 1, sy + th + 5)
            if free(b):
                taken.append(b)
                placed = (sx, sy)
                break
        out.append(placed)
    return out


def render_scatter_plot(
    points: Sequence[ScatterPoint],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[int, int] = (900, 560),
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    note: str | None = None,
) -> Image.Image:
    """One distinct marker per point (:func:`series_style`), its label next to it where there is room,
    and a legend of every point; error bars from ``xerr`` / ``yerr``."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = _Draw(img)
    font, small = _font(15), _font(12)
    top = _title(draw, title, width, font) + 6
    legend_w = 44 + max((_text_size(draw, p.label, small)[0] for p in points), default=0)
    notes_h = 17 * len(_wrap(draw, note, small, width - 24)) + 8 if note else 0
    bottom = height - 52 - notes_h
    ys = [p.y for p in points] + [v for p in points if p.yerr for v in p.yerr]
    xs = [p.x for p in points] + [v for p in points if p.xerr for v in p.xerr]
    yaxis = make_axis(list(ylim) if ylim else ys, bottom, top, pad=0 if ylim else 0.05)
    left = 30 + max(_text_size(draw, yaxis.label(t), small)[0] for t in yaxis.ticks) + 12
    right = width - legend_w - 16
    xaxis = make_axis(list(xlim) if xlim else xs, left, right, pad=0 if xlim else 0.05)
    _draw_axes(img, draw, xaxis, yaxis, (left, top, right, bottom), xlabel, ylabel, small)
    styles = [series_style(i) for i in range(len(points))]
    for p, (colour, _) in zip(points, styles):
        if p.yerr:
            _error_bar(draw, (xaxis(p.x), yaxis(p.yerr[0])), (xaxis(p.x), yaxis(p.yerr[1])), colour)
        if p.xerr:
            _error_bar(draw, (xaxis(p.xerr[0]), yaxis(p.y)), (xaxis(p.xerr[1]), yaxis(p.y)), colour, vertical=False)
    pixel = [(xaxis(p.x), yaxis(p.y), p.label) for p in points]
    spots = _place_labels(draw, pixel, small, (left, top, right, bottom))
    for (_, _, text), spot, (colour, _) in zip(pixel, spots, styles):
        if spot is not None:
            draw.text(spot, text, fill=tuple(int(c * 0.75) for c in colour), font=small)
    for (px, py, _), (colour, marker) in zip(pixel, styles):
        draw_marker(draw, px, py, marker, colour, 6)
    _legend(draw, [(p.label, c, m) for p, (c, m) in zip(points, styles)], right + 14, top, small, line=False)
    _note(draw, note, width, height, small)
    return img


def scatter_plot(points: Sequence[ScatterPoint], path: str | Path, **kw) -> Path:
    """:func:`render_scatter_plot` written to ``path`` (PNG)."""
    return _save(render_scatter_plot(points, **kw), path)


# ----------------------------------------------------------------------------- bar charts


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
    colours: Sequence[tuple[int, int, int]] | None = None,
    size: tuple[int, int] = (760, 440),
) -> Path:
    """Vertical bars with their values printed above them; labels under the bars (rotated when long)."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = _Draw(img)
    font, small = _font(14), _font(12)
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    yticks = nice_ticks(min(0.0, min(finite)), max(finite))
    y0, y1 = yticks[0], yticks[-1]
    y1 = y1 if y1 > y0 else y0 + 1
    ylabels = [_fmt(t) for t in yticks]
    label_h = max(_text_size(draw, lab, small)[0] for lab in labels) if labels else 0
    left = 24 + max(_text_size(draw, t, small)[0] for t in ylabels) + 10
    right, top, bottom = width - 16, 44, height - 20 - min(label_h, 180)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    tw, _ = _text_size(draw, title, font)
    draw.text(((left + right - tw) / 2, 10), title, fill="black", font=font)
    for t, lab in zip(yticks, ylabels):
        y = py(t)
        draw.line([(left, y), (right, y)], fill=GRID)
        lw, lh = _text_size(draw, lab, small)
        draw.text((left - 8 - lw, y - lh / 2 - 2), lab, fill="black", font=small)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")
    n = max(len(values), 1)
    slot = (right - left) / n
    for i, (lab, v) in enumerate(zip(labels, values)):
        colour = (colours[i] if colours else PALETTE[0])
        xa, xb = left + slot * i + slot * 0.15, left + slot * (i + 1) - slot * 0.15
        if math.isfinite(v):
            draw.rectangle([xa, min(py(v), py(0)), xb, max(py(v), py(0))], fill=colour)
            text = _fmt(v)
            vw, vh = _text_size(draw, text, small)
            draw.text(((xa + xb - vw) / 2, min(py(v), py(0)) - vh - 6), text, fill="black", font=small)
        lw, lh = _text_size(draw, lab, small)
        tag = Image.new("RGBA", (lw + 4, lh + 6), (255, 255, 255, 0))
        _Draw(tag).text((2, 0), lab, fill="black", font=small)
        if lw > slot - 4:
            tag = tag.rotate(90, expand=True)
        img.paste(tag, (int((xa + xb - tag.width) / 2), int(bottom + 6)), tag)
    ylw, _ = _text_size(draw, ylabel, small)
    yl = Image.new("RGBA", (ylw + 4, 18), (255, 255, 255, 0))
    _Draw(yl).text((2, 0), ylabel, fill="black", font=small)
    yl = yl.rotate(90, expand=True)
    img.paste(yl, (2, int((top + bottom - yl.height) / 2)), yl)
    return _save(img, path)


def render_hbar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    intervals: Sequence[tuple[float, float] | None] | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
    value_text: Sequence[str] | None = None,
    log: bool | None = None,
    width: int = 900,
    row: int = 30,
    note: str | None = None,
) -> Image.Image:
    """Horizontal bars, one row per label (top to bottom), each with its value and interval (error bar).

    ``log=None`` picks a log axis when all values are positive and span more than two decades (bars then
    start at the axis' left end); ``value_text`` replaces the printed numbers.
    """
    probe = _Draw(Image.new("RGB", (1, 1)))
    font, small = _font(15), _font(12)
    finite = [v for v in values if v is not None and math.isfinite(v)]
    lows = [iv[0] for iv in (intervals or []) if iv] + finite
    if log is None:
        log = bool(finite) and min(lows) > 0 and max(finite) / min(lows) > 100
    label_w = max((_text_size(probe, lab, small)[0] for lab in labels), default=0) + 18
    texts = list(value_text) if value_text else [
        "" if v is None or not math.isfinite(v) else _fmt(v) + (f"  [{_fmt(iv[0])}, {_fmt(iv[1])}]" if iv else "")
        for v, iv in zip(values, list(intervals or []) + [None] * len(values))]
    text_w = max((_text_size(probe, t, small)[0] for t in texts), default=0) + 16
    title_lines = _wrap(probe, title, font, width - 40)
    top = 14 + 24 * len(title_lines) + 6
    notes_h = 17 * len(_wrap(probe, note, small, width - 24)) + 8 if note else 0
    height = top + row * max(len(labels), 1) + 60 + notes_h
    img = Image.new("RGB", (width, height), "white")
    draw = _Draw(img)
    _title(draw, title, width, font, 12)
    left, right, bottom = label_w + 8, width - text_w - 10, top + row * max(len(labels), 1)
    span = lows + [iv[1] for iv in (intervals or []) if iv] + finite
    axis = make_axis(span, left, right, log=log, include_zero=not log)
    _draw_axes(img, draw, axis, Axis(0, 1, bottom, top, ticks=[]), (left, top, right, bottom), xlabel, "", small)
    zero = axis(axis.lo) if log else axis(0.0)
    for i, lab in enumerate(labels):
        cy = top + row * i + row / 2
        colour = colours[i] if colours else PALETTE[0]
        tw, th = _text_size(draw, lab, small)
        draw.text((left - 10 - tw, cy - th / 2 - 3), lab, fill=INK, font=small)
        v = values[i]
        if v is None or not math.isfinite(v):
            continue
        x = axis(v)
        draw.rectangle([min(zero, x), cy - row * 0.32, max(zero, x), cy + row * 0.32], fill=colour)
        iv = intervals[i] if intervals and i < len(intervals) else None
        if iv:
            _error_bar(draw, (axis(iv[0]), cy), (axis(iv[1]), cy), INK, vertical=False, cap=row * 0.25)
        end = max(x, axis(iv[1]) if iv else x)
        draw.text((min(end, right) + 6, cy - th / 2 - 3), texts[i], fill=INK, font=small)
    _note(draw, note, width, height, small)
    return img


# ----------------------------------------------------------------------------- interval strips


@dataclass
class Strip:
    """One metric on its own axis: this result's value and interval, among other labelled values."""

    title: str
    xlabel: str
    value: float | None
    interval: tuple[float, float] | None = None
    others: list[tuple[str, float]] = field(default_factory=list)
    value_label: str = "this result"


def render_interval_strips(strips: Sequence[Strip], *, title: str, note: str | None = None,
                           width: int = 1000) -> Image.Image:
    """One row per metric, each with its own x axis: the result (orange diamond, its interval as a bar)
    and, where given, other rows' values (grey circles, labelled where there is room). A metric whose
    values are positive and span more than two decades gets a log axis."""
    probe = _Draw(Image.new("RGB", (1, 1)))
    font, small = _font(15), _font(12)
    row_h = 118
    head = 14 + 24 * len(_wrap(probe, title, font, width - 40)) + 6
    notes_h = 17 * len(_wrap(probe, note, small, width - 24)) + 10 if note else 0
    height = head + row_h * max(len(strips), 1) + notes_h
    img = Image.new("RGB", (width, height), "white")
    draw = _Draw(img)
    _title(draw, title, width, font, 12)
    accent, grey = PALETTE[1], (140, 140, 140)
    for i, st in enumerate(strips):
        y0 = head + i * row_h
        draw.text((16, y0 + 2), st.title, fill=INK, font=small)
        values = [v for _, v in st.others] + ([st.value] if st.value is not None else [])
        values += list(st.interval or [])
        finite = [v for v in values if v is not None and math.isfinite(v)]
        log = bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100
        left, right, cy = 40, width - 40, y0 + 56
        axis = make_axis(finite, left, right, log=log, pad=0.04)
        for t in axis.ticks:
            px = axis(t)
            draw.line([(px, cy + 14), (px, cy + 19)], fill=INK)
            text = axis.label(t)
            tw, _ = _text_size(draw, text, small)
            draw.text((px - tw / 2, cy + 21), text, fill=INK, font=small)
        draw.line([(left, cy + 14), (right, cy + 14)], fill=(150, 150, 150))
        xl = st.xlabel + (" (log scale)" if log else "")
        xw, _ = _text_size(draw, xl, small)
        draw.text(((left + right - xw) / 2, cy + 38), xl, fill=MUTED, font=small)
        taken: list[tuple[float, float, int]] = []  # (left, right, dy) of the labels drawn
        for _j, (name, v) in enumerate(sorted(st.others, key=lambda o: o[1])):
            if v is None or not math.isfinite(v):
                continue
            px = axis(v)
            draw.ellipse([px - 4, cy - 4, px + 4, cy + 4], fill=grey)
            tw, th = _text_size(draw, name, small)
            for dy in (-22, -36, 8):
                span = (px - tw / 2, px + tw / 2, dy)
                if all(span[1] < a - 4 or span[0] > b + 4 for a, b, d in taken if d == dy):
                    taken.append(span)
                    draw.text((px - tw / 2, cy + dy - 4), name, fill=(110, 110, 110), font=small)
                    break
        if st.interval is not None:
            lo, hi = st.interval
            draw.rectangle([axis(lo), cy - 3, axis(hi), cy + 3], fill=accent)
            for x in (axis(lo), axis(hi)):
                draw.line([(x, cy - 8), (x, cy + 8)], fill=accent, width=2)
        if st.value is not None and math.isfinite(st.value):
            draw_marker(draw, axis(st.value), cy, "diamond", accent, 7)
    _note(draw, note, width, height, small)
    return img


# ----------------------------------------------------------------------------- sensitivity panels


@dataclass
class Panel:
    """One small plot of a sensitivity figure: a metric against one transform's real strength."""

    title: str
    xlabel: str
    xs: list[float]
    ys: list[float]
    intervals: list[tuple[float, float] | None] = field(default_factory=list)
    xtick_labels: dict[float, str] | None = None
    reverse_x: bool = False


def strength_axis(strengths: Sequence[float]) -> tuple[list[float], dict[float, str] | None, bool]:
    """x positions, tick labels and direction for a ladder of strengths, weakest first.

    An ascending ladder is plotted as it is. A ladder that starts at 0 (identity) and then falls
    (JPEG quality 90, 70, ... gets stronger as the number falls) is plotted on a reversed axis, with
    the identity half a step before the first strength and labelled ``none``.
    """
    s = [float(v) for v in strengths]
    if len(s) >= 3 and s[0] == 0 and all(a > b for a, b in zip(s[1:], s[2:])):
        first = s[1] + (s[1] - s[2]) / 2
        xs = [first] + s[1:]
        return xs, {**{v: _fmt(v) for v in s[1:]}, first: "none"}, True
    return s, None, False


def render_panels(panels: Sequence[Panel], *, title: str, ylabel: str, note: str | None = None,
                  columns: int | None = None, panel_size: tuple[int, int] | None = None,
                  subtitle: str | None = None) -> Image.Image:
    """Small multiples sharing nothing but the metric: one panel per transform, own x axis (its strength,
    with unit), own y range, error bars where the panel has intervals. ``ylabel`` (short) goes on every
    panel, ``subtitle`` (e.g. the metric's full description) under the title."""
    n = max(len(panels), 1)
    columns = columns or min(n, 3)
    rows = math.ceil(n / columns)
    pw, ph = panel_size or ((760, 430) if n == 1 else (400, 300))
    probe = _Draw(Image.new("RGB", (1, 1)))
    font, small = _font(15), _font(12)
    width = columns * pw
    head = 14 + 24 * len(_wrap(probe, title, font, width - 40)) + 4
    head += 20 * len(_wrap(probe, subtitle, small, width - 40)) if subtitle else 0
    notes_h = 17 * len(_wrap(probe, note, small, width - 24)) + 10 if note else 0
    height = head + rows * ph + notes_h
    img = Image.new("RGB", (width, height), "white")
    draw = _Draw(img)
    below = _title(draw, title, width, font, 12)
    for line in _wrap(draw, subtitle, small, width - 40) if subtitle else []:
        lw, lh = _text_size(draw, line, small)
        draw.text(((width - lw) / 2, below - 4), line, fill=MUTED, font=small)
        below += 20
    colour = PALETTE[0]
    for i, p in enumerate(panels):
        r, c = divmod(i, columns)
        x0, y0 = c * pw, head + r * ph
        ptop = y0 + 8 + 22 * len(_wrap(draw, p.title, small, pw - 30))
        for k, line in enumerate(_wrap(draw, p.title, small, pw - 30)):
            lw, _ = _text_size(draw, line, small)
            draw.text((x0 + (pw - lw) / 2, y0 + 6 + 18 * k), line, fill=INK, font=small)
        xlabel_lines = _wrap(draw, p.xlabel, small, pw - 80)
        pbottom = y0 + ph - 34 - 16 * len(xlabel_lines)
        ys = list(p.ys) + [v for iv in p.intervals if iv for v in iv]
        yaxis = make_axis(ys, pbottom, ptop, pad=0.05)
        pleft = x0 + 26 + max(_text_size(draw, yaxis.label(t), small)[0] for t in yaxis.ticks) + 10
        pright = x0 + pw - 16
        xaxis = make_axis(p.xs, pleft, pright, reverse=p.reverse_x,
                          ticks=sorted(p.xtick_labels) if p.xtick_labels else None, labels=p.xtick_labels, pad=0.04)
        _draw_axes(img, draw, xaxis, yaxis, (pleft, ptop, pright, pbottom), "", ylabel, small, ylabel_x=x0 + 2)
        for k, line in enumerate(xlabel_lines):
            lw, _ = _text_size(draw, line, small)
            draw.text(((pleft + pright - lw) / 2, pbottom + 26 + 16 * k), line, fill=INK, font=small)
        pts = [(xaxis(x), yaxis(y)) for x, y in zip(p.xs, p.ys) if y is not None and math.isfinite(y)]
        if len(pts) > 1:
            ordered = sorted(pts)  # a name of its own: in draw.line(...) mypy infers sorted() from PIL's Coords
            draw.line(ordered, fill=colour, width=2)
        for j, x in enumerate(p.xs):
            iv = p.intervals[j] if j < len(p.intervals) else None
            if iv and all(v is not None and math.isfinite(v) for v in iv):
                _error_bar(draw, (xaxis(x), yaxis(iv[0])), (xaxis(x), yaxis(iv[1])), colour)
        for px, py in pts:
            draw_marker(draw, px, py, "circle", colour, 4.5)
    _note(draw, note, width, height, small)
    return img


# ----------------------------------------------------------------------------- galleries


def _tile(image: np.ndarray, scale: int) -> Image.Image:
    """uint8 [3, H, W] -> an RGB PIL image enlarged ``scale`` times (nearest neighbour, pixels stay sharp)."""
    pil = Image.fromarray(np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(1, 2, 0)))
    return pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST) if scale > 1 else pil


def pair_gallery(
    pairs: Sequence[tuple[np.ndarray, np.ndarray, str]],
    path: str | Path,
    *,
    title: str,
    left_label: str = "generated",
    right_label: str = "nearest training",
    columns: int = 4,
    scale: int = 3,
) -> Path:
    """A grid of image pairs (uint8 [3, H, W] each, same size within a pair) with one caption per pair."""
    small, font = _font(12), _font(14)
    if not pairs:
        img = Image.new("RGB", (420, 60), "white")
        _Draw(img).text((10, 20), f"{title}: no samples", fill="black", font=font)
        return _save(img, path)
    tiles = [(_tile(a, scale), _tile(b, scale), caption) for a, b, caption in pairs]
    tw = max(a.width + b.width for a, b, _ in tiles) + 4
    th = max(max(a.height, b.height) for a, b, _ in tiles)
    cell_w, cell_h = max(tw, 150) + 16, th + 22 + 12
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    head = 56
    img = Image.new("RGB", (columns * cell_w + 16, head + rows * cell_h + 8), "white")
    draw = _Draw(img)
    draw.text((10, 8), title, fill="black", font=font)
    draw.text((10, 30), f"each pair: {left_label} (left) | {right_label} (right)", fill=(80, 80, 80), font=small)
    for i, (a, b, caption) in enumerate(tiles):
        r, c = divmod(i, columns)
        x, y = 8 + c * cell_w, head + r * cell_h
        img.paste(a, (x, y))
        img.paste(b, (x + a.width + 4, y))
        draw.rectangle([x - 1, y - 1, x + a.width, y + a.height], outline=(213, 94, 0))
        draw.text((x, y + th + 4), caption, fill="black", font=small)
    return _save(img, path)


def _save(img: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path
