"""The memorization probe (genbench.probes.memorization) on the test-tiny extractor and, where its
weights are bundled, on a small real Fashion-MNIST subset with fmnist-cnn."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.api import extract
from genbench.config import ExtractOptions
from genbench.errors import ConfigError, ReferenceStatsError
from genbench.metrics.memorization import memorization_statistics
from genbench.probes.inputs import SubsetSource, subsample_indices
from genbench.probes.memorization import MemorizationOptions, run_memorization_probe
from genbench.sources.arrays import ArraySource
from genbench.sources.transforms import TransformedSource
from genbench.stats.io import save_features
from tests.conftest import TinyExtractor, make_images

XO = ExtractOptions(extractor="test-tiny", cache=False, progress=False)
OPTS = MemorizationOptions(n_cells=5, seed=0)


@pytest.fixture(scope="module")
def data():
    train = make_images(600, seed=0)
    test = make_images(300, seed=1)
    return {"train": train, "test": test}


def tiny_features(images_nhwc: np.ndarray) -> np.ndarray:
    """test-tiny features computed directly (not through the probe's pipeline)."""
    x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        return TinyExtractor()(x)["features"].numpy()


def probe(gen, data, options=OPTS, **kw):
    return run_memorization_probe(gen, data["train"], data["test"], options=options, extract_options=XO, **kw)


# ----------------------------------------------------------------------------- known answers


def test_exact_copies_are_flagged_and_match_the_statistics_on_directly_computed_features(data):
    rng = np.random.default_rng(5)
    pick = rng.choice(len(data["train"]), 200, replace=False)
    gen = data["train"][pick]
    report = probe(gen, data)
    assert report.verdict == "copying"
    assert report.memorized_fraction == 1.0 and report.authenticity == 0.0
    assert report.train_test_gap < -0.9 and report.ct < -3
    # the probe's wiring (roles, order, seed) against the pure function on independently computed features
    direct = memorization_statistics(tiny_features(data["train"]), tiny_features(data["test"]), tiny_features(gen),
                                     seed=0, n_cells=5)
    assert report.ct == pytest.approx(direct.ct.ct, rel=1e-5)  # float32 features: batching changes the last bits
    assert report.stats.heldout_authenticity == pytest.approx(direct.heldout_authenticity)
    assert report.train_test_gap == pytest.approx(direct.gap_excess, rel=1e-5)
    # The most suspicious samples point at their source training images. Their distance is 0 up to the
    # extractor's float32 rounding: a copy is extracted in another batch than its source, and float32 kernels
    # may round a row differently at another batch size or position (that depends on the CPU and thread
    # count), so it is bounded far below the held-out NN distance instead of compared with 0.
    for entry in report.suspicious:
        assert entry["train_index"] == pick[entry["generated_index"]]
        assert entry["distance"] <= 1e-4 * report.stats.heldout_to_train_mean


def test_independent_draws_are_not_flagged(data):
    report = probe(make_images(200, seed=7), data)
    assert report.verdict == "no-evidence"
    assert report.memorized_fraction == 0.0
    assert abs(report.train_test_gap) < 0.1 and abs(report.ct) < 3


def test_lightly_transformed_copies_are_flagged(data):
    base = ArraySource(data["train"][:200])
    for steps in ([("gaussian-noise", 4)], [("shift", 1)]):
        report = probe(TransformedSource(base, steps, seed=3), data)
        assert report.verdict == "copying", (steps, report.to_dict()["signals"])


def test_same_seed_same_numbers_and_subsample_maps_back(data):
    gen = data["train"][:300]
    opts = MemorizationOptions(n_cells=5, seed=4, max_samples=150, gallery_count=5)
    a, b = probe(gen, data, opts).to_dict(), probe(gen, data, opts).to_dict()
    for doc in (a, b):
        doc.pop("provenance")
    assert json.dumps(a) == json.dumps(b)
    kept = subsample_indices(300, 150, seed=4, stream=0)
    for entry in a["suspicious"]:  # generated_key names the original array row
        original = kept[entry["generated_index"]]
        assert entry["generated_key"] == ArraySource(gen).key(int(original))
        assert entry["train_index"] == original  # an exact copy of training row `original`


def test_gallery_png(data, tmp_path):
    path = tmp_path / "gallery.png"
    report = probe(data["train"][:100], data, MemorizationOptions(n_cells=3, gallery_count=6), gallery=path)
    assert report.gallery == str(path)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 3 * 2 * 16 and img.height > 3 * 16


def test_subset_source_reads_the_chosen_rows(tmp_path):
    images = make_images(50, seed=2)
    np.save(tmp_path / "a.npy", images)
    base = ArraySource.from_file(tmp_path / "a.npy")
    src = SubsetSource(base, np.array([3, 4, 5, 10]))
    np.testing.assert_array_equal(src.read_batch(0, 4), images[[3, 4, 5, 10]].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(src.read_batch(0, 3), images[[3, 4, 5]].transpose(0, 3, 1, 2))
    assert src.key(3) == ArraySource(images).key(10)
    assert src.fingerprint() and src.fingerprint() != SubsetSource(base, np.array([3, 4, 5, 11])).fingerprint()
    assert SubsetSource(ArraySource(images), np.array([1])).fingerprint() == ""  # in-memory arrays are not cached


# ----------------------------------------------------------------------------- refusals


def test_too_few_samples_and_cells(data):
    with pytest.raises(ConfigError, match="at least 21 are needed"):
        probe(data["train"][:20], data)
    with pytest.raises(ConfigError, match="--n-cells"):
        probe(data["train"][:100], data, MemorizationOptions(n_cells=1000))


def test_a_chunk_that_cannot_fit_is_refused_before_extraction(data):
    with pytest.raises(ConfigError, match="chunk_size=1000 rows"):
        probe(data["train"][:100], data, MemorizationOptions(n_cells=5, chunk_size=1000, max_memory_bytes=1_000_000))


def _feature_file(path, images, **meta_changes):
    ff = extract(images, extractor="test-tiny", cache=False)
    ff.meta.update(meta_changes)
    save_features(path, ff)
    return path


def test_train_and_test_built_differently_are_refused(data, tmp_path):
    train = _feature_file(tmp_path / "train.npz", data["train"])
    test = _feature_file(tmp_path / "test.npz", data["test"], preprocessing="other-resize")
    with pytest.raises(ReferenceStatsError, match="preprocessing='other-resize'"):
        run_memorization_probe(data["train"][:100], train, test, options=OPTS, extract_options=XO)
    # the same files with matching meta are accepted and give the same numbers as images
    test_ok = _feature_file(tmp_path / "test_ok.npz", data["test"])
    from_files = run_memorization_probe(data["train"][:100], train, test_ok, options=OPTS, extract_options=XO)
    from_images = probe(data["train"][:100], data)
    assert from_files.ct == pytest.approx(from_images.ct, abs=1e-9)


def test_feature_files_need_images_for_a_gallery(data, tmp_path):
    train = _feature_file(tmp_path / "train.npz", data["train"])
    with pytest.raises(ConfigError, match="--gallery needs images"):
        run_memorization_probe(data["train"][:100], train, data["test"], options=OPTS, extract_options=XO,
                               gallery=tmp_path / "g.png")


# ----------------------------------------------------------------------------- real data (fmnist-cnn)


def _fmnist_available() -> bool:
    from genbench.errors import GenbenchError
    from genbench.features import build_extractor
    from genbench.sources.datasets import open_dataset

    try:
        build_extractor("fmnist-cnn")
        open_dataset("fashion-mnist:test", download=False)
    except GenbenchError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _fmnist_available(), reason="needs fashion-mnist data and the bundled fmnist-cnn weights")
def test_real_fashion_mnist_copies_flagged_and_held_out_data_not(tmp_path):
    from genbench.sources.datasets import open_dataset

    train_full = open_dataset("fashion-mnist:train", download=False)
    test_full = open_dataset("fashion-mnist:test", download=False)
    train = SubsetSource(train_full, np.arange(3000))
    honest = SubsetSource(test_full, np.arange(600, 1200))  # disjoint from the held-out part
    copies = SubsetSource(train, np.arange(0, 3000, 5))
    xo = ExtractOptions(extractor="fmnist-cnn", cache=False, progress=False, batch_size=500)
    # train and held-out data extracted once, as feature files (their meta is checked on every run)
    files = {}
    for name, src in (("train", train), ("held_out", SubsetSource(test_full, np.arange(0, 600)))):
        files[name] = tmp_path / f"{name}.npz"
        save_features(files[name], extract(src, extractor="fmnist-cnn", cache=False, batch_size=500))
    opts = MemorizationOptions(n_cells=10, seed=0)

    def verdict(gen):
        return run_memorization_probe(gen, files["train"], files["held_out"], options=opts, extract_options=xo)

    assert verdict(honest).verdict == "no-evidence"
    assert verdict(copies).verdict == "copying"
    for steps in ([("hflip", 1.0)], [("shift", 1)], [("gaussian-noise", 8)]):
        report = verdict(TransformedSource(copies, steps, seed=0))
        assert report.verdict == "copying", (steps, report.to_dict()["signals"])
