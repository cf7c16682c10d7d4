"""Weights resolution: explicit path, environment, cache, download (served from a file:// URL), refusals."""
from __future__ import annotations

import dataclasses
import hashlib
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from genbench.errors import WeightsError
from genbench.features import weights as W

PAYLOAD = b"not really inception weights\n" * 1000


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENBENCH_TEST_WEIGHTS", raising=False)
    monkeypatch.delenv("GENBENCH_INCEPTION_WEIGHTS", raising=False)


@pytest.fixture
def served(tmp_path) -> tuple[W.WeightsSpec, Path]:
    """A spec whose URL is a local file:// URL with the right sha256."""
    source = tmp_path / "server" / "w.pth"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    spec = W.WeightsSpec(
        name="test-net", url=source.as_uri(), sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        filename="w-1234.pth", env_var="GENBENCH_TEST_WEIGHTS",
    )
    return spec, source


def _offline(monkeypatch) -> list[str]:
    calls: list[str] = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def test_canonical_spec_is_pytorch_fids_file():
    spec = W.INCEPTION_V3_WEIGHTS
    assert spec.url == ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                        "pt_inception-2015-12-05-6726825d.pth")
    assert spec.url.endswith("/" + spec.filename)
    assert len(spec.sha256) == 64 and spec.sha256.startswith("6726825d")  # torch.hub's file-name convention
    assert spec.env_var == "GENBENCH_INCEPTION_WEIGHTS"


def test_cache_root_follows_environment(tmp_path, monkeypatch):
    assert W.cache_root() == tmp_path / "cache"
    monkeypatch.delenv("GENBENCH_CACHE")
    assert W.cache_root() == Path.home() / ".cache" / "genbench"


def test_sha256_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD * 300)  # several read chunks
    assert W.sha256_file(path) == hashlib.sha256(PAYLOAD * 300).hexdigest()


def test_download_then_cache_hit(served, monkeypatch):
    spec, _ = served
    first = W.resolve_weights(spec)
    assert first.origin == "download" and first.verified and first.sha256 == spec.sha256
    assert first.path == W.cache_root() / "weights" / spec.filename
    assert first.path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in first.path.parent.iterdir()) == [spec.filename]  # no temporary left
    calls = _offline(monkeypatch)
    second = W.resolve_weights(spec)
    assert second.origin == "cache" and second.path == first.path and calls == []


def test_download_with_wrong_hash_caches_nothing(served):
    spec, _ = served
    bad = dataclasses.replace(spec, sha256="0" * 64)
    with pytest.raises(WeightsError, match="has sha256 .* expected 0{64}.*nothing was saved"):
        W.resolve_weights(bad)
    folder = W.cache_root() / "weights"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_offline_message_says_how_to_provide_the_file(monkeypatch):
    calls = _offline(monkeypatch)
    spec = W.INCEPTION_V3_WEIGHTS
    with pytest.raises(WeightsError) as info:
        W.resolve_weights(spec)
    message = str(info.value)
    assert calls == [spec.url]
    for needed in (spec.url, spec.sha256, "--weights", "weights=PATH", "GENBENCH_INCEPTION_WEIGHTS",
                   str(W.cache_root() / "weights" / spec.filename), "network is unreachable"):
        assert needed in message


def test_downloads_off(served):
    spec, _ = served
    with pytest.raises(WeightsError, match="downloads are off.*GENBENCH_TEST_WEIGHTS"):
        W.resolve_weights(spec, allow_download=False)


def test_explicit_path_is_hash_checked(served, tmp_path):
    spec, source = served
    good = W.resolve_weights(spec, source)
    assert (good.origin, good.verified, good.path) == ("argument", True, source)

    other = tmp_path / "other.pth"
    other.write_bytes(PAYLOAD + b"x")
    actual = hashlib.sha256(PAYLOAD + b"x").hexdigest()
    with pytest.raises(WeightsError, match=f"other.pth \\(argument\\) has sha256 {actual}, expected {spec.sha256}"):
        W.resolve_weights(spec, other)
    allowed = W.resolve_weights(spec, other, allow_unverified=True)
    assert (allowed.verified, allowed.sha256) == (False, actual)


def test_environment_variable_and_missing_file(served, tmp_path, monkeypatch):
    spec, source = served
    monkeypatch.setenv(spec.env_var, str(source))
    assert W.resolve_weights(spec).origin == f"environment {spec.env_var}"
    monkeypatch.setenv(spec.env_var, str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsError, match="absent.pth .*is not a file.*--weights"):
        W.resolve_weights(spec)


def test_tampered_cache_is_refused(served):
    spec, _ = served
    cached = W.cache_root() / "weights" / spec.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated")
    with pytest.raises(WeightsError, match="cached file .* delete it"):
        W.resolve_weights(spec)


def test_load_state_dict_accepts_tensors_only(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"a.weight": torch.ones(2), "b.bias": torch.zeros(1)}, good)
    loaded = W.load_state_dict(good)
    assert set(loaded) == {"a.weight", "b.bias"} and torch.equal(loaded["a.weight"], torch.ones(2))

    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}}, wrapped)
    assert set(W.load_state_dict(wrapped)) == {"w"}

    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.ones(1)], not_a_dict)
    with pytest.raises(WeightsError, match="not a state dict of tensors"):
        W.load_state_dict(not_a_dict)

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a zip")
    with pytest.raises(WeightsError, match="garbage.pth"):
        W.load_state_dict(garbage)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_load_state_dict_refuses_pickled_code(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as handle:
        pickle.dump({"w": _Payload()}, handle, protocol=2)
    with pytest.raises(WeightsError, match="evil.pth"):
        W.load_state_dict(evil)
    evil_zip = tmp_path / "evil_zip.pth"
    torch.save({"w": _Payload()}, evil_zip)
    with pytest.raises(WeightsError, match="evil_zip.pth"):
        W.load_state_dict(evil_zip)
    assert "code ran" not in capsys.readouterr().out


def test_build_inception_offline_without_weights(monkeypatch):
    from genbench.features.inception import build_inception

    _offline(monkeypatch)
    with pytest.raises(WeightsError, match="GENBENCH_INCEPTION_WEIGHTS"):
        build_inception()


def test_weights_download_through_the_mirror_and_its_faults(monkeypatch):
    """The weights go through genbench's one downloader: GENBENCH_DOWNLOAD_MIRROR, HTTP status, atomic cache."""
    from tests.serving import Server

    server = Server()
    try:
        spec = W.WeightsSpec(name="test-net", url="https://weights.example.org/nets/w-1234.pth",
                             sha256=hashlib.sha256(PAYLOAD).hexdigest(), filename="w-1234.pth",
                             env_var="GENBENCH_TEST_WEIGHTS")
        monkeypatch.setenv("GENBENCH_DOWNLOAD_MIRROR", server.base)
        with pytest.raises(WeightsError, match=r"HTTP 404.*weights.example.org/nets/w-1234.pth.*--weights PATH"):
            W.resolve_weights(spec)
        assert not (W.cache_root() / "weights" / spec.filename).exists()
        server.files["/weights.example.org/nets/w-1234.pth"] = PAYLOAD
        got = W.resolve_weights(spec)
        assert got.origin == "download" and got.verified and got.path.read_bytes() == PAYLOAD
        assert server.requests == ["/weights.example.org/nets/w-1234.pth"] * 2
    finally:
        server.stop()
