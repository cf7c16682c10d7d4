"""Ways to run the one Inception network definition: eager PyTorch or an ONNX Runtime session.

``backend`` (``build_inception(backend=...)``):

``torch``
    The eager :class:`~genbench.features.inception.InceptionV3Network`; on the CPU its
    weights and inputs are put in channels-last layout (oneDNN's fast convolution path,
    same arithmetic up to float32 summation order).
``onnxruntime``
    The same network exported once to ONNX (TorchScript exporter, dynamic batch) and
    cached under ``<cache>/onnx/`` keyed by the weights sha256 and an export version,
    then run by ONNX Runtime's CPU provider (about 3x the eager NCHW throughput on a 2-core CPU).
    CPU only; needs the ``onnxruntime`` package, and ``onnx`` for the first export
    (ConfigError otherwise).
``auto`` (default)
    ``onnxruntime`` on the CPU when the packages are installed and the export loads,
    else ``torch`` (a RuntimeWarning says why when onnxruntime is installed but fails).

Tests (``tests/reference/test_inception_parity.py``) check each backend against the
eager network in its plain NCHW layout.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..util.atomic import atomic_path
from .weights import cache_root

BACKENDS = ("auto", "torch", "onnxruntime")

#: Bump when the network code or export settings change, so stale cached exports are not reused.
ONNX_EXPORT_VERSION = 1
ONNX_OPSET = 17


class Runner(Protocol):
    backend: str

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float32 [B, 3, 299, 299] -> (pool3 [B, 2048], logits [B, 1008])."""


class TorchRunner:
    """Eager PyTorch; channels-last on the CPU."""

    backend = "torch"

    def __init__(self, net: nn.Module, device: torch.device, channels_last: bool | None = None) -> None:
        self.net = net
        self.channels_last = device.type == "cpu" if channels_last is None else channels_last
        if self.channels_last:
            net.to(memory_format=torch.channels_last)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            return self.net(x)


def onnx_cache_path(weights_sha256: str) -> Path:
    """Where the ONNX export for these weights is cached."""
    name = f"inception-v3-{weights_sha256[:32]}-x{ONNX_EXPORT_VERSION}-op{ONNX_OPSET}.onnx"
    return cache_root() / "onnx" / name


def export_onnx(net: nn.Module, target: Path) -> Path:
    """Export ``net`` (NCHW, float32, dynamic batch) to ``target`` atomically; inputs ``images``."""
    example = torch.zeros(1, 3, 299, 299)
    net = net.to(memory_format=torch.contiguous_format)
    with atomic_path(target) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            net, (example,), str(tmp), input_names=["images"], output_names=["pool3", "logits"],
            dynamic_axes={"images": {0: "batch"}, "pool3": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=ONNX_OPSET, dynamo=False,
        )
    return target


class OnnxRuntimeRunner:
    """ONNX Runtime CPU session on an export of the eager network, cached by weights sha256."""

    backend = "onnxruntime"

    def __init__(self, net: nn.Module, weights_sha256: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = onnx_cache_path(weights_sha256)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        if not path.is_file():
            export_onnx(net, path)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except (RuntimeError, ValueError, OSError):  # a damaged cache entry: export again, once
            export_onnx(net, path)
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        pool3, logits = self.session.run(["pool3", "logits"], {"images": array})
        return torch.from_numpy(pool3), torch.from_numpy(logits)


def onnxruntime_available() -> bool:
    """Whether the onnxruntime package is installed (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _can_export() -> bool:
    """torch.onnx.export needs the onnx package."""
    return importlib.util.find_spec("onnx") is not None


def check_backend(backend: str, device: torch.device, weights_sha256: str) -> None:
    """ConfigError for a backend that cannot run on ``device`` here (cheap: builds nothing)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend (--backend) {backend!r}; expected one of: {', '.join(BACKENDS)}")
    if backend == "onnxruntime":
        if device.type != "cpu":
            raise ConfigError(f"backend='onnxruntime' (--backend) runs on the CPU only, not device={str(device)!r}")
        if not onnxruntime_available() or not (_can_export() or onnx_cache_path(weights_sha256).is_file()):
            raise ConfigError("backend='onnxruntime' (--backend) needs the onnxruntime and onnx packages: "
                              "pip install onnxruntime onnx, or use backend='torch'")


def make_runner(net: nn.Module, backend: str, device: torch.device, weights_sha256: str) -> Runner:
    """Pick the runner for ``backend`` ('auto' | 'torch' | 'onnxruntime'); ConfigError for impossible choices."""
    check_backend(backend, device, weights_sha256)
    if backend == "onnxruntime":
        return OnnxRuntimeRunner(net, weights_sha256)
    if (backend == "auto" and device.type == "cpu" and onnxruntime_available()
            and (_can_export() or onnx_cache_path(weights_sha256).is_file())):
        try:
            return OnnxRuntimeRunner(net, weights_sha256)
        except (ImportError, RuntimeError, ValueError, OSError, TypeError) as exc:
            warnings.warn(f"onnxruntime backend unavailable ({type(exc).__name__}: {exc}); using eager torch",
                          RuntimeWarning, stacklevel=3)
    return TorchRunner(net, device)
