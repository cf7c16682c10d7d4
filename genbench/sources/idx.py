"""Readers for the IDX format used by MNIST and Fashion-MNIST (optionally gzipped).

The header is read first; the payload size it declares (shape x item size) is checked against
:func:`genbench.sources.limits.max_array_bytes` (default 4 GiB, ``$GENBENCH_MAX_ARRAY_BYTES``) before
anything else is read, and then exactly that many bytes (plus one, to detect trailing data) are read, so a
small ``.gz`` cannot inflate past the limit. A corrupt gzip stream is InputError, never zlib.error.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .limits import array_too_large, max_array_bytes

_DTYPES: dict[int, type[np.generic] | np.dtype[Any]] = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array of its declared shape.

    Raises InputError naming the file when the header or size is wrong, the data is corrupt, or the
    declared payload exceeds ``max_bytes`` (None: ``$GENBENCH_MAX_ARRAY_BYTES``, else 4 GiB).
    """
    path = Path(path)
    limit = max_array_bytes(max_bytes)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
                raise InputError(f"{path}: not an IDX file (bad magic number)")
            dtype = np.dtype(_DTYPES[magic[2]])
            ndim = magic[3]
            dims = fh.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise InputError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims[4 * i : 4 + 4 * i], "big") for i in range(ndim))
            expected = math.prod(shape) * dtype.itemsize
            if expected > limit:
                raise array_too_large(str(path), expected, limit)
            data = fh.read(expected + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: cannot read IDX file, corrupt or truncated ({exc or type(exc).__name__})") from None
    if len(data) != expected:
        got = f"{len(data)} bytes" if len(data) < expected else "more bytes"
        raise InputError(f"{path}: IDX payload has {got}, expected {expected} for shape {shape}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
