#!/usr/bin/env bash
# Wheels of what semples-mm needs beyond a typical GPU image, for a machine
# without internet (a lent GPU node, a cluster's compute node).
#
# Here (with internet), in the repository root:
#   bash tools/misc/offline_wheels.sh [DEST]          # DEST defaults to .whl
# There (offline), in a copy of the repository:
#   python3 -m pip install --no-index --no-deps --target /tmp/site DEST/*.whl
#   export PYTHONPATH=/tmp/site:$PWD
#   python3 tools/misc/check_offline_env.py            # what is still missing
#
# The OpenMMLab (OneDL) and open_clip pins come from requirements/runtime.txt;
# the rest are their small pure-Python dependencies that such images lack.
# All are pure Python (py3-none-any) but wcwidth's, an abi3 wheel for this
# machine's platform (x86-64 Linux, CPython >= 3.10): build on a machine of
# the target's architecture. torch, torchvision, numpy, scipy, matplotlib,
# opencv, Pillow, rich, PyYAML, regex, tqdm, huggingface-hub, safetensors,
# timm and packaging must already be there (checked by check_offline_env.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${1:-.whl}
PYTHON=${PYTHON:-python3}
mapfile -t pins < <(grep -E '^(onedl-|open_clip_torch)' requirements/runtime.txt)
mkdir -p "$DEST"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$DEST" "${pins[@]}" \
  addict termcolor yapf platformdirs ftfy wcwidth prettytable
ls -1 "$DEST"
