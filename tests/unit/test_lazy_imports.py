"""A verb that needs no network imports no torch: scoring two feature files reads them, sums float64
moments and solves the Frechet distance with numpy/scipy alone (torch's import alone costs seconds)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

SCRIPT = r"""
import sys
from click.testing import CliRunner
from genbench.cli import main
result = CliRunner().invoke(main, ["score", sys.argv[1], "--ref", sys.argv[2], "--metrics", "fd", "--json", "-"])
assert result.exit_code == 0, result.output
heavy = sorted(m for m in ("torch", "torchvision", "onnxruntime") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_scoring_feature_files_imports_no_torch(tmp_path):
    rng = np.random.default_rng(0)
    for name, shift in (("a", 0.0), ("b", 0.5)):
        np.savez(tmp_path / f"{name}.npz", features=(rng.standard_normal((50, 8)) + shift).astype(np.float32))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "a.npz"), str(tmp_path / "b.npz")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    heavy = done.stdout.strip().splitlines()[-1]
    assert heavy == "none", f"scoring feature files imported {heavy}"
