"""File fingerprints for the feature cache: what makes a cached extraction stale.

Rules (see also :mod:`genbench.extraction.cache`):

* :func:`file_digest` is the sha256 of a file's whole content, memoised within the process on
  (resolved path, size, mtime_ns, inode, ctime_ns): computed once per process, again whenever the file is
  rewritten. ctime cannot be set back by a user (``os.utime`` sets it to now), so a rewrite that restores
  size and mtime is still noticed. File times have a coarse granularity (a kernel clock tick), so, as git
  does for its index, a digest is only remembered once the file's ctime is more than :data:`RACY_NS`
  (1 s) old: a file changed within that window is hashed again on every call.
* :func:`file_fingerprint` is what a single-file source (archive, ``.npy``/``.npz``) puts in its key: the
  content digest for a file of at most :data:`FULL_HASH_MAX_BYTES` (256 MiB; a few tenths of a second to
  hash, once per process); for a larger file, its size, mtime_ns and inode plus the sha256 of its first
  and last :data:`EDGE_BYTES` (1 MiB), so that a rewrite of a big file that restores size, mtime and inode
  and changes only its middle is not noticed (as make and rsync).
* Folders of images are keyed by every image's (relative path, size, mtime_ns, inode), without reading
  them (see :class:`genbench.sources.folder.FolderSource`).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ..errors import InputError

#: Single files up to this size are keyed by a hash of their whole content.
FULL_HASH_MAX_BYTES = 256 << 20
#: Larger files: bytes hashed at each end, on top of size, mtime_ns and inode.
EDGE_BYTES = 1 << 20
_BLOCK = 1 << 20
#: A digest is memoised only for a file whose ctime is older than this (nanoseconds): see the module docstring.
RACY_NS = 1_000_000_000

_digests: dict[tuple, str] = {}
_MEMO_MAX = 256


def _stamp(path: Path) -> tuple[str, int, int, int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot stat ({exc.strerror or exc})") from None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _hash(path: Path, edges: bool, size: int) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            if edges:
                h.update(fh.read(EDGE_BYTES))
                fh.seek(max(size - EDGE_BYTES, 0))
                h.update(fh.read(EDGE_BYTES))
            else:
                while block := fh.read(_BLOCK):
                    h.update(block)
    except OSError as exc:
        raise InputError(f"{path}: cannot read to fingerprint it ({exc.strerror or exc})") from None
    return h.hexdigest()


def _memoised(path: Path, edges: bool) -> tuple[tuple, str]:
    before = _stamp(path)
    key = (*before, edges)
    digest = _digests.get(key)
    if digest is None:
        digest = _hash(path, edges, before[1])
        settled = time.time_ns() - before[4] > RACY_NS
        if settled and _stamp(path) == before:  # not changed recently nor while hashing: safe to remember
            if len(_digests) >= _MEMO_MAX:
                _digests.clear()
            _digests[key] = digest
    return before, digest


def file_digest(path: str | os.PathLike) -> str:
    """Hex sha256 of the whole file (memoised; see the module docstring). InputError if unreadable."""
    return _memoised(Path(path), edges=False)[1]


def file_fingerprint(path: str | os.PathLike) -> str:
    """``sha256:<content digest>`` up to :data:`FULL_HASH_MAX_BYTES`, else
    ``stat:<size>:<mtime_ns>:<inode>:edges:<digest of first and last MiB>``."""
    path = Path(path)
    if _stamp(path)[1] <= FULL_HASH_MAX_BYTES:
        return f"sha256:{file_digest(path)}"
    stamp, digest = _memoised(path, edges=True)
    return f"stat:{stamp[1]}:{stamp[2]}:{stamp[3]}:edges:{digest}"


def clear_memo() -> None:
    """Forget memoised digests (tests)."""
    _digests.clear()
