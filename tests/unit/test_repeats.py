"""Sources that repeat images say so: subsets, arrays, transformed sources and translation generators;
scoring warns, the leaderboard refuses."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from genbench.evaluate import repeats_message, warn_repeats
from genbench.sources.arrays import ArraySource
from genbench.sources.subset import SubsetSource
from genbench.sources.transforms import TransformedSource


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def test_distinct_sources_report_no_repeats():
    base = ArraySource(images(10))
    assert base.repeats() == 0
    assert SubsetSource(base, np.arange(10)[::-1]).repeats() == 0
    assert repeats_message(base) is None


def test_repeated_content_and_repeated_indices_are_counted():
    x = images(6)
    x[4] = x[1]
    x[5] = x[1]
    base = ArraySource(x, name="dup.npz")
    assert base.repeats() == 2
    assert SubsetSource(ArraySource(images(5)), np.array([0, 1, 1, 2, 0])).repeats() == 2
    assert TransformedSource(base, [("hflip", 1.0)], seed=0).repeats() == 2
    message = repeats_message(base)
    assert message is not None and "dup.npz" in message and "2 of 6 images repeat" in message


def test_scoring_a_repeating_source_warns():
    x = images(4)
    x[3] = x[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_repeats(ArraySource(x, name="mine"))
    assert any("1 of 4 images repeat" in str(w.message) for w in caught)


def test_translation_model_repeats_beyond_its_sources():
    torch = pytest.importorskip("torch")
    from genbench.baselines.families.cyclegan import CycleGAN

    family = CycleGAN.__new__(CycleGAN)
    family.sources = torch.zeros(7, 28, 28, dtype=torch.uint8)
    family.options = type("O", (), {"domain_b": 5})()
    assert family.distinct_samples() == 7
    few = family.draw(7, torch.Generator().manual_seed(0))
    many = family.draw(10, torch.Generator().manual_seed(0))
    assert family.repeated_samples(few) == 0 and sorted(few["source"].tolist()) == list(range(7))
    assert family.repeated_samples(many) == 3
