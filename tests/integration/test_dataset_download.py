"""CIFAR-10/100 and STL-10 binary archives downloaded through the one downloader from a local mirror.

The served archives are synthetic, written here in the exact layout of the published ones (top-level folder,
file names, record layout), with a handful of images; nothing is written under a real name outside tmp folders.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.parse

import numpy as np
import pytest

from genbench.errors import InputError
from genbench.sources import datasets
from genbench.sources.archives import extract_tar
from genbench.sources.datasets import _ARCHIVES, open_dataset
from tests.serving import Server


def _tar_gz(members: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folders = sorted({name.split("/")[0] for name in members})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buf.getvalue()


def _cifar10_archive(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records: one label byte, then the red, green and blue planes of a 32 x 32 image, row by row."""
    def records(lo: int, hi: int) -> bytes:
        out = bytearray()
        for img, lab in zip(images[lo:hi], labels[lo:hi]):
            out.append(int(lab))
            out += np.ascontiguousarray(img.transpose(2, 0, 1)).tobytes()
        return bytes(out)
    members = {f"cifar-10-batches-bin/data_batch_{i}.bin": records(i - 1, i) for i in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = records(5, 7)
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\n"
    return _tar_gz(members)


def _stl10_archive(images: np.ndarray, labels: np.ndarray) -> bytes:
    """``*_X.bin``: 3 x 96 x 96 per image, column-major (channel, column, row); ``*_y.bin``: labels 1..10."""
    x = np.ascontiguousarray(images.transpose(0, 3, 2, 1)).tobytes()
    return _tar_gz({"stl10_binary/test_X.bin": x, "stl10_binary/test_y.bin": bytes(int(v) + 1 for v in labels),
                    "stl10_binary/class_names.txt": b"airplane\n"})


def _path(name: str) -> str:
    parts = urllib.parse.urlsplit(_ARCHIVES[name][0])
    return f"/{parts.netloc}{parts.path}"


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    server = Server()
    monkeypatch.setenv("GENBENCH_DOWNLOAD_MIRROR", server.base)
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    datasets.clear_cache()
    yield server
    server.stop()
    datasets.clear_cache()


def test_cifar10_binary_downloads_unpacks_and_records_its_sha256(mirror, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 7)
    body = _cifar10_archive(images, labels)
    mirror.files[_path("cifar10")] = body
    train = open_dataset("cifar10:train")
    np.testing.assert_array_equal(train.read_batch(0, 5), images[:5].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(train.labels(), labels[:5])
    cache = tmp_path / "cache" / "data"
    assert (cache / "cifar-10-binary.tar.gz.sha256").read_text().strip() == hashlib.sha256(body).hexdigest()
    assert not any((cache / ".partial").iterdir())
    test = open_dataset("cifar10:test")  # already unpacked: no second request
    np.testing.assert_array_equal(test.read_batch(0, 2), images[5:].transpose(0, 3, 1, 2))
    assert mirror.requests == [_path("cifar10")]


def test_a_later_download_must_match_the_recorded_sha256(mirror, tmp_path):
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 7)
    mirror.files[_path("cifar10")] = _cifar10_archive(images, labels)
    open_dataset("cifar10:train")
    cache = tmp_path / "cache" / "data"
    for path in sorted((cache / "cifar-10-batches-bin").iterdir()):
        path.unlink()
    (cache / "cifar-10-batches-bin").rmdir()
    (cache / "cifar-10-binary.tar.gz").unlink()
    mirror.files[_path("cifar10")] = _cifar10_archive(images[::-1].copy(), labels)  # other bytes, same name
    datasets.clear_cache()
    with pytest.raises(InputError, match="sha256"):
        open_dataset("cifar10:train")
    assert not (cache / "cifar-10-batches-bin").exists() and not (cache / "cifar-10-binary.tar.gz").exists()


def test_stl10_binary_downloads_through_the_mirror(mirror):
    rng = np.random.default_rng(2)
    images, labels = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8), rng.integers(0, 10, 3)
    mirror.files[_path("stl10")] = _stl10_archive(images, labels)
    test = open_dataset("stl10:test")
    np.testing.assert_array_equal(test.read_batch(0, 3), images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(test.labels(), labels)


def test_a_missing_archive_names_the_url_and_how_to_get_the_data(mirror):
    with pytest.raises(InputError, match=r"cifar-100-binary\.tar\.gz.*HTTP 404.*binary version"):
        open_dataset("cifar100:test")


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize("bad", ["../evil.bin", "/tmp/evil.bin", "other/evil.bin", "stl10_binary/../../evil.bin"])
def test_members_outside_the_top_folder_are_refused(tmp_path, bad):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_gz({"stl10_binary/test_y.bin": b"\x01", bad: b"evil"}))
    with pytest.raises(InputError, match="not under stl10_binary/"):
        extract_tar(archive, tmp_path / "out", top="stl10_binary", max_bytes=1000)
    assert not (tmp_path / "evil.bin").exists() and not (tmp_path / "out" / "evil.bin").exists()


def test_links_and_oversized_archives_are_refused(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_gz({"stl10_binary/test_y.bin": b"\x01"}, [_link("stl10_binary/x", "/etc/passwd")]))
    with pytest.raises(InputError, match="links and devices are refused"):
        extract_tar(archive, tmp_path / "out", top="stl10_binary", max_bytes=1000)
    archive.write_bytes(_tar_gz({"stl10_binary/test_X.bin": bytes(5000)}))
    with pytest.raises(InputError, match="more than 1000 bytes"):
        extract_tar(archive, tmp_path / "out2", top="stl10_binary", max_bytes=1000)
    archive.write_bytes(b"not a tar")
    with pytest.raises(InputError, match="cannot unpack"):
        extract_tar(archive, tmp_path / "out3", top="stl10_binary", max_bytes=1000)
