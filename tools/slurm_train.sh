#!/usr/bin/env bash
# Usage: [GPUS=8] ... tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args...]
# (tools/slurm_run.sh: GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS)
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "${@:3}"
