"""Image sources: pixel formats, folders, archives, arrays and the resolver.

Every expectation is computed independently of the code under test: known pixel values written with
Pillow/numpy and read back, palettes resolved by indexing the palette (and by Pillow's own convert),
16-bit scaling by exact rational arithmetic.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.errors import ConfigError, InputError
from genbench.sources import (
    ArraySource,
    FolderSource,
    TarSource,
    ZipSource,
    array_to_rgb_uint8_batch,
    as_source,
    is_feature_file,
    open_source,
    pil_to_rgb_uint8,
)
from genbench.sources.convert import scale_uint16_to_uint8

H, W = 5, 7  # no side of size 1, 3 or 4, so NCHW/NHWC are never ambiguous


def rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def chw(hwc: np.ndarray) -> np.ndarray:
    return hwc.transpose(2, 0, 1)


def grey3(grey: np.ndarray) -> np.ndarray:
    return np.stack([grey, grey, grey])


def round_16_to_8(v: int) -> int:
    """Independent reference: round(v * 255 / 65535) in exact rationals (no ties occur)."""
    return int(Fraction(v * 255, 65535) + Fraction(1, 2))


def save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def read_one(path: Path) -> np.ndarray:
    src = FolderSource(path.parent)
    return src.read(src.names.index(path.name))


# ---------------------------------------------------------------------------- pixel formats via files


def test_rgb_png_roundtrip(tmp_path):
    a = rgb(0)
    out = read_one(save(Image.fromarray(a), tmp_path / "x.png"))
    assert out.dtype == np.uint8 and out.shape == (3, H, W)
    np.testing.assert_array_equal(out, chw(a))


def test_grayscale_png_repeated(tmp_path):
    g = rgb(1)[..., 0]
    out = read_one(save(Image.fromarray(g, mode="L"), tmp_path / "g.png"))
    np.testing.assert_array_equal(out, grey3(g))


def test_one_bit_png(tmp_path):
    bits = np.random.default_rng(2).integers(0, 2, size=(H, W)).astype(bool)
    img = Image.fromarray(bits)
    assert img.mode == "1"
    out = read_one(save(img, tmp_path / "b.png"))
    np.testing.assert_array_equal(out, grey3(np.where(bits, 255, 0).astype(np.uint8)))


def test_rgba_png_alpha_dropped_not_composited(tmp_path):
    a = rgb(3)
    alpha = np.random.default_rng(4).integers(0, 256, size=(H, W, 1), dtype=np.uint8)
    alpha[0, 0] = 0  # fully transparent pixel keeps its stored colour
    out = read_one(save(Image.fromarray(np.concatenate([a, alpha], -1), mode="RGBA"), tmp_path / "a.png"))
    np.testing.assert_array_equal(out, chw(a))


def test_la_png(tmp_path):
    g = rgb(5)[..., 0]
    la = np.stack([g, 255 - g], -1)
    out = read_one(save(Image.fromarray(la, mode="LA"), tmp_path / "la.png"))
    np.testing.assert_array_equal(out, grey3(g))


def test_palette_png_matches_palette_and_pillow(tmp_path):
    rng = np.random.default_rng(6)
    palette = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    idx = rng.integers(0, 16, size=(H, W), dtype=np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette(palette.flatten().tolist())
    path = save(img, tmp_path / "p.png", transparency=3)
    out = read_one(path)
    np.testing.assert_array_equal(out, chw(palette[idx]))
    with Image.open(path) as ref:
        assert ref.mode == "P"
        np.testing.assert_array_equal(out, chw(np.asarray(ref.convert("RGB"))))


def test_palette_with_alpha_in_memory():
    rng = np.random.default_rng(7)
    palette = rng.integers(0, 256, size=(8, 3), dtype=np.uint8)
    idx = rng.integers(0, 8, size=(H, W), dtype=np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette(palette.flatten().tolist())
    pa = img.convert("PA")
    assert pa.mode == "PA"
    np.testing.assert_array_equal(pil_to_rgb_uint8(pa, "pa"), chw(palette[idx]))


def test_16bit_png_scaled_with_rounding(tmp_path):
    values = np.array(
        [0, 65535, 128, 129, 257, 32767, 32768, 1000, 65534, 514, 383, 384, 12345, 40000], dtype=np.uint16
    )
    v = np.resize(values, H * W).reshape(H, W)
    path = save(Image.fromarray(v), tmp_path / "d.png")
    with Image.open(path) as im:
        assert im.mode == "I;16"
    expected = np.vectorize(round_16_to_8)(v.astype(np.int64)).astype(np.uint8)
    np.testing.assert_array_equal(read_one(path), grey3(expected))
    assert expected[0, 0] == 0 and expected[0, 1] == 255 and expected[0, 4] == 1  # 257 -> 1


def test_16bit_tiff(tmp_path):
    v = np.random.default_rng(8).integers(0, 65536, size=(H, W)).astype(np.uint16)
    out = read_one(save(Image.fromarray(v), tmp_path / "d.tif"))
    np.testing.assert_array_equal(out, grey3(np.vectorize(round_16_to_8)(v.astype(np.int64)).astype(np.uint8)))


def test_16bit_big_endian_and_int_modes():
    v = np.array([[0, 257, 65535, 1000, 129]], dtype=np.uint16)
    expected = grey3(np.array([[0, 1, 255, 4, 1]], dtype=np.uint8))
    big = Image.frombytes("I;16B", (5, 1), v.astype(">u2").tobytes())
    np.testing.assert_array_equal(pil_to_rgb_uint8(big, "big"), expected)
    as_int = Image.fromarray(v.astype(np.int32))
    assert as_int.mode == "I"
    np.testing.assert_array_equal(pil_to_rgb_uint8(as_int, "i"), expected)
    with pytest.raises(InputError, match=r"toolarge.*0, 65535"):
        pil_to_rgb_uint8(Image.fromarray(np.array([[70000]], dtype=np.int32)), "toolarge")
    with pytest.raises(InputError, match=r"neg.*\[-1"):
        pil_to_rgb_uint8(Image.fromarray(np.array([[-1, 5]], dtype=np.int32)), "neg")


def test_float_mode_refused():
    with pytest.raises(InputError, match="flt.*float"):
        pil_to_rgb_uint8(Image.fromarray(np.zeros((H, W), dtype=np.float32)), "flt")


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "HSV", "RGBX"])
def test_other_colour_modes_follow_pillow(mode):
    img = Image.fromarray(rgb(9)).convert(mode)
    np.testing.assert_array_equal(pil_to_rgb_uint8(img, mode), chw(np.asarray(img.convert("RGB"))))


def test_cmyk_jpeg_file(tmp_path):
    img = Image.fromarray(rgb(10, 16, 16)).convert("CMYK")
    path = save(img, tmp_path / "c.jpg", quality=95)
    with Image.open(path) as ref:
        assert ref.mode == "CMYK"
        expected = chw(np.asarray(ref.convert("RGB")))
    np.testing.assert_array_equal(read_one(path), expected)


def test_jpeg_close_to_original(tmp_path):
    # a smooth image survives JPEG at quality 100 within a few levels
    y, x = np.mgrid[0:16, 0:16]
    a = np.stack([x * 8, y * 8, (x + y) * 4], -1).astype(np.uint8)
    path = save(Image.fromarray(a), tmp_path / "j.jpeg", quality=100, subsampling=0)
    out = read_one(path)
    assert np.abs(out.astype(int) - chw(a).astype(int)).max() <= 3
    with Image.open(path) as ref:
        np.testing.assert_array_equal(out, chw(np.asarray(ref.convert("RGB"))))


@pytest.mark.parametrize("name,kw", [("w.webp", {"lossless": True}), ("b.bmp", {}), ("t.tiff", {}), ("t2.TIF", {})])
def test_lossless_formats_exact(tmp_path, name, kw):
    a = rgb(11)
    np.testing.assert_array_equal(read_one(save(Image.fromarray(a), tmp_path / name, **kw)), chw(a))


# ---------------------------------------------------------------------------- folders


def make_tree(root: Path) -> dict[str, np.ndarray]:
    """A nested folder of PNGs plus non-image files; returns relative path -> expected [3,H,W]."""
    expected = {}
    for i, rel in enumerate(["b/2.png", "a/10.png", "a/9.png", "c.png", "a/sub/z.PNG", "B.png"]):
        a = rgb(100 + i)
        save(Image.fromarray(a), root / rel)
        expected[rel] = chw(a)
    (root / "notes.txt").write_text("hello")
    (root / "a" / "labels.csv").write_text("x,y\n")
    (root / "a" / "sub" / "README").write_text("no extension")
    return dict(sorted(expected.items()))


def test_folder_nested_sorted_and_skipped(tmp_path):
    expected = make_tree(tmp_path)
    src = FolderSource(tmp_path)
    assert src.names == ["B.png", "a/10.png", "a/9.png", "a/sub/z.PNG", "b/2.png", "c.png"]
    assert [src.key(i) for i in range(len(src))] == src.names
    assert src.skipped == 3
    assert len(src) == 6 and not src.has_labels and src.labels() is None
    batch = src.read_batch(0, len(src))
    np.testing.assert_array_equal(batch, np.stack(list(expected.values())))
    assert src.info().to_dict() == {"kind": "folder", "location": str(tmp_path), "n": 6}


def test_folder_fingerprint_tracks_files(tmp_path):
    make_tree(tmp_path)
    fp = FolderSource(tmp_path).fingerprint()
    assert fp == FolderSource(tmp_path).fingerprint() and len(fp) == 64
    (tmp_path / "notes.txt").write_text("non-images do not count")
    assert FolderSource(tmp_path).fingerprint() == fp
    target = tmp_path / "c.png"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert FolderSource(tmp_path).fingerprint() != fp


def test_empty_folder_names_folder_and_skipped(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text("{}")
    with pytest.raises(InputError, match=rf"{tmp_path}.*no images.*2 other file"):
        FolderSource(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        FolderSource(tmp_path / "a.txt")


def test_text_file_named_png(tmp_path):
    save(Image.fromarray(rgb(0)), tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("this is not a picture")
    src = FolderSource(tmp_path)
    with pytest.raises(InputError, match=r"bad\.png: cannot decode image \(not a recognised image format\)"):
        src.read(src.names.index("bad.png"))


@pytest.mark.parametrize("name,kw,keep", [("t.png", {}, 0.6), ("t.jpg", {"quality": 90}, 0.6)])
def test_truncated_files(tmp_path, name, kw, keep):
    noise = np.random.default_rng(12).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG" if name.endswith("png") else "JPEG", **kw)
    data = buf.getvalue()
    (tmp_path / name).write_bytes(data[: int(len(data) * keep)])
    src = FolderSource(tmp_path)
    with pytest.raises(InputError, match=rf"{name}: cannot decode image"):
        src.read(0)


def test_mixed_sizes_give_list(tmp_path):
    save(Image.fromarray(rgb(0, 5, 7)), tmp_path / "a.png")
    save(Image.fromarray(rgb(1, 6, 9)), tmp_path / "b.png")
    out = FolderSource(tmp_path).read_batch(0, 2)
    assert isinstance(out, list) and [o.shape for o in out] == [(3, 5, 7), (3, 6, 9)]
    np.testing.assert_array_equal(out[1], chw(rgb(1, 6, 9)))


# ---------------------------------------------------------------------------- archives


def build_archives(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    tree = tmp_path / "tree"
    expected = make_tree(tree)
    return tree, expected


def write_zip(tree: Path, path: Path, extra: bool = True) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(tree.rglob("*"), reverse=True):  # stored out of order on purpose
            zf.write(f, f.relative_to(tree).as_posix())
        if extra:
            zf.writestr("__MACOSX/._c.png", b"resource fork")
    return path


def write_tar(tree: Path, path: Path, mode: str) -> Path:
    with tarfile.open(path, mode) as tf:
        for f in sorted(tree.rglob("*"), reverse=True):
            tf.add(f, f.relative_to(tree).as_posix(), recursive=False)
        link = tarfile.TarInfo("link.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "c.png"
        tf.addfile(link)
    return path


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tbz2", "w:bz2"), (".tar.xz", "w:xz")])
def test_tar_equals_folder(tmp_path, suffix, mode):
    tree, expected = build_archives(tmp_path)
    folder = FolderSource(tree)
    src = TarSource(write_tar(tree, tmp_path / f"imgs{suffix}", mode))
    assert src.compressed == (mode != "w")
    assert src.names == folder.names == list(expected)
    assert src.skipped == 3 + 3 + 1  # non-image files, directories (a, a/sub, b), the link
    np.testing.assert_array_equal(src.read_batch(0, len(src)), folder.read_batch(0, len(folder)))
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone.read(2), expected[src.names[2]])
    assert clone.fingerprint() == src.fingerprint()


def test_zip_equals_folder_and_pickles(tmp_path):
    tree, expected = build_archives(tmp_path)
    src = ZipSource(write_zip(tree, tmp_path / "imgs.zip"))
    assert src.names == list(expected)
    assert src.skipped == 3 + 3 + 1  # non-image files, directory entries (a, a/sub, b), the __MACOSX member
    src.read(0)  # opens the handle
    clone = pickle.loads(pickle.dumps(src))
    assert clone._handle is None
    np.testing.assert_array_equal(clone.read_batch(0, len(clone)), np.stack(list(expected.values())))
    assert [clone.key(i) for i in range(len(clone))] == list(expected)


def test_archive_fingerprint_and_errors(tmp_path):
    tree, _ = build_archives(tmp_path)
    a = write_zip(tree, tmp_path / "a.zip")
    fp = ZipSource(a).fingerprint()
    assert fp == ZipSource(a).fingerprint()
    b = write_zip(tree, tmp_path / "b.zip", extra=False)
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))
    assert ZipSource(b).fingerprint() != fp  # different size
    (tmp_path / "junk.zip").write_text("not a zip")
    with pytest.raises(InputError, match=r"junk\.zip: cannot open as a zip"):
        ZipSource(tmp_path / "junk.zip")
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(InputError, match=r"junk\.tar\.gz: cannot read as a tar"):
        TarSource(tmp_path / "junk.tar.gz")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(InputError, match=r"empty\.zip: archive holds no image.*1 other member"):
        ZipSource(tmp_path / "empty.zip")


def test_archive_corrupt_member_and_odd_names(tmp_path):
    path = tmp_path / "odd.tar"
    png = io.BytesIO()
    Image.fromarray(rgb(0)).save(png, format="PNG")
    with tarfile.open(path, "w") as tf:
        for name, data in [("/abs/x.png", png.getvalue()), ("../up.png", b"not an image")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    src = TarSource(path)
    assert src.names == ["../up.png", "/abs/x.png"]
    np.testing.assert_array_equal(src.read(1), chw(rgb(0)))
    with pytest.raises(InputError, match=r"odd\.tar::\.\./up\.png: cannot decode"):
        src.read(0)


def test_compressed_tar_cache_limit(tmp_path):
    tree, _ = build_archives(tmp_path)
    path = write_tar(tree, tmp_path / "x.tgz", "w:gz")
    with pytest.raises(InputError, match="held in memory"):
        TarSource(path, max_cache_bytes=100)


# ---------------------------------------------------------------------------- arrays


def test_array_layouts_and_dtypes():
    rng = np.random.default_rng(13)
    nhwc = rng.integers(0, 256, size=(2, H, W, 3), dtype=np.uint8)
    nchw = nhwc.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(nhwc, "x"), nchw)
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(nchw.copy(), "x"), nchw)
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(torch.from_numpy(nhwc), "x"), nchw)
    grey = nhwc[..., 0]
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(grey, "g"), np.stack([grey] * 3, 1))
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(grey[:, None], "g"), np.stack([grey] * 3, 1))
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(grey[..., None], "g"), np.stack([grey] * 3, 1))
    rgba = np.concatenate([nhwc, np.zeros((2, H, W, 1), np.uint8)], -1)
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(rgba, "a"), nchw)
    out = array_to_rgb_uint8_batch(nhwc, "x")
    assert out.flags.c_contiguous and out.dtype == np.uint8


def test_float_and_uint16_arrays():
    x = np.array([0.0, 1.0, 0.5, 0.25, 1 / 255, 0.5 / 255, 0.7 / 255, 0.9999], dtype=np.float64)
    imgs = np.broadcast_to(np.resize(x, H * W).reshape(1, H, W), (2, H, W)).copy()
    expected = np.array([round(Fraction(float(v)) * 255) for v in np.resize(x, H * W)], dtype=np.uint8)
    expected = np.broadcast_to(expected.reshape(1, 1, H, W), (2, 3, H, W))
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(imgs, "f"), expected)  # Python round: half to even
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(torch.tensor(imgs, dtype=torch.float64), "f"), expected)
    assert array_to_rgb_uint8_batch(torch.ones(2, 3, H, W, dtype=torch.bfloat16), "b").min() == 255
    u16 = np.resize(np.array([0, 65535, 129, 128, 40000], np.uint16), 2 * H * W).reshape(2, H, W)
    expected16 = np.vectorize(round_16_to_8)(u16.astype(np.int64)).astype(np.uint8)
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(u16, "u"), np.stack([expected16] * 3, 1))
    np.testing.assert_array_equal(scale_uint16_to_uint8(np.arange(0, 65536, 257, dtype=np.uint16)), np.arange(256))


@pytest.mark.parametrize("bad", [1.5, -0.01, float("nan"), float("inf")])
def test_float_out_of_range_refused(bad):
    x = np.full((2, 3, H, W), 0.5, dtype=np.float32)
    x[1, 0, 0, 0] = bad
    with pytest.raises(InputError, match=r"myimgs: float images must lie in \[0, 1\].*; 1 of 210 values"):
        array_to_rgb_uint8_batch(x, "myimgs")


@pytest.mark.parametrize(
    "shape,dtype,pattern",
    [
        ((2, 3, 4, 4), np.uint8, "ambiguous shape"),
        ((3, 8, 8), np.uint8, "ambiguous 3-d shape"),
        ((8, 8, 3), np.uint8, "ambiguous 3-d shape"),
        ((2, 5, H, W), np.uint8, "no channel axis"),
        ((2, 3, H, W, 1), np.uint8, "5-d"),
        ((2, 3, H, W), np.int64, "must be uint8, uint16 or float"),
        ((2, 3, H, W), np.bool_, "must be uint8, uint16 or float"),
    ],
)
def test_bad_arrays(shape, dtype, pattern):
    with pytest.raises(InputError, match=pattern):
        array_to_rgb_uint8_batch(np.zeros(shape, dtype=dtype), "arr")


def test_layout_override_settles_ambiguity():
    x = np.random.default_rng(14).integers(0, 256, size=(2, 3, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(x, "x", layout="NCHW"), x)
    np.testing.assert_array_equal(array_to_rgb_uint8_batch(x, "x", layout="NHWC"), x[..., :3].transpose(0, 3, 1, 2))
    g = np.zeros((3, 8, 8), np.uint8)
    assert array_to_rgb_uint8_batch(g, "g", layout="NHW").shape == (3, 3, 8, 8)
    with pytest.raises(InputError, match="unknown layout"):
        array_to_rgb_uint8_batch(x, "x", layout="CHW")


def test_array_source_in_memory_with_labels():
    x = np.random.default_rng(15).integers(0, 256, size=(6, H, W, 3), dtype=np.uint8)
    src = ArraySource(torch.from_numpy(x), labels=[0, 1, 2, 0, 1, 2])
    assert len(src) == 6 and src.has_labels and src.label(4) == 1 and src.key(3) == "3"
    np.testing.assert_array_equal(src.read(5), x[5].transpose(2, 0, 1))
    np.testing.assert_array_equal(src.read_batch(1, 4), x[1:4].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(src.labels(), [0, 1, 2, 0, 1, 2])
    assert src.fingerprint() == ""
    with pytest.raises(InputError, match=r"labels of shape \[6\]"):
        ArraySource(x, labels=[1, 2])
    with pytest.raises(InputError, match="no images"):
        ArraySource(np.zeros((0, 3, H, W), np.uint8))


@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
def test_npy_files(tmp_path, layout):
    rng = np.random.default_rng(16)
    base = rng.integers(0, 256, size=(5, 3, H, W), dtype=np.uint8)
    arr = {"NCHW": base, "NHWC": base.transpose(0, 2, 3, 1), "NHW": base[:, 0]}[layout]
    np.save(tmp_path / "x.npy", np.ascontiguousarray(arr))
    src = open_source(tmp_path / "x.npy")
    assert isinstance(src, ArraySource) and src.layout == layout and src.key(2) == "2"
    expected = base if layout != "NHW" else np.repeat(base[:, :1], 3, axis=1)
    np.testing.assert_array_equal(src.read_batch(0, 5), expected)
    clone = pickle.loads(pickle.dumps(src))
    assert clone._images is None  # the memory map is not pickled
    np.testing.assert_array_equal(clone.read(3), expected[3])
    assert len(src.fingerprint()) == 64


def test_npz_files(tmp_path):
    x = np.random.default_rng(17).integers(0, 256, size=(4, H, W, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=x, labels=np.array([3, 1, 4, 1]))
    src = open_source(tmp_path / "a.npz")
    np.testing.assert_array_equal(src.read_batch(0, 4), x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(src.labels(), [3, 1, 4, 1])
    np.savez(tmp_path / "b.npz", arr_0=x, other=np.zeros(2))
    with pytest.raises(InputError, match=r"b\.npz: expected an array named 'images'.*keys found: arr_0, other"):
        open_source(tmp_path / "b.npz")
    np.savez(tmp_path / "f.npz", features=np.zeros((4, 8), np.float32))
    with pytest.raises(InputError, match="precomputed feature file"):
        open_source(tmp_path / "f.npz")
    assert is_feature_file(tmp_path / "f.npz") and not is_feature_file(tmp_path / "a.npz")
    assert not is_feature_file(tmp_path / "missing.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy: cannot read"):
        open_source(tmp_path / "obj.npy")


# ---------------------------------------------------------------------------- resolver


def test_open_source_kinds(tmp_path):
    tree, _ = build_archives(tmp_path)
    assert isinstance(open_source(tree), FolderSource)
    assert isinstance(open_source(str(write_zip(tree, tmp_path / "x.ZIP"))), ZipSource)
    assert isinstance(open_source(write_tar(tree, tmp_path / "x.tgz", "w:gz")), TarSource)
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(InputError, match=r"x\.csv: unsupported file kind; expected a folder of images"):
        open_source(tmp_path / "x.csv")
    with pytest.raises(InputError, match=r"nowhere: no such file or folder.*\.npz.*\.tar\.gz.*fashion-mnist"):
        open_source(tmp_path / "nowhere")
    with pytest.raises(InputError, match="no such file or folder"):
        open_source("not-a-dataset:train")


def test_open_source_dataset_spec(monkeypatch):
    from genbench.sources import datasets

    calls = []
    monkeypatch.setattr(datasets, "open_dataset", lambda spec, data_dir=None: calls.append((spec, data_dir)) or "ok")
    assert open_source("cifar10:test", data_dir="/data") == "ok"
    assert calls == [("cifar10:test", "/data")]


def test_open_source_unknown_split_is_config_error():
    with pytest.raises(ConfigError, match="fashion-mnist:nosuchsplit"):
        open_source("fashion-mnist:nosuchsplit")


def test_as_source(tmp_path):
    x = np.zeros((2, 3, H, W), np.uint8)
    src = as_source(x)
    assert isinstance(src, ArraySource) and as_source(src) is src
    assert isinstance(as_source(torch.zeros(2, H, W, 3, dtype=torch.uint8)), ArraySource)
    save(Image.fromarray(rgb(0)), tmp_path / "a.png")
    assert isinstance(as_source(str(tmp_path)), FolderSource)
    with pytest.raises(InputError, match="got list"):
        as_source([1, 2])


def test_batches_never_alias_the_input(tmp_path):
    x = np.random.default_rng(18).integers(0, 256, size=(3, 3, H, W), dtype=np.uint8)
    out = array_to_rgb_uint8_batch(x, "x")
    assert out.flags.writeable and not np.may_share_memory(out, x)
    np.save(tmp_path / "m.npy", x)
    batch = open_source(tmp_path / "m.npy").read_batch(0, 2)
    assert batch.flags.writeable and batch.flags.c_contiguous
    batch[:] = 0  # must not touch the read-only memory map
    np.testing.assert_array_equal(open_source(tmp_path / "m.npy").read_batch(0, 3), x)
