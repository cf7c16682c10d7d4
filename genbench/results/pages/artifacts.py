"""The parts of a report page that come from files and numbers: artifact lists, PNGs read safely, the 1/N fit plot."""
from __future__ import annotations

import html
import io
from collections.abc import Mapping
from pathlib import Path

from ...errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _num(x: object) -> str:
    return f"{x:.6g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else ("" if x is None else str(x))


def artifact_list(doc: dict) -> list[tuple[str, str, str]]:
    """(name, path, caption) for each artifact; InputError on a malformed entry."""
    artifacts = doc.get("artifacts") or {}
    if not isinstance(artifacts, dict):
        raise InputError(f"'artifacts' must map names to PNG paths, got {type(artifacts).__name__}")
    out = []
    for name, spec in artifacts.items():
        if isinstance(spec, str):
            out.append((str(name), spec, str(name).replace("_", " ")))
        elif isinstance(spec, dict) and isinstance(spec.get("path"), str):
            out.append((str(name), spec["path"], str(spec.get("caption") or name)))
        else:
            raise InputError(f"artifact {name!r}: expected a PNG path or {{'path': ..., 'caption': ...}}, got {spec!r}")
    return out


def read_png(path: Path, name: str) -> tuple[bytes, tuple[int, int]]:
    """The bytes and (width, height) of a PNG file; InputError when missing or not a valid PNG."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"artifact {name!r}: {path} not found")
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise InputError(f"artifact {name!r}: {path} is not a PNG file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            size = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"artifact {name!r}: {path} is a damaged PNG ({exc})") from None
    return data, size


def fit_plot_svg(entry: Mapping, width: int = 360, height: int = 220) -> str | None:
    """An SVG scatter of [N, value] points against 1/N with the fitted line; None without points."""
    points = entry.get("points")
    if not points or "value" not in entry or "slope" not in entry:
        return None
    xs = [1.0 / float(n) for n, _ in points]
    ys = [float(v) for _, v in points]
    a, b = float(entry["value"]), float(entry["slope"])
    x_max = max(xs) * 1.05
    line_y = [a, a + b * x_max]
    y_lo, y_hi = min(ys + line_y), max(ys + line_y)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    left, right, top, bottom = 56, 10, 10, 34

    def sx(x: float) -> float:
        return left + (width - left - right) * x / x_max

    def sy(y: float) -> float:
        return top + (height - top - bottom) * (y_hi - y) / (y_hi - y_lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#999"/>',
        f'<line x1="{sx(0):.1f}" y1="{sy(line_y[0]):.1f}" x2="{sx(x_max):.1f}" y2="{sy(line_y[1]):.1f}" stroke="#c33" stroke-width="1.5"/>',
        f'<circle cx="{sx(0):.1f}" cy="{sy(a):.1f}" r="4" fill="#c33"/>',
    ]
    parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="#236"/>' for x, y in zip(xs, ys)]
    for y in (y_lo + pad, y_hi - pad):
        parts.append(f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" font-size="10" text-anchor="end">{html.escape(_num(y))}</text>')
    parts.append(f'<text x="{sx(0):.1f}" y="{height - 20}" font-size="10" text-anchor="middle">0</text>')
    parts.append(f'<text x="{sx(max(xs)):.1f}" y="{height - 20}" font-size="10" text-anchor="middle">1/{min(int(n) for n, _ in points)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle">1/N (red: fit, intercept = value at N = infinity)</text>')
    parts.append("</svg>")
    return "".join(parts)


