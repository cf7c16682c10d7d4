"""Plug-in modules for tests that run genbench in a subprocess (``GENBENCH_PLUGINS=tests.plugins.tiny``)."""
