#!/usr/bin/env bash
# Set up genbench on a fresh machine: the Fashion-MNIST Debian package (where apt-get exists),
# a virtual environment at .venv with the pinned PyTorch, and genbench itself.
# Usage: scripts/setup.sh [--test]   (--test also installs the test dependencies)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  echo "setup: installing the Debian package dataset-fashion-mnist" >&2
  if ! { $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq dataset-fashion-mnist; } >/dev/null; then
    echo "setup: could not install dataset-fashion-mnist; pass --data-dir or set GENBENCH_DATA to a copy of Fashion-MNIST" >&2
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi

# Reinstall only when the project's requirements changed since the last successful setup.
stamp=".venv/.genbench-setup${extras:+-test}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing torch==2.14.1 torchvision==0.29.1 and genbench${extras}" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
  .venv/bin/python -m pip install -q -e ".${extras}"
  echo "$want" > "$stamp"
fi
