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


def test_moved_modules_import_under_their_old_names_with_a_warning():
    script = r"""
import importlib, warnings
import genbench
from genbench._compat import MOVED
for old, new in MOVED.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new), old
    assert module.__spec__.name == new, (old, module.__spec__.name)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), old
from genbench.refstats import lookup_reference  # a name from an old module
print(len(MOVED))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 20


def test_no_top_level_package_but_genbench():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    packages = config["tool"]["setuptools"]["packages"]
    assert packages and all(p == "genbench" or p.startswith("genbench.") for p in packages), packages
