"""Rows added with --add: a checkpoint is read by the board's own loader, and a board without one says so."""
from __future__ import annotations

import numpy as np
import pytest

from genbench import leaderboard as lb
from genbench.baselines import board, sample_images
from genbench.baselines.checkpoint import CHECKPOINT_DIR
from genbench.errors import ConfigError


def test_a_board_without_a_checkpoint_loader_refuses_a_checkpoint(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"--add mine=.*model\.pt: this board reads no checkpoints"):
        lb.added_row_spec(f"mine={ckpt}")


def test_the_fashion_mnist_board_samples_an_added_baseline_checkpoint():
    spec = lb.added_row_spec(f"mine={CHECKPOINT_DIR / 'dcgan.pt'}", board=board.BOARD)
    source = spec.make(5, 3)
    images = source.read_batch(0, len(source))
    assert spec.kind == "added" and images.shape == (5, 3, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0], sample_images("dcgan", 5, seed=3))  # gray, repeated
