"""Hostile and broken inputs: decompression bombs, lying headers, corrupt streams, misnamed files, odd links.

Every one must end in an InputError naming the file (and member), in bounded memory; never a raw zlib.error /
OSError / ValueError, never a traceback. (That they are also quick is measured by bench/bench_hostile_inputs.py.)
"""
from __future__ import annotations

import gzip
import io
import os
import re
import struct
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from genbench.cli.app import main
from genbench.errors import ConfigError, InputError
from genbench.sources import ArraySource, FolderSource, TarSource, ZipSource, open_source
from genbench.sources.convert import decode_image
from genbench.sources.idx import read_idx
from genbench.sources.limits import (
    DEFAULT_MAX_MEMBER_BYTES,
    MAX_ARRAY_BYTES_ENV,
    MAX_MEMBER_BYTES_ENV,
    max_member_bytes,
    parse_bytes,
    read_bounded,
)
from tests.conftest import make_images

MIB = 1 << 20
BOMB_BYTES = 512 * MIB


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    monkeypatch.delenv(MAX_MEMBER_BYTES_ENV, raising=False)
    monkeypatch.delenv(MAX_ARRAY_BYTES_ENV, raising=False)


def zeros_deflated(n_mib: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``n_mib`` MiB of zeros (about 1 KB per MiB) and its CRC-32, built without
    compressing n_mib MiB: one fully flushed block repeated (a full flush resets the window), then an
    empty final block."""
    mib = bytes(MIB)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    stream = block * n_mib + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(n_mib):
        crc = zlib.crc32(mib, crc)
    return stream, crc


def write_raw_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip written by hand so its headers can say anything: (name, payload, method, crc, declared size)."""
    local, central = b"", b""
    for name, payload, method, crc, size in members:
        n = name.encode()
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), size, len(n), 0)
        local += n + payload
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(payload), size, len(n), 0, 0, 0, 0, 0,
            offset,
        ) + n
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def png_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(make_images(1, seed=seed)[0]).save(buf, format="PNG")
    return buf.getvalue()


class Bounded:
    """Peak Python allocation (tracemalloc) of the block it wraps.

    tracemalloc counts what is allocated while it traces (bytes objects, numpy arrays, zlib's output), from zero
    at the start of the block, so the bound holds whatever earlier tests allocated. (The process's ru_maxrss, a
    high-water mark of the whole process, would read about 0 growth once any earlier test had peaked higher.)
    How long these refusals take is measured by bench/bench_hostile_inputs.py, not asserted here.
    """

    def __enter__(self) -> Bounded:
        tracemalloc.start()
        return self

    def __exit__(self, *exc) -> None:
        self.traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    def check(self, max_bytes: int = 100 * MIB) -> None:
        assert self.traced_peak < max_bytes, f"peak Python allocation {self.traced_peak / MIB:.1f} MiB"


# ----------------------------------------------------------------------------- zip bombs and lying headers


