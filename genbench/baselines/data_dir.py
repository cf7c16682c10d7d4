"""Where the baselines' data are: configs, checkpoints and their manifest, README.

They live in the repository's top-level ``baselines/`` folder and install as package data at
``genbench/_baseline_data/`` (pyproject.toml maps the one onto the other, as it maps ``reference_stats/``
onto ``genbench/_reference_stats/``). No Python package named ``baselines`` is installed: the folder holds
no code.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

#: The package the repository's ``baselines/`` folder installs as.
DATA_PACKAGE = "genbench._baseline_data"
#: A file every copy of the data has.
_MARKER = Path("checkpoints") / "manifest.json"


def _find() -> Path:
    """The checkout's ``baselines/`` when genbench is imported from a checkout (next to its pyproject.toml),
    else the installed package data (found through the import system)."""
    root = Path(__file__).resolve().parents[2]
    checkout = root / "baselines"
    if (root / "pyproject.toml").is_file() and (checkout / _MARKER).is_file():
        return checkout
    try:
        spec = importlib.util.find_spec(DATA_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for folder in (Path(p) for p in ((spec.submodule_search_locations or ()) if spec is not None else ())):
        if (folder / _MARKER).is_file():
            return folder
    return checkout  # neither: the messages then name the checkout's folder


DATA_DIR = _find()
CONFIG_DIR = DATA_DIR / "configs"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
