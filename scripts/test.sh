#!/usr/bin/env bash
# The test command: set up everything a fresh machine needs, then lint, type-check and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
echo "test: ruff check" >&2
.venv/bin/ruff check genbench tests bench scripts examples
echo "test: mypy (configured in pyproject.toml)" >&2
.venv/bin/mypy
echo "test: lint-imports (the layering contract in pyproject.toml)" >&2
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q "$@"