@pytest.fixture(scope="module")
def bomb_stream() -> tuple[bytes, int]:
    return zeros_deflated(BOMB_BYTES // MIB)


def test_zip_bomb_is_refused_quickly_in_bounded_memory(tmp_path, bomb_stream):
    stream, crc = bomb_stream
    path = write_raw_zip(tmp_path / "bomb.zip", [("big.png", stream, zipfile.ZIP_DEFLATED, crc, BOMB_BYTES)])
    assert path.stat().st_size < MIB
    src = open_source(path)
    with Bounded() as usage, pytest.raises(InputError) as info:
        src.read(0)
    usage.check()
    message = str(info.value)
    assert f"{path}::big.png" in message and f"declares {BOMB_BYTES} bytes" in message
    assert f"limit is {DEFAULT_MAX_MEMBER_BYTES} bytes" in message and MAX_MEMBER_BYTES_ENV in message


@pytest.mark.parametrize("declared", [1000, 4 * MIB])
def test_zip_header_understating_the_size_is_caught_while_reading(tmp_path, bomb_stream, declared):
    stream, crc = bomb_stream  # inflates to 512 MiB, whatever the header says
    path = write_raw_zip(tmp_path / "liar.zip", [("small.png", stream, zipfile.ZIP_DEFLATED, crc, declared)])
    src = ZipSource(path)
    with Bounded() as usage, pytest.raises(InputError, match=r"liar\.zip::small\.png: cannot read zip member"):
        src.read(0)
    usage.check()


def test_bounded_read_stops_one_byte_past_the_limit():
    fh = io.BytesIO(bytes(1000))
    with pytest.raises(InputError, match=r"m\.png: archive member too large \(it inflates to more than 10 bytes"):
        read_bounded(fh, 10, "m.png")
    assert fh.tell() == 11
    assert read_bounded(io.BytesIO(b"0123456789"), 10, "m.png") == b"0123456789"


def test_compressed_tar_member_over_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("big.png")
        info.size = 3 * MIB
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(InputError, match=rf"big\.tar\.gz::big\.png: archive member too large .*declares {3 * MIB}"):
        TarSource(path, max_member_bytes=2 * MIB)
    assert len(TarSource(path, max_member_bytes=4 * MIB)) == 1
    plain = tmp_path / "big.tar"
    with tarfile.open(plain, "w") as tf:
        tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(InputError, match=r"big\.tar::big\.png: archive member too large"):
        TarSource(plain, max_member_bytes=2 * MIB).read(0)


# ----------------------------------------------------------------------------- the limit and its env var


def test_env_var_raises_and_lowers_the_member_limit(tmp_path, monkeypatch):
    png = png_bytes()
    path = tmp_path / "one.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.png", png)
    assert ZipSource(path).read(0).shape == (3, 16, 16)
    monkeypatch.setenv(MAX_MEMBER_BYTES_ENV, str(len(png) - 1))
    with pytest.raises(InputError, match=rf"one\.zip::a\.png: archive member too large .*limit is {len(png) - 1} "):
        ZipSource(path).read(0)
    monkeypatch.setenv(MAX_MEMBER_BYTES_ENV, str(len(png)))
    assert ZipSource(path).read(0).shape == (3, 16, 16)
    assert ZipSource(path, max_member_bytes=len(png) - 1).max_member_bytes == len(png) - 1  # the parameter wins
    monkeypatch.setenv(MAX_MEMBER_BYTES_ENV, "lots")
    with pytest.raises(ConfigError, match=rf"{MAX_MEMBER_BYTES_ENV}='lots': expected a positive byte count"):
        ZipSource(path)


def test_env_var_lets_a_member_over_the_default_through(tmp_path, monkeypatch):
    size = DEFAULT_MAX_MEMBER_BYTES // MIB + 2
    stream, crc = zeros_deflated(size)
    path = write_raw_zip(tmp_path / "large.zip", [("large.png", stream, zipfile.ZIP_DEFLATED, crc, size * MIB)])
    with pytest.raises(InputError, match="archive member too large"):
        ZipSource(path).read(0)
    monkeypatch.setenv(MAX_MEMBER_BYTES_ENV, "128M")
    with pytest.raises(InputError, match=r"large\.zip::large\.png: cannot decode image"):  # read whole, then decoded
        ZipSource(path).read(0)


def test_byte_counts():
    assert parse_bytes("67108864", "X") == 64 * MIB
    assert parse_bytes("64M", "X") == parse_bytes("64MiB", "X") == parse_bytes("64 mb", "X") == 64 * MIB
    assert parse_bytes("1G", "X") == 1 << 30
    for bad in ("", "0", "-5", "1.5G", "lots"):
        with pytest.raises(ConfigError, match="X="):
            parse_bytes(bad, "X")
    assert max_member_bytes() == DEFAULT_MAX_MEMBER_BYTES
    with pytest.raises(ConfigError, match="max_member_bytes"):
        max_member_bytes(0)


# ----------------------------------------------------------------------------- corrupt members


def test_corrupt_deflate_stream_is_an_input_error(tmp_path):
    png = png_bytes()
    good = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = good.compress(png) + good.flush()
    members = [
        ("bad.png", b"\xff" * 64, zipfile.ZIP_DEFLATED, zlib.crc32(png), len(png)),  # invalid block type
        ("good.png", stream, zipfile.ZIP_DEFLATED, zlib.crc32(png), len(png)),
        ("crc.png", stream, zipfile.ZIP_DEFLATED, zlib.crc32(png) ^ 1, len(png)),  # CRC mismatch
    ]
    path = write_raw_zip(tmp_path / "broken.zip", members)
    src = ZipSource(path)
    assert src.names == ["bad.png", "crc.png", "good.png"]
    with pytest.raises(InputError, match=r"broken\.zip::bad\.png: cannot read zip member, corrupt .*Error -3"):
        src.read(0)
    with pytest.raises(InputError, match=r"broken\.zip::crc\.png: cannot read zip member, corrupt .*CRC"):
        src.read(1)
    assert src.read(2).shape == (3, 16, 16)


