"""Data set sources: tiny files written in the real on-disk formats, read back through open_dataset."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from genbench.errors import ConfigError, InputError
from genbench.sources import datasets
from genbench.sources.datasets import DATASETS, DEBIAN_FASHION_MNIST, load_dataset_arrays, open_dataset


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No user data folder, an empty cache, no downloads, a fresh decode cache."""
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    datasets.clear_cache()
    yield
    datasets.clear_cache()


# ----------------------------------------------------------------------------- writers in the real formats


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    """IDX: 2 zero bytes, type code 0x08 (ubyte), ndim, big-endian uint32 dims, then the raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def make_idx_split(folder: Path, split: str, n: int, seed: int, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return images, labels


class Py2StylePickler(pickle._Pickler):
    """Writes bytes as Python-2 ``str`` (BINSTRING), as cPickle did for the CIFAR batches."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int], label_key: bytes) -> None:
    """A CIFAR 'python version' batch: a protocol-2 pickle of a dict with py2-str keys, as numpy 1 wrote it."""
    obj = {
        b"batch_label": b"testing batch 1 of 1",
        label_key: labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(data))],
    }
    buffer = io.BytesIO()
    Py2StylePickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))


def make_cifar10(root: Path, rows: int = 2) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    out = {}
    for _k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=rows)]
        write_cifar_batch(folder / name, data, labels, b"labels")
        out[name] = (data, labels)
    return out


# ----------------------------------------------------------------------------- IDX data sets


def test_fashion_mnist_idx_gz_roundtrip(tmp_path):
    images, labels = make_idx_split(tmp_path, "train", 5, seed=0)
    src = open_dataset("fashion-mnist:train", data_dir=tmp_path)
    assert len(src) == 5 and src.has_labels
    assert src.kind == "dataset" and src.location == "fashion-mnist:train"
    assert src.key(3) == "fashion-mnist:train#3"
    np.testing.assert_array_equal(src.labels(), labels.astype(np.int64))
    assert src.labels().dtype == np.int64 and src.label(2) == int(labels[2])
    batch = src.read_batch(1, 4)
    assert batch.dtype == np.uint8 and batch.shape == (3, 3, 28, 28)
    for c in range(3):  # gray repeated to RGB
        np.testing.assert_array_equal(batch[:, c], images[1:4])
    np.testing.assert_array_equal(src.read(4), np.stack([images[4]] * 3))
    assert src.read_batch(3, 100).shape[0] == 2  # stop is clipped
    size = (tmp_path / "train-images-idx3-ubyte.gz").stat().st_size
    assert (
        src.fingerprint().startswith("fashion-mnist:train|")
        and f"train-images-idx3-ubyte.gz:{size}" in src.fingerprint()
    )
    assert src.info().to_dict() == {"kind": "dataset", "location": "fashion-mnist:train", "n": 5}
    with pytest.raises(IndexError):
        src.read(5)


