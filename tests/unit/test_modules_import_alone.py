"""Every genbench module imports on its own: no import cycle that only works in one order."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import importlib, pkgutil, sys
import numpy, torch  # third-party modules stay loaded; genbench is imported afresh for each module
import genbench
names = sorted(m.name for m in pkgutil.walk_packages(genbench.__path__, "genbench.") if not m.name.endswith("__main__"))
failed = []
for name in names:
    for key in [k for k in sys.modules if k == "genbench" or k.startswith("genbench.")]:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\n".join(failed))
"""


def test_every_module_imports_alone():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    count, *failed = done.stdout.strip().splitlines()
    assert int(count) > 50  # the walk found the package's modules
    assert not [line for line in failed if line], failed


def test_the_pre_layer_module_names_are_gone():
    # genbench 0.1.0 is unreleased: the names modules had before the layered layout are not kept as aliases.
    script = r"""
import importlib, sys
import genbench
for old in ("genbench.refstats", "genbench.cli_gate", "genbench.engine", "genbench.devices", "genbench.transforms"):
    try:
        importlib.import_module(old)
    except ModuleNotFoundError:
        continue
    sys.exit(f"{old} still imports")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
