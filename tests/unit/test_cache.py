"""The feature cache: hits give the numbers a fresh extraction gives; anything that changes them misses."""
from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from genbench.cli.app import main
from genbench.config import ExtractOptions
from genbench.errors import InputError
from genbench.evaluate import extract_source
from genbench.extraction import engine
from genbench.extraction.cache import FeatureCache, cache_key
from genbench.sources.arrays import ArraySource
from genbench.sources.base import ImageSource
from tests.conftest import TinyExtractor, make_images

TINY = ["--extractor", "test-tiny", "--quiet"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own cache folder and 32-image chunks."""
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(engine, "CHUNK_SIZE", 32)
    return FeatureCache()


class CountingSource(ImageSource):
    """Labelled images from an array; counts reads; fails on purpose from image ``fail_from`` on."""

    kind = "counting"

    def __init__(self, images: np.ndarray, fail_from: int | None = None) -> None:
        self.images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        self.location = "counting-source"
        self.fail_from = fail_from
        self.read_indices: list[int] = []

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> np.ndarray:
        if self.fail_from is not None and index >= self.fail_from:
            raise InputError(f"image {index}: failing on purpose")
        self.read_indices.append(index)
        return self.images[index]

    def key(self, index: int) -> str:
        return f"img{index}"

    @property
    def has_labels(self) -> bool:
        return True

    def label(self, index: int) -> int:
        return index % 3

    def fingerprint(self) -> str:
        return "counting-source-v1"


def score_json(*args) -> dict:
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def direct_features(images_nhwc: np.ndarray) -> np.ndarray:
    """Independent computation: the network applied to all images at once, without genbench's loop."""
    import torch

    with torch.no_grad():
        return TinyExtractor()(torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous())["features"].numpy()


def test_hit_gives_the_numbers_of_a_fresh_extraction_without_running_the_network(image_arrays, private_cache, monkeypatch):
    gen, ref = image_arrays
    args = ("score", gen, "--ref", ref, "--json", "-", "--kid-subset-size", 50, "--kid-subsets", 5, *TINY)
    first = score_json(*args)
    calls = []
    original = TinyExtractor.forward
    monkeypatch.setattr(TinyExtractor, "forward", lambda self, x: calls.append(1) or original(self, x))
    second = score_json(*args)
    assert calls == []  # the hit ran no network
    fresh = score_json(*args, "--no-cache")
    assert len(calls) > 0
    assert [first["provenance"]["inputs"][r]["cache"] for r in ("generated", "reference")] == ["miss", "miss"]
    assert [second["provenance"]["inputs"][r]["cache"] for r in ("generated", "reference")] == ["hit", "hit"]
    assert fresh["provenance"]["inputs"]["generated"]["cache"] == "off"
    assert first["metrics"] == second["metrics"] == fresh["metrics"]
    assert private_cache.info().entries == 2


def test_hit_alone_does_not_extract(image_arrays, monkeypatch):
    gen, ref = image_arrays
    score_json("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd", *TINY)
    monkeypatch.setattr(TinyExtractor, "forward", lambda self, x: pytest.fail("extracted on a cache hit"))
    doc = score_json("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd", *TINY)
    assert doc["provenance"]["inputs"]["generated"]["cache"] == "hit"


def test_entry_is_plain_npz_with_the_features_of_an_independent_computation(image_arrays, private_cache):
    gen, _ = image_arrays
    net = TinyExtractor()
    source = ArraySource.from_file(gen)
    extract_source(source, net, ExtractOptions(batch_size=16, progress=False), keep_features=False)
    key = cache_key(source, net.identity().to_dict())
    with np.load(private_cache.entry_path(key), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    expected = direct_features(np.load(gen))
    np.testing.assert_allclose(arrays["features"], expected, rtol=1e-5, atol=1e-6)
    assert arrays["features"].dtype == np.float32 and arrays["logits"].shape == (100, 5)
    assert arrays["files"].tolist() == [str(i) for i in range(100)] and int(arrays["n"]) == 100
    f64 = arrays["features"].astype(np.float64)
    np.testing.assert_allclose(arrays["total"], f64.sum(0), rtol=1e-12)
    np.testing.assert_allclose(arrays["outer"], f64.T @ f64, rtol=1e-12)
    assert json.loads(str(arrays["meta"]))["key"] == key
    assert not private_cache.partial_dir(key).exists()  # chunks are removed once the entry is assembled


def test_touched_file_hits_and_changed_content_misses(image_arrays):
    gen, ref = image_arrays
    args = ("score", gen, "--ref", ref, "--json", "-", "--metrics", "fd", *TINY)
    before = score_json(*args)
    # Only the mtime changes: the content is hashed, so a hit, with the same numbers.
    st = os.stat(gen)
    os.utime(gen, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    touched = score_json(*args)
    assert touched["provenance"]["inputs"]["generated"]["cache"] == "hit"
    assert touched["provenance"]["inputs"]["reference"]["cache"] == "hit"
    assert touched["metrics"] == before["metrics"]
    # New content of the same size (a rewrite also moves the mtime): a miss, with the new numbers.
    np.save(gen, make_images(100, seed=5, shift=0.2))
    st = os.stat(gen)
    os.utime(gen, ns=(st.st_atime_ns, st.st_mtime_ns + 4_000_000_000))
    changed = score_json(*args)
    fresh = score_json(*args, "--no-cache")
    assert changed["provenance"]["inputs"]["generated"]["cache"] == "miss"
    assert changed["metrics"]["fd_tiny"]["value"] != pytest.approx(before["metrics"]["fd_tiny"]["value"], rel=1e-3)
    assert changed["metrics"] == fresh["metrics"]


# A rewrite in place that keeps size, inode and (restored) mtime: invisible to make and rsync, and to a key
# made of stat fields only. Each kind of single-file source must still give the new features.

N_REWRITE = 40


def _bmp(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="BMP")  # fixed size for fixed dimensions, whatever the pixels
    return buf.getvalue()


def _content(kind: str, seed: int) -> bytes:
    """The bytes of a file of this kind holding N_REWRITE images drawn with ``seed`` (same size for any seed)."""
    images = make_images(N_REWRITE, seed=seed, size=28 if kind == "dataset" else 16, shift=0.1 * seed)
    buf = io.BytesIO()
    if kind == "dataset":  # Fashion-MNIST's IDX images file (28 x 28 grey), not gzipped
        grey = np.ascontiguousarray(images[..., 0])
        return bytes([0, 0, 0x08, 3]) + b"".join(struct.pack(">I", d) for d in grey.shape) + grey.tobytes()
    if kind == "npz":
        np.savez(buf, images=images)
    elif kind == "zip":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for i, im in enumerate(images):
                zf.writestr(zipfile.ZipInfo(f"{i:03d}.bmp", date_time=(2020, 1, 1, 0, 0, 0)), _bmp(im))
    elif kind == "tar":
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for i, im in enumerate(images):
                data = _bmp(im)
                info = tarfile.TarInfo(f"{i:03d}.bmp")
                info.size, info.mtime = len(data), 1_600_000_000
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """Overwrite ``path`` with ``data`` (same size) keeping its inode, then restore its mtime."""
    st = os.stat(path)
    assert len(data) == st.st_size
    # The kernel stamps ctime from a clock that ticks every few ms: a rewrite in the same tick as the first write
    # would be invisible to any file-time check. Rewrite until the ctime really moved (at once, nearly always).
    deadline = time.monotonic() + 10
    while True:
        with open(path, "r+b") as fh:
            fh.write(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        after = os.stat(path)
        if after.st_ctime_ns != st.st_ctime_ns or time.monotonic() > deadline:
            break
    assert after.st_ctime_ns != st.st_ctime_ns, "the file's ctime never changed"
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


@pytest.mark.parametrize("kind", ["dataset", "npz", "zip", "tar"])
def test_rewrite_with_same_size_inode_and_mtime_gives_new_features(tmp_path, kind):
    from genbench.sources import datasets
    from genbench.sources.resolve import open_source

    if kind == "dataset":
        path = tmp_path / "train-images-idx3-ubyte"
        labels = np.arange(N_REWRITE, dtype=np.uint8) % 10
        header = bytes([0, 0, 0x08, 1]) + struct.pack(">I", N_REWRITE)
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(header + labels.tobytes())

        def open_it():
            return datasets.open_dataset("fashion-mnist:train", data_dir=tmp_path, download=False)
    else:
        path = tmp_path / f"images.{kind}"

        def open_it():
            return open_source(path)

    path.write_bytes(_content(kind, seed=1))
    options = ExtractOptions(batch_size=16, progress=False)
    first = extract_source(open_it(), TinyExtractor(), options)
    assert first.info["cache"] == "miss"
    assert extract_source(open_it(), TinyExtractor(), options).info["cache"] == "hit"
    _rewrite_in_place(path, _content(kind, seed=2))
    changed = extract_source(open_it(), TinyExtractor(), options)
    fresh = extract_source(open_it(), TinyExtractor(), ExtractOptions(batch_size=16, progress=False, cache=False))
    assert changed.info["cache"] == "miss"
    assert not np.allclose(changed.features, first.features)
    np.testing.assert_array_equal(changed.features, fresh.features)
    datasets.clear_cache()


class OtherPreprocessing(TinyExtractor):
    def __init__(self) -> None:
        super().__init__(preprocessing="avgpool8-other")


class OtherWeights(TinyExtractor):
    def __init__(self) -> None:
        super().__init__()
        self.weight.mul_(2.0)
        self.weights_sha256 = "0" * 64


@pytest.mark.parametrize("variant", [OtherPreprocessing, OtherWeights])
def test_other_preprocessing_or_weights_miss(image_arrays, variant):
    gen, _ = image_arrays
    options = ExtractOptions(batch_size=16, progress=False)
    base = extract_source(ArraySource.from_file(gen), TinyExtractor(), options)
    assert extract_source(ArraySource.from_file(gen), TinyExtractor(), options).info["cache"] == "hit"
    other = extract_source(ArraySource.from_file(gen), variant(), options)
    assert other.info["cache"] == "miss"
    if variant is OtherWeights:  # the numbers really differ, and are not served from the first entry
        np.testing.assert_allclose(other.features, 2 * base.features, rtol=1e-5)


def test_precision_and_uncacheable_sources_are_keyed_apart():
    images = make_images(8, seed=0)
    identity = TinyExtractor().identity().to_dict()
    source = CountingSource(images)
    assert cache_key(source, identity, "float32") != cache_key(source, identity, "bf16")
    assert cache_key(ArraySource(images), identity) is None  # in memory: fingerprint "" means "do not cache"


def test_interrupted_extraction_resumes_and_matches_a_clean_run(private_cache):
    images = make_images(100, seed=3)
    options = ExtractOptions(batch_size=8, progress=False)
    clean = extract_source(CountingSource(images), TinyExtractor(), ExtractOptions(batch_size=8, progress=False, cache=False))

    with pytest.raises(InputError, match="failing on purpose"):
        extract_source(CountingSource(images, fail_from=70), TinyExtractor(), options)  # dies in the third chunk
    key = cache_key(CountingSource(images), TinyExtractor().identity().to_dict())
    saved = sorted(p.name for p in private_cache.partial_dir(key).glob("*.npz"))
    assert saved == ["000000000000-000000000032.npz", "000000000032-000000000064.npz"]

    source = CountingSource(images)
    resumed = extract_source(source, TinyExtractor(), options)
    assert min(source.read_indices) == 64 and len(source.read_indices) == 36  # the two saved chunks were not re-read
    assert resumed.info["cache"] == "partial"
    assert resumed.stats.n == clean.stats.n == 100
    assert np.array_equal(resumed.stats.total, clean.stats.total) and np.array_equal(resumed.stats.outer, clean.stats.outer)
    assert np.array_equal(resumed.features, clean.features) and np.array_equal(resumed.logits, clean.logits)
    assert np.array_equal(resumed.labels, np.arange(100) % 3)
    hit = extract_source(CountingSource(images), TinyExtractor(), options)
    assert hit.info["cache"] == "hit" and np.array_equal(hit.stats.outer, clean.stats.outer)
    assert np.array_equal(hit.labels, clean.labels)


def test_unreadable_entry_is_replaced_with_a_warning(image_arrays, private_cache):
    gen, _ = image_arrays
    options = ExtractOptions(batch_size=16, progress=False)
    first = extract_source(ArraySource.from_file(gen), TinyExtractor(), options)
    key = cache_key(ArraySource.from_file(gen), TinyExtractor().identity().to_dict())
    private_cache.entry_path(key).write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = extract_source(ArraySource.from_file(gen), TinyExtractor(), options)
    assert again.info["cache"] == "miss" and np.array_equal(again.stats.outer, first.stats.outer)
    assert zipfile.is_zipfile(private_cache.entry_path(key))


def test_no_cache_writes_nothing(image_arrays, private_cache):
    gen, ref = image_arrays
    for verb, extra in (("score", ("--ref", ref, "--json", "-", "--metrics", "fd")), ("stats", ("-o", gen.parent / "s.npz"))):
        res = CliRunner().invoke(main, [verb, str(gen), *map(str, extra), "--no-cache", *TINY], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    assert not private_cache.root.exists() or private_cache.info().entries == 0


def test_cache_info_and_clear(image_arrays, private_cache):
    gen, _ = image_arrays
    runner = CliRunner()
    assert runner.invoke(main, ["extract", str(gen), "-o", str(gen.parent / "f.npz"), *TINY]).exit_code == 0
    info = json.loads(runner.invoke(main, ["cache", "info", "--json"]).stdout)
    assert info["entries"] == 1 and info["entry_bytes"] > 0 and info["root"] == str(private_cache.root)
    refused = runner.invoke(main, ["cache", "clear"], input="n\n")
    assert refused.exit_code == 0 and "nothing deleted" in refused.stderr and private_cache.info().entries == 1
    cleared = runner.invoke(main, ["cache", "clear", "--yes"])
    assert cleared.exit_code == 0 and "deleted 1 entries" in cleared.stderr
    assert private_cache.info().entries == 0
    doc = score_json("score", gen, "--ref", gen, "--json", "-", "--metrics", "fd", *TINY)
    # Cleared, so extracted again (the reference comes first), and then reused within the same run.
    assert [doc["provenance"]["inputs"][r]["cache"] for r in ("reference", "generated")] == ["miss", "hit"]
    assert doc["metrics"]["fd_tiny"]["value"] == pytest.approx(0.0, abs=1e-6)


def test_an_unwritable_cache_warns_and_the_run_goes_on(image_arrays, tmp_path, monkeypatch):
    gen, _ = image_arrays
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("GENBENCH_CACHE", str(blocker / "cache"))
    options = ExtractOptions(batch_size=16, progress=False)
    with pytest.warns(RuntimeWarning, match="cannot save"):
        ev = extract_source(ArraySource.from_file(gen), TinyExtractor(), options)
    off = extract_source(ArraySource.from_file(gen), TinyExtractor(), ExtractOptions(batch_size=16, cache=False))
    assert np.array_equal(ev.stats.outer, off.stats.outer) and np.array_equal(ev.features, off.features)
