"""Benchmark: hostile inputs are refused quickly (the time limits that used to sit in tests/unit/test_source_faults.py).

Builds the same inputs as those tests (a 512 MiB zip bomb in under 1 MB, a zip header that understates the size,
an .npz whose array header declares 3 TiB, an IDX .gz declaring 822 MB) and times how long genbench takes to
refuse each with its InputError, best of ``--repeats`` runs. Exits 1 when a case exceeds its limit (the limits of
the former unit-test assertions: 10 s for the zip cases, 5 s for the array headers).

Usage::

    .venv/bin/python bench/bench_hostile_inputs.py            # prints one line per case
"""
from __future__ import annotations

import argparse
import gzip
import io
import os
import struct
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genbench.errors import InputError  # noqa: E402
from genbench.sources import ZipSource, open_source  # noqa: E402
from genbench.sources.idx import read_idx  # noqa: E402
from genbench.sources.limits import MAX_ARRAY_BYTES_ENV  # noqa: E402
from tests.unit.test_source_faults import BOMB_BYTES, MIB, write_raw_zip, zeros_deflated  # noqa: E402


def cases(folder: Path) -> list[tuple[str, float, Callable[[], object]]]:
    """(name, limit in seconds, the call that must raise InputError)."""
    stream, crc = zeros_deflated(BOMB_BYTES // MIB)
    bomb = write_raw_zip(folder / "bomb.zip", [("big.png", stream, zipfile.ZIP_DEFLATED, crc, BOMB_BYTES)])
    liar = write_raw_zip(folder / "liar.zip", [("small.png", stream, zipfile.ZIP_DEFLATED, crc, 4 * MIB)])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (1 << 20, 1024, 1024, 3)})
    with zipfile.ZipFile(folder / "huge.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", header.getvalue() + bytes(100))
    with gzip.open(folder / "bomb-idx3-ubyte.gz", "wb") as fh:
        fh.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1 << 20, 28, 28) + bytes(1000))
    return [
        ("zip bomb (512 MiB member)", 10.0, lambda: open_source(bomb).read(0)),
        ("zip header understating the size", 10.0, lambda: ZipSource(liar).read(0)),
        ("npz array header of 3 TiB", 5.0, lambda: open_source(folder / "huge.npz")),
        ("IDX .gz header of 822 MB", 5.0, lambda: read_idx(folder / "bomb-idx3-ubyte.gz")),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ[MAX_ARRAY_BYTES_ENV] = "100M"  # as the IDX test sets it
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name, limit, call in cases(Path(tmp)):
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                try:
                    call()
                except InputError:
                    times.append(time.perf_counter() - started)
                else:
                    print(f"{name}: not refused", file=sys.stderr)
                    return 1
            best = min(times)
            ok = best < limit
            failed |= not ok
            print(f"{name:<36} {best:8.3f} s  (limit {limit:g} s){'' if ok else '  OVER THE LIMIT'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
