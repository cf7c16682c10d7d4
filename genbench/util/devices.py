"""Device names: checked once, before any work, with a message that names the option."""
from __future__ import annotations

import re

from ..errors import ConfigError

_DEVICE = re.compile(r"^(cpu|cuda|mps)(:(\d+))?$")


def check_device(name: str, option: str = "--device") -> str:
    """``name`` if it is a device this machine has (``cpu``, ``cuda``, ``cuda:N``, ``mps``); else ConfigError.

    Cheap: imports torch but allocates nothing on the device.
    """
    match = _DEVICE.match(str(name).strip().lower()) if name is not None else None
    if match is None:
        raise ConfigError(f"{option} {name!r}: expected cpu, cuda, cuda:N or mps")
    kind, index = match.group(1), match.group(3)
    if kind == "cpu":
        if index not in (None, "0"):
            raise ConfigError(f"{option} {name!r}: the CPU has no index other than 0; use cpu")
        return "cpu"
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {name}: CUDA is not available on this machine (torch {torch.__version__}, "
                              f"CUDA build {torch.version.cuda or 'none'}); use --device cpu")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise ConfigError(f"{option} {name}: this machine has {count} CUDA device(s), numbered 0 to {count - 1}")
    elif not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"{option} {name}: MPS is not available on this machine; use --device cpu")
    return f"{kind}:{index}" if index is not None else kind
