"""Small PNG figures drawn with PIL alone (no matplotlib): line plots, bar charts, image-pair galleries.

Every function writes its PNG atomically (:func:`genbench.atomic.atomic_path`) and returns the path.
Fonts: PIL's bundled scalable default font (``ImageFont.load_default(size)``), falling back to the
bitmap default where PIL was built without FreeType.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_path

#: Line colours, cycled: the colour-blind-friendly Okabe-Ito palette (without its yellow), then four more.
PALETTE = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (230, 159, 0),
           (0, 0, 0), (120, 120, 120), (140, 60, 60), (60, 120, 60), (110, 80, 170), (190, 170, 40))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # PIL without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10) if m * power >= raw), default=10 * power)
    first = math.floor(lo / step) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


def line_plot(
    series: dict[str, Sequence[tuple[float, float]]],
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    xtick_labels: dict[float, str] | None = None,
    size: tuple[int, int] = (760, 480),
) -> Path:
    """One line with markers per series (name -> [(x, y), ...]) on shared axes, with ticks and a legend.

    Non-finite y values are skipped. ``xtick_labels`` replaces the automatic x ticks.
    """
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(14), _font(12)
    points = [(x, y) for pts in series.values() for x, y in pts if math.isfinite(y)]
    xs = [p[0] for p in points] or [0.0, 1.0]
    ys = [p[1] for p in points] or [0.0, 1.0]
    xticks = sorted(xtick_labels) if xtick_labels else nice_ticks(min(xs), max(xs))
    yticks = nice_ticks(min(ys), max(ys))
    x0, x1 = min(xticks[0], min(xs)), max(xticks[-1], max(xs))
    y0, y1 = yticks[0], yticks[-1]
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    ylabels = [_fmt(t) for t in yticks]
    left = 24 + max(_text_size(draw, t, small)[0] for t in ylabels) + 10
    legend_w = 20 + max((_text_size(draw, name, small)[0] for name in series), default=0) + 30
    right = width - legend_w - 10
    top, bottom = 40, height - 56

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    tw, _ = _text_size(draw, title, font)
    draw.text(((left + right - tw) / 2, 10), title, fill="black", font=font)
    for t, label in zip(yticks, ylabels):
        y = py(t)
        draw.line([(left, y), (right, y)], fill=(230, 230, 230))
        draw.line([(left - 5, y), (left, y)], fill="black")
        lw, lh = _text_size(draw, label, small)
        draw.text((left - 8 - lw, y - lh / 2 - 2), label, fill="black", font=small)
    for t in xticks:
        x = px(t)
        label = xtick_labels[t] if xtick_labels else _fmt(t)
        draw.line([(x, bottom), (x, bottom + 5)], fill="black")
        lw, _ = _text_size(draw, label, small)
        draw.text((x - lw / 2, bottom + 8), label, fill="black", font=small)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=1)
    xw, _ = _text_size(draw, xlabel, small)
    draw.text(((left + right - xw) / 2, height - 24), xlabel, fill="black", font=small)
    yl = Image.new("RGBA", (_text_size(draw, ylabel, small)[0] + 4, 18), (255, 255, 255, 0))
    ImageDraw.Draw(yl).text((2, 0), ylabel, fill="black", font=small)
    yl = yl.rotate(90, expand=True)
    img.paste(yl, (2, int((top + bottom - yl.height) / 2)), yl)

    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [(px(x), py(y)) for x, y in pts if math.isfinite(y)]
        if len(coords) > 1:
            draw.line(coords, fill=colour, width=2)
        for cx, cy in coords:
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
        ly = top + 4 + 20 * i
        draw.line([(right + 16, ly + 7), (right + 36, ly + 7)], fill=colour, width=2)
        draw.ellipse([right + 23, ly + 4, right + 29, ly + 10], fill=colour)
        draw.text((right + 42, ly), name, fill="black", font=small)
    return _save(img, path)


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
    draw = ImageDraw.Draw(img)
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
        draw.line([(left, y), (right, y)], fill=(230, 230, 230))
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
        ImageDraw.Draw(tag).text((2, 0), lab, fill="black", font=small)
        if lw > slot - 4:
            tag = tag.rotate(90, expand=True)
        img.paste(tag, (int((xa + xb - tag.width) / 2), int(bottom + 6)), tag)
    ylw, _ = _text_size(draw, ylabel, small)
    yl = Image.new("RGBA", (ylw + 4, 18), (255, 255, 255, 0))
    ImageDraw.Draw(yl).text((2, 0), ylabel, fill="black", font=small)
    yl = yl.rotate(90, expand=True)
    img.paste(yl, (2, int((top + bottom - yl.height) / 2)), yl)
    return _save(img, path)


def _tile(image: np.ndarray, scale: int) -> Image.Image:
    """uint8 [3, H, W] -> an RGB PIL image enlarged ``scale`` times (nearest neighbour, pixels stay sharp)."""
    pil = Image.fromarray(np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(1, 2, 0)))
    return pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST) if scale > 1 else pil


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
        ImageDraw.Draw(img).text((10, 20), f"{title}: no samples", fill="black", font=font)
        return _save(img, path)
    tiles = [(_tile(a, scale), _tile(b, scale), caption) for a, b, caption in pairs]
    tw = max(a.width + b.width for a, b, _ in tiles) + 4
    th = max(max(a.height, b.height) for a, b, _ in tiles)
    cell_w, cell_h = max(tw, 150) + 16, th + 22 + 12
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    head = 56
    img = Image.new("RGB", (columns * cell_w + 16, head + rows * cell_h + 8), "white")
    draw = ImageDraw.Draw(img)
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
