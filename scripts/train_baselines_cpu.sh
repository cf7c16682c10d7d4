#!/usr/bin/env bash
# Train bundled baselines on CPU, one after another, one torch thread each, into out/baselines/.
#   scripts/train_baselines_cpu.sh dcgan cgan vae glo &      # two such lists in parallel on 2 cores
#   scripts/train_baselines_cpu.sh wgan-gp flow cyclegan &
# Each NAME trains with baselines/configs/NAME.toml to out/baselines/NAME.pt (log: NAME.log);
# scripts/bundle_baselines.py then copies the finished checkpoints into baselines/checkpoints/
# and records them (sha256, steps, device, wall time) in the manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
mkdir -p out/baselines
for name in "$@"; do
    "$PY" -m genbench.baselines "$name" --threads 1 --out "out/baselines/$name.pt" --overwrite \
        >"out/baselines/$name.log" 2>&1
done
