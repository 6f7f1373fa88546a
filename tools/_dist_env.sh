#!/usr/bin/env bash
# Sourced by tools/dist_train.sh and tools/dist_test.sh (not run on its own):
#   dist_run SCRIPT GPUS [SCRIPT args...]
# runs tools/SCRIPT in GPUS processes per node with torchrun. Multi-node: set NNODES,
# NODE_RANK, MASTER_ADDR, PORT on every node (docs/distributed.md).
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

dist_run() {
    local script=$1 gpus=$2
    shift 2
    PYTHONPATH="$TOOLS_DIR/..":${PYTHONPATH:-} \
    python -m torch.distributed.run \
        --nnodes="$NNODES" \
        --node_rank="$NODE_RANK" \
        --master_addr="$MASTER_ADDR" \
        --nproc_per_node="$gpus" \
        --master_port="$PORT" \
        "$TOOLS_DIR/$script" \
        "$@"
}
