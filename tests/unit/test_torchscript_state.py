"""read_torchscript_state against torch's own loader, its refusals, and the CLIP archive's resolution/download."""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import os
import pickle
import sys
import types
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from genbench.errors import WeightsError
from genbench.features import clip
from genbench.features.torchscript_state import is_torchscript_archive, read_torchscript_state

# A two-block tower in OpenAI's layout, small enough to trace in milliseconds.
TINY = clip.ClipArch("clip-tiny", "tiny", "0" * 64, 8, 4, 64, 2, 16, "clip-tf1-bilinear")


@pytest.fixture(autouse=True)
def _quiet_jit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.* are deprecated in favour of torch.export
        yield


class CLIP(nn.Module):
    """OpenAI's top level: ``visual`` plus text-side tensors (a parameter and a buffer)."""

    def __init__(self, arch: clip.ClipArch) -> None:
        super().__init__()
        self.visual = clip.VisionTransformer(arch)
        self.positional_embedding = nn.Parameter(torch.empty(7, 16))  # filled by load_state_dict
        self.register_buffer("attn_mask", torch.full((7, 7), float("-inf")).triu(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.positional_embedding.sum()


def openai_like_archive(path: Path, arch: clip.ClipArch = TINY, seed: int = 0) -> dict[str, torch.Tensor]:
    """Trace, ``.half()`` and ``torch.jit.save`` a CLIP tree holding ``random_state_dict(arch, seed)``."""
    with torch.device("meta"):
        model = CLIP(arch)
    text_side = torch.randn(7, 16, generator=torch.Generator().manual_seed(seed))
    state = {**clip.random_state_dict(arch, seed), "positional_embedding": text_side,
             "attn_mask": torch.full((7, 7), float("-inf")).triu(1)}
    model.load_state_dict(state, assign=True)
    traced = torch.jit.trace(model, torch.zeros(1), check_trace=False).half()
    torch.jit.save(traced, str(path))
    return state


def assert_reads_like_torch(path: Path) -> dict[str, torch.Tensor]:
    ours = read_torchscript_state(path)
    theirs = torch.jit.load(str(path), map_location="cpu").state_dict()
    for key, value in theirs.items():
        assert key in ours, key
        assert ours[key].dtype == value.dtype, key
        assert ours[key].shape == value.shape and torch.equal(ours[key], value), key
    return ours


def test_openai_layout_reads_like_torch_jit_load(tmp_path):
    path = tmp_path / "tiny.pt"
    state = openai_like_archive(path)
    assert is_torchscript_archive(path)
    ours = assert_reads_like_torch(path)
    assert set(ours) == set(state)  # traced: parameters and buffers only
    assert ours["visual.conv1.weight"].dtype == torch.float16
    assert torch.equal(ours["visual.transformer.resblocks.1.mlp.c_proj.weight"],
                       state["visual.transformer.resblocks.1.mlp.c_proj.weight"].half())


class Scripted(nn.Module):
    """Scripted, so plain attributes (a tensor, an int list, a dict) reach data.pkl too."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3)
        self.scale = torch.ones(2)
        self.ids = [1, 2]
        self.names = {"a": 1}
        self.register_buffer("count", torch.tensor([3], dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale.sum() + self.count


def test_scripted_module_plain_attributes_and_typed_lists(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(Scripted()).half(), str(path))
    ours = assert_reads_like_torch(path)
    assert set(ours) == {"lin.weight", "lin.bias", "count", "scale"}  # "scale": a tensor state_dict leaves out
    assert ours["count"].dtype == torch.int64 and ours["scale"].dtype == torch.float32


# --------------------------------------------------------------------------- hand-made archives


@dataclasses.dataclass
class FakeStorage:
    key: str
    kind: type
    numel: int


@dataclasses.dataclass
class FakeTensor:
    storage: FakeStorage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class Module:  # pickled as __torch__.Module via a fake module in sys.modules
    def __init__(self, **attrs: object) -> None:
        self.__dict__.update(attrs)


class Evil:
    def __init__(self, func, arg) -> None:
        self.func, self.arg = func, arg


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.kind, obj.key, "cuda:0", obj.numel)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, FakeTensor):
            return torch._utils._rebuild_tensor_v2, (obj.storage, obj.offset, obj.size, obj.stride, False,
                                                     collections.OrderedDict())
        if isinstance(obj, Evil):
            return obj.func, (obj.arg,)
        return NotImplemented


def write_archive(path: Path, root: object, storages: dict[str, bytes], code: bool = True) -> Path:
    """A zip laid out as torch.jit.save lays it out, with ``root`` pickled as data.pkl (bytes: as they are)."""
    return write_zip(path, root if isinstance(root, bytes) else pickle_tree(root), storages, code)


def pickle_tree(root: object) -> bytes:
    """``root`` pickled with Module as ``__torch__.Module`` and FakeTensor as a tensor rebuild."""
    fake = types.ModuleType("__torch__")
    fake.Module = Module  # type: ignore[attr-defined]
    Module.__module__ = "__torch__"
    saved = sys.modules.get("__torch__")
    sys.modules["__torch__"] = fake
    try:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=2, fix_imports=False).dump(root)
    finally:
        Module.__module__ = __name__
        if saved is None:
            del sys.modules["__torch__"]
        else:
            sys.modules["__torch__"] = saved
    return buffer.getvalue()


def write_zip(path: Path, data_pkl: bytes, storages: dict[str, bytes], code: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x/data.pkl", data_pkl)
        for key, data in storages.items():
            zf.writestr(f"x/data/{key}", data)
        if code:
            zf.writestr("x/code/__torch__.py", "class Module(Module):\n  pass\n")
        zf.writestr("x/version", "3\n")
    return path


def floats(*values: float) -> bytes:
    return torch.tensor(values, dtype=torch.float32).numpy().tobytes()


def test_hand_made_archive_with_shared_storage_and_a_cycle(tmp_path):
    storage = FakeStorage("0", torch.FloatStorage, 6)
    inner = Module(w=FakeTensor(storage, 0, (2, 2), (2, 1)), training=True, n=3)
    root = Module(a=FakeTensor(storage, 2, (4,), (1,)), inner=inner, nothing=None)
    inner.parent = root  # a cycle: walked once
    path = write_archive(tmp_path / "shared.pt", root, {"0": floats(0, 1, 2, 3, 4, 5)})
    state = read_torchscript_state(path)
    assert list(state) == ["a", "inner.w"]
    assert state["a"].tolist() == [2, 3, 4, 5] and state["inner.w"].tolist() == [[0, 1], [2, 3]]
    assert state["a"].untyped_storage().data_ptr() == state["inner.w"].untyped_storage().data_ptr()


@pytest.mark.parametrize("func", [os.system, eval], ids=["os.system", "builtins.eval"])
def test_code_in_data_pkl_is_refused_and_never_run(tmp_path, func):
    marker = tmp_path / "ran"
    arg = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w')"
    path = write_archive(tmp_path / "evil.pt", Module(weight=Evil(func, arg)), {})
    assert is_torchscript_archive(path)
    name = f"{func.__module__}.{func.__name__}"  # posix.system on Linux
    with pytest.raises(WeightsError, match=rf"evil\.pt.*refused global {name}"):
        read_torchscript_state(path)
    assert not marker.exists()


@pytest.mark.parametrize("opcodes", [b"ctorch._utils\n_rebuild_tensor_v2\n}b.", b"ctorch\nFloatStorage\n}b.",
                                     b"c__torch__\nM\n}b."], ids=["helper", "storage-type", "module-class"])
def test_opcodes_cannot_alter_the_stand_ins(tmp_path, opcodes):
    path = write_archive(tmp_path / "build.pt", b"\x80\x02" + opcodes, {})
    with pytest.raises(WeightsError, match=r"build\.pt: (BUILD applied|cannot read data\.pkl)"):
        read_torchscript_state(path)
    storage = FakeStorage("0", torch.FloatStorage, 1)
    state = read_torchscript_state(write_archive(tmp_path / "ok.pt", Module(w=FakeTensor(storage, 0, (1,), (1,))),
                                                 {"0": floats(5)}))
    assert state["w"].tolist() == [5.0]


def test_truncated_storage_is_refused_naming_its_key(tmp_path):
    storage = FakeStorage("7", torch.FloatStorage, 4)
    path = write_archive(tmp_path / "short.pt", Module(w=FakeTensor(storage, 0, (4,), (1,))), {"7": floats(1, 2, 3)})
    with pytest.raises(WeightsError, match=r"short\.pt.*data/7 holds 12 bytes, expected 16"):
        read_torchscript_state(path)


def test_tensor_past_its_storage_and_missing_storage_are_refused(tmp_path):
    storage = FakeStorage("0", torch.FloatStorage, 2)
    path = write_archive(tmp_path / "oob.pt", Module(w=FakeTensor(storage, 1, (4,), (1,))), {"0": floats(1, 2)})
    with pytest.raises(WeightsError, match=r"oob\.pt.*does not fit storage data/0 of 2 elements"):
        read_torchscript_state(path)
    path = write_archive(tmp_path / "gone.pt", Module(w=FakeTensor(storage, 0, (2,), (1,))), {})
    with pytest.raises(WeightsError, match=r"gone\.pt.*data/0 is missing"):
        read_torchscript_state(path)


def test_files_that_are_no_torchscript_archive(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(WeightsError, match=r"notes\.txt is not a TorchScript archive.*zip file with data\.pkl"):
        read_torchscript_state(text)
    saved = tmp_path / "state.pth"
    torch.save({"w": torch.ones(2)}, saved)  # a zip with data.pkl but no code/
    assert not is_torchscript_archive(saved)
    with pytest.raises(WeightsError, match=r"state\.pth is a zip but not a TorchScript archive.*data\.pkl and code/"):
        read_torchscript_state(saved)
    no_code = write_archive(tmp_path / "nocode.pt", Module(), {}, code=False)
    with pytest.raises(WeightsError, match="nocode.pt is a zip but not a TorchScript archive"):
        read_torchscript_state(no_code)


# --------------------------------------------------------------------------- resolution and download


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENBENCH_CLIP_WEIGHTS", raising=False)
    monkeypatch.delenv("GENBENCH_CLIP_WEIGHTS_SHA256", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def served(tmp_path, monkeypatch) -> tuple[bytes, list[str]]:
    """A tiny archive's bytes, served by a monkeypatched urlopen (the URLs asked for are recorded)."""
    openai_like_archive(tmp_path / "served.pt")
    payload, urls = (tmp_path / "served.pt").read_bytes(), []

    def urlopen(url, timeout=None):
        urls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return payload, urls


def test_download_lands_in_the_cache_and_loads(cache, served):
    payload, urls = served
    arch = dataclasses.replace(clip.ARCHS["clip-vit-b32"], archive_sha256=hashlib.sha256(payload).hexdigest())
    resolved, is_archive = clip.resolve_clip_weights(arch)
    assert urls == [arch.archive_url]
    assert is_archive and resolved.verified and resolved.origin == "download"
    assert resolved.path == cache / "weights" / "ViT-B-32.pt" and resolved.sha256 == arch.archive_sha256
    assert "visual.conv1.weight" in read_torchscript_state(resolved.path)
    again, _ = clip.resolve_clip_weights(arch)  # now from the cache, no second download
    assert again.origin == "cache" and len(urls) == 1


def test_download_with_the_wrong_sha256_caches_nothing(cache, served):
    arch = clip.ARCHS["clip-vit-b32"]  # the published sha256, which the tiny archive does not have
    with pytest.raises(WeightsError, match=rf"{arch.archive_url} has sha256 .*expected {arch.archive_sha256}"):
        clip.resolve_clip_weights(arch)
    assert not any((cache / "weights").iterdir())


def test_offline_says_what_to_download_and_where(cache, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    arch = clip.ARCHS["clip-vit-l14-336"]
    with pytest.raises(WeightsError) as caught:
        clip.build_clip(arch.name)
    message = str(caught.value)
    for part in (arch.archive_url, arch.archive_sha256, str(cache / "weights" / "ViT-L-14-336px.pt"),
                 "--weights", "GENBENCH_CLIP_WEIGHTS", "ViT-L-14-336px.state_dict.pth"):
        assert part in message, part
    with pytest.raises(WeightsError, match="downloads are off"):
        clip.build_clip(arch.name, allow_download=False)


def test_state_dicts_given_or_cached_under_the_legacy_name(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    arch = clip.ARCHS["clip-vit-b32"]
    legacy = cache / "weights" / "ViT-B-32.state_dict.pth"
    legacy.parent.mkdir(parents=True)
    torch.save({"w": torch.ones(2)}, legacy)
    resolved, is_archive = clip.resolve_clip_weights(arch)
    assert resolved.path == legacy and not is_archive and not resolved.verified
    given = tmp_path / "mine.pth"
    torch.save({"w": torch.zeros(2)}, given)
    monkeypatch.setenv("GENBENCH_CLIP_WEIGHTS", str(given))
    resolved, is_archive = clip.resolve_clip_weights(arch)
    assert resolved.path == given and resolved.origin.startswith("environment") and not is_archive
    with pytest.raises(WeightsError, match=r"mine\.pth.*expected 0{64} \(pinned by --weights-sha256\)"):
        clip.resolve_clip_weights(arch, pin="0" * 64)
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(WeightsError, match=rf"nowhere\.pt \(argument\) is not a file.*{arch.archive_url}"):
        clip.resolve_clip_weights(arch, missing)
