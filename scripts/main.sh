#!/usr/bin/env bash
# The main job, offline: score the Fashion-MNIST test split and degraded copies of it
# against the bundled reference statistics, with the bundled domain network.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/genbench demo "$@"
