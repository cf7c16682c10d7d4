#!/usr/bin/env python
"""Put each leaderboard sample grid beside its earlier version: one picture, one row per model.

    .venv/bin/python scripts/before_after_grids.py REV [--out reports/fashion-mnist/before-after-grids.png]

"before" is ``reports/fashion-mnist/grid-NAME.png`` as committed at git revision REV, "after" the file in the
working tree (rerender it first with ``genbench leaderboard``). Rows: the real test split, then the baselines.
"""
from __future__ import annotations

import argparse
import io
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

ROWS = ("real-test-split", "cgan", "dcgan", "wgan-gp", "glo", "vae", "flow", "cyclegan")
GRIDS = Path("reports/fashion-mnist")
LABEL_W, HEADER_H, GAP = 110, 22, 12


def grid_at(rev: str, name: str) -> Image.Image:
    blob = subprocess.run(["git", "show", f"{rev}:{GRIDS / f'grid-{name}.png'}"], check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(blob)).convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="git revision of the 'before' grids")
    parser.add_argument("--out", type=Path, default=GRIDS / "before-after-grids.png")
    parser.add_argument("--before-label", default=None, help="column title (default: 'before (REV)')")
    parser.add_argument("--after-label", default="after", help="column title of the working tree's grids")
    args = parser.parse_args()
    pairs = [(name, grid_at(args.rev, name), Image.open(GRIDS / f"grid-{name}.png").convert("RGB")) for name in ROWS]
    w = max(max(a.width, b.width) for _, a, b in pairs)
    h = max(max(a.height, b.height) for _, a, b in pairs)
    canvas = Image.new("RGB", (LABEL_W + 2 * w + GAP, HEADER_H + len(pairs) * (h + GAP)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((LABEL_W, 4), args.before_label or f"before ({args.rev})", fill="black")
    draw.text((LABEL_W + w + GAP, 4), args.after_label, fill="black")
    for i, (name, before, after) in enumerate(pairs):
        top = HEADER_H + i * (h + GAP)
        draw.text((4, top + h // 2), name, fill="black")
        canvas.paste(before, (LABEL_W, top))
        canvas.paste(after, (LABEL_W + w + GAP, top))
    partial = args.out.with_name(args.out.name + ".partial")
    canvas.save(partial, format="PNG")
    partial.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