def test_torchvision_layout_and_plain_files(tmp_path):
    images, labels = make_idx_split(tmp_path / "FashionMNIST" / "raw", "test", 3, seed=2, gz=False)
    x, y = load_dataset_arrays("fashion-mnist:test", data_dir=tmp_path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (3, 28, 28) and y.dtype == np.int64


def test_mnist_needs_its_own_folder(tmp_path):
    make_idx_split(tmp_path, "test", 3, seed=3)  # plain files in the root are Fashion-MNIST's
    with pytest.raises(InputError, match="mnist:test"):
        open_dataset("mnist:test", data_dir=tmp_path)
    images, _ = make_idx_split(tmp_path / "MNIST" / "raw", "test", 4, seed=4)
    src = open_dataset("mnist:test", data_dir=tmp_path)
    np.testing.assert_array_equal(src.read_batch(0, 4)[:, 0], images)


def test_lookup_order_data_dir_then_env(tmp_path, monkeypatch):
    make_idx_split(tmp_path / "a" / "mnist", "train", 2, seed=5)
    make_idx_split(tmp_path / "b" / "mnist", "train", 3, seed=6)
    monkeypatch.setenv("GENBENCH_DATA", str(tmp_path / "b"))
    assert len(open_dataset("mnist:train", data_dir=tmp_path / "a")) == 2
    assert len(open_dataset("mnist:train")) == 3
    assert len(open_dataset("mnist:train", data_dir=tmp_path / "nowhere")) == 3  # falls through


def test_arrays_are_cached_and_read_only(tmp_path, monkeypatch):
    make_idx_split(tmp_path / "mnist", "train", 2, seed=7)
    calls = []
    real = datasets.read_idx
    monkeypatch.setattr(datasets, "read_idx", lambda p: calls.append(p) or real(p))
    x1, _ = load_dataset_arrays("mnist:train", data_dir=tmp_path)
    x2 = open_dataset("mnist:train", data_dir=tmp_path)._images
    assert x1 is x2 and len(calls) == 2  # images + labels decoded once
    assert not x1.flags.writeable


def test_not_found_lists_places_and_remedies(tmp_path):
    with pytest.raises(InputError) as info:
        open_dataset("mnist:train", data_dir=tmp_path / "mine")
    message = str(info.value)
    assert str(tmp_path / "mine" / "mnist") in message and str(tmp_path / "cache") in message
    assert "GENBENCH_OFFLINE" in message and "--data-dir" in message and "GENBENCH_DATA" in message


def test_fashion_mnist_hint_names_debian_package():
    assert "apt-get install dataset-fashion-mnist" in DATASETS.get("fashion-mnist:train").how_to_get
    assert DEBIAN_FASHION_MNIST in DATASETS.get("fashion-mnist:test").system_dirs


def test_download_failure_is_fast_and_clear(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(datasets.socket, "create_connection", offline)
    with pytest.raises(InputError, match=r"Download: failed .*network unreachable \(test\)"):
        open_dataset("mnist:test", download=True)
    with pytest.raises(InputError, match=r"Download: failed .*network unreachable \(test\)"):
        open_dataset("cifar10:test", download=True)


def test_bad_idx_label_count(tmp_path):
    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(InputError, match="2 labels for 3 images"):
        open_dataset("mnist:test", data_dir=tmp_path)


def test_unknown_spec_lists_valid_ones():
    with pytest.raises(ConfigError, match="fashion-mnist:train"):
        open_dataset("fashion-mnist:val")
    assert set(DATASETS.names()) >= {  # other modules may register more (e.g. derived data sets)
        f"{d}:{s}" for d in ("fashion-mnist", "mnist", "cifar10", "cifar100") for s in ("train", "test")
    }


# ----------------------------------------------------------------------------- CIFAR pickles


def test_cifar10_roundtrip(tmp_path):
    batches = make_cifar10(tmp_path)
    src = open_dataset("cifar10:train", data_dir=tmp_path)
    assert len(src) == 10
    expected = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(10, 3, 32, 32)
    np.testing.assert_array_equal(src.read_batch(0, 10), expected)  # channel planes R, G, B in order
    np.testing.assert_array_equal(src.read(7), expected[7])
    np.testing.assert_array_equal(src.labels(), [v for i in range(1, 6) for v in batches[f"data_batch_{i}"][1]])
    x, y = load_dataset_arrays("cifar10:test", data_dir=tmp_path)
    assert x.shape == (2, 32, 32, 3) and y.dtype == np.int64
    np.testing.assert_array_equal(x[1, 0, 0], batches["test_batch"][0][1, [0, 1024, 2048]])
    assert y.tolist() == batches["test_batch"][1]


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.arange(3 * 3072, dtype=np.int64).astype(np.uint8).reshape(3, 3072)
    write_cifar_batch(folder / "test", data, [99, 0, 42], b"fine_labels")
    src = open_dataset("cifar100:test", data_dir=tmp_path)
    assert src.labels().tolist() == [99, 0, 42]
    np.testing.assert_array_equal(src.read(2), data[2].reshape(3, 32, 32))


def test_cifar_written_by_python3_also_reads(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.full((2, 3072), 7, np.uint8)
    with open(folder / "test", "wb") as fh:
        pickle.dump({"data": data, "fine_labels": [1, 2]}, fh, protocol=4)
    assert open_dataset("cifar100:test", data_dir=tmp_path).labels().tolist() == [1, 2]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_with_foreign_global_is_refused(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    marker = tmp_path / "pwned"
    with open(folder / "test", "wb") as fh:
        pickle.dump({"data": _Evil(marker), "fine_labels": [1]}, fh, protocol=2)
    with pytest.raises(InputError, match=r"refusing to load (posix|os|nt)\.system"):
        open_dataset("cifar100:test", data_dir=tmp_path)
    assert not marker.exists()


def test_cifar_bad_labels_rejected(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_cifar_batch(folder / "test", np.zeros((2, 3072), np.uint8), [1, 100], b"fine_labels")
    with pytest.raises(InputError, match=r"labels must lie in \[0, 100\)"):
        open_dataset("cifar100:test", data_dir=tmp_path)


# ----------------------------------------------------------------------------- the real Debian files


@pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(), reason="dataset-fashion-mnist not installed"
)
def test_real_debian_fashion_mnist():
    for split, n in (("train", 60000), ("test", 10000)):
        src = open_dataset(f"fashion-mnist:{split}")
        assert src.files[0].parent == DEBIAN_FASHION_MNIST
        assert len(src) == n
        assert np.bincount(src.labels(), minlength=10).tolist() == [n // 10] * 10
        assert src.read_batch(0, 2).shape == (2, 3, 28, 28)
