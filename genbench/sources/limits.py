"""Size limits on what a source decompresses or loads into memory, so a small hostile file cannot exhaust it.

Two limits, each a module constant, raisable by an environment variable or a parameter of the source
(the parameter wins; ``None`` means "environment variable, else default"):

* :data:`DEFAULT_MAX_MEMBER_BYTES` (64 MiB), ``GENBENCH_MAX_MEMBER_BYTES``: the largest uncompressed size of
  one image member of a ``.zip`` or ``.tar[.gz|.bz2|.xz]`` archive. The size the archive header declares is
  checked before anything is read, and the read itself is bounded (blocks of 1 MiB, at most limit + 1
  bytes in all), since a header can lie.
* :data:`DEFAULT_MAX_ARRAY_BYTES` (4 GiB), ``GENBENCH_MAX_ARRAY_BYTES``: the largest array loaded whole into
  memory: an array of a ``.npz`` file (a zip member cannot be memory-mapped) and a data set's IDX file
  (``.gz`` or plain). The size declared by the array header (shape x item size) is checked before the array
  is allocated; reading then stops at that size. A ``.npy`` file is memory-mapped, never loaded whole, so
  this limit does not apply to it; its declared size must instead fit in the file.

Values are byte counts: a plain integer (``67108864``) or one with a binary suffix ``K``, ``M``, ``G``, ``T``
(optionally followed by ``iB`` or ``B``: ``64M``, ``64MiB``, ``1G``). A value that is not one raises
ConfigError naming the variable. Pillow's own decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``)
bounds the decoded size of one image; see :func:`genbench.sources.convert.decode_image`.
"""

from __future__ import annotations

import os
import re
from typing import IO

from ..errors import ConfigError, InputError

#: Largest uncompressed image member of an archive, in bytes (a 4096 x 4096 RGBA BMP is 64 MiB).
DEFAULT_MAX_MEMBER_BYTES = 64 << 20
#: Environment variable that raises (or lowers) :data:`DEFAULT_MAX_MEMBER_BYTES`.
MAX_MEMBER_BYTES_ENV = "GENBENCH_MAX_MEMBER_BYTES"
#: Largest array loaded whole into memory (``.npz`` arrays, IDX files), in bytes.
DEFAULT_MAX_ARRAY_BYTES = 4 << 30
#: Environment variable that raises (or lowers) :data:`DEFAULT_MAX_ARRAY_BYTES`.
MAX_ARRAY_BYTES_ENV = "GENBENCH_MAX_ARRAY_BYTES"

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_BYTES = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_bytes(text: str, what: str) -> int:
    """A byte count from ``text`` (``"67108864"``, ``"64M"``, ``"1GiB"``); ConfigError naming ``what`` otherwise."""
    match = _BYTES.match(text)
    value = int(match.group(1)) * _UNITS[match.group(2).upper()] if match else 0
    if value < 1:
        raise ConfigError(f"{what}={text!r}: expected a positive byte count such as 67108864, 64M or 1G")
    return value


def _resolve(value: int | None, env: str, default: int, what: str) -> int:
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{what} must be a positive number of bytes, got {value!r}")
        return value
    text = os.environ.get(env, "")
    return parse_bytes(text, env) if text.strip() else default


def max_member_bytes(value: int | None = None) -> int:
    """``value``, else ``$GENBENCH_MAX_MEMBER_BYTES``, else :data:`DEFAULT_MAX_MEMBER_BYTES`."""
    return _resolve(value, MAX_MEMBER_BYTES_ENV, DEFAULT_MAX_MEMBER_BYTES, "max_member_bytes")


def max_array_bytes(value: int | None = None) -> int:
    """``value``, else ``$GENBENCH_MAX_ARRAY_BYTES``, else :data:`DEFAULT_MAX_ARRAY_BYTES`."""
    return _resolve(value, MAX_ARRAY_BYTES_ENV, DEFAULT_MAX_ARRAY_BYTES, "max_array_bytes")


def member_too_large(name: str, size: int, limit: int, declared: bool) -> InputError:
    """The InputError for an archive member over the member limit (``declared``: said so by its header)."""
    how = f"its header declares {size} bytes uncompressed" if declared else f"it inflates to more than {size} bytes"
    return InputError(
        f"{name}: archive member too large ({how}; the limit is {limit} bytes per image member). "
        f"If the archive is trusted, raise the limit with {MAX_MEMBER_BYTES_ENV}=BYTES (e.g. 256M)"
    )


def array_too_large(name: str, size: int, limit: int) -> InputError:
    """The InputError for an array whose header declares more bytes than the array limit."""
    return InputError(
        f"{name}: array header declares {size} bytes, over the limit of {limit} bytes for an array loaded "
        f"into memory. If the file is trusted, raise the limit with {MAX_ARRAY_BYTES_ENV}=BYTES (e.g. 16G), "
        "or save the images as a .npy file (memory-mapped, not loaded whole)"
    )


def read_bounded(fh: IO[bytes], limit: int, name: str, chunk: int = 1 << 20) -> bytes:
    """All of ``fh`` if it holds at most ``limit`` bytes, else InputError naming ``name``.

    Reads in blocks of ``chunk`` bytes and never more than ``limit + 1`` bytes in all, so a decompressing
    reader (a zip member) never inflates more than one block past what was kept.
    """
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        block = fh.read(min(chunk, limit + 1 - total))
        if not block:
            break
        parts.append(block)
        total += len(block)
    if total > limit:
        raise member_too_large(name, limit, limit, declared=False)
    return b"".join(parts)
