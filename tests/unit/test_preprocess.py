"""Resize policies against independent NumPy implementations of each library's formula."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench.errors import ConfigError
from genbench.features.preprocess import (
    DEFAULT_PREPROCESSING,
    PREPROCESSING,
    get_preprocessing,
    resize_pil_bicubic,
    resize_tf1_bilinear,
)


def _images(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8))


# --------------------------------------------------------------------------- independent references (float64)


def tf1_bilinear_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 resize_bilinear(align_corners=False, half_pixel_centers=False), loop form, [C, H, W].

    Source coordinates are float32 products ``i * float32(in / out)``, as in TF's kernel.
    """
    c, h, w = img.shape
    out = np.empty((c, out_h, out_w))
    for i in range(out_h):
        sy = float(np.float32(i) * np.float32(h / out_h))
        y0 = math.floor(sy)
        y1 = min(y0 + 1, h - 1)
        dy = sy - y0
        for j in range(out_w):
            sx = float(np.float32(j) * np.float32(w / out_w))
            x0 = math.floor(sx)
            x1 = min(x0 + 1, w - 1)
            dx = sx - x0
            top = img[:, y0, x0] * (1 - dx) + img[:, y0, x1] * dx
            bottom = img[:, y1, x0] * (1 - dx) + img[:, y1, x1] * dx
            out[:, i, j] = top * (1 - dy) + bottom * dy
    return out


def half_pixel_bilinear_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear with half-pixel centres and edge clamping (PyTorch align_corners=False), no antialias."""

    def axis(n_in: int, n_out: int):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    ylo, yhi, fy = axis(img.shape[1], out_h)
    xlo, xhi, fx = axis(img.shape[2], out_w)
    rows = img[:, ylo, :] * (1 - fy)[None, :, None] + img[:, yhi, :] * fy[None, :, None]
    return rows[:, :, xlo] * (1 - fx) + rows[:, :, xhi] * fx


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def pil_bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """PIL's resampling weights [n_out, n_in]: bicubic (a=-0.5) stretched by the scale when shrinking,
    window clipped to the image and renormalised (no edge replication)."""
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    weights = np.zeros((n_out, n_in))
    for o in range(n_out):
        centre = (o + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        taps = np.arange(lo, hi)
        k = _cubic((taps - centre + 0.5) / stretch)
        weights[o, lo:hi] = k / k.sum()
    return weights


def pil_bicubic_reference(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    wy = pil_bicubic_matrix(img.shape[1], out_h)
    wx = pil_bicubic_matrix(img.shape[2], out_w)
    return np.einsum("oh,chw,pw->cop", wy, img, wx)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("in_hw, out_hw", [((5, 7), (11, 13)), ((9, 10), (4, 3)), ((6, 6), (6, 6)), ((1, 4), (3, 2))])
def test_tf1_bilinear_matches_loop_reference(in_hw, out_hw):
    img = _images((2, *in_hw), seed=1).numpy().astype(np.float64)
    got = resize_tf1_bilinear(torch.from_numpy(img).float()[None], out_hw)[0].double().numpy()
    np.testing.assert_allclose(got, tf1_bilinear_reference(img, *out_hw), rtol=0, atol=1e-4)


def test_tf1_policy_normalises_after_resize():
    images = _images((2, 3, 8, 12), seed=2)
    got = get_preprocessing("tf1-bilinear")(images, 19).double().numpy()
    expected = np.stack([tf1_bilinear_reference(im.numpy().astype(np.float64), 19, 19) for im in images])
    np.testing.assert_allclose(got, (expected - 128) / 128, rtol=0, atol=1e-6)


def test_torch_bilinear_policy_matches_half_pixel_reference():
    images = _images((2, 3, 7, 10), seed=3)
    got = get_preprocessing("torch-bilinear")(images, 17).double().numpy()
    expected = np.stack([half_pixel_bilinear_reference(im.numpy() / 255.0, 17, 17) for im in images])
    # PyTorch computes source coordinates and weights in float32: ~1e-6 of a pixel position, i.e. up to a few
    # 1e-6 on the [-1, 1] scale next to a 0-255 edge (8.4e-7 seen); a wrong formula is off by 1e-2 or more.
    np.testing.assert_allclose(got, 2 * expected - 1, rtol=0, atol=5e-6)


@pytest.mark.parametrize("in_hw, out", [((8, 8), 21), ((40, 30), 13), ((13, 50), 29)])
def test_pil_bicubic_matches_weight_matrix_reference(in_hw, out):
    image = _images((3, *in_hw), seed=4)
    got = resize_pil_bicubic(image.numpy(), (out, out)).astype(np.float64)
    expected = np.clip(pil_bicubic_reference(image.numpy().astype(np.float64), out, out), 0, 255)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-3)
    policy = get_preprocessing("pil-bicubic")(image[None], out)[0].double().numpy()
    np.testing.assert_allclose(policy, (expected - 128) / 128, rtol=0, atol=2e-5)


def test_pil_bicubic_is_not_quantised_and_is_clipped():
    image = np.zeros((3, 6, 6), dtype=np.uint8)
    image[:, :, 3:] = 255  # a hard edge: bicubic overshoots and is clipped, values between are fractional
    out = resize_pil_bicubic(image, (6, 17))
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 255
    assert np.any(np.abs(out - np.round(out)) > 1e-3)


@pytest.mark.parametrize("name", ["tf1-bilinear", "torch-bilinear", "pil-bicubic"])
def test_same_size_is_identity_and_constant_stays_constant(name):
    policy = get_preprocessing(name)
    images = _images((2, 3, 9, 9), seed=5)
    if name == "torch-bilinear":
        assert torch.equal(policy(images, 9), 2 * (images.float() / 255) - 1)
    else:
        assert torch.equal(policy(images, 9), (images.float() - 128) / 128)
    constant = torch.full((1, 3, 5, 7), 77, dtype=torch.uint8)
    out = policy(constant, 13)
    assert out.shape == (1, 3, 13, 13) and out.dtype == torch.float32
    expected = (77 - 128) / 128 if name != "torch-bilinear" else 2 * (77 / 255) - 1
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_registry_default_and_unknown_name():
    assert DEFAULT_PREPROCESSING == "tf1-bilinear"
    assert get_preprocessing(None).name == "tf1-bilinear"
    assert PREPROCESSING.names() == ["pil-bicubic", "tf1-bilinear", "torch-bilinear"]
    for name in PREPROCESSING.names():
        assert get_preprocessing(name).name == name and get_preprocessing(name).summary
    assert get_preprocessing("clean").name == "pil-bicubic"  # clean-fid's mode names are aliases
    with pytest.raises(ConfigError, match=r"--preprocessing.*'pil-bicubc'.*did you mean 'pil-bicubic'"):
        get_preprocessing("pil-bicubc")


def test_policies_refuse_non_uint8():
    with pytest.raises(TypeError, match="uint8"):
        get_preprocessing("tf1-bilinear")(torch.zeros(1, 3, 4, 4), 8)


@pytest.mark.reference
def test_tf1_policy_is_bitwise_torch_fidelity():
    tf = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    for shape in [(3, 3, 32, 32), (2, 3, 17, 45), (1, 3, 400, 311)]:
        images = _images(shape, seed=6)
        theirs = tf.interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
        assert torch.equal(get_preprocessing("tf1-bilinear")(images, 299), (theirs - 128) / 128)
