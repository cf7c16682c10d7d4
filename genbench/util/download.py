"""The one downloader: model weights and published reference statistics alike.

:func:`download` streams a URL into a file and either leaves the complete, checked file at the target or
leaves the target as it was:

- **canonical URL, or a mirror**: ``$GENBENCH_DOWNLOAD_MIRROR=BASE`` sends ``https://HOST/PATH`` (or
  ``http://``) to ``BASE/HOST/PATH`` (:func:`mirrored`), for air-gapped mirrors and the tests; BASE may be
  ``http(s)://`` or ``file://`` (a mirror on a mounted disk);
- **timeouts**: ``timeout`` seconds to connect and for each read (a server that stalls fails after that);
- **a size bound**: a ``Content-Length`` over ``max_bytes`` is refused before the body is read, and the read
  stops once more than ``max_bytes`` arrived;
- **complete bodies only**: fewer bytes than ``Content-Length`` promised is a truncated download;
- **sha256**: checked when one is expected; the actual digest is returned either way;
- **atomic**: the body goes to ``<target folder>/.partial/<name>.<random>``, then one rename puts it at the
  target; on any error, interrupt included, the partial file is removed. A partial left by a killed process
  is removed by the next download of the same file (its name says which process wrote it: once that process is
  gone, or after :data:`STALE_SECONDS` without a write).

Every failure raises the caller's error class (a :class:`~genbench.errors.GenbenchError`: exit 2 at the CLI)
with a message naming the URL, the HTTP status where there is one, and ``offline``: how to supply the file
without a network.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import GenbenchError

MIRROR_ENV = "GENBENCH_DOWNLOAD_MIRROR"
#: Seconds to connect and for each read.
DEFAULT_TIMEOUT = 60.0
#: A partial file untouched this long (seconds) belongs to a dead download.
STALE_SECONDS = 600.0
PARTIAL_DIR = ".partial"
_CHUNK = 1 << 20


def mirrored(url: str) -> str:
    """``url`` as it is fetched: under ``$GENBENCH_DOWNLOAD_MIRROR`` (``BASE/HOST/PATH``) when that is set."""
    base = os.environ.get(MIRROR_ENV, "").strip()
    if not base:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{base.rstrip('/')}/{parts.netloc}{path if path.startswith('/') else '/' + path}"


def _partial_prefix(name: str) -> str:
    """``NAME.HOST.PID.``: whose download a partial file is (so a later one can tell a dead writer)."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:64] or "host"
    return f"{name}.{host}.{os.getpid()}."


def _writer_alive(prefix_parts: list[str]) -> bool:
    """Whether the process named by a partial file's HOST.PID still runs (True when it cannot be told)."""
    host, pid = prefix_parts
    if host != _partial_prefix("x").split(".")[1] or not pid.isdigit():
        return True  # another machine's download: only its age can say it is dead
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_stale(partial_dir: Path, name: str) -> None:
    """Remove partial files of ``name`` whose download died: its process (on this machine) is gone, or nothing
    touched the file for :data:`STALE_SECONDS`."""
    if not partial_dir.is_dir():
        return
    now = time.time()
    for old in partial_dir.glob(f"{name}.*"):
        parts = old.name[len(name) + 1:].split(".")
        try:
            if (len(parts) >= 3 and not _writer_alive(parts[:2])) or now - old.stat().st_mtime > STALE_SECONDS:
                old.unlink()
        except OSError:
            pass


def _status_text(exc: urllib.error.HTTPError) -> str:
    return f"HTTP {exc.code} {exc.reason}".rstrip()


