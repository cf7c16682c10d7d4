#!/usr/bin/env bash
# The test command: set up everything a fresh machine needs, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
