#!/usr/bin/env bash
# Training on a slurm cluster (one task per GPU).
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Env: GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS;
# MASTER_PORT (29500) is read by MMEngine's slurm launcher (docs/distributed.md).
source "$(dirname "$0")/_slurm_env.sh"
slurm_run "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"
