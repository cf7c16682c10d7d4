"""Dataset preparations against the published functions, re-written here as their sources spell them (PIL calls),
on seeded random images of odd sizes, to the pixel; and ``genbench prepare``'s files."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from genbench.cli.app import main
from genbench.errors import ConfigError
from genbench.sources.arrays import ArraySource
from genbench.sources.prep import PREPS, PreparedSource, check_prep

# --------------------------------------------------------------------------- the sources' functions


def adm_center_crop_arr(pil_image, image_size):
    """openai/guided-diffusion guided_diffusion/image_datasets.py center_crop_arr."""
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=PIL.Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=PIL.Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


def edm_center_crop(width, height, img):
    """NVlabs/edm dataset_tool.py make_transform center_crop."""
    crop = np.min(img.shape[:2])
    img = img[(img.shape[0] - crop) // 2: (img.shape[0] + crop) // 2,
              (img.shape[1] - crop) // 2: (img.shape[1] + crop) // 2]
    img = PIL.Image.fromarray(img, "RGB")
    img = img.resize((width, height), PIL.Image.Resampling.LANCZOS)
    return np.array(img)


def edm_scale(width, height, img):
    """NVlabs/edm dataset_tool.py make_transform scale (no --transform)."""
    w, h = img.shape[1], img.shape[0]
    if width == w and height == h:
        return img
    img = PIL.Image.fromarray(img)
    img = img.resize((width, height), PIL.Image.Resampling.LANCZOS)
    return np.array(img)


def edm2_center_crop_imagenet(image_size, arr):
    """NVlabs/edm2 dataset_tool.py make_transform center_crop_imagenet (center-crop-dhariwal)."""
    pil_image = PIL.Image.fromarray(arr)
    while min(*pil_image.size) >= 2 * image_size:
        new_size = tuple(x // 2 for x in pil_image.size)
        pil_image = pil_image.resize(new_size, resample=PIL.Image.Resampling.BOX)
    scale = image_size / min(*pil_image.size)
    new_size = tuple(round(x * scale) for x in pil_image.size)
    pil_image = pil_image.resize(new_size, resample=PIL.Image.Resampling.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]


REFERENCE = {
    "adm-center-crop": lambda img, r: adm_center_crop_arr(PIL.Image.fromarray(img).convert("RGB"), r),
    "edm-center-crop": lambda img, r: edm_center_crop(r, r, img),
    "edm-lanczos": lambda img, r: edm_scale(r, r, img),
    "edm2-center-crop-dhariwal": lambda img, r: edm2_center_crop_imagenet(r, img),
}
SIZES = [(37, 53), (101, 67), (129, 129), (16, 16), (75, 200), (13, 9)]


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = 128 + 80 * np.sin(xx[..., None] / 5.0 + yy[..., None] / 7.0 + rng.uniform(0, 6, 3))
    return np.clip(smooth + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("resolution", [16, 32])
def test_preparation_equals_its_source_to_the_pixel(name, resolution):
    assert set(PREPS.names()) == set(REFERENCE)
    for i, (h, w) in enumerate(SIZES):
        img = _image(h, w, seed=100 * i + resolution)
        expected = REFERENCE[name](img, resolution)
        ours = PREPS.get(name).apply(img, resolution)
        assert ours.dtype == np.uint8 and ours.shape == (resolution, resolution, 3), (name, h, w)
        assert np.array_equal(ours, expected), (name, h, w, resolution)
        # through a source: [3, H, W] in, [3, R, R] out
        src = PreparedSource(ArraySource(img[None], layout="NHWC"), name, resolution)
        assert np.array_equal(src.read(0), expected.transpose(2, 0, 1))


def test_adm_and_edm_center_crops_differ():
    img = _image(101, 67, seed=1)
    assert not np.array_equal(PREPS.get("adm-center-crop").apply(img, 32), PREPS.get("edm-center-crop").apply(img, 32))


def test_options_go_together():
    assert check_prep(None, None) is None
    with pytest.raises(ConfigError, match="go together"):
        check_prep("adm-center-crop", None)
    with pytest.raises(ConfigError, match="adm-center-crop, edm-center-crop"):
        check_prep("center", 32)


def test_prepare_writes_zip_and_npz_and_refuses_overwrite(tmp_path):
    images = np.stack([_image(41, 30, s) for s in range(3)])
    np.savez(tmp_path / "src.npz", images=images)
    runner = CliRunner()
    for out in ("out.npz", "out.zip"):
        res = runner.invoke(main, ["prepare", str(tmp_path / "src.npz"), "--prep", "edm-center-crop", "--resolution",
                                   "16", "-o", str(tmp_path / out), "-q"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    expected = np.stack([edm_center_crop(16, 16, im) for im in images])
    with np.load(tmp_path / "out.npz", allow_pickle=False) as f:
        assert np.array_equal(f["arr_0"], expected)
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        assert names == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png"]
        for name, want in zip(names, expected):
            assert np.array_equal(np.array(PIL.Image.open(io.BytesIO(zf.read(name)))), want)
        assert json.loads(zf.read("dataset.json")) == {"labels": None}
    res = runner.invoke(main, ["prepare", str(tmp_path / "src.npz"), "--prep", "edm-center-crop", "--resolution", "16",
                               "-o", str(tmp_path / "out.npz")])
    assert res.exit_code == 2 and "--overwrite" in res.stderr
    res = runner.invoke(main, ["prepare", str(tmp_path / "src.npz"), "--prep", "nope", "--resolution", "16",
                               "-o", str(tmp_path / "x.npz")])
    assert res.exit_code == 2 and "adm-center-crop" in res.stderr


def test_stats_record_the_preparation_and_a_protocol_refuses_another(tmp_path):
    from genbench.stats.io import load_stats

    images = np.stack([_image(41, 30, s) for s in range(6)])
    np.savez(tmp_path / "src.npz", images=images)
    runner = CliRunner()
    res = runner.invoke(main, ["stats", str(tmp_path / "src.npz"), "--prep", "edm-lanczos", "--resolution", "16",
                               "--extractor", "test-tiny", "-o", str(tmp_path / "s.npz"), "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    meta = load_stats(tmp_path / "s.npz").meta
    assert (meta["prep"], meta["resolution"], meta["n"]) == ("edm-lanczos", 16, 6)
    res = runner.invoke(main, ["stats", str(tmp_path / "src.npz"), "--prep", "edm-center-crop", "--resolution", "16",
                               "--protocol", "adm", "-o", str(tmp_path / "t.npz"), "-q"])
    assert res.exit_code == 2 and "--prep edm-center-crop contradicts --protocol adm" in res.stderr
