#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py args...]
# (tools/dist_run.sh: nccl on GPUs, gloo on CPU; NNODES, NODE_RANK,
# MASTER_ADDR, PORT for several nodes)
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
