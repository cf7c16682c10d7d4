"""Checkpoint files of the baselines and the manifest of the bundled ones.

A checkpoint is a ``torch.save``'d dict of plain tensors, dicts, lists, str, int, float
and bool only, so that ``torch.load(path, weights_only=True)`` reads it::

    format            "genbench-baseline"
    format_version    int (FORMAT_VERSION)
    name              the baseline's name, e.g. "dcgan" or the config variant "dcgan-stacked" (absent in
                      checkpoints written before variants existed: read it as the family)
    family            e.g. "dcgan"
    config            the resolved RunConfig.to_dict() (every option, defaults included)
    dataset           training data set, e.g. "fashion-mnist:train" or "stacked-fashion-mnist:train"
    state             {"nets": {name: state_dict}, "extra": {name: tensor}}
    steps             optimisation steps taken
    wall_time_s       training wall time (seconds, excluding data loading and evaluation)
    device            e.g. "cpu" or "cuda:0" (+ the precision used, in "precision")
    metrics           {name: float} from the family's end-of-training evaluation
    history           [{"step": int, "<loss>": float, ...}] logged averages
    genbench_version, torch_version, created (UTC ISO time), dry_run (bool), threads (int)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genbench.errors import InputError, WeightsError
from genbench.util.atomic import atomic_path, write_text_atomic
from genbench.util.files import sha256_file

from .data_dir import CHECKPOINT_DIR

FORMAT = "genbench-baseline"
FORMAT_VERSION = 1
MANIFEST = CHECKPOINT_DIR / "manifest.json"


def genbench_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genbench")
    except PackageNotFoundError:
        return "unknown"


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write ``checkpoint`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a baseline checkpoint with ``weights_only=True`` on CPU.

    Raises InputError for a missing, truncated or foreign file, or a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist (expected a .pt file from `genbench baselines train`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  an untrusted file: whatever its parser raises means "not readable"
        text = str(exc) if not isinstance(exc, KeyError) else f"unexpected content ({type(exc).__name__}: {exc})"
        if "Unsupported global" in text:  # a pickle of objects other than tensors and plain containers
            detail = text[text.index("Unsupported global"):].splitlines()[0]
            raise InputError(f"{path}: not a genbench baseline checkpoint (it holds Python objects, which "
                             f"weights_only loading refuses: {detail})") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        detail = lines[0] if lines else type(exc).__name__
        if "WeightsUnpickler error" in text:
            after = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
            detail = after[0] if after else detail
        raise InputError(f"{path}: not a readable torch checkpoint (truncated or corrupt?): {detail}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        what = f"a dict with keys {sorted(map(str, ckpt))[:6]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(f"{path}: not a genbench baseline checkpoint (expected format={FORMAT!r}, got {what})")
    version = ckpt.get("format_version")
    if not isinstance(version, int):
        raise InputError(f"{path}: checkpoint has no integer format_version")
    if version > FORMAT_VERSION:
        raise InputError(
            f"{path}: checkpoint format version {version} is newer than this genbench reads "
            f"({FORMAT_VERSION}); upgrade genbench (it was written by genbench {ckpt.get('genbench_version')})"
        )
    for key in ("family", "config", "state", "steps"):
        if key not in ckpt:
            raise InputError(f"{path}: checkpoint lacks {key!r}")
    return ckpt



def read_manifest() -> dict[str, Any]:
    """The bundled checkpoints' manifest ({"format_version", "checkpoints": {name: entry}})."""
    if not MANIFEST.is_file():
        return {"format_version": FORMAT_VERSION, "checkpoints": {}}
    try:
        return json.loads(MANIFEST.read_text())
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{MANIFEST}: not valid JSON ({exc})") from None


def bundled_checkpoint(name: str) -> Path:
    """Path of the bundled checkpoint ``name`` (a family or a config variant) after checking its sha256 against the manifest.

    Raises WeightsError when it is not listed, missing, or its checksum differs.
    """
    entry = read_manifest()["checkpoints"].get(name)
    if entry is None:
        raise WeightsError(f"no bundled checkpoint for {name!r} in {MANIFEST}; train one with `genbench baselines train {name}`")
    path = CHECKPOINT_DIR / entry["file"]
    if not path.is_file():
        raise WeightsError(f"bundled checkpoint {path} listed in {MANIFEST} is missing")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise WeightsError(f"{path}: sha256 {digest} does not match {entry['sha256']} in {MANIFEST}")
    return path


def record_bundled(name: str, path: str | Path, command: str) -> dict[str, Any]:
    """Add or replace the manifest entry of bundled checkpoint ``path`` (which must lie in CHECKPOINT_DIR)."""
    path = Path(path).resolve()
    if path.parent != CHECKPOINT_DIR:
        raise InputError(f"{path}: bundled checkpoints must be written to {CHECKPOINT_DIR}")
    ckpt = read_checkpoint(path)
    steps, wall = int(ckpt["steps"]), float(ckpt["wall_time_s"])
    entry = {
        "name": name,
        "file": path.name,
        "sha256": sha256_file(path),
        "size_bytes": path.stat().st_size,
        "family": ckpt["family"],
        "steps": steps,
        "wall_time_s": round(wall, 1),
        "steps_per_s": round(steps / wall, 3) if wall > 0 else None,
        "device": ckpt["device"],
        "threads": ckpt.get("threads"),
        "metrics": ckpt.get("metrics", {}),
        # the generator weights sampled from: "ema" (the average, train.ema_decay > 0) or "raw"
        "sampled_weights": ckpt.get("sampled_weights", "ema" if ckpt["config"]["train"].get("ema_decay") else "raw"),
        "weight_choice": ckpt.get("weight_choice", {}),
        "config": ckpt["config"],
        "command": command,
        # The config's time_limit_s may stop a run before train.steps; --steps repeats it exactly.
        "stopped_early": steps < int(ckpt["config"]["train"]["steps"]),
        "reproduce": f"genbench baselines train {name} --bundle --threads {ckpt.get('threads') or 1}"
                     + (f" --stop-after {steps}" if steps < int(ckpt["config"]["train"]["steps"]) else ""),
        "genbench_version": ckpt["genbench_version"],
        "torch_version": ckpt["torch_version"],
        "created": ckpt["created"],
    }
    manifest = read_manifest()
    manifest["format_version"] = FORMAT_VERSION
    manifest["checkpoints"][name] = entry
    manifest["checkpoints"] = dict(sorted(manifest["checkpoints"].items()))
    write_text_atomic(MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return entry
