#!/usr/bin/env bash
# Evaluation on a slurm cluster (one task per GPU; the metrics gather to rank 0).
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# Env: GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS;
# MASTER_PORT (29500) is read by MMEngine's slurm launcher (docs/distributed.md).
source "$(dirname "$0")/_slurm_env.sh"
slurm_run "$1" "$2" test.py "$3" "$4" "${@:5}"
