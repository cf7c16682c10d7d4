"""Image grids as PNG files (PIL only)."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..util.atomic import atomic_path


def image_grid(images: np.ndarray, columns: int = 10, scale: int = 2, pad: int = 2,
               row_labels: list[str] | None = None) -> Image.Image:
    """Tile uint8 images [N, 3, H, W] or [N, H, W] into one RGB picture, ``columns`` per row.

    Pixels are enlarged ``scale`` times by nearest neighbour so small images stay sharp.
    """
    arr = np.asarray(images, dtype=np.uint8)
    if arr.ndim == 3:
        arr = np.repeat(arr[:, None], 3, axis=1)
    n, _, h, w = arr.shape
    rows = max(1, -(-n // columns))
    label_w = 0 if not row_labels else 8 + 7 * max(len(s) for s in row_labels)
    cell_h, cell_w = h * scale + pad, w * scale + pad
    canvas = Image.new("RGB", (label_w + columns * cell_w + pad, rows * cell_h + pad), "white")
    for i in range(n):
        r, c = divmod(i, columns)
        tile = Image.fromarray(np.ascontiguousarray(arr[i].transpose(1, 2, 0)))
        if scale > 1:
            tile = tile.resize((w * scale, h * scale), Image.Resampling.NEAREST)
        canvas.paste(tile, (label_w + pad + c * cell_w, pad + r * cell_h))
    if row_labels:
        draw = ImageDraw.Draw(canvas)
        for r, text in enumerate(row_labels[:rows]):
            draw.text((4, pad + r * cell_h + cell_h // 2 - 6), text, fill="black")
    return canvas


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a PNG atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def png_data_uri(path: str | Path) -> str:
    """A PNG file as a data: URI, for self-contained HTML."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def to_png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
