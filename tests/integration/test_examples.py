"""The training-loop examples in examples/ run a few steps and log finite fd_fmnist values.

Each runs as a user would (``python examples/X.py``) in a fresh process on tiny settings. The Lightning
and Accelerate examples need those libraries, which are not genbench dependencies but are in the ``test``
extra (``pip install -e .[test]``, as scripts/setup.sh --test does), so they run in CI; without them the two
tests skip, naming the package. All need the Fashion-MNIST idx files (skip otherwise).
"""
from __future__ import annotations

import csv
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("/usr/share/datasets/fashion-mnist")
LINE = re.compile(r"^(?:step|batch)\s+(\d+)\s+fd_fmnist\s+(\S+)", re.MULTILINE)

pytestmark = pytest.mark.slow


def _need(module: str, pip_name: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install {pip_name}); the example is optional")


def _run(script: str, *args: str) -> list[tuple[int, float]]:
    if not (DATA / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST idx files not found in {DATA} (apt-get install dataset-fashion-mnist)")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logged = [(int(step), float(value)) for step, value in LINE.findall(proc.stdout)]
    assert all(math.isfinite(v) and v > 0 for _, v in logged), logged
    return logged


def test_plain_training_loop():
    logged = _run("training_loop_fd.py", "--steps", "4", "--every", "2", "--eval-n", "64")
    assert [s for s, _ in logged] == [0, 2, 4]


def test_lightning_callback(tmp_path):
    _need("lightning", "lightning")
    logged = _run("lightning_callback.py", "--steps", "4", "--every", "2", "--eval-n", "64", "--limit", "512",
                  "--log-dir", str(tmp_path))
    assert [s for s, _ in logged] == [2, 4]
    with open(tmp_path / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("fd_fmnist")]
    assert [float(r["fd_fmnist"]) for r in rows] == pytest.approx([v for _, v in logged], abs=1e-3)


def test_accelerate_loop():
    _need("accelerate", "accelerate")
    logged = _run("accelerate_loop.py", "--steps", "4", "--every", "2", "--eval-n", "64", "--limit", "512", "--cpu")
    assert [s for s, _ in logged] == [2, 4]
