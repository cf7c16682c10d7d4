"""Stacked Fashion-MNIST, mode counting and class-conditional scores (genbench.probes.modes)."""
from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch

from genbench.config import ExtractOptions
from genbench.errors import ConfigError, InputError
from genbench.features.base import EXTRACTORS
from genbench.metrics.fid import frechet_distance
from genbench.probes.modes import (
    conditional_scores,
    kl_to_uniform,
    mode_statistics,
    modes_of,
    run_modes_probe,
)
from genbench.sources.arrays import ArraySource
from genbench.sources.datasets import clear_cache, open_dataset
from genbench.sources.derived import ChannelSource
from genbench.sources.stacked import STACK_SIZES, mode_digits, stack_images, stack_indices
from tests.conftest import TinyExtractor

LEVELS = np.arange(10) * 25 + 12  # a gray level per class: class k <-> value 25k + 12


class BrightnessClassifier(TinyExtractor):
    """test-tiny features, and a 10-class head that reads the class off the mean luminance (25 levels per class)."""

    name = "test-brightness10"
    logits_dim = 10

    def forward(self, images):
        out = super().forward(images)
        gray = images.float().mean(dim=(1, 2, 3))
        cls = torch.clamp((gray // 25).long(), 0, 9)
        out["logits"] = torch.nn.functional.one_hot(cls, 10).float() * 8.0
        return out


if "test-brightness10" not in EXTRACTORS:
    EXTRACTORS.register("test-brightness10")(lambda weights=None, preprocessing=None, device="cpu": BrightnessClassifier())

XO = ExtractOptions(extractor="test-brightness10", cache=False, progress=False)


def stacked_from_classes(classes: np.ndarray) -> np.ndarray:
    """int [N, 3] per-channel classes -> uint8 [N, 8, 8, 3] images with each channel at its class's gray level."""
    return np.broadcast_to(LEVELS[classes][:, None, None, :], (len(classes), 8, 8, 3)).astype(np.uint8).copy()


# ----------------------------------------------------------------------------- pure math


def test_kl_to_uniform_closed_forms():
    assert kl_to_uniform(np.full(1000, 7)) == pytest.approx(0.0, abs=1e-12)
    one = np.zeros(1000)
    one[3] = 50
    assert kl_to_uniform(one) == pytest.approx(math.log(1000))
    two = np.zeros(1000)
    two[[1, 2]] = 5
    assert kl_to_uniform(two) == pytest.approx(math.log(500))
    with pytest.raises(ConfigError, match="empty"):
        kl_to_uniform(np.zeros(10))


def test_modes_and_statistics():
    classes = np.array([[1, 2, 3], [1, 2, 3], [9, 0, 0], [0, 0, 7]])
    np.testing.assert_array_equal(modes_of(classes), [123, 123, 900, 7])
    np.testing.assert_array_equal(mode_digits([123, 900, 7]), [[1, 2, 3], [9, 0, 0], [0, 0, 7]])
    s = mode_statistics(classes, confident=np.array([True, True, True, False]), true_modes=np.array([123, 5, 900, 7]))
    assert (s.n, s.n_counted, s.n_modes, s.modes_covered) == (4, 3, 1000, 2)
    # p = (2/3, 1/3) over 1000 bins
    assert s.kl_to_uniform == pytest.approx(2 / 3 * math.log(2 / 3 * 1000) + 1 / 3 * math.log(1 / 3 * 1000))
    assert s.accuracy == pytest.approx(0.75)
    with pytest.raises(InputError):
        modes_of(np.array([[10, 0, 0]]))


# ----------------------------------------------------------------------------- the stacked data set


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(str(path) + ".gz", "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_stacked_fashion_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=30)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    clear_cache()
    src = open_dataset("stacked-fashion-mnist:test", data_dir=tmp_path, download=False)
    assert len(src) == STACK_SIZES["test"]
    index = stack_indices(30, STACK_SIZES["test"], stream=1)
    for i in (0, 17, 9999):
        img = src.read(i)
        for c in range(3):
            np.testing.assert_array_equal(img[c], images[index[i, c]])
        assert src.label(i) == 100 * labels[index[i, 0]] + 10 * labels[index[i, 1]] + labels[index[i, 2]]
    # fixed triples: a fresh read gives the same images
    clear_cache()
    again = open_dataset("stacked-fashion-mnist:test", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(again.read_batch(0, 50), src.read_batch(0, 50))
    clear_cache()


def test_stack_images_and_channel_source():
    gray = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    stacked, modes = stack_images(gray, np.array([0, 1, 2, 3]), np.array([[3, 2, 1], [0, 0, 0]]))
    assert stacked.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(stacked[0, :, :, 0], gray[3])
    np.testing.assert_array_equal(modes, [321, 0])
    src = ChannelSource(ArraySource(stacked), 1)
    np.testing.assert_array_equal(src.read(0), np.repeat(gray[2][None], 3, axis=0))
    np.testing.assert_array_equal(src.read_batch(0, 2)[:, 0], stacked[:, :, :, 1])


# ----------------------------------------------------------------------------- the probes


def test_modes_probe_counts_known_modes():
    rng = np.random.default_rng(1)
    gen_classes = rng.integers(0, 3, size=(300, 3))  # at most 27 modes
    real_classes = rng.integers(0, 10, size=(400, 3))
    real = ArraySource(stacked_from_classes(real_classes), labels=modes_of(real_classes))
    report = run_modes_probe(stacked_from_classes(gen_classes), real, extract_options=XO)
    expected = np.bincount(modes_of(gen_classes), minlength=1000)
    assert report.generated.modes_covered == int((expected > 0).sum()) == 27
    p = expected[expected > 0] / 300  # the 27 occupied modes' frequencies, written out
    assert report.generated.kl_to_uniform == pytest.approx(sum(q * math.log(q * 1000) for q in p), rel=1e-12)
    assert report.reference.modes_covered == len(np.unique(modes_of(real_classes)))
    assert report.reference.accuracy == 1.0
    doc = report.to_dict()
    assert doc["modes_covered"] == 27 and doc["n_modes"] == 1000 and len(doc["generated"]["histogram"]) == 1000


def test_modes_probe_single_channel_and_refusals():
    classes = np.repeat(np.arange(5), 20)
    gray = stacked_from_classes(np.stack([classes] * 3, axis=1))
    report = run_modes_probe(gray, None, channels=1, extract_options=XO)
    assert report.generated.n_modes == 10 and report.generated.modes_covered == 5
    assert report.generated.kl_to_uniform == pytest.approx(math.log(2))
    with pytest.raises(ConfigError, match="channels"):
        run_modes_probe(gray, None, channels=2, extract_options=XO)
    with pytest.raises(ConfigError, match="no classifier head|10-class"):
        run_modes_probe(gray, None, channels=1, extract_options=ExtractOptions(extractor="test-tiny", cache=False,
                                                                                progress=False))


def test_conditional_scores_accuracy_and_per_class_fd():
    rng = np.random.default_rng(2)
    intended = np.repeat(np.arange(10), 12)
    # each sample drawn at its class's gray level, except class 3 drawn at class 4's level (misclassified)
    shown = np.where(intended == 3, 4, intended)
    gen = stacked_from_classes(np.stack([shown] * 3, axis=1)) + rng.integers(0, 5, size=(120, 8, 8, 3)).astype(np.uint8)
    ref_labels = np.repeat(np.arange(10), 15)
    ref = stacked_from_classes(np.stack([ref_labels] * 3, axis=1)) + rng.integers(0, 5, size=(150, 8, 8, 3)).astype(np.uint8)
    report = conditional_scores(gen, intended, ArraySource(ref, labels=ref_labels), extract_options=XO)
    assert report.accuracy == pytest.approx(0.9)
    assert report.per_class[3]["accuracy"] == 0.0 and report.per_class[4]["accuracy"] == 1.0
    with torch.no_grad():
        fg = TinyExtractor()(torch.from_numpy(gen.transpose(0, 3, 1, 2).copy()))["features"].numpy().astype(np.float64)
        fr = TinyExtractor()(torch.from_numpy(ref.transpose(0, 3, 1, 2).copy()))["features"].numpy().astype(np.float64)
    for c in (0, 3):
        a, b = fg[intended == c], fr[ref_labels == c]
        want = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        assert report.per_class[c]["fd_tiny"] == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert report.per_class[3]["fd_tiny"] > 10 * report.per_class[0]["fd_tiny"]
    with pytest.raises(InputError, match="no intended labels"):
        conditional_scores(gen, None, ArraySource(ref, labels=ref_labels), extract_options=XO)
    with pytest.raises(InputError, match="no labels"):
        conditional_scores(gen, intended, ArraySource(ref), extract_options=XO)

