"""genbench.util.download against a real HTTP server on 127.0.0.1: every fault leaves nothing behind."""
from __future__ import annotations

import hashlib
import os

import pytest

from genbench.errors import ReferenceStatsError
from genbench.util import download as D
from tests.serving import Server

BODY = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def fetch(url, target, **kw):
    kw.setdefault("max_bytes", 1 << 30)
    kw.setdefault("timeout", 5.0)
    return D.download(url, target, error=ReferenceStatsError, what="test file", offline="OFFLINE-ROUTE", **kw)


def nothing_left(folder) -> bool:
    return not folder.exists() or not any(folder.rglob("*"))


def test_mirror_maps_host_and_path(monkeypatch):
    monkeypatch.delenv(D.MIRROR_ENV, raising=False)
    assert D.mirrored("https://www.cs.cmu.edu/~clean-fid/stats/a.npz") == "https://www.cs.cmu.edu/~clean-fid/stats/a.npz"
    monkeypatch.setenv(D.MIRROR_ENV, "http://127.0.0.1:9/m/")
    assert D.mirrored("https://www.cs.cmu.edu/~clean-fid/stats/a.npz") == "http://127.0.0.1:9/m/www.cs.cmu.edu/~clean-fid/stats/a.npz"
    assert D.mirrored("http://bioinf.jku.at/research/x.npz?v=1") == "http://127.0.0.1:9/m/bioinf.jku.at/research/x.npz?v=1"


def test_download_through_the_mirror_checks_sha256(server, tmp_path, monkeypatch):
    server.files["/example.org/data/f.bin"] = BODY
    monkeypatch.setenv(D.MIRROR_ENV, server.base)
    target = tmp_path / "store" / "f.bin"
    seen = []
    assert fetch("https://example.org/data/f.bin", target, sha256=SHA, on_bytes=seen.append) == SHA
    assert target.read_bytes() == BODY and sum(seen) == len(BODY)
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # no partial folder left
    assert server.requests == ["/example.org/data/f.bin"]


@pytest.mark.parametrize("fault, needle", [
    (("status", 404), "HTTP 404"),
    (("status", 503), "HTTP 503"),
    (("truncate", 1000), "truncated"),
])
def test_faults_leave_nothing_and_a_rerun_works(server, tmp_path, fault, needle):
    server.files["/f.bin"] = BODY
    server.faults["/f.bin"] = fault
    url = f"{server.base}/f.bin"
    store = tmp_path / "store"
    with pytest.raises(ReferenceStatsError) as info:
        fetch(url, store / "f.bin", sha256=SHA)
    text = str(info.value)
    assert needle in text and url in text and "OFFLINE-ROUTE" in text and "nothing was saved" in text
    assert nothing_left(store)
    del server.faults["/f.bin"]
    assert fetch(url, store / "f.bin", sha256=SHA) == SHA


def test_wrong_bytes_are_refused(server, tmp_path):
    server.files["/f.bin"] = BODY[:-1] + b"x"
    with pytest.raises(ReferenceStatsError, match=f"has sha256 [0-9a-f]{{64}}, expected {SHA}"):
        fetch(f"{server.base}/f.bin", tmp_path / "store" / "f.bin", sha256=SHA)
    assert nothing_left(tmp_path / "store")


def test_a_stalling_server_times_out(server, tmp_path):
    server.files["/f.bin"] = BODY
    server.faults["/f.bin"] = ("stall", 4096)
    with pytest.raises(ReferenceStatsError, match="timed out"):
        fetch(f"{server.base}/f.bin", tmp_path / "store" / "f.bin", timeout=0.5)
    assert nothing_left(tmp_path / "store")


def test_size_bound_by_header_and_by_body(server, tmp_path):
    server.files["/f.bin"] = BODY
    with pytest.raises(ReferenceStatsError, match="announces 1048576 bytes, more than the 1000"):
        fetch(f"{server.base}/f.bin", tmp_path / "s" / "f.bin", max_bytes=1000)
    assert nothing_left(tmp_path / "s")


def test_an_interrupt_mid_download_leaves_nothing(server, tmp_path):
    server.files["/f.bin"] = BODY * 4

    def interrupt(k):
        raise KeyboardInterrupt

    store = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        fetch(f"{server.base}/f.bin", store / "f.bin", on_bytes=interrupt)
    assert nothing_left(store)
    assert fetch(f"{server.base}/f.bin", store / "f.bin") == hashlib.sha256(BODY * 4).hexdigest()


def test_partials_of_dead_processes_are_cleaned(server, tmp_path):
    server.files["/f.bin"] = BODY
    partial = tmp_path / "store" / D.PARTIAL_DIR
    partial.mkdir(parents=True)
    host = D._partial_prefix("f.bin").split(".")[2]
    dead = partial / f"f.bin.{host}.999999999.abc"  # no such process
    live = partial / f"f.bin.{host}.{os.getpid()}.def"  # this process: kept (a concurrent download)
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    fetch(f"{server.base}/f.bin", tmp_path / "store" / "f.bin")
    assert not dead.exists() and live.exists()


def test_unsupported_scheme(tmp_path):
    with pytest.raises(ReferenceStatsError, match="only http://, https:// and file://"):
        fetch("ftp://example.org/f.bin", tmp_path / "f.bin")
