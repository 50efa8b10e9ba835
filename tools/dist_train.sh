#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
# (tools/dist_run.sh: nccl on GPUs, gloo on CPU; NNODES, NODE_RANK,
# MASTER_ADDR, PORT for several nodes)
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
