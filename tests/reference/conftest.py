"""Fixtures for the Inception cross-checks: one seeded random weights file and a few seeded images."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from genbench.features.inception import random_state_dict

WEIGHTS_SEED = 20240611


@pytest.fixture(scope="session")
def inception_state() -> dict[str, torch.Tensor]:
    """Seeded random Inception weights with O(1) activations (see random_state_dict)."""
    return random_state_dict(WEIGHTS_SEED)


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory: pytest.TempPathFactory, inception_state) -> tuple[Path, str]:
    """(path, sha256) of the random weights saved with torch.save, as pytorch-fid's file is."""
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(inception_state, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def small_images() -> torch.Tensor:
    """Four seeded uint8 [4, 3, 32, 32] images: smooth blobs plus noise, so resizing matters."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    images = []
    for _ in range(4):
        phase = rng.uniform(0, 2 * np.pi, size=(3, 1, 1))
        freq = rng.uniform(1, 6, size=(3, 1, 1))
        smooth = 127.5 + 100 * np.sin(freq * (xx + 0.7 * yy)[None] * np.pi + phase)
        noisy = smooth + rng.normal(0, 25, size=(3, 32, 32))
        images.append(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(images))


@pytest.fixture(scope="session")
def large_image() -> torch.Tensor:
    """One seeded uint8 [3, 299, 299] image (no resize needed)."""
    rng = np.random.default_rng(11)
    return torch.from_numpy(rng.integers(0, 256, size=(3, 299, 299), dtype=np.uint8))


def _max_relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Largest per-row ||ours - theirs||_inf / ||theirs||_inf over [B, D] tensors."""
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    ours, theirs = ours.double(), theirs.double()
    per_row = (ours - theirs).abs().amax(dim=1) / theirs.abs().amax(dim=1)
    return float(per_row.max())


@pytest.fixture(scope="session")
def rel_err():
    """The per-image relative error function used by the parity tests."""
    return _max_relative_error
