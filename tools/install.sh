#!/usr/bin/env bash
# Creates a virtual environment (default .venv, or $VENV) and installs
# semples-mm with its test requirements from this checkout. Fails on any error.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
"$VENV/bin/python" -m pip install --quiet -e ".[tests]"
"$VENV/bin/python" -c "import semples_mm, mmseg, mmcv, mmengine, open_clip; print('semples_mm', semples_mm.__version__, 'ready in', '$VENV')"
