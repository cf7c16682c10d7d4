#!/usr/bin/env bash
# Every GPU check and benchmark of genbench in one command; writes reports/bench-gpu.md and
# reports/bench-train.md (+ .json).
#
#   bench/gpu_all.sh            on a CUDA machine: the engine/cache tests, bench/bench_gpu.py on a
#                               50,000-image folder (about 5 minutes on one H100), then bench/bench_train.py
#                               (every baseline family, 40 steps on the CPU and 400 on CUDA)
#   bench/gpu_all.sh --smoke    anywhere, CPU included: the same steps, small (reports/bench-gpu-smoke.md)
#
# Extra arguments go to bench/bench_gpu.py (see its --help). Python: $PYTHON, else .venv/bin/python, else
# python3. genbench is used from this checkout (PYTHONPATH), so nothing needs installing; torch-fidelity is
# installed from wheels in .whl/ when it is missing and they are there (the GPU machine has no registry).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! "$PY" -c "import torch_fidelity" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/genbench-site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/genbench-site"
fi
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda available:', torch.cuda.is_available())"

echo "== unit tests of the extraction engine and the feature cache (CUDA ones run where a GPU is present)"
GENBENCH_CACHE="$(mktemp -d)" "$PY" -m pytest -q -p no:cacheprovider tests/unit/test_engine.py tests/unit/test_cache.py \
  tests/unit/test_fid_torch.py

echo "== Evaluator.compute() at d=2048 with the statistics on the GPU (target: under 0.1 s)"
"$PY" bench/bench_evaluator.py --device cuda --compute-only --compute-repeats 5 || echo "(no CUDA device: skipped)"

echo "== benchmarks"
"$PY" bench/bench_gpu.py "$@"

echo "== baseline training speed, CPU against CUDA (reports/bench-train.md)"
if [[ " $* " == *" --smoke "* ]]; then
  "$PY" bench/bench_train.py --smoke
else
  "$PY" bench/bench_train.py --steps-cpu 40 --steps-cuda 400
fi
