"""Old module names, kept importable for one release: ``import genbench.refstats`` still works, with a warning.

The package was split into layers (cli, extraction, results, util); every module that moved is
listed here with its new name. Importing an old name gives the new module itself (one module
object, so monkeypatching either name patches both) and a DeprecationWarning naming the new one.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module name -> the module it moved to
MOVED: dict[str, str] = {  # old module -> new module
    "genbench.cli_options": "genbench.cli.options",
    "genbench.cli_boundary": "genbench.cli.boundary",
    "genbench.cli_results": "genbench.cli.results",
    "genbench.cli_baselines": "genbench.cli.baselines",
    "genbench.cli_ref": "genbench.cli.ref",
    "genbench.cli_probe": "genbench.cli.probe",
    "genbench.cli_cache": "genbench.cli.cache",
    "genbench.cli_gate": "genbench.cli.gate",
    "genbench.demo": "genbench.cli.demo",
    "genbench.engine": "genbench.extraction.engine",
    "genbench.cache": "genbench.extraction.cache",
    "genbench.distributed": "genbench.extraction.distributed",
    "genbench.devices": "genbench.util.devices",
    "genbench.progress": "genbench.util.progress",
    "genbench.atomic": "genbench.util.atomic",
    "genbench.history": "genbench.results.history",
    "genbench.report": "genbench.results.report",
    "genbench.pictures": "genbench.results.pictures",
    "genbench.outputs": "genbench.results.outputs",
    "genbench.pages": "genbench.results.pages",
    "genbench.probes.plots": "genbench.results.plots",
    "genbench.refstats": "genbench.stats.reference",
    "genbench.transforms": "genbench.sources.transforms",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module name (or a module under a moved package) to the module at its new place."""

    @staticmethod
    def new_name(fullname: str) -> str | None:
        parts = fullname.split(".")
        for k in range(len(parts), 1, -1):
            head = ".".join(parts[:k])
            if head in MOVED:
                return ".".join([MOVED[head], *parts[k:]])
        return None

    _real_spec: importlib.machinery.ModuleSpec | None = None

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if self.new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = self.new_name(spec.name)
        assert new is not None
        warnings.warn(f"{spec.name} moved to {new}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._real_spec  # the import machinery gave the module the alias's spec: put its own back


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedModules())
