"""Shared fixtures: a tiny seeded extractor registered as a plug-in, and small image sets."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from genbench.errors import InputError
from genbench.features.base import EXTRACTORS, FeatureExtractor, MetricNames


class TinyExtractor(FeatureExtractor):
    """A fixed random projection of 8x8-average-pooled pixels: fast, deterministic, non-trivial."""

    name = "test-tiny"
    layer = "proj"
    feature_dim = 16
    logits_dim = 5
    metric_names = MetricNames("fd_tiny", "is_tiny", "kid_tiny")

    def __init__(self, preprocessing: str = "avgpool8") -> None:
        gen = torch.Generator().manual_seed(1234)
        weight = torch.randn(16, 3 * 8 * 8, generator=gen, dtype=torch.float64) / 8
        head = torch.randn(5, 16, generator=gen, dtype=torch.float64)
        digest = hashlib.sha256(weight.numpy().tobytes() + head.numpy().tobytes()).hexdigest()
        super().__init__(preprocessing, digest)
        self.register_buffer("weight", weight.float())
        self.register_buffer("head", head.float())

    def forward(self, images):
        if isinstance(images, list):
            images = torch.stack([nn.functional.adaptive_avg_pool2d(im[None].float(), 8)[0] for im in images])
        if images.dtype != torch.uint8:
            raise InputError(f"test-tiny: expected uint8 images, got {images.dtype}")
        x = nn.functional.adaptive_avg_pool2d(images.float() / 255.0, 8).flatten(1)
        features = torch.relu(x @ self.weight.T)
        return {"features": features, "logits": features @ self.head.T}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache, so no test writes into the user's ~/.cache/genbench."""
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path_factory.mktemp("genbench-cache")))


@pytest.fixture(autouse=True)
def _torch_rng_isolated():
    """Every test leaves the global torch generator as it found it, so an unseeded draw (a module's initial
    weights, say) or a manual_seed in one test cannot change what later tests draw. Tests still seed what they
    draw themselves (a torch.Generator, or manual_seed inside fork_rng)."""
    with torch.random.fork_rng(devices=[]):
        yield


if "test-tiny" not in EXTRACTORS:
    EXTRACTORS.register("test-tiny")(lambda weights=None, preprocessing=None, device="cpu": TinyExtractor().to(device))


def fashion_mnist_found() -> bool:
    """Whether genbench finds both Fashion-MNIST splits without downloading: in $GENBENCH_DATA, the Debian
    package's folder (dataset-fashion-mnist) or the download cache."""
    from genbench.sources import datasets

    try:
        for split in ("train", "test"):
            datasets._locate(datasets.dataset_info(f"fashion-mnist:{split}"), None, download=False)
    except InputError:
        return False
    return True


#: The guard of every test that reads Fashion-MNIST images (so none of them tries to download the data set).
needs_fashion_mnist = pytest.mark.skipif(
    not fashion_mnist_found(),
    reason="Fashion-MNIST not found (apt-get install dataset-fashion-mnist, or set GENBENCH_DATA)")


def make_images(n: int, seed: int, size: int = 16, shift: float = 0.0) -> np.ndarray:
    """uint8 [n, size, size, 3] smooth random images; ``shift`` brightens them."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, (n, 4, 4, 3))
    up = base.repeat(size // 4, axis=1).repeat(size // 4, axis=2)
    noise = rng.normal(0, 0.05, up.shape)
    return np.clip((up + noise + shift) * 255, 0, 255).round().astype(np.uint8)


@pytest.fixture
def image_arrays(tmp_path):
    """Two .npy files of NHWC uint8 images: a reference set and a shifted 'generated' set."""
    ref, gen = tmp_path / "ref.npy", tmp_path / "gen.npy"
    np.save(ref, make_images(120, seed=0))
    np.save(gen, make_images(100, seed=1, shift=0.1))
    return gen, ref
