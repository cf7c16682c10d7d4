"""The tensors of a TorchScript archive, read without running TorchScript or any pickled code.

A ``torch.jit.save`` archive is a zip: ``<prefix>/data.pkl`` (a protocol-2 pickle of the module tree),
``<prefix>/data/<key>`` (raw storage bytes), ``<prefix>/code/`` (the TorchScript source),
``<prefix>/constants.pkl`` and ``<prefix>/version``. In ``data.pkl`` each module is a ``__torch__.<qualname>``
object built with NEWOBJ and filled by BUILD with a dict of its attributes; each tensor is
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`` whose storage is a
persistent id ``('storage', torch.<X>Storage, key, location, numel)``.

:func:`read_torchscript_state` unpickles ``data.pkl`` with an unpickler that resolves only those names, each to
an inert stand-in written here (nothing is imported, no TorchScript class is instantiated), reads each storage
with a read of exactly its size, and returns the tensor attributes of the module tree under their dotted paths
(``visual.conv1.weight``), in their stored dtype, on CPU. The storage ``location`` (``cuda:0`` in OpenAI's
archives) is ignored.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import WeightsError

#: ``data.pkl`` holds the module tree without tensor data: a few MiB at most for real networks.
MAX_PICKLE_BYTES = 64 << 20
#: Module objects visited while collecting tensors (a guard against deliberately exponential trees).
MAX_NODES = 200_000
MAX_DEPTH = 64
#: Deflate cannot expand data by more than about 1032:1; a larger claim is a forged size.
_MAX_DEFLATE_RATIO = 1100
_CHUNK = 16 << 20

STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,200}")


class _Refused(Exception):
    """A problem found while unpickling; turned into a WeightsError naming the file."""


class _Inert:
    """Base of the stand-ins the pickle may hold: no pickle opcode can change them."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise _Refused(f"BUILD applied to a {type(self).__name__}")


@dataclass(frozen=True)
class _StorageType(_Inert):
    """What ``torch.<X>Storage`` resolves to: only its dtype."""

    name: str
    dtype: torch.dtype


@dataclass(frozen=True)
class _Storage(_Inert):
    """One storage read from ``data/<key>``: a flat tensor of ``numel`` elements."""

    key: str
    flat: torch.Tensor


@dataclass(frozen=True)
class _TensorRecord(_Inert):
    """A rebuilt tensor, wrapped so that a BUILD opcode cannot reach it."""

    tensor: torch.Tensor


class ScriptModuleRecord:
    """What every ``__torch__.*`` class resolves to: records the attributes BUILD gives it, nothing more."""

    __slots__ = ("attrs",)
    qualname = "__torch__"

    def __init__(self) -> None:
        self.attrs: dict[str, Any] = {}

    def __setstate__(self, state: object) -> None:
        # Modules are filled with a dict; a custom class's __getstate__ may give anything else (kept, unused).
        self.attrs = dict(state) if isinstance(state, dict) else {"__state__": state}


# --------------------------------------------------------------------------- reimplemented helpers


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise _Refused(f"tensor {what} {_short(value)}: expected a tuple of ints")
    return tuple(value)


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object) -> _TensorRecord:
    """``torch._utils._rebuild_tensor``: a strided view of ``storage``, which it must fit."""
    if not isinstance(storage, _Storage):
        raise _Refused(f"tensor storage is a {type(storage).__name__}, expected a storage persistent id")
    if type(offset) is not int:
        raise _Refused(f"tensor storage offset {_short(offset)}: expected an int")
    shape, strides = _ints(size, "size"), _ints(stride, "stride")
    try:
        return _TensorRecord(storage.flat.as_strided(shape, strides, offset))
    except (RuntimeError, ValueError, OverflowError) as exc:
        raise _Refused(f"tensor of size {shape}, stride {strides}, offset {offset} does not fit storage "
                       f"data/{storage.key} of {storage.flat.numel()} elements ({exc})") from None


def _rebuild_tensor_v2(storage: object, offset: object, size: object, stride: object, requires_grad: object = False,
                       backward_hooks: object = None, metadata: object = None) -> _TensorRecord:
    """``torch._utils._rebuild_tensor_v2``; ``requires_grad``, hooks and metadata are ignored."""
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data: object, requires_grad: object = False, backward_hooks: object = None,
                       *state: object) -> _TensorRecord:
    """``torch._utils._rebuild_parameter`` (and ``_with_state``): the tensor itself."""
    if not isinstance(data, _TensorRecord):
        raise _Refused(f"parameter data is a {type(data).__name__}, expected a tensor")
    return data


