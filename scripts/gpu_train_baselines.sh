#!/usr/bin/env bash
# Train every bundled baseline family on a lent GPU in a fixed time budget, checkpoints into $OUT.
#
#   scripts/gpu_train_baselines.sh [SECONDS_PER_FAMILY]     (default 55: seven families in about 7 minutes,
#                                                            which leaves room for bench/gpu_all.sh in 15)
# Run it through the device tool (`run`), then, back here, keep each GPU checkpoint only where it scores a
# lower fd_fmnist than the bundled one:
#   .venv/bin/python scripts/bundle_baselines.py --from <files_at>/baselines --if-better dcgan cgan ...
# Each family trains with its bundled config (baselines/configs/NAME.toml), on CUDA, with bfloat16
# autocast where the family allows it (train.amp = "auto": not the flow, not the WGAN-GP double backward),
# for GPU_STEPS[NAME] steps or SECONDS_PER_FAMILY seconds, whichever comes first; the checkpoint records
# the device, precision, steps and wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
budget="${1:-55}"
dest="${OUT:-out}/baselines"
mkdir -p "$dest"
device="${GENBENCH_TRAIN_DEVICE:-cuda}"
# Steps planned for the schedules (linear decay, EMA start): about what one GPU reaches in the budget.
declare -A GPU_STEPS=([dcgan]=30000 [cgan]=30000 [wgan-gp]=12000 [vae]=40000 [glo]=30000 [flow]=20000 [cyclegan]=10000)
for name in dcgan cgan wgan-gp vae glo flow cyclegan; do
  echo "== $name (${GPU_STEPS[$name]} steps or ${budget} s on $device)"
  "$PY" -m genbench.baselines "$name" --device "$device" --steps "${GPU_STEPS[$name]}" --time-limit "$budget" \
      --out "$dest/$name.pt" --overwrite 2>&1 | tee "$dest/$name.log" | grep -E "done|stopped|\] [0-9]+ steps" || true
done
