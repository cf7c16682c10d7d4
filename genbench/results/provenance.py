"""The one builder of a result's provenance: what produced the numbers, in the keys every document shares.

Every result document (``score``, ``check``, each probe, the streaming Evaluator, a leaderboard
row) carries the same core, in this order: ``genbench_version``; the identity fields of the
features (:data:`~genbench.stats.compatibility.IDENTITY_FIELDS`); ``unchecked`` where the
compatibility policy could not check an input; ``inputs``; the options of the run; ``seed``,
``device``, ``batch_size``, ``precision`` where features were extracted; ``torch_version``,
``python``, ``command``, ``wall_time_s``, ``created_at`` and ``git_commit``. A verb adds its own
keys after the core (``extra``).
"""
from __future__ import annotations

import importlib.util
import platform
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..stats.compatibility import IDENTITY_FIELDS
from ..version import __version__

if TYPE_CHECKING:
    from ..config import ExtractOptions


def command_line() -> str:
    """The command that is running, as typed (program name without its folder)."""
    return " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]) if sys.argv else ""


def torch_version() -> str | None:
    """torch's ``__version__`` (with its local label, ``2.14.1+cpu``), without importing torch when no one has.

    A run that scores feature files never needs torch; importing it only for this string would cost seconds.
    Read from ``torch/version.py`` of the installed package; None when torch is not installed.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            text = (Path(folder) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
        if match:
            return match.group(1)
    import torch as imported  # an unusual install: ask the package itself

    return str(imported.__version__)


def build_provenance(
    identity: Mapping[str, Any] | None,
    inputs: Mapping[str, Any],
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int | None = None,
    extract_options: ExtractOptions | None = None,
    started: float | None = None,
    unchecked: Mapping[str, list[str]] | None = None,
    stamp: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A provenance dict (see the module docstring for its keys).

    ``identity``: the features' metadata (only its identity fields are kept; None: all None).
    ``options``: ``{"metric_options": {...}}`` and the like, recorded under their keys.
    ``started``: ``time.perf_counter()`` at the start of the run, for ``wall_time_s``.
    ``stamp``: ``created_at`` and ``git_commit``; None: now and the current directory's commit.
    """
    from .history import run_stamp

    ident = identity or {}
    out: dict[str, Any] = {"genbench_version": __version__, **{k: ident.get(k) for k in IDENTITY_FIELDS}}
    if unchecked:
        out["unchecked"] = {what: list(fields) for what, fields in unchecked.items()}
    out["inputs"] = dict(inputs)
    for key, values in (options or {}).items():
        out[key] = dict(values)
    if seed is not None:
        out["seed"] = seed
    if extract_options is not None:
        out["device"] = extract_options.device
        out["batch_size"] = extract_options.batch_size
        out["precision"] = extract_options.precision
    out["torch_version"] = torch_version()
    out["python"] = platform.python_version()
    out["command"] = command_line()
    if started is not None:
        out["wall_time_s"] = round(time.perf_counter() - started, 3)
    out.update(stamp if stamp is not None else run_stamp())
    out.update(extra or {})
    return out
