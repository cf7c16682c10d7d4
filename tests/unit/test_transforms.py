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


# ----------------------------------------------------------------------------- each transform at full strength


def _full(name: str) -> float:
    return TRANSFORMS.get(name).strengths[-1]


def _apply(name: str, images_chw: np.ndarray, strength: float | None = None, seed: int = 0) -> np.ndarray:
    src = ArraySource(np.ascontiguousarray(images_chw.transpose(0, 2, 3, 1)))
    return TransformedSource(src, [(name, _full(name) if strength is None else strength)], seed=seed).read_batch(
        0, len(images_chw))


def _grating(period: int, size: int = 64) -> np.ndarray:
    """uint8 [1, 3, size, size]: a vertical cosine grating, 128 +- 100, ``period`` pixels per cycle."""
    row = 128 + 100 * np.cos(2 * np.pi * np.arange(size) / period)
    return np.broadcast_to(row, (1, 3, size, size)).round().astype(np.uint8).copy()


def _amplitude(image_chw: np.ndarray, period: int) -> float:
    """Amplitude of the grating's frequency along the middle row of channel 0."""
    row = image_chw[0, image_chw.shape[1] // 2].astype(np.float64)
    return float(np.abs(np.fft.rfft(row - row.mean()))[len(row) // period])


@pytest.mark.parametrize("period", [8, 32])
def test_blur_attenuates_each_frequency_by_the_gaussian_factor(period):
    # A Gaussian of std sigma multiplies frequency f (cycles per pixel) by exp(-2 pi^2 sigma^2 f^2); PIL's blur is
    # a repeated box filter approximating it (within 5% here).
    sigma = _full("gaussian-blur")
    assert sigma == 2.0
    image = _grating(period)
    out = _apply("gaussian-blur", image)[0]
    expected = np.exp(-2 * np.pi**2 * sigma**2 / period**2)  # 0.29 at period 8, 0.93 at period 32
    assert _amplitude(out, period) / _amplitude(image[0], period) == pytest.approx(expected, rel=0.06)
    assert out.astype(float).mean() == pytest.approx(image.astype(float).mean(), abs=1.0)  # frequency 0 is kept


def test_shift_moves_every_pixel_by_one_offset_within_the_strength():
    k = int(_full("shift"))
    images = np.random.default_rng(5).integers(0, 256, size=(20, 3, 16, 16), dtype=np.uint8)  # noise: unique match
    out = _apply("shift", images)
    offsets = []
    for image, moved in zip(images, out):
        inner = moved[:, k:-k, k:-k]  # pixels that come from inside the image whatever the offset
        found = [(dy, dx) for dy in range(-k, k + 1) for dx in range(-k, k + 1)
                 if np.array_equal(inner, image[:, k + dy : 16 - k + dy, k + dx : 16 - k + dx])]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 5 and any(dy or dx for dy, dx in offsets)  # random directions, not all in place


def test_jpeg_at_its_strongest_changes_pixels_within_bounds():
    grey = make_images(6, seed=0, size=32)[..., :1].repeat(3, axis=-1).transpose(0, 3, 1, 2)
    strong = _apply("jpeg", grey).astype(float)  # quality 10
    mild = _apply("jpeg", grey, 90).astype(float)
    error = np.abs(strong - grey).mean(axis=(1, 2, 3))
    assert _full("jpeg") == 10
    assert np.all((error > 4) & (error < 20))  # about 10 levels on these images: changed, and still the image
    assert np.all(error > np.abs(mild - grey).mean(axis=(1, 2, 3)))
    assert np.abs(strong.mean(axis=(1, 2, 3)) - grey.mean(axis=(1, 2, 3))).max() < 3  # brightness kept
    assert np.all(strong[:, 0] == strong[:, 1]) and np.all(strong[:, 1] == strong[:, 2])  # grey stays grey


def test_downscale_upscale_removes_the_finest_detail_and_keeps_flat_areas():
    checker = np.broadcast_to((np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8), (1, 3, 16, 16)).copy()
    out = _apply("downscale-upscale", checker).astype(float)  # 16 -> 3 -> 16 pixels
    assert checker.std() == pytest.approx(127.5) and out.std() < 5 and out.mean() == pytest.approx(127.5, abs=2)
    flat = np.full((1, 3, 16, 16), 77, np.uint8)
    np.testing.assert_array_equal(_apply("downscale-upscale", flat), flat)


def test_center_crop_keeps_only_the_centre():
    # strength 0.4 crops round(16 * 0.4 / 2) = 3 pixels from each side: a 3-pixel white frame disappears entirely.
    framed = np.full((1, 3, 16, 16), 255, np.uint8)
    framed[:, :, 3:13, 3:13] = 0
    np.testing.assert_array_equal(_apply("center-crop", framed), np.zeros_like(framed))


def test_brightness_adds_its_fraction_of_full_scale_and_clips():
    images = make_images(6, seed=2, size=16).transpose(0, 3, 1, 2)
    out = _apply("brightness", images)
    np.testing.assert_array_equal(out, np.minimum(images.astype(int) + round(0.4 * 255), 255))


def test_noise_at_its_strongest_has_the_spread_of_clipped_gaussian_noise():
    flat = np.full((4, 3, 64, 64), 128, np.uint8)
    noisy = _apply("gaussian-noise", flat).astype(float)
    clipped = np.clip(np.rint(128 + np.random.default_rng(99).normal(0, 64, 10**6)), 0, 255)
    assert noisy.std() == pytest.approx(clipped.std(), rel=0.02) and noisy.mean() == pytest.approx(128, abs=1)


def test_hflip_at_full_strength_flips_every_image(source):
    np.testing.assert_array_equal(_apply("hflip", source.read_batch(0, 6)), source.read_batch(0, 6)[:, :, :, ::-1])


def test_every_transform_has_a_full_strength_test():
    tested = {"gaussian-blur", "shift", "jpeg", "downscale-upscale", "center-crop", "brightness", "gaussian-noise",
              "hflip"}
    assert set(TRANSFORMS.names()) == tested


def test_parse_transform_checks_names_and_numbers():
    assert parse_transform("gaussian-blur=1.5") == ("gaussian-blur", 1.5)
    with pytest.raises(ConfigError, match="unknown transform"):
        parse_transform("swirl=1")
    with pytest.raises(ConfigError, match="NAME=STRENGTH"):
        parse_transform("jpeg=high")
