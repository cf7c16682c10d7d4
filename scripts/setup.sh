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

# The browser tests (tests/integration/test_pages_browser.py) drive headless Chromium; without it they skip.
if [ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  echo "setup: installing the Debian package chromium (for the browser tests)" >&2
  if ! { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium; } >/dev/null; then
    echo "setup: could not install chromium; the browser tests will be skipped" >&2
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi

# Reinstall only when the project's requirements (pyproject.toml, or the extra installs in this script)
# changed since the last successful setup.
stamp=".venv/.genbench-setup${extras:+-test}"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing torch==2.14.1 torchvision==0.29.1 and genbench${extras}" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
  .venv/bin/python -m pip install -q -e ".${extras}"
  if [ -n "$extras" ]; then
    # Test oracle only, never imported by genbench: a 2023 snapshot of the official DINOv2 model code
    # (non-commercial licence header, heavy pinned requirements), so without its dependencies.
    .venv/bin/python -m pip install -q --no-deps dinov2==0.0.1.dev2
  fi
  echo "$want" > "$stamp"
fi
