"""iter_batches: order, batch size and worker count never change what is read; errors arrive unwrapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.errors import ConfigError, InputError
from genbench.sources import ArraySource, FolderSource, ZipSource, count_batches, iter_batches

H, W = 6, 5


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, H, W), dtype=np.uint8)


def collect(source, **kw) -> tuple[torch.Tensor, torch.Tensor | None, list[int]]:
    """Concatenate all batches; also return the batch starts."""
    parts, labels, starts = [], [], []
    for b in iter_batches(source, **kw):
        assert isinstance(b.images, torch.Tensor) and b.images.dtype == torch.uint8
        assert b.stop == b.start + len(b)
        parts.append(b.images)
        starts.append(b.start)
        if b.labels is not None:
            assert b.labels.dtype == torch.int64
            labels.append(b.labels)
    return torch.cat(parts), (torch.cat(labels) if labels else None), starts


def write_folder(root: Path, arr: np.ndarray) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(arr):
        Image.fromarray(im.transpose(1, 2, 0)).save(root / f"{i:03d}.png")


def test_batch_size_does_not_change_result():
    x = images(11)
    src = ArraySource(x, labels=np.arange(11) % 3)
    for bs in (1, 4, 11, 64):
        got, labels, starts = collect(src, batch_size=bs)
        np.testing.assert_array_equal(got.numpy(), x)
        np.testing.assert_array_equal(labels.numpy(), np.arange(11) % 3)
        assert starts == list(range(0, 11, bs))
    assert [count_batches(src, bs) for bs in (1, 4, 11, 64)] == [11, 3, 1, 1]


def test_start_stop_subrange():
    x = images(10)
    got, labels, starts = collect(ArraySource(x), batch_size=3, start=2, stop=9)
    np.testing.assert_array_equal(got.numpy(), x[2:9])
    assert labels is None and starts == [2, 5, 8]
    assert count_batches(10, 3, start=2, stop=9) == 3
    assert list(iter_batches(ArraySource(x), batch_size=3, start=4, stop=4)) == []


def test_workers_equal_in_process(tmp_path):
    x = images(9, seed=1)
    write_folder(tmp_path / "f", x)
    folder = FolderSource(tmp_path / "f")
    a, _, sa = collect(folder, batch_size=2, workers=0)
    b, _, sb = collect(folder, batch_size=2, workers=2)
    np.testing.assert_array_equal(a.numpy(), x)
    assert torch.equal(a, b) and sa == sb == [0, 2, 4, 6, 8]


def test_zip_with_workers(tmp_path):
    import zipfile

    x = images(5, seed=2)
    write_folder(tmp_path / "f", x)
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as zf:
        for p in sorted((tmp_path / "f").iterdir()):
            zf.write(p, p.name)
    src = ZipSource(tmp_path / "f.zip")
    src.read(0)  # parent holds an open handle; forked workers must open their own
    got, _, _ = collect(src, batch_size=2, workers=2)
    np.testing.assert_array_equal(got.numpy(), x)


def test_mixed_sizes_give_lists(tmp_path):
    rng = np.random.default_rng(3)
    shapes = [(6, 5), (6, 5), (7, 9), (6, 5)]
    for i, (h, w) in enumerate(shapes):
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    batches = list(iter_batches(FolderSource(tmp_path), batch_size=2))
    assert isinstance(batches[0].images, torch.Tensor) and batches[0].images.shape == (2, 3, 6, 5)
    assert isinstance(batches[1].images, list)
    assert [tuple(t.shape) for t in batches[1].images] == [(3, 7, 9), (3, 6, 5)]
    assert all(t.dtype == torch.uint8 for t in batches[1].images)


@pytest.mark.parametrize("workers", [0, 2])
def test_worker_error_is_the_same_input_error(tmp_path, workers):
    x = images(6, seed=4)
    write_folder(tmp_path, x)
    (tmp_path / "004.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError) as info:
        for _ in iter_batches(FolderSource(tmp_path), batch_size=2, workers=workers):
            pass
    message = str(info.value)
    assert type(info.value) is InputError
    assert (
        message == f"{tmp_path / '004.png'}: cannot decode image (not a recognised image format); "
        "expected a complete PNG, JPEG, WebP, BMP or TIFF file"
    )
    assert "Traceback" not in message and "DataLoader worker" not in message


def test_bad_options():
    src = ArraySource(images(3))
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ConfigError, match=r"batch_size \(--batch-size\)"):
            list(iter_batches(src, batch_size=bad))
    with pytest.raises(ConfigError, match=r"workers \(--workers\)"):
        list(iter_batches(src, workers=-1))
    with pytest.raises(ConfigError, match="outside 0..3"):
        list(iter_batches(src, start=2, stop=5))


def test_npy_with_workers_and_pin_memory(tmp_path):
    x = images(7, seed=5)
    np.save(tmp_path / "x.npy", x.transpose(0, 2, 3, 1))
    from genbench.sources import open_source

    src = open_source(tmp_path / "x.npy")
    got, _, _ = collect(src, batch_size=3, workers=2, pin_memory=True)  # pin_memory is ignored without CUDA
    np.testing.assert_array_equal(got.numpy(), x)
