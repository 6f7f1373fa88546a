#!/usr/bin/env bash
# Sourced by tools/slurm_train.sh and tools/slurm_test.sh (not run on its own):
#   slurm_run PARTITION JOB_NAME SCRIPT [SCRIPT args...]
# runs tools/SCRIPT as one slurm task per GPU with --launcher slurm (MMEngine reads the
# slurm variables; MASTER_PORT, default 29500, picks the port: docs/distributed.md).
# Env: GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS.
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

slurm_run() {
    local partition=$1 job_name=$2 script=$3
    shift 3
    set -x
    # shellcheck disable=SC2086  # SRUN_ARGS holds several srun options
    PYTHONPATH="$TOOLS_DIR/..":${PYTHONPATH:-} \
    srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"$GPUS_PER_NODE" \
        --ntasks="$GPUS" \
        --ntasks-per-node="$GPUS_PER_NODE" \
        --cpus-per-task="$CPUS_PER_TASK" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS} \
        python -u "$TOOLS_DIR/$script" "$@" --launcher=slurm
}
