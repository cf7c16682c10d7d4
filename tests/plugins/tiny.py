"""Registers the tests' ``test-tiny`` extractor in any process (torchrun workers, benchmark subprocesses).

    GENBENCH_PLUGINS=tests.plugins.tiny python -m genbench score a.npy --ref b.npy --extractor test-tiny

Run from the repository root (so that ``tests`` is importable). The extractor itself lives in
``tests/conftest.py``, whose import registers it; this module only makes that import explicit.
"""
from tests.conftest import TinyExtractor, make_images  # noqa: F401  (importing conftest registers test-tiny)
