"""CIFAR-10/100 binary versions and STL-10 binary, read from tiny files written here in their published layouts."""
from __future__ import annotations

import numpy as np
import pytest

from genbench.errors import InputError
from genbench.sources import datasets
from genbench.sources.datasets import open_dataset


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("GENBENCH_OFFLINE", "1")
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENBENCH_DATA", raising=False)
    datasets.clear_cache()
    yield
    datasets.clear_cache()


def _rgb(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _cifar_records(images: np.ndarray, label_bytes: list[np.ndarray]) -> bytes:
    """Per image: the label bytes, then the red plane, the green plane and the blue plane, each row by row."""
    out = bytearray()
    for i, img in enumerate(images):
        out += bytes(int(lab[i]) for lab in label_bytes)
        for c in range(3):
            out += img[:, :, c].tobytes(order="C")
    return bytes(out)


def test_cifar10_binary_version(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    parts, labels = [], []
    for b in range(1, 6):
        imgs, labs = _rgb(2, 32, b), np.array([b % 10, (b + 3) % 10], dtype=np.uint8)
        (folder / f"data_batch_{b}.bin").write_bytes(_cifar_records(imgs, [labs]))
        parts.append(imgs)
        labels.append(labs)
    test_imgs, test_labs = _rgb(3, 32, 9), np.array([7, 0, 9], dtype=np.uint8)
    (folder / "test_batch.bin").write_bytes(_cifar_records(test_imgs, [test_labs]))
    train = open_dataset("cifar10:train", data_dir=tmp_path)
    assert len(train) == 10
    assert np.array_equal(train.read_batch(0, 10), np.concatenate(parts).transpose(0, 3, 1, 2))
    assert np.array_equal(train.labels(), np.concatenate(labels))
    test = open_dataset("cifar10:test", data_dir=tmp_path)
    assert np.array_equal(test.read(2), test_imgs[2].transpose(2, 0, 1)) and test.label(1) == 0


def test_cifar100_binary_keeps_the_fine_label(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    imgs = _rgb(4, 32, 3)
    coarse, fine = np.array([1, 2, 3, 4], np.uint8), np.array([99, 0, 57, 12], np.uint8)
    (folder / "train.bin").write_bytes(_cifar_records(imgs, [coarse, fine]))
    src = open_dataset("cifar100:train", data_dir=tmp_path)
    assert np.array_equal(src.labels(), fine) and np.array_equal(src.read(3), imgs[3].transpose(2, 0, 1))


def test_cifar_binary_of_a_wrong_size_is_refused(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    (folder / "test.bin").write_bytes(b"\x00" * 3075)
    with pytest.raises(InputError, match="3074-byte"):
        open_dataset("cifar100:test", data_dir=tmp_path)


def _stl_images(images: np.ndarray) -> bytes:
    """STL-10's X files: per image, per channel, the 96 x 96 plane in column-major order (column by column)."""
    return b"".join(img[:, :, c].tobytes(order="F") for img in images for c in range(3))


@pytest.mark.parametrize("split, n", [("train", 3), ("test", 2)])
def test_stl10_binary_labelled_splits(tmp_path, split, n):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    imgs = _rgb(n, 96, 4)
    labels = np.arange(1, n + 1, dtype=np.uint8) * 3  # 1..10 on disk
    (folder / f"{split}_X.bin").write_bytes(_stl_images(imgs))
    (folder / f"{split}_y.bin").write_bytes(labels.tobytes())
    src = open_dataset(f"stl10:{split}", data_dir=tmp_path)
    assert np.array_equal(src.read_batch(0, n), imgs.transpose(0, 3, 1, 2))
    assert np.array_equal(src.labels(), labels.astype(np.int64) - 1)


def test_stl10_unlabeled_has_no_labels(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    imgs = _rgb(2, 96, 5)
    (folder / "unlabeled_X.bin").write_bytes(_stl_images(imgs))
    src = open_dataset("stl10:unlabeled", data_dir=tmp_path)
    assert not src.has_labels and src.labels() is None and src.label(0) is None
    assert np.array_equal(src.read(1), imgs[1].transpose(2, 0, 1))


def test_stl10_labels_out_of_range_are_refused(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    (folder / "test_X.bin").write_bytes(_stl_images(_rgb(1, 96, 6)))
    (folder / "test_y.bin").write_bytes(b"\x00")
    with pytest.raises(InputError, match="1..10"):
        open_dataset("stl10:test", data_dir=tmp_path)