def test_corrupt_deflate_stream_through_the_cli_exits_2_with_one_line(tmp_path):
    path = write_raw_zip(tmp_path / "broken.zip", [("bad.png", b"\xff" * 64, zipfile.ZIP_DEFLATED, 0, 100)])
    args = ["extract", str(path), "-o", str(tmp_path / "f.npz"), "--extractor", "test-tiny", "--quiet"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert res.output.strip().count("\n") == 0 and "broken.zip::bad.png: cannot read zip member" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_corrupt_compressed_tar_is_an_input_error(tmp_path, mode):
    path = tmp_path / f"x.tar.{mode[2:]}"
    noise = np.random.default_rng(0).integers(0, 4, 400_000, dtype=np.uint8).tobytes()  # compressible
    with tarfile.open(path, mode) as tf:
        for name in ("a.png", "b.png"):
            info = tarfile.TarInfo(name)
            info.size = len(noise)
            tf.addfile(info, io.BytesIO(noise))
    data = path.read_bytes()
    middle = len(data) // 2
    (tmp_path / f"z.tar.{mode[2:]}").write_bytes(data[:middle] + bytes(64) + data[middle + 64 :])
    (tmp_path / f"t.tar.{mode[2:]}").write_bytes(data[:middle])
    for broken in ("z", "t"):  # a damaged stream; a truncated one
        if mode == "w:bz2":  # one bzip2 block holds both members: it is checked before any byte of it comes out
            match = rf"{broken}\.tar\.bz2: cannot read as a tar archive .*so no member can be named"
        else:  # the damage begins in a.png (noise, so it decodes as no image either)
            match = rf"{broken}\.tar\.{mode[2:]}::a\.png: (cannot read tar member|corrupt compressed stream)"
        with pytest.raises(InputError, match=match):
            TarSource(tmp_path / f"{broken}.tar.{mode[2:]}")


def test_damaged_tar_header_is_not_taken_for_the_end_of_the_archive(tmp_path):
    png = png_bytes()
    path = tmp_path / "h.tar"
    with tarfile.open(path, "w") as tf:
        for name in ("a.png", "b.png", "c.png"):
            info = tarfile.TarInfo(name)
            info.size = len(png)
            tf.addfile(info, io.BytesIO(png))
    assert len(TarSource(path)) == 3
    data = bytearray(path.read_bytes())
    second = 512 + -(-len(png) // 512) * 512  # b.png's header
    data[second : second + 8] = b"XXXXXXXX"  # its name, as recorded
    path.write_bytes(bytes(data))
    pattern = rf"h\.tar::XXXXXXXX: damaged tar member header at byte {second}; tarfile reads it as the end"
    with pytest.raises(InputError, match=pattern):
        TarSource(path)
    data[second : second + 512] = b"\xa5" * 512  # nothing of it left: named by the member before it
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"h\.tar::\(the member after a\.png\): damaged tar member header at "):
        TarSource(path)


def _tar_bytes(members: list[tuple[str, bytes]]) -> bytearray:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return bytearray(buffer.getvalue())


def _flip(data: bytes, start: int, length: int = 16) -> bytes:
    return data[:start] + bytes(a ^ 0x5A for a in data[start : start + length]) + data[start + length :]


def _bad_archive(tmp_path: Path, case: str) -> tuple[Path, str]:
    """An archive of a.png, bad.png, c.png whose member bad.png (a.png for ``*-first-header``) is damaged as ``case``
    says, and the name the error must give."""
    import lzma

    members = [("a.png", png_bytes(0)), ("bad.png", png_bytes(1)), ("c.png", png_bytes(2))]
    if case.endswith("too-large"):
        members[1] = ("bad.png", bytes(3 * MIB))
    kind = case.split("-")[0]
    path = tmp_path / {"zip": "s.zip", "tar": "s.tar", "gz": "s.tar.gz", "xz": "s.tar.xz"}[kind]
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED if case == "zip-crc" else zipfile.ZIP_DEFLATED) as zf:
            for name, payload in members:
                zf.writestr(name, payload)
        data = path.read_bytes()
        inside = data.index(b"bad.png") + len("bad.png") + 40  # into its (compressed or stored) data
        if case == "zip-deflate":
            data = data[:inside] + b"\xff" * 16 + data[inside + 16 :]
        elif case == "zip-crc":  # stored bytes changed: only the CRC can tell
            data = _flip(data, inside)
        path.write_bytes(data)
        return path, "bad.png"
    tar = _tar_bytes(members)
    header = tar.index(b"bad.png\0")
    if case.endswith("-header"):  # a checksum field a bit flip left no longer matching
        tar[header + 148 : header + 156] = b"7777777\0"
    if case == "tar-first-header":
        tar[148:156] = b"7777777\0"
    if case in ("gz-silent", "xz-corrupt"):
        tar = bytearray(_flip(bytes(tar), header + 512 + 100))  # inside bad.png's bytes
    if kind == "tar":
        path.write_bytes(bytes(tar))
    elif kind == "gz":
        # level 0: stored blocks, so the flipped bytes decompress silently and only the stream's CRC at its end
        # says something is wrong; the stored stream is flipped after compressing (the CRC is of the clean tar)
        clean = _tar_bytes(members) if case == "gz-silent" else tar
        stream = gzip.compress(bytes(clean), 0 if case == "gz-silent" else 6, mtime=0)
        if case == "gz-silent":
            stream = _flip(stream, stream.index(b"bad.png\0") + 512 + 100)
        if case == "gz-truncated":
            stream = stream[: len(stream) // 2]
        path.write_bytes(stream)
    else:
        stream = lzma.compress(bytes(_tar_bytes(members)))
        path.write_bytes(_flip(stream, len(stream) // 2))
    return path, "a.png" if case == "tar-first-header" else "bad.png"


@pytest.mark.parametrize("case", ["zip-deflate", "zip-crc", "zip-too-large", "tar-too-large", "gz-too-large",
                                  "tar-header", "tar-first-header", "gz-header", "gz-silent", "gz-truncated",
                                  "xz-corrupt"])
def test_every_bad_member_error_names_the_archive_and_the_member(tmp_path, case):
    """Too large, a corrupt deflate/xz stream, a bad CRC (zip's per member, gzip's over the whole stream), a damaged
    tar header, a truncated stream: the message begins with ``archive::member``, whatever the container."""
    path, member = _bad_archive(tmp_path, case)
    with pytest.raises(InputError) as info:
        source = ZipSource(path, max_member_bytes=2 * MIB) if case.startswith("zip") else \
            TarSource(path, max_member_bytes=2 * MIB)
        for i in range(len(source)):
            source.read(i)
    message = str(info.value)
    if case in ("gz-truncated", "xz-corrupt"):  # the member the cut or the flip lands in: any, but named
        assert re.match(rf"{re.escape(str(path))}::(a|bad|c)\.png: ", message), message
    else:
        assert message.startswith(f"{path}::{member}: "), message


# ----------------------------------------------------------------------------- arrays


def test_npy_named_npz_and_npz_named_npy(tmp_path):
    images = make_images(4, seed=0)
    np.save(tmp_path / "x.npy", images)
    os.rename(tmp_path / "x.npy", tmp_path / "x.npz")
    with pytest.raises(InputError, match=r"x\.npz: this is a \.npy file \(one array\), not a \.npz .*rename it to"):
        open_source(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", images=images)
    os.rename(tmp_path / "y.npz", tmp_path / "y.npy")
    with pytest.raises(InputError, match=r"y\.npy: this is a \.npz \(zip\) archive.*rename it to \.npz"):
        open_source(tmp_path / "y.npy")


def test_npz_array_header_over_the_limit_is_refused_before_allocating(tmp_path, monkeypatch):
    header = io.BytesIO()
    shape = (1 << 20, 1024, 1024, 3)  # 3 TiB declared, a few bytes stored
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", header.getvalue() + bytes(100))
    with Bounded() as usage, pytest.raises(InputError) as info:
        open_source(tmp_path / "huge.npz")
    usage.check()
    message = str(info.value)
    assert f"huge.npz::images.npy: array header declares {np.prod(shape, dtype=object)} bytes" in message
    assert MAX_ARRAY_BYTES_ENV in message and ".npy" in message
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, "8T")  # within the limit now: the member is too short for it
    with pytest.raises(InputError, match=r"huge\.npz::images\.npy: truncated array"):
        open_source(tmp_path / "huge.npz")


def test_array_env_var_limit(tmp_path, monkeypatch):
    images = make_images(4, seed=0)  # 3072 bytes
    np.savez_compressed(tmp_path / "a.npz", images=images)
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, "3000")
    pattern = r"a\.npz::images\.npy: array header declares 3072 bytes, over the limit of 3000 bytes"
    with pytest.raises(InputError, match=pattern):
        open_source(tmp_path / "a.npz")
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, "3K")
    np.testing.assert_array_equal(open_source(tmp_path / "a.npz").read_batch(0, 4), images.transpose(0, 3, 1, 2))
    with pytest.raises(InputError, match="over the limit of 3071"):  # the parameter wins over the variable
        ArraySource.from_file(tmp_path / "a.npz", max_array_bytes=3071)


def test_npz_corrupt_member_object_array_and_truncated_npy(tmp_path):
    images = make_images(4, seed=0)
    np.savez_compressed(tmp_path / "c.npz", images=images)
    data = bytearray((tmp_path / "c.npz").read_bytes())
    start = data.index(b"images.npy") + len("images.npy")  # the member's data follows its local header
    data[start + 200 : start + 400] = b"\xff" * 200
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"c\.npz::images\.npy: cannot read (array, corrupt|as a \.npy array)"):
        open_source(tmp_path / "c.npz")
    np.savez(tmp_path / "o.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match=r"o\.npz::images\.npy: cannot read an array of Python objects"):
        open_source(tmp_path / "o.npz")
    np.save(tmp_path / "t.npy", images)
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:-100])
    with pytest.raises(InputError, match=r"t\.npy: truncated \.npy file: its header declares 3072 bytes"):
        open_source(tmp_path / "t.npy")


