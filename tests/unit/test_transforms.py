"""Transforms: identity at strength 0, seeded per index, and they do what they say."""
import numpy as np
import pytest

from genbench.errors import ConfigError
from genbench.sources.arrays import ArraySource
from genbench.sources.transforms import TRANSFORMS, TransformedSource, parse_transform
from tests.conftest import make_images


@pytest.fixture
def source():
    return ArraySource(make_images(6, seed=0, size=16))


@pytest.mark.parametrize("name", TRANSFORMS.names())
def test_strength_zero_is_identity_and_shape_is_kept(source, name):
    same = TransformedSource(source, [(name, 0.0)])
    np.testing.assert_array_equal(same.read_batch(0, 6), source.read_batch(0, 6))
    strong = TransformedSource(source, [(name, TRANSFORMS.get(name).strengths[-1])])
    out = strong.read_batch(0, 6)
    assert out.shape == (6, 3, 16, 16) and out.dtype == np.uint8


def test_random_transforms_depend_on_index_not_batching(source):
    noisy = TransformedSource(source, [("gaussian-noise", 20.0)], seed=3)
    whole = noisy.read_batch(0, 6)
    pieces = np.concatenate([noisy.read_batch(0, 2), noisy.read_batch(2, 6)])
    np.testing.assert_array_equal(whole, pieces)
    np.testing.assert_array_equal(whole[4], noisy.read(4))
    other_seed = TransformedSource(source, [("gaussian-noise", 20.0)], seed=4).read_batch(0, 6)
    assert not np.array_equal(whole, other_seed)


def test_noise_has_the_requested_spread():
    flat = ArraySource(np.full((4, 32, 32, 3), 128, np.uint8))
    noisy = TransformedSource(flat, [("gaussian-noise", 10.0)]).read_batch(0, 4).astype(float)
    assert noisy.std() == pytest.approx(10.0, rel=0.05)


def test_hflip_at_full_strength_mirrors(source):
    flipped = TransformedSource(source, [("hflip", 1.0)]).read(0)
    np.testing.assert_array_equal(flipped, source.read(0)[:, :, ::-1])


def test_parse_transform_checks_names_and_numbers():
    assert parse_transform("gaussian-blur=1.5") == ("gaussian-blur", 1.5)
    with pytest.raises(ConfigError, match="unknown transform"):
        parse_transform("swirl=1")
    with pytest.raises(ConfigError, match="NAME=STRENGTH"):
        parse_transform("jpeg=high")
