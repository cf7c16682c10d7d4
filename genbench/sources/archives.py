"""Data-set archives fetched through genbench's one downloader and unpacked safely.

:func:`fetch_and_extract` downloads a ``.tar.gz`` (:func:`genbench.util.download.download`: mirror
``$GENBENCH_DOWNLOAD_MIRROR``, size bound, atomic) into a cache folder and unpacks the one top-level folder it
must hold:

- **sha256**: checked against the published digest when there is one, else against the digest recorded at the
  first download (``<archive>.sha256`` next to the archive), else recorded there;
- **bounded extraction** (:func:`extract_tar`): only regular files and folders under the expected top-level
  folder, no absolute names, no ``..``, no links or devices, at most ``max_members`` members and
  ``max_bytes`` bytes unpacked in all (counted as they are written, not as the header claims);
- **atomic**: the folder is unpacked into ``<cache>/.partial/`` and renamed into place in one step, so a
  failed or interrupted extraction leaves no half folder where the reader looks.
"""
from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..util.atomic import write_text_atomic
from ..util.download import PARTIAL_DIR, download

_CHUNK = 1 << 20


def extract_tar(archive: Path, dest: Path, *, top: str, max_bytes: int, max_members: int = 10_000) -> None:
    """Unpack ``archive`` (any compression tarfile reads) into ``dest``, whose members must all lie under ``top/``.

    Raises InputError naming the archive and the member for: a member outside ``top/`` (absolute, ``..``,
    another folder), a member that is neither a regular file nor a folder, more than ``max_members`` members,
    more than ``max_bytes`` bytes unpacked, an unreadable or corrupt archive. ``dest`` may then hold part of
    the archive: unpack into a scratch folder.
    """
    total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise InputError(f"{archive}: more than {max_members} members; not a data-set archive")
                parts = PurePosixPath(member.name).parts
                if (not parts or PurePosixPath(member.name).is_absolute() or ".." in parts or parts[0] != top
                        or any(p in ("", ".") for p in parts) or "\\" in member.name):
                    raise InputError(f"{archive}: member {member.name!r} is not under {top}/; refusing to unpack")
                path = dest.joinpath(*parts)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise InputError(f"{archive}: member {member.name!r} is not a regular file or folder "
                                     "(links and devices are refused)")
                path.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise InputError(f"{archive}: member {member.name!r} cannot be read")
                with source, open(path, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        total += len(chunk)
                        if total > max_bytes:
                            raise InputError(f"{archive}: unpacks to more than {max_bytes} bytes; refusing")
                        out.write(chunk)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"{archive}: cannot unpack ({type(exc).__name__}: {exc})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_and_extract(
    url: str,
    cache: Path,
    *,
    top: str,
    what: str,
    offline: str,
    max_download: int,
    max_unpacked: int,
    sha256: str | None = None,
) -> Path:
    """Make ``cache/top/`` hold the unpacked archive at ``url``; returns that folder.

    The archive is kept as ``cache/<its file name>`` (a later call unpacks it again without downloading);
    its sha256 is ``sha256`` when published, else the one recorded in ``cache/<name>.sha256`` at the first
    download. Raises InputError for any download failure (see :func:`genbench.util.download.download`), a
    digest mismatch, or an archive :func:`extract_tar` refuses; the folder is then left as it was.
    """
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / PurePosixPath(url).name
    record = cache / f"{archive.name}.sha256"
    expected = sha256 or (record.read_text().strip() if record.is_file() else None)
    if archive.is_file():
        actual = _sha256(archive)
        if expected is not None and actual != expected:
            raise InputError(f"{what}: {archive} has sha256 {actual}, expected {expected}; delete it to download "
                             f"again. {offline}")
    else:
        actual = download(url, archive, error=InputError, what=what, offline=offline, sha256=expected,
                          max_bytes=max_download)
    if expected is None:
        write_text_atomic(record, actual + "\n")
    target = cache / top
    if target.is_dir():
        return target
    partial = cache / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{top}.", dir=partial))
    try:
        extract_tar(archive, scratch, top=top, max_bytes=max_unpacked)
        if not (scratch / top).is_dir():
            raise InputError(f"{what}: {archive} holds no {top}/ folder")
        (scratch / top).rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
