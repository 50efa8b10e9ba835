#!/usr/bin/env bash
# Usage: tools/dist_run.sh SCRIPT NUM_PROCESSES [SCRIPT args...]
# Runs tools/SCRIPT (train.py, test.py, make_pseudo_labels.py,
# run_experiment.py) in NUM_PROCESSES processes with torchrun and
# --launcher pytorch: nccl on GPUs, gloo on CPU-only machines (see
# semples_mm/utils/launch.py). Multi-node: set NNODES, NODE_RANK,
# MASTER_ADDR; PORT is the rendezvous port (default 29500).
SCRIPT=$1
NPROC=$2
PYTHON=${PYTHON:-python}
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
    "$(dirname "$0")/$SCRIPT" "${@:3}" --launcher pytorch