def test_idx_gz_bomb_and_corrupt_gzip(tmp_path, monkeypatch):
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1 << 20, 28, 28)  # 822 MB declared
    with gzip.open(tmp_path / "bomb-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + bytes(1000))
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, "100M")
    declared = (1 << 20) * 784
    with Bounded() as usage, pytest.raises(InputError, match=rf"bomb-idx3-ubyte\.gz: array header declares {declared}"):
        read_idx(tmp_path / "bomb-idx3-ubyte.gz")
    usage.check()
    good = gzip.compress(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 50_000) + os.urandom(50_000))
    (tmp_path / "bad-idx1-ubyte.gz").write_bytes(good[:20] + b"\xff" * 200 + good[220:])
    with pytest.raises(InputError, match=r"bad-idx1-ubyte\.gz: cannot read IDX file, corrupt"):
        read_idx(tmp_path / "bad-idx1-ubyte.gz")


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("limit", [200, 100])  # 256 pixels: Pillow warns above the limit, fails above twice it
def test_pillow_decompression_bomb_is_an_input_error(monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(InputError, match=rf"x\.png: refused as a possible decompression bomb .*_PIXELS = {limit} "):
        decode_image(io.BytesIO(png_bytes()), "x.png")


# ----------------------------------------------------------------------------- folders


def test_links_to_files_are_followed_and_other_entries_skipped(tmp_path):
    Image.fromarray(make_images(1, seed=0)[0]).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").symlink_to(tmp_path / "a.png")  # a link to a file is followed
    (tmp_path / "sub" / "up").symlink_to(tmp_path)  # a link to a folder is not (no cycle)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # no image name: skipped, whatever it is
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    (tmp_path / "notes.txt").write_text("x")
    src = FolderSource(tmp_path)
    assert src.names == ["a.png", "sub/b.png"]
    assert src.skipped == 4  # up, loop, gone.txt, notes.txt
    np.testing.assert_array_equal(src.read(0), src.read(1))
    assert len(src.fingerprint()) == 64


@pytest.mark.parametrize("make, why", [
    (lambda d: (d / "loop.png").symlink_to(d / "loop.png"), r"loop\.png: cannot open this image entry: a symbolic link loop"),
    (lambda d: ((d / "ping.jpg").symlink_to(d / "pong.jpg"), (d / "pong.jpg").symlink_to(d / "ping.jpg")),
     r"ping\.jpg: cannot open this image entry: a symbolic link loop .*\(1 more such entries\)"),
    (lambda d: (d / "gone.png").symlink_to(d / "missing.png"), r"gone\.png: .*a dangling symbolic link \(its target .*missing\.png"),
    (lambda d: (d / "dir.PNG").symlink_to(d / "sub"), r"dir\.PNG: .*a link to a folder"),
    (lambda d: os.mkfifo(d / "pipe.png"), r"pipe\.png: .*not a regular file"),
])
def test_an_image_entry_that_cannot_be_opened_is_named_not_dropped(tmp_path, make, why):
    """A link loop (loop.png -> loop.png), a dangling link, a link to a folder or a fifo with an image name used to be
    skipped, so n went down by one and nothing said why; it is an error naming the entry, as a corrupt PNG is."""
    Image.fromarray(make_images(1, seed=0)[0]).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(make_images(1, seed=1)[0]).save(tmp_path / "sub" / "b.png")
    make(tmp_path)
    with pytest.raises(InputError, match=why):
        FolderSource(tmp_path)