def _identity(value: object, *type_tag: object) -> object:
    """``torch.jit._pickle.build_*list`` and ``restore_type_tag``: the value as it is."""
    return value


class _Helper(_Inert):
    """A reimplemented helper as the pickle sees it: callable, but no opcode can alter it."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., object]) -> None:
        self.fn = fn

    def __call__(self, *args: object) -> object:
        return self.fn(*args)


_HELPERS: dict[tuple[str, str], Callable[..., object]] = {
    ("torch._utils", "_rebuild_tensor"): _Helper(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _Helper(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _Helper(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Helper(_rebuild_parameter),
    ("collections", "OrderedDict"): collections.OrderedDict,  # a built-in type: immutable
    **{("torch.jit._pickle", name): _Helper(_identity)
       for name in ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "restore_type_tag")},
}


# --------------------------------------------------------------------------- the archive


@dataclass
class _Archive:
    """An open archive: its zip, the folder prefix, and the storages read so far."""

    path: str
    zf: zipfile.ZipFile
    prefix: str
    storages: dict[str, _Storage]

    def read_storage(self, pid: object) -> _Storage:
        """The storage for persistent id ``('storage', type, key, location, numel)``, read once per key."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Refused(f"persistent id {_short(pid)}: expected ('storage', type, key, location, numel)")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType):
            raise _Refused(f"storage type {_short(kind)}: expected one of torch.{', torch.'.join(STORAGE_DTYPES)}")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise _Refused(f"storage key {_short(key)}: expected a short name of letters and digits")
        if type(numel) is not int or numel < 0:
            raise _Refused(f"storage data/{key}: element count {_short(numel)} is not a non-negative int")
        cached = self.storages.get(key)
        if cached is None:
            cached = self.storages[key] = _Storage(key, self._read(key, kind.dtype, numel))
        elif cached.flat.dtype != kind.dtype or cached.flat.numel() != numel:
            raise _Refused(f"storage data/{key} is referenced as {numel} x {kind.dtype} and as "
                           f"{cached.flat.numel()} x {cached.flat.dtype}")
        return cached

    def _read(self, key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        """Exactly ``numel`` elements from ``data/<key>``, or _Refused."""
        name = f"{self.prefix}/data/{key}"
        nbytes = numel * dtype.itemsize
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise _Refused(f"storage data/{key} is missing from the archive") from None
        if info.file_size < nbytes or (info.compress_type != zipfile.ZIP_STORED
                                       and nbytes > _MAX_DEFLATE_RATIO * info.compress_size + 1024):
            raise _Refused(f"storage data/{key} holds {info.file_size} bytes, expected {nbytes} "
                           f"({numel} x {dtype})")
        buffer, done = bytearray(nbytes), 0
        with self.zf.open(info) as f:
            while done < nbytes:  # never more than nbytes, whatever the zip claims
                chunk = f.read(min(_CHUNK, nbytes - done))
                if not chunk:
                    break
                buffer[done:done + len(chunk)] = chunk
                done += len(chunk)
        if done != nbytes:
            raise _Refused(f"storage data/{key} is truncated: {done} bytes, expected {nbytes} ({numel} x {dtype})")
        if nbytes == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(buffer, dtype=dtype)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only module classes, the tensor rebuild helpers, OrderedDict and storage types."""

    def __init__(self, data: bytes, archive: _Archive) -> None:
        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.records: dict[str, type[ScriptModuleRecord]] = {}  # per load: nothing outlives it

    def record_class(self, qualname: str) -> type[ScriptModuleRecord]:
        """A fresh ScriptModuleRecord subclass named after ``qualname`` (for messages); nothing is imported."""
        if qualname not in self.records:
            self.records[qualname] = type("ScriptModuleRecord", (ScriptModuleRecord,),
                                          {"__slots__": (), "qualname": qualname})
        return self.records[qualname]

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return self.record_class(f"{module}.{name}")
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        helper = _HELPERS.get((module, name))
        if helper is None:
            raise _Refused(f"refused global {module}.{name} (a TorchScript archive's data.pkl needs only "
                           "__torch__ classes, torch._utils tensor rebuilds, collections.OrderedDict and "
                           "torch.<X>Storage)")
        return helper

    def persistent_load(self, pid: object) -> _Storage:
        return self.archive.read_storage(pid)


# --------------------------------------------------------------------------- public


def archive_prefix(zf: zipfile.ZipFile) -> str | None:
    """The top folder holding ``data.pkl`` and ``code/``, or None when ``zf`` is no TorchScript archive."""
    names = zf.namelist()
    prefixes = [n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(prefixes) != 1:
        return None
    code = f"{prefixes[0]}/code/"
    return prefixes[0] if any(n.startswith(code) for n in names) else None


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip with ``<prefix>/data.pkl`` and ``<prefix>/code/`` (nothing is loaded)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return archive_prefix(zf) is not None
    except (zipfile.BadZipFile, OSError):
        return False


def _open(path: str, zf: zipfile.ZipFile) -> _Archive:
    """The archive's layout checked: one prefix with data.pkl and code/, little-endian storages."""
    prefix = archive_prefix(zf)
    if prefix is None:
        raise WeightsError(f"weights file {path} is a zip but not a TorchScript archive: expected one folder "
                           "holding data.pkl and code/ (as torch.jit.save writes)")
    byteorder = f"{prefix}/byteorder"
    if byteorder in zf.namelist():
        with zf.open(byteorder) as f:
            order = f.read(16).strip()
        if order not in (b"little", b""):
            raise WeightsError(f"TorchScript archive {path} stores tensors in byte order {order!r}; expected b'little'")
    return _Archive(path, zf, prefix, {})


def _read_pickle(archive: _Archive) -> bytes:
    """``data.pkl``'s bytes, refusing more than MAX_PICKLE_BYTES before and while reading."""
    info = archive.zf.getinfo(f"{archive.prefix}/data.pkl")
    if info.file_size > MAX_PICKLE_BYTES:
        raise WeightsError(f"TorchScript archive {archive.path}: data.pkl is {info.file_size} bytes, expected at "
                           f"most {MAX_PICKLE_BYTES}")
    with archive.zf.open(info) as f:
        data = f.read(MAX_PICKLE_BYTES + 1)
    if len(data) > MAX_PICKLE_BYTES:
        raise WeightsError(f"TorchScript archive {archive.path}: data.pkl exceeds {MAX_PICKLE_BYTES} bytes")
    return data


def _tensors(root: ScriptModuleRecord) -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted path, tensor) for every tensor attribute under ``root``, in attribute order."""
    stack: list[tuple[str, ScriptModuleRecord, tuple[int, ...]]] = [("", root, ())]
    visited = 0
    while stack:
        prefix, module, ancestors = stack.pop()
        visited += 1
        if visited > MAX_NODES or len(ancestors) > MAX_DEPTH:
            raise _Refused(f"module tree is larger than {MAX_NODES} modules or deeper than {MAX_DEPTH}")
        children, path = [], (*ancestors, id(module))
        for name, value in getattr(module, "attrs", {}).items():  # no attrs: created but never BUILT
            if not isinstance(name, str):
                continue
            if isinstance(value, _TensorRecord):
                yield prefix + name, value.tensor
            elif isinstance(value, ScriptModuleRecord) and id(value) not in path:  # a cycle ends here
                children.append((f"{prefix}{name}.", value, path))
        stack.extend(reversed(children))


def read_torchscript_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensor attributes of the TorchScript archive at ``path``, keyed as ``state_dict()`` keys them.

    Parameters and buffers, plus any plain tensor attribute (``state_dict()`` leaves those out), in their
    stored dtype, on CPU. Nothing in the archive is executed. Raises WeightsError naming the file: not a
    TorchScript archive, a refused global, a storage shorter than its tensors need, and so on.
    """
    source = os.fspath(path)
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"weights file {source} is not a TorchScript archive (expected a zip file with "
                           f"data.pkl and code/, as torch.jit.save writes): {exc}") from None
    with zf:
        archive = _open(source, zf)
        data = _read_pickle(archive)
        try:
            root = _RestrictedUnpickler(data, archive).load()
            if not isinstance(root, ScriptModuleRecord):
                raise _Refused(f"data.pkl holds a {type(root).__name__}, expected a __torch__ module")
            return dict(_tensors(root))
        except _Refused as exc:
            raise WeightsError(f"TorchScript archive {source}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
                zipfile.BadZipFile, OSError, RecursionError) as exc:
            raise WeightsError(f"TorchScript archive {source}: cannot read data.pkl "
                               f"({type(exc).__name__}: {exc})") from None