def download(
    url: str,
    target: str | os.PathLike,
    *,
    error: type[GenbenchError],
    what: str,
    offline: str,
    sha256: str | None = None,
    max_bytes: int,
    timeout: float = DEFAULT_TIMEOUT,
    on_bytes: Callable[[int], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
) -> str:
    """Fetch ``url`` (through the mirror, if set) to ``target``; returns the body's sha256 (hex).

    ``what``: how messages name the file ("inception-v3 weights", "reference clean-fid/..."); ``offline``: the
    sentence that says how to provide it without a network. ``sha256``: the digest the body must have (None:
    any, the caller records the returned one). ``on_start(total or None)`` is called once the response
    headers are in, ``on_bytes(k)`` after each chunk of ``k`` bytes (a progress bar).

    Raises ``error`` (never leaving anything at ``target`` or a partial file behind) for: an HTTP error status,
    a network error or timeout, a body over ``max_bytes``, a truncated body, a sha256 mismatch, a local write
    failure.
    """
    target = Path(target)
    source = mirrored(url)
    via = f" (mirror of {url})" if source != url else ""
    where = f"{source}{via}"
    if urllib.parse.urlsplit(source).scheme not in ("http", "https", "file"):
        raise error(f"{what}: cannot download {where}: only http://, https:// and file:// URLs are fetched. "
                    f"{offline}")
    partial_dir = target.parent / PARTIAL_DIR
    try:
        partial_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"{what}: cannot create {partial_dir} to download into ({exc}). {offline}") from None
    _clean_stale(partial_dir, target.name)
    fd, tmp_name = tempfile.mkstemp(prefix=_partial_prefix(target.name), dir=partial_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    received = 0
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source, timeout=timeout) as response:
                headers = getattr(response, "headers", None)
                header = headers.get("Content-Length") if headers is not None else None
                total = int(header) if header and header.isdigit() else None
                if total is not None and total > max_bytes:
                    raise error(f"{what}: {where} announces {total} bytes, more than the {max_bytes} bytes such a "
                                f"file may have; nothing was saved. {offline}")
                if on_start is not None:
                    on_start(total)
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > max_bytes:
                        raise error(f"{what}: {where} sent more than the {max_bytes} bytes such a file may have; "
                                    f"nothing was saved. {offline}")
                    digest.update(chunk)
                    out.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
                if total is not None and received < total:
                    raise error(f"{what}: download from {where} was truncated: {received} of {total} bytes "
                                f"arrived; nothing was saved. Run the command again. {offline}")
        except urllib.error.HTTPError as exc:
            raise error(f"{what}: download from {where} failed with {_status_text(exc)}; nothing was saved. "
                        f"{offline}") from None
        except http.client.IncompleteRead as exc:
            got = received + len(exc.partial)
            expected = f" of {received + exc.expected + len(exc.partial)}" if exc.expected is not None else ""
            raise error(f"{what}: download from {where} was truncated: {got}{expected} bytes arrived; nothing was "
                        f"saved. Run the command again. {offline}") from None
        except TimeoutError as exc:
            raise error(f"{what}: download from {where} timed out ({timeout:g} s without data, {received} bytes "
                        f"received: {exc}); nothing was saved. {offline}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            kind = "timed out" if isinstance(reason, TimeoutError) else "failed"
            raise error(f"{what}: download from {where} {kind} ({reason}); nothing was saved. {offline}") from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise error(f"{what}: download from {where} broke off after {received} bytes ({type(exc).__name__}: "
                        f"{exc}); nothing was saved. Run the command again. {offline}") from None
        except (OSError, ValueError) as exc:
            raise error(f"{what}: download from {where} failed after {received} bytes ({exc}); nothing was saved. "
                        f"{offline}") from None
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise error(f"{what}: the file downloaded from {where} has sha256 {actual}, expected {sha256}: these "
                        f"are not the published bytes; nothing was saved. {offline}")
        try:
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            raise error(f"{what}: cannot move the download into place at {target} ({exc}). {offline}") from None
        return actual
    finally:
        if tmp.exists():
            tmp.unlink()
        try:
            partial_dir.rmdir()  # only when empty: another download may be under way
        except OSError:
            pass
